"""A Flyte 2 local run is its own execution, and the reference pipeline acts on a document once, on its own reading
(review of 2026-12-06: three ways to act twice on one sign-off, or on facts nobody read)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[3]
SMALL = "type: invoice\namount: 1200.50\ncurrency: EUR\n"
RUN = """
import flyte
from tests.flyte2.inner.governed_tasks import pay_sync
flyte.init()
flyte.with_runcontext(mode="local", name="pay-001").run(pay_sync, doc_id="doc-1", amount=120.0, currency="EUR",
                                                       marker={marker!r})
"""


def _records(kind: str) -> list[Any]:
    return [r.event for r in audit_log(get_settings()).scan() if r.event.kind == kind]


def test_two_local_runs_under_one_run_name_are_two_executions(tmp_path: Path) -> None:
    """A local run's name is the launcher's choice: ``flyte run --local --name pay-001`` twice was one execution for
    the pack, and the second run used the first run's approval again (three payments on one sign-off). Each local
    process is now its own execution, under the run name it was given."""
    for i in range(2):
        code = RUN.format(marker=str(tmp_path / f"ran-{i}"))
        res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ), capture_output=True,
                             text=True, timeout=240)  # fmt: skip
        assert res.returncode == 0, res.stderr[-2000:]
    names = [e.execution.name for e in _records("policy_decision")]
    assert len(names) == 2 and names[0] != names[1], names
    assert all(n.startswith("aios-run-") and ":pay-001@" in n for n in names), names


def test_a_document_is_acted_on_once_and_on_its_own_reading() -> None:
    """``act_on_document`` took an ``Extracted`` from its launcher: a real invoice's digest with 9,000 for its 95,000
    was decided without the sign-off and posted, twice. It now reads the text it acts on, and claims the post: another
    run's post of the same document is refused (``already_used``)."""
    import flyte

    from flytekitplugins.aios_core.context import local_run
    from workflows_flyte2.documents import act_on_document

    def act() -> str:
        run = flyte.with_runcontext(mode="local").run(act_on_document, text=SMALL, approval_timeout_s=5.0)
        return str(run.outputs()[0])

    assert act().startswith("posted invoice 1200.50 EUR for sha256:")
    with local_run("another-launch"), pytest.raises(Exception, match="already_used"):
        act()
    assert [e.status for e in _records("document_acted")] == ["claimed"]


def test_a_document_in_a_batch_twice_is_acted_on_once(tmp_path: Path) -> None:
    """Two files holding one invoice opened one sign-off request, and the approval paid twice in one run."""
    assert _batch(tmp_path, {"a.txt": SMALL.encode(), "b.txt": SMALL.encode()}) == ["acted", "duplicate"]
    assert len(_records("document_acted")) == 1


def _batch(tmp_path: Path, files: dict[str, bytes]) -> list[str]:
    """The reference workflow's outcomes for a folder of ``files`` (a local run in its own process)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, data in files.items():
        (docs / name).write_bytes(data)
    cmd = [sys.executable, "-m", "workflows_flyte2.documents", str(docs), "--approval-timeout", "5"]
    res = subprocess.run(cmd, cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return [d["outcome"] for d in json.loads(res.stdout.strip().splitlines()[-1])["documents"]]


def test_two_runs_of_one_name_in_one_process_are_two_executions(tmp_path: Path) -> None:
    """Re-review of 2026-12-06: the process's run id alone left two runs of one name in one launcher process one
    execution (one sign-off paid three times). The run's start time is part of a local execution's name now."""
    import flyte

    from tests.flyte2.inner.governed_tasks import pay_sync

    for i in range(2):
        flyte.with_runcontext(mode="local", name="pay-001").run(
            pay_sync, doc_id="doc-1", amount=120.0, currency="EUR", marker=str(tmp_path / f"ran-{i}")
        )
    names = [e.execution.name for e in _records("policy_decision")]
    assert len(names) == 2 and names[0] != names[1] and all(":pay-001@" in n for n in names), names


def test_the_same_document_with_other_line_endings_is_a_duplicate(tmp_path: Path) -> None:
    """Re-review of 2026-12-06: one invoice in two files, one with CRLF line endings, was two documents and was paid
    twice. Duplicates and the post claim go by what a document says, not by its bytes."""
    crlf = SMALL.replace("\n", "\r\n").encode("utf-8") + b"  \r\n"
    assert _batch(tmp_path, {"a.txt": SMALL.encode(), "b.txt": crlf}) == ["acted", "duplicate"]
    assert len(_records("document_acted")) == 1


def test_what_a_document_says_is_both_its_facts_and_its_key() -> None:
    """Third review of 2026-12-06: the duplicate key folded Unicode forms while the facts were read from the raw text,
    so a look-alike (``type: ｉnvoice``, read as no invoice) hid the real invoice as its duplicate; and capitalised keys
    or other spacing gave the same facts under another key, paid twice. Facts and key now come from one reading."""
    from workflows_flyte2.documents import extract, same_document

    real = "type: invoice\namount: 900\ncurrency: EUR\n"
    others = (
        "type: \uff49nvoice\namount: 900\ncurrency: EUR\n",
        "Type:invoice\n  Amount:  900\r\nCurrency: EUR",
        "currency: EUR\namount: 900.00\ntype: invoice\n",  # fourth review: lines reordered, the amount spelt otherwise
        "type: invoice\namount: 12\namount: 900,00\ncurrency: EUR",  # a key repeated: the last counts, as when read
    )
    for other in others:
        assert same_document(other) == same_document(real)
        facts, real_facts = extract(other).model_dump(), extract(real).model_dump()
        assert {k: v for k, v in facts.items() if k != "digest"} == {
            k: v for k, v in real_facts.items() if k != "digest"
        }


def test_an_amount_past_four_places_is_refused_not_rounded() -> None:
    """Review of 2026-12-06 (from 20:55 UTC): the reading every fact comes from wrote the amount to four places, so
    10000.00004 was decided as 10000.0, under the 10,000 sign-off, and posted. The amount is kept as read, and the
    policy refuses what its decimals cannot hold, as on the flytekit path (docs/security.md, "Exact amounts")."""
    import flyte

    from workflows_flyte2.documents import act_on_document, extract

    text = "type: invoice\namount: 10000.00004\ncurrency: EUR\n"
    assert extract(text).amount == 10000.00004
    assert extract("type: invoice\namount: 10000.0000\ncurrency: EUR\n").amount == 10000.0
    with pytest.raises(Exception) as e:
        flyte.with_runcontext(mode="local").run(act_on_document, text=text, approval_timeout_s=3.0)
    assert "decimal" in str(e.value).lower() or "policy" in str(e.value).lower(), str(e.value)[:500]
    assert not _records("document_acted")
    decisions = _records("policy_decision")
    assert decisions and all(d.status == "deny" for d in decisions), [d.status for d in decisions]
