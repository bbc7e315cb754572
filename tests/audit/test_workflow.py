"""End to end: ``pyflyte run`` of a governed workflow, ``aios lineage trace``, HTML report in Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.digest import digest_file, digest_value
from flytekitplugins.aios_core.settings import get_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("docs") / "letter.txt"
    p.write_text("Dear team,\nplease process the attached INVOICE and issue a refund.\n", encoding="utf-8")
    return p


@pytest.mark.slow
def test_pyflyte_run_trace_and_report(aios_env: Path, doc: Path, tmp_path: Path) -> None:
    pyflyte = Path(sys.executable).with_name("pyflyte")
    out = subprocess.run(
        [str(pyflyte), "run", "tests/audit/governed_wf.py", "wf", "--doc", str(doc)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "FLYTE_SDK_LOGGING_LEVEL": "20"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ticket:finance:" in out.stdout
    records = list(audit_log(get_settings()).scan())
    assert [r.event.kind for r in records] == ["task", "task", "action"]
    act = records[-1]

    res = CliRunner().invoke(cli, ["lineage", "trace", act.record_id, "--json"])
    assert res.exit_code == 0, res.output
    doc_digest = digest_value({"$file": digest_file(doc)})
    trace = json.loads(res.output)
    assert [u["task"].rsplit(".", 1)[-1] for u in trace["upstream"]] == ["extract", "classify"]
    assert list(trace["sources"]) == [doc_digest]
    assert {(e["from"], e["to"]) for e in trace["edges"]} == {(1, 2), (1, 3), (2, 3)}

    # forward from the document (by its plain sha256, as `sha256sum` prints it) to the action taken
    plain = "sha256:" + hashlib.sha256(doc.read_bytes()).hexdigest()
    res = CliRunner().invoke(cli, ["lineage", "trace", plain, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["actions"] == [3]

    report = tmp_path / "report.html"
    res = CliRunner().invoke(cli, ["lineage", "report", "--out", str(report)])
    assert res.exit_code == 0, res.output
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must not load anything remote"
    _check_in_chromium(report, tmp_path, act.record_id)


def _check_in_chromium(report: Path, tmp_path: Path, action_id: str) -> None:
    from tests.lineage.chromium import open_page, screenshot

    dom, errors = open_page(report)
    assert errors == []
    assert 'id="verification" class="ok"' in dom and "Verification: OK: 3 records" in dom
    assert dom.count('class="record"') == 3 and "3 of 3 records match" in dom
    assert dom.count("<svg") >= 1 and "execution " in dom  # the run's flow, laid out by Graphviz
    dom, errors = open_page(report, f"q={action_id[:16]}")
    assert errors == [] and "1 of 3 records match" in dom
    screenshot(report, tmp_path / "workflow-report.png")


def test_deck_is_published_for_enable_deck(aios_env: Path, doc: Path) -> None:
    from flytekit import FlyteContextManager
    from flytekit.types.file import FlyteFile

    from tests.audit import governed_wf

    start = time.time()
    assert governed_wf.wf(doc=FlyteFile(str(doc))).startswith("ticket:finance:")
    # flytekit writes decks under its local sandbox, fixed when it first started in this process
    roots = {Path(os.environ["TMPDIR"]), Path(FlyteContextManager.current_context().file_access.local_sandbox_dir)}
    decks = [d for r in roots for d in r.rglob("deck.html") if d.stat().st_mtime >= start - 1]
    assert decks, "no deck.html written"
    text = "".join(d.read_text(encoding="utf-8") for d in decks)
    ids = [r.record_id for r in audit_log(get_settings()).scan()]
    assert all(rid in text for rid in ids)
