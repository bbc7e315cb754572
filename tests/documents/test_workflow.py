"""``process_documents`` end to end: real local Flyte execution, real MiniLM, real policy, approvals and audit."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_approvals import decide
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tests.documents.conftest import options
from tests.lineage.chromium import open_page, screenshot

pytestmark = pytest.mark.slow


def _approve_when_open(gate: str, approver: str, stop: threading.Event, picked: list[str]) -> None:
    """A second 'person': approve the first request of ``gate`` as soon as it is open."""
    while not stop.is_set():
        ids = [
            r.event.subject
            for r in audit_log(get_settings()).scan()
            if r.event.kind == "approval_request"
            and r.event.attributes["request"]["gate"] == gate
            and r.event.attributes["request"]["risk"] == "medium"  # high risk needs a quorum of two
        ]
        if ids:
            picked.append(ids[0])
            assert decide(ids[0], approver, "approve", reason="checked", env=Env.load(get_settings())).accepted
            return
        time.sleep(0.2)


def run(source: Path, approve: bool = True, **kw: Any) -> tuple[Any, Any, Any, list[str]]:
    from workflows.document_processing import process_documents

    stop, picked = threading.Event(), []
    t = threading.Thread(target=_approve_when_open, args=("payment-signoff", "user:bob", stop, picked), daemon=True)
    if approve:
        t.start()
    try:
        summary, results, quarantine = process_documents(source=str(source), options=options(**kw))
    finally:
        stop.set()
    return summary, results, quarantine, picked


def _summary_deck_tabs(since: float) -> tuple[list[str], Path]:
    """The tabs and the page of the last deck.html the batch's ``summarize`` task wrote (flytekit's local sandbox) after
    ``since``: flytekit writes the page again at every ``Deck.publish``, and locally it keeps the pages of the tasks
    before (the approval gates' ``approvals`` and ``Input``)."""
    import os

    from flytekit import FlyteContextManager

    roots = {Path(os.environ["TMPDIR"]), Path(FlyteContextManager.current_context().file_access.local_sandbox_dir)}
    paths = {d.resolve() for r in roots for d in r.rglob("deck.html") if d.stat().st_mtime >= since}
    pages = [(p, p.read_text(encoding="utf-8")) for p in sorted(paths, key=lambda p: p.stat().st_mtime_ns)]
    found = [(p, text) for p, text in pages if ">batch summary</li>" in text]
    assert found, f"no summary deck among the {len(paths)} written"
    return re.findall(r'<li onclick="handleLinkClick\(this\)">([^<]*)</li>', found[-1][1]), found[-1][0]


def test_corpus_end_to_end_with_one_human_approval(corpus: Path, aios_env: Path, tmp_path: Path) -> None:
    started = time.time() - 1
    summary, results, quarantine, picked = run(corpus, approval_timeout_s=15)
    # the summary's Deck: the batch summary, the validation reports of the two tables it wrote, its audit record,
    # the source; not flytekit's Output page, which would repeat the tables the summary renders, as repr text
    tabs, page = _summary_deck_tabs(started)
    want = {"batch summary", "Pandera Report: ResultRow", "Pandera Report: QuarantineRow", "audit", "Source Code"}
    assert want <= set(tabs) and "Output" not in tabs, tabs
    # as a reader sees it: the page opens in Chromium without errors, its tables hold this batch's rows, and each
    # table's validation report its shape (the pack's plain HTML report of a table that passed)
    dom, errors = open_page(page)
    assert errors == [] and "flyte-frame-container" in dom, errors
    assert f"<td>{results['doc_id'].iloc[0]}</td>" in dom and f"<td>{quarantine['reason'].iloc[0]}</td>" in dom
    assert f"{len(results)} rows x {len(results.columns)} columns" in dom
    assert f"{len(quarantine)} rows x {len(quarantine.columns)} columns" in dom
    assert screenshot(page, tmp_path / "summary-deck.png").stat().st_size > 20_000
    n_files = sum(1 for p in corpus.iterdir() if not p.name.startswith("."))
    # row conservation: every document is processed or quarantined, exactly once
    assert summary.documents_in == n_files == len(results) + len(quarantine)
    assert summary.processed + summary.quarantined == summary.documents_in
    assert set(results["doc_id"]).isdisjoint(quarantine["doc_id"])
    assert (quarantine["reason"].str.len() > 0).all()
    assert set(summary.quarantine_reasons) == {
        "archive",
        "binary_content",
        "corrupt",
        "empty",
        "encrypted",
        "too_large",
    }
    kinds = [r.event for r in audit_log(get_settings()).scan()]
    assert sorted(e.subject for e in kinds if e.kind == "quarantine") == sorted(quarantine["digest"])
    assert summary.outcomes["duplicate"] == 1
    # classification on the labelled corpus, through the routed models
    assert summary.labelled >= 24 and summary.accuracy >= 0.9
    # the approved request was acted on after the gate; auto-allowed ones before it
    assert picked and summary.outcomes.get("acted_after_approval") == 1
    approved = results[results["request_id"] == picked[0]]
    assert list(approved["outcome"]) == ["acted_after_approval"]
    acted = results["outcome"].isin(["acted", "acted_after_approval"]).sum()
    assert summary.posted == acted
    with sqlite3.connect(aios_env / "system_of_record.db") as conn:
        assert conn.execute("SELECT count(*) FROM document_actions").fetchone()[0] == acted
    assert sum(1 for e in kinds if e.kind == "action") == acted
    assert {e.attributes.get("stage") for e in kinds if e.kind == "task"} >= {
        "ingest",
        "parse_protect",
        "classify",
        "decide",
    }
    # every classify record names the precision its encoders ran at, as this host's rule picks it
    from tasks.ml.minilm import bf16_supported

    precision = "bf16" if bf16_supported() else "fp32"
    classified = [e for e in kinds if e.kind == "task" and e.attributes.get("stage") == "classify"]
    assert classified
    assert all(e.attributes["encoder_precision"] == {"fast": precision, "strong": precision} for e in classified)


def test_injected_instructions_never_change_the_decision(corpus: Path) -> None:
    # run at the precision auto would NOT pick on this host (options.precision forces it): the decision holds there too
    from tasks.ml.minilm import bf16_supported

    forced = "fp32" if bf16_supported() else "bf16"
    _, results, _, _ = run(corpus, approve=False, approval_timeout_s=2, precision=forced)
    classified = [r.event for r in audit_log(get_settings()).scan() if r.event.attributes.get("stage") == "classify"]
    assert classified and all(
        e.attributes["encoder_precision"] == {"fast": forced, "strong": forced} for e in classified
    )
    inj = results[results["name"] == "inj-7-txt.txt"].iloc[0]
    assert bool(inj["injection"]) and inj["label"] == "invoice" and inj["amount"] > 10_000
    assert inj["effect"] == "require_approval" and inj["gate"] == "payment-signoff"
    assert inj["outcome"] == "approval_timed_out"  # nobody signed off: nothing was paid
    with sqlite3.connect(
        Path(audit_log(get_settings()).url.removeprefix("sqlite:///")).parent / "system_of_record.db"
    ) as conn:
        keys = [r[0] for r in conn.execute("SELECT doc_digest FROM document_actions")]
    assert inj["digest"] not in keys


def test_the_classify_stage_freezes_long_lived_objects_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the models are loaded, the libraries and models leave the cycle collector's walks (``gc.freeze``):
    one full collection over them took 0.31 s of a 400-document run. Once per process, and again in a child."""
    import gc
    import os

    from tasks.documents import stages

    monkeypatch.setattr(stages, "_frozen_in", [])
    before = gc.get_freeze_count()
    try:
        assert stages.freeze_long_lived() is True
        assert gc.get_freeze_count() > before
        assert stages.freeze_long_lived() is False  # the same process: nothing more to do
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # a forked worker process freezes its own objects once
            os.write(w, b"1" if stages.freeze_long_lived() and not stages.freeze_long_lived() else b"0")
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(r, 1) == b"1"
    finally:
        gc.unfreeze()
