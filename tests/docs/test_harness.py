"""The docs harness itself fails on drift: bad commands, failing blocks, markers without reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.doc_blocks import Block, commands, extract
from tests.docs.doc_drift import check_line
from tests.docs.doc_runner import run_doc, script, split_comment


def test_markers_are_read_and_a_skip_needs_a_reason(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text(
        "<!-- docs-test: cluster-only -->\n```bash\nkubectl get pods\n```\n\n"
        "<!-- docs-test: skip -->\n```sh\naios --help\n```\n```python\nprint(1)\n```\n"
        "<!-- docs-test: skip (slow) -->\n\n```console\naios audit verify \\\n  --json  # ok\n```\n"
    )
    blocks = extract_rel(md)
    assert [(b.mode, b.reason) for b in blocks] == [("cluster-only", ""), ("skip", ""), ("skip", "slow")]
    assert blocks[1].marker_error and not blocks[2].marker_error
    assert commands(blocks[2].text) == ["aios audit verify    --json  # ok"]


def extract_rel(md: Path) -> list[Block]:
    import tests.docs.doc_blocks as m

    old = m.REPO
    m.REPO = md.parent
    try:
        return extract(md)
    finally:
        m.REPO = old


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("aios audit verfy", "no command 'verfy'"),
        ("aios audit checkpoint --output cp.json", "no option --output"),
        ("aios models history a b", "too many arguments"),
        ("pyflyte run workflows/nope.py wf", "no such file"),
        ("python -m tasks.documents.nope", "no such module"),
    ],
)
def test_drifted_commands_are_named(line: str, problem: str) -> None:
    assert any(problem in p for p in check_line(line)), check_line(line)


def test_commands_that_match_the_code_pass() -> None:
    assert check_line("AIOS_X=1 .venv/bin/aios --store sqlite:///x.db audit verify --json  # comment") == []
    assert check_line("aios lineage trace sha256:<document digest> --json") == []


def test_a_failing_command_fails_its_block_unless_the_doc_says_it_is_refused(tmp_path: Path) -> None:
    ok = Block("d.md", 1, "true\nfalse   # refused: expected\necho done")
    bad = Block("d.md", 9, "true\nfalse\necho never")
    assert "done" in run_doc([ok], tmp_path, {"PATH": "/usr/bin:/bin"})[0]
    with pytest.raises(AssertionError, match=r"d\.md:9: exit 1"):
        run_doc([bad], tmp_path, {"PATH": "/usr/bin:/bin"})
    assert split_comment("echo '#x' # note") == ("echo '#x'", "note")
    assert "exit $rc" in script(bad)
