"""Every command block in README.md and docs/*.md runs as written, or its doc says why it is not run here.

Three checks per doc: every block is run or carries a valid ``docs-test`` marker; every command line (marked
ones too) names real ``aios`` commands/options, workflow files, workflows and inputs; the runnable blocks run,
in order, in a scratch checkout (``tests/docs/doc_runner.py``). The skip and cluster-only reasons are printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.doc_blocks import REPO, Block, commands, doc_files, extract
from tests.docs.doc_drift import check_line
from tests.docs.doc_runner import run_doc, scratch

DOCS = {str(p.relative_to(REPO)): extract(p) for p in doc_files()}
WITH_BLOCKS = sorted(d for d, blocks in DOCS.items() if blocks)
RUNNABLE = sorted(d for d, blocks in DOCS.items() if any(b.mode in ("run", "second-terminal") for b in blocks))


def _seed_audit_trail(cwd: Path) -> None:
    """compliance.md starts from a trail with records (it proves '#42'): a model's lineage and 50 task records."""
    from flytekitplugins.aios_audit.api import audit_log
    from flytekitplugins.aios_audit.records import AuditEvent
    from flytekitplugins.aios_core.settings import get_settings
    from tests.lineage.synthetic import write_model

    store = audit_log(get_settings(), emit=False)
    write_model(store)
    for i in range(50):
        store.append(AuditEvent(kind="task", actor="service:docs-test", status="succeeded", subject=f"step-{i}"))


SEEDS = {"docs/compliance.md": _seed_audit_trail}


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_block_is_run_or_marked_with_a_reason(doc: str, capsys: pytest.CaptureFixture[str]) -> None:
    problems = [f"{b.where}: {b.marker_error}" for b in DOCS[doc] if b.marker_error]
    assert not problems, "\n".join(problems)
    with capsys.disabled():  # what is not run here, and why, is part of the harness's report
        for b in DOCS[doc]:
            if b.mode in ("skip", "cluster-only"):
                print(f"\n  {b.where}: not run here ({b.mode}{': ' + b.reason if b.reason else ''})")


def test_readme_marks_its_first_two_commands() -> None:
    first = DOCS["README.md"][0]
    assert "bash scripts/demo.sh" in first.text and "bash scripts/test.sh" in first.text
    assert first.mode == "skip" and "test_demo.py" in first.reason, first


@pytest.mark.parametrize("doc", WITH_BLOCKS)
def test_doc_commands_match_the_code(doc: str) -> None:
    problems = [f"{b.where}: {p}" for b in DOCS[doc] for line in commands(b.text) for p in check_line(line)]
    assert not problems, "doc commands that drifted from the code:\n" + "\n".join(problems)


@pytest.mark.parametrize("doc", RUNNABLE)
def test_doc_runs_as_written(doc: str, tmp_path: Path) -> None:
    blocks: list[Block] = DOCS[doc]
    env = scratch(tmp_path)
    if doc in SEEDS:
        SEEDS[doc](tmp_path)
    outputs = run_doc(blocks, tmp_path, env)
    assert len(outputs) == sum(b.mode in ("run", "second-terminal") for b in blocks)
