"""Parsing a chunk in forked helpers gives the rows one process gives, in the same order, whatever happens to them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tasks.documents import pipeline
from tests.documents.conftest import options

TIMINGS = ("latency_ms", "cpu_s")


def _refs(corpus: Path) -> list[dict[str, Any]]:
    (chunk,) = pipeline.ingest_chunks(str(corpus), options(chunk_size=1000))
    return list(chunk.to_dict(orient="records"))


def _without_timings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]


def test_helpers_parse_the_rows_this_process_would_in_its_order(corpus: Path) -> None:
    refs = _refs(corpus)
    assert {r["status"] for r in refs} >= {"ok", "quarantine"}  # good and bad documents both go through helpers
    alone = pipeline._parse_shares(refs, options(), 1)
    shared = pipeline._parse_shares(refs, options(), 3)
    assert [r["doc_id"] for r in shared] == [r["doc_id"] for r in refs]
    assert _without_timings(shared) == _without_timings(alone)
    assert {r["reason"] for r in shared if r["status"] == "quarantine"} == {
        r["reason"] for r in alone if r["status"] == "quarantine"
    }
    assert any(r["text"] for r in shared)


def test_a_helper_that_dies_costs_only_time(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper killed mid-share (a parser crash, the OOM killer) answers nothing: its share is parsed here."""
    refs = _refs(corpus)
    parent = os.getpid()
    real = pipeline._protect_share

    def dies_in_a_helper(share: list[dict[str, Any]], opts: Any) -> list[dict[str, Any]]:
        if os.getpid() != parent:
            os._exit(9)
        return real(share, opts)

    monkeypatch.setattr(pipeline, "_protect_share", dies_in_a_helper)
    rows = pipeline._parse_shares(refs, options(), 2)
    assert _without_timings(rows) == _without_timings(pipeline._parse_shares(refs, options(), 1))


def test_helpers_leave_no_folder_of_links_behind(corpus: Path) -> None:
    """Each helper pins the documents it parses through links in a private folder of its own; a helper ends with
    ``os._exit`` (no ``atexit`` handler runs), and its folder used to stay in the temp dir, one per parsed chunk."""
    import tempfile

    from tasks.documents import source_local

    refs = _refs(corpus)
    assert sum(r["status"] == "ok" for r in refs) >= 3  # every share pins documents
    temp = Path(tempfile.gettempdir())
    for _ in range(2):
        rows = pipeline._parse_shares(refs, options(), 3)
        assert any(r["text"] for r in rows)
    mine = source_local._LINK_DIRS.get((os.getpid(), str(temp)))
    assert mine is not None, "this process parsed its own share through pinned links"
    assert sorted(p.name for p in temp.glob("aios-pin-*")) == [Path(mine).name]
    assert not any(Path(mine).iterdir()), "every link is removed when its document is read"


def test_the_number_of_workers_is_capped_by_cpus_and_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    import joblib

    monkeypatch.setattr(joblib, "cpu_count", lambda: 2)
    assert pipeline.parse_workers(options(parse_workers=8), 1000) == 2  # no more than the usable CPUs
    assert pipeline.parse_workers(options(parse_workers=1), 1000) == 1
    assert pipeline.parse_workers(options(parse_workers=2), pipeline.MIN_DOCS_PER_WORKER * 2 - 1) == 1  # too few
    assert pipeline.parse_workers(options(parse_workers=2), pipeline.MIN_DOCS_PER_WORKER * 2) == 2
    assert pipeline.parse_workers(options(parse_workers=2), 0) == 1


def test_an_impossible_worker_count_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="parse_workers=0 is invalid"):
        options(parse_workers=0)


def test_shares_follow_content_digests_not_the_listing(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names that alternate a slow and a fast document do not give one process every slow one: shares are cut
    from the documents ordered by content digest."""
    refs = _refs(corpus)
    parent = os.getpid()
    mine: list[str] = []
    real = pipeline._protect_one

    def noting(ref: dict[str, Any], opts: Any) -> dict[str, Any]:
        if os.getpid() == parent:
            mine.append(ref["doc_id"])
        return real(ref, opts)

    monkeypatch.setattr(pipeline, "_protect_one", noting)
    pipeline._parse_shares(refs, options(), 2)
    by_digest = [r["doc_id"] for r in sorted(refs, key=lambda r: r["digest"])]
    assert mine == by_digest[0::2]
    assert mine != [r["doc_id"] for r in refs[0::2]]  # not every other listed document
