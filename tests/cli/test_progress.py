"""Progress on long work: rich bars on a terminal, a few plain lines off one, nothing with --json.

Covers the shared :class:`Reporter`, the verifier's ``progress`` hook (both processes counted), ``aios audit
verify`` on and off a terminal, the document batch's stage lines and how ``aios demo`` reads them back, and
the training loop's step count.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.verify import verify_store
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.progress import LogFollower, Reporter, parse_line, resolve_mode
from flytekitplugins.aios_core.settings import get_settings


def _lines(**kw: object) -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    return Reporter("documents", mode="lines", stream=out, **kw), out  # type: ignore[arg-type]


def test_off_a_terminal_a_stage_prints_its_start_each_quarter_and_its_end() -> None:
    rep, out = _lines()
    rep.stage("parse + protect", 40)
    for _ in range(40):
        rep.advance("parse + protect")
    rep.close()
    lines = out.getvalue().splitlines()
    assert [ln.split(" documents")[0] for ln in lines] == [
        "progress: parse + protect: 0/40",
        "progress: parse + protect: 10/40",
        "progress: parse + protect: 20/40",
        "progress: parse + protect: 30/40",
        "progress: parse + protect: 40/40",
    ]
    assert " done in 0m00s" in lines[-1]  # 40 updates, 5 lines: a CI log stays readable


def test_quiet_s_keeps_short_work_silent_and_a_failure_says_stopped() -> None:
    rep, out = _lines(quiet_s=60)
    with rep:
        rep.stage("verifying", 3)
        rep.update("verifying", 3)
    assert out.getvalue() == ""  # a short verification prints exactly what it always printed
    rep, out = _lines()
    with pytest.raises(RuntimeError), rep:
        rep.stage("training", 10)
        rep.update("training", 4, info="loss 0.6931")
        raise RuntimeError
    assert out.getvalue().splitlines()[-1].startswith("progress: training: 4/10 documents stopped after 0m00s")


def test_off_mode_prints_nothing_and_auto_is_lines_off_a_terminal() -> None:
    rep, out = _lines()
    rep = Reporter("records", mode="off", stream=out)
    rep.stage("verifying", 5)
    rep.update("verifying", 5)
    rep.close()
    assert out.getvalue() == ""
    assert resolve_mode("auto", io.StringIO()) == "lines"  # StringIO is no terminal
    with pytest.raises(ValueError, match="progress mode"):
        resolve_mode("loud")


def test_on_a_terminal_rich_draws_a_bar_with_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich's own switch: this stream counts as a terminal
    out = io.StringIO()
    rep = Reporter("steps", stream=out)
    assert rep.mode == "bar"
    rep.stage("training", 8)
    rep.update("training", 8, info="loss 0.1234")
    rep.close()
    text = out.getvalue()
    assert "training" in text and "8/8" in text and "loss 0.1234" in text and "progress:" not in text


def test_lines_read_back_into_another_processes_display(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "workflow.log"
    with log.open("w") as f:  # what the workflow writes to its log (the demo's child process)
        child = Reporter("documents", mode="lines", stream=f)
        child.stage("classify", 4)
        child.update("classify", 4)
    written = log.read_text().splitlines()
    parent, shown = _lines()  # the demo in a CI log: the child's own lines, with the child's timings
    follower = LogFollower(log, parent)
    found = follower.poll()
    assert [(p.stage, p.done, p.total, p.ended) for p in found] == [("classify", 0, 4, False), ("classify", 4, 4, True)]
    assert follower.poll() == []  # nothing new: nothing read twice
    assert shown.getvalue().splitlines() == written
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # the demo on a terminal: the same lines drawn as bars
    out = io.StringIO()
    bars = Reporter("documents", stream=out)
    LogFollower(log, bars).poll()
    bars.close()
    assert "classify" in out.getvalue() and "4/4 documents" in out.getvalue() and "progress:" not in out.getvalue()
    assert parse_line("INFO flytekit: something else") is None


def _store(n: int) -> object:
    store = audit_log(get_settings())
    store.append_many([AuditEvent(kind="task", actor=f"user:a{i}", subject=f"d{i}") for i in range(n)])
    return store


@pytest.mark.parametrize("workers", [1, 2])
def test_the_verifier_counts_every_record_in_both_processes(workers: int) -> None:
    store = _store(45)
    seen: list[int] = []
    result = verify_store(store, workers=workers, block=4, progress=seen.append)  # type: ignore[arg-type]
    assert result.ok and result.workers == workers
    assert seen and seen[-1] == 45 and seen == sorted(seen) and max(seen) <= 45


def test_incremental_verification_counts_only_the_records_after_the_checkpoint(tmp_path: Path) -> None:
    from flytekitplugins.aios_audit.checkpoint import Checkpoint
    from flytekitplugins.aios_audit.incremental import verify_from
    from flytekitplugins.aios_audit.trust import TrustedKeys

    store = _store(10)
    res = CliRunner().invoke(cli, ["audit", "checkpoint", "--out", str(tmp_path / "cp.json")])
    assert res.exit_code == 0, res.output
    store.append_many([AuditEvent(kind="task", actor="user:later") for _ in range(3)])  # type: ignore[attr-defined]
    seen: list[int] = []
    trusted = TrustedKeys.from_settings(get_settings())
    cp = Checkpoint.load(str(tmp_path / "cp.json"))
    result = verify_from(store, cp, trusted, progress=seen.append)  # type: ignore[arg-type]
    assert result.ok and result.mode == "incremental" and seen == [3]


def test_audit_verify_shows_a_bar_on_a_terminal_and_nothing_with_json(monkeypatch: pytest.MonkeyPatch) -> None:
    _store(5)
    quiet = CliRunner().invoke(cli, ["audit", "verify"])  # stderr is no terminal: a 5-record walk prints no line
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout.startswith("OK: 5 records")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich now takes the runner's stderr for a terminal
    drawn = CliRunner().invoke(cli, ["audit", "verify"])
    assert drawn.exit_code == 0 and drawn.stdout.startswith("OK: 5 records"), drawn.output
    assert "verifying" in drawn.stderr and "5/5" in drawn.stderr  # the bar went to stderr, the result to stdout
    as_json = CliRunner().invoke(cli, ["audit", "verify", "--json"])
    assert as_json.exit_code == 0 and as_json.stderr == "" and as_json.stdout.startswith("{")


@pytest.fixture
def batch_display() -> Iterator[None]:
    """The document batch's display is per process (local runs share it across tasks): none before, none after."""
    from tasks.documents import progress

    progress.stop()
    yield
    progress.stop()


@pytest.mark.usefixtures("batch_display")
def test_a_document_batch_prints_stage_lines_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from tasks.documents import pipeline, progress
    from tasks.documents.schemas import ProcessingOptions

    corpus = Path("corpus")
    corpus.mkdir()
    for i in range(6):
        (corpus / f"note{i}.txt").write_text(f"Invoice {i}: total 12{i}.00 EUR, due in 30 days.\n")
    options = ProcessingOptions(chunk_size=4)
    chunks = pipeline.ingest_chunks(str(corpus), options)
    for chunk in chunks:
        pipeline.parse_protect(chunk, options, get_settings())
    progress.stop()
    err = capsys.readouterr().err
    lines = [p for p in map(parse_line, err.splitlines()) if p is not None]
    assert [(p.stage, p.done, p.total, p.ended) for p in lines if p.ended] == [
        ("ingest", 6, 6, True),
        ("parse + protect", 6, 6, True),  # counted per document over both chunks, ended once
    ]
    assert lines[0].stage == "ingest" and lines[0].total is None  # said before the listing is done
    assert len(lines) <= 10


@pytest.mark.usefixtures("batch_display")
def test_a_pod_without_the_batch_total_ends_the_stage_with_its_chunk(capsys: pytest.CaptureFixture[str]) -> None:
    from tasks.documents import progress

    progress.begin("classify")  # a map-task pod: no ingest ran here, so no batch total
    progress.advance("classify", 256)
    progress.chunk_done("classify")
    progress.stop()
    ended = [p for p in map(parse_line, capsys.readouterr().err.splitlines()) if p and p.ended]
    assert [(p.done, p.total) for p in ended] == [(256, None)]


@pytest.mark.usefixtures("batch_display")
def test_progress_off_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    from tasks.documents import progress

    progress.start(3, "off")
    progress.advance("ingest", 3, "off")
    progress.stop()
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_the_training_loop_reports_its_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tasks.evaluation.data import binarize, load_vader, split
    from tasks.ml.classifier import train_head
    from tasks.training.checkpoint import CheckpointStore
    from tasks.training.config import TrainConfig
    from tasks.training.loop import train_loop
    from tasks.training.worker import _build_run

    (rows,) = split(binarize(load_vader("movieReviewSnippets")), (32,), 0)
    head = train_head(rows["text"].tolist(), rows["label"].tolist(), name="vader-sentiment", version="start")
    head.save(tmp_path / "start")
    cfg = TrainConfig(max_steps=4, batch_size=4, grad_accum=1, max_length=16, trainable_layers=1, checkpoint_every=0)
    run, _labels, _digest, _n = _build_run(rows[["text", "label"]], tmp_path / "start", cfg, 60.0)
    out = train_loop(run, CheckpointStore(None), {})
    assert len(out.losses) == 4
    lines = [p for p in map(parse_line, capsys.readouterr().err.splitlines()) if p is not None]
    assert lines[0].stage == "training" and (lines[0].done, lines[0].total) == (0, 4)
    assert (lines[-1].done, lines[-1].ended) == (4, True) and lines[-1].info.startswith("loss ")


@pytest.mark.usefixtures("batch_display")
def test_a_step_with_nothing_to_count_says_it_started_and_how_long_it_took(capsys: pytest.CaptureFixture[str]) -> None:
    from tasks.documents import progress

    with progress.step("train models"):  # what a first run does before it can classify
        pass
    progress.stop()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "progress: train models: started"
    assert lines[1].startswith("progress: train models: done in 0m00s") and len(lines) == 2
    assert [(p.stage, p.ended) for p in map(parse_line, lines) if p] == [
        ("train models", False),
        ("train models", True),
    ]


def test_a_line_printed_while_bars_are_drawn_goes_above_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    out = io.StringIO()
    rep = Reporter("documents", stream=out)
    rep.stage("classify", 4)
    rep.echo("  approved apr-1 as user:bob")  # through the live display, which keeps it when it redraws
    rep.update("classify", 4)
    rep.close()
    text = out.getvalue()
    assert "approved apr-1 as user:bob\n" in text and text.index("approved apr-1") < text.rindex("4/4 documents")
    plain = Reporter("documents", mode="lines", stream=io.StringIO())
    plain.echo("  approved apr-2 as user:bob")  # no bars: a plain line on stdout
    assert capsys.readouterr().out == "  approved apr-2 as user:bob\n"
