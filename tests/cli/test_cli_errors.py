"""Every ``aios`` command answers a bad input with one ``error: ...`` line and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings

BAD_INPUTS: list[list[str]] = [
    ["policy", "eval", "--request", "missing.json"],
    ["policy", "eval", "--request", "bad.yaml"],
    ["policy", "eval", "--request", "bad.json"],
    ["policy", "eval", "--request", "list.yaml"],
    ["policy", "test", "--cases", "no-such-dir"],
    ["policy", "validate", "--dir", "no-such-dir"],
    ["policy", "test", "--dir", "no-such-dir"],
    ["models", "history", "nope"],
    ["models", "history", "nope", "--json"],
    ["models", "show", "nope"],
    ["models", "show", "all-MiniLM-L6-v2@no-such-version"],
    ["models", "promote", "nope@1", "--evidence", "{not json"],
    ["models", "promote", "nope@1", "--evidence", "@missing.json"],
    ["models", "promote", "nope", "--evidence", "{}"],
    ["approvals", "show", "apr-nope"],
    ["approvals", "approve", "apr-nope", "--as", "bob"],
    ["approvals", "reject", "apr-nope", "--as", "bob", "--reason", "x"],
    ["audit", "verify-proof", "bad.json", "--checkpoint", "bad.json"],
    ["audit", "verify-proof", "missing.json", "--checkpoint", "missing.json"],
    ["audit", "verify", "--checkpoint", "bad.json"],
    ["audit", "consistency", "--from", "bad.json"],
    ["audit", "prove", "#99999"],
    ["audit", "checkpoint"],
    ["audit", "show", "--limit", "0"],
    ["demo", "--n", "0"],
    ["demo", "--n", "-3"],
    ["demo", "--timeout", "0"],
    ["audit", "show", "--limit", "-5"],
    ["lineage", "report", "--out", "report.html", "--limit", "0"],
    ["lineage", "report", "--out", "report.html", "--execution", "no-such-run"],
    ["lineage", "report", "--out", "report.html", "--document", "sha256:" + "0" * 64],
    ["audit", "verfy"],
    ["lineage", "trace", "apr-nope"],
    ["lineage", "trace", "#99999999999999999999999"],
    ["lineage", "trace", "#\u00b2"],
    ["audit", "prove", "#99999999999999999999999"],
    ["audit", "prove", "#\u00b2"],
    ["--profile", "nope", "config", "show"],
    ["nope"],
    # files that are no UTF-8 text, or nest deeper than the parsers go: each ended in exit 4, "unexpected"
    ["policy", "eval", "--request", "latin1.json"],
    ["policy", "eval", "--request", "deep.yaml"],
    ["policy", "eval", "--request", "deep.json"],
    ["audit", "verify-proof", "deep.json", "--checkpoint", "bad.json"],
    ["audit", "verify-proof", "latin1.json", "--checkpoint", "bad.json"],
    ["models", "promote", "nope@1", "--evidence", "@latin1.json"],
    ["models", "promote", "nope@1", "--evidence", "@deep.json"],
    ["models", "promote", "nope@1", "--evidence", "[1, 2]"],
]


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    (tmp_path / "bad.yaml").write_text("a: [b\n")
    (tmp_path / "bad.json").write_text('{"principal": ')
    (tmp_path / "list.yaml").write_text("- principal\n- action\n")
    (tmp_path / "latin1.json").write_bytes('{"principal": "user:zoë"}'.encode("latin-1"))
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 5_000 + "]" * 5_000 + "\n")
    audit_log(get_settings()).append(AuditEvent(kind="task", actor="service:test"))  # a store with one record
    return tmp_path


@pytest.mark.parametrize("args", BAD_INPUTS, ids=lambda a: " ".join(a))
def test_a_bad_input_is_one_error_line_and_exit_2(bad_files: Path, args: list[str]) -> None:
    res = CliRunner().invoke(cli, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert any(line.lower().startswith("error:") for line in lines), res.output
    if lines[0].startswith("error: "):  # ours (click's usage errors print a Usage: block first)
        assert len(lines) == 1, res.output


def test_the_console_script_prints_no_traceback(bad_files: Path) -> None:
    aios = Path(sys.executable).parent / "aios"
    for args in (["policy", "eval", "--request", "missing.json"], ["policy", "eval", "--request", "bad.yaml"]):
        res = subprocess.run([str(aios), *args], capture_output=True, text=True, timeout=120, cwd=bad_files)
        assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout, res.stderr
        assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error: "), res.stderr


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (
            [b"approvals", b"approve", b"apr-any", b"--as", b"user:\xff", b"--reason", b"x"],
            {},
            "argument 5 'user:\\xff'",
        ),
        ([b"approvals", b"approve", b"apr-any", b"--as", b"user:bob", b"--reason", b"ok \xfe"], {}, "argument 7"),
        ([b"lineage", b"trace", b"\n\xff\x1b[2J"], {}, "argument 3 '\\x0a\\xff\\x1b[2J'"),
        ([b"approvals", b"list"], {b"AIOS_PRINCIPAL": b"user:\xffx"}, "AIOS_PRINCIPAL 'user:\\xffx'"),
    ],
    ids=["--as", "--reason", "lineage trace", "AIOS_PRINCIPAL"],
)
def test_bytes_that_are_not_utf8_are_refused_before_the_command_runs(
    bad_files: Path, args: list[bytes], env: dict[bytes, bytes], named: str
) -> None:
    """Python passes them on as lone surrogates, which no record or message can encode: before, ``--as`` of them
    ended in ``invalid input: Error serializing to JSON: UnicodeEncodeError``, ``lineage trace`` in ``unexpected
    UnicodeEncodeError`` (exit 4) and an ``AIOS_PRINCIPAL`` of them was taken as the actor."""
    aios = os.fsencode(Path(sys.executable).parent / "aios")
    before = audit_log(get_settings()).size()
    res = subprocess.run([aios, *args], env={**os.environb, **env}, capture_output=True, timeout=120, cwd=bad_files)
    err = res.stderr.decode("utf-8")
    assert res.returncode == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert named in err and "holds bytes that are not UTF-8" in err and "\x1b" not in err, err
    assert audit_log(get_settings()).size() == before  # nothing was recorded


def test_as_bob_suggests_user_bob_and_records_nothing(bad_files: Path) -> None:
    before = audit_log(get_settings()).size()
    res = CliRunner().invoke(cli, ["approvals", "approve", "apr-any", "--as", "bob"])
    assert res.exit_code == 2 and "did you mean --as user:bob" in res.output, res.output
    assert audit_log(get_settings()).size() == before


def test_models_history_of_an_unknown_model_names_the_known_ones(bad_files: Path) -> None:
    res = CliRunner().invoke(cli, ["models", "history", "nope"])
    assert res.exit_code == 2
    assert "no model 'nope' in the catalog" in res.output and "aios models list" in res.output


def test_an_unexpected_exception_is_one_line_exit_4(monkeypatch: pytest.MonkeyPatch) -> None:
    import flytekitplugins.aios_core.config_cli as config_cli

    def boom(ctx: object) -> None:
        raise RuntimeError("kaputt")

    monkeypatch.setattr(config_cli, "settings_from", boom)
    res = CliRunner().invoke(cli, ["config", "show"])
    assert res.exit_code == 4 and "unexpected RuntimeError: kaputt" in res.output and "AIOS_DEBUG=1" in res.output


def test_a_file_that_cannot_be_written_is_named_as_asked_not_as_its_temporary_twin(bad_files: Path) -> None:
    """The checkpoint (like every file the pack writes) goes to a temporary file beside it first; an error used to
    name that file (``.x.tmp<pid>``), which the user never asked for."""
    (bad_files / "a-file").write_text("not a folder")
    out = bad_files / "a-file" / "checkpoint.json"
    res = CliRunner().invoke(cli, ["audit", "checkpoint", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: {out}: ") and ".tmp" not in res.output, res.output


def test_a_write_error_that_names_no_file_starts_with_what_went_wrong() -> None:
    """A full disk fails a write with no file name: the line read "error: : No space left on device"."""
    from flytekitplugins.aios_core.cli import user_error

    assert user_error(OSError(28, "No space left on device")).format_message().startswith("No space left on device;")
    named = user_error(OSError(28, "No space left on device", "/reports/run.html")).format_message()
    assert named.startswith("/reports/run.html: No space left on device;")


def test_the_report_names_the_output_it_could_not_write(bad_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audit_log(get_settings()).append(AuditEvent(kind="task", actor="service:x"))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")  # what a write to a full disk raises: no file name

    monkeypatch.setattr(os, "fsync", full)  # (the report is written as every --out: write_private, then fsync)
    out = bad_files / "run.html"
    res = CliRunner().invoke(cli, ["lineage", "report", "--out", str(out)])
    assert res.exit_code == 2 and f"error: {out}: No space left on device" in res.output, res.output
    assert not out.exists() and not list(bad_files.glob(".run.html.*"))  # no report cut short, no temporary file


READERS: list[list[str]] = [
    ["audit", "show"],
    ["audit", "checkpoint", "--out", "cp.json"],
    ["audit", "prove", "#1"],
    ["audit", "consistency", "--from", "bad.json"],
    ["lineage", "trace", "#1"],
    ["lineage", "report", "--out", "report.html"],
    ["evidence", "export", "--execution", "run-1", "--out", "e.zip"],
    ["approvals", "show", "apr-nope"],
    ["models", "show", "all-MiniLM-L6-v2"],
    ["models", "history", "all-MiniLM-L6-v2"],
]


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a))
def test_a_read_command_on_a_missing_store_says_so_and_creates_nothing(bad_files: Path, args: list[str]) -> None:
    """A read on a mistyped store path used to create an empty database there (with its folder), which a later
    ``aios audit verify`` of that path then found and passed as an empty log."""
    missing = bad_files / "typo" / "audit.db"
    res = CliRunner().invoke(cli, ["--store", f"sqlite:///{missing}", *args])
    assert res.exit_code == 2, res.output
    assert f"error: no audit log at sqlite:///{missing} (nothing was created)" in res.output, res.output
    assert not (bad_files / "typo").exists()


@pytest.mark.parametrize("args", [["approvals", "list"], ["approvals", "list", "--json"], ["models", "list", "--json"]])
def test_a_listing_on_a_missing_store_is_empty_with_a_note_and_creates_nothing(
    bad_files: Path, args: list[str]
) -> None:
    missing = bad_files / "typo" / "audit.db"
    res = CliRunner().invoke(cli, ["--store", f"sqlite:///{missing}", *args])
    assert res.exit_code == 0, res.output
    assert f"note: no audit log at sqlite:///{missing} yet (nothing was created)" in res.stderr
    assert res.stdout.strip() in ("approval requests (pending): none", "[]"), res.stdout
    assert not (bad_files / "typo").exists()


def test_a_seq_reference_is_ascii_digits_within_64_bits(bad_files: Path) -> None:
    """``str.isdigit`` took '#٣' (an Arabic-Indic three) as record 3, '#²' to a ValueError and a number past 64 bits
    to the driver's OverflowError (exit 4, "unexpected"); a pasted page was echoed whole in the error."""
    from flytekitplugins.aios_audit.stores import MAX_SEQ, seq_ref

    for _ in range(3):
        audit_log(get_settings()).append(AuditEvent(kind="task", actor="service:test"))
    assert [seq_ref(r) for r in ("#3", "3", "#0003", "#0", "#-1", "#\u0663", "#\u00b2", f"#{MAX_SEQ + 1}")] == [
        3,
        3,
        3,
        None,
        None,
        None,
        None,
        None,
    ]
    assert CliRunner().invoke(cli, ["lineage", "trace", "#3"]).exit_code == 0
    res = CliRunner().invoke(cli, ["lineage", "trace", "#\u0663"])
    assert res.exit_code == 2 and "names nothing in the audit trail" in res.output, res.output
    res = CliRunner().invoke(cli, ["lineage", "trace", "x" * 5000])
    assert res.exit_code == 2 and "x" * 77 + "'..." in res.output and len(res.output) < 600, res.output


def test_demo_refuses_an_empty_corpus_before_it_starts(
    bad_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the repository root, ``aios demo --n 0`` ran the corpus generator, whose traceback ended up in the error."""
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    res = CliRunner().invoke(cli, ["demo", "--n", "0", "--out", str(tmp_path / "demo")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "Invalid value for '--n': 0 is not in the range x>=1" in res.output
    assert not (tmp_path / "demo").exists()
