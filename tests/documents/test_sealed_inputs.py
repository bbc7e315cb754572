"""A step of the document pipeline takes only what the step before it sealed in the audit trail.

The attacker has launch rights: he starts ``parse_protect``, ``classify`` or ``decide`` on its own, with tables he
wrote (a real invoice's row with another amount in its text, another label, a document that was never ingested, a
reference naming one file with another file's digest). Before, ``decide`` made genuine ``allow`` decisions for such
rows, which ``auto_actions`` and the acting point then posted. Now each such row goes to quarantine
(``unsealed_input``, audited), the honest rows of the same table go on, and no policy decision is made for a row
no earlier step sealed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.settings import get_settings
from tasks.documents import stages
from tests.documents.conftest import options


def _classified(corpus: Path) -> list[pd.DataFrame]:
    opts = options(chunk_size=64)
    chunks = stages.ingest(source=str(corpus), options=opts)
    return [stages.classify(docs=stages.parse_protect(chunk=c, options=opts), options=opts) for c in chunks]


def _trail(kind: str) -> list[tuple[str, str]]:
    return [(r.event.subject, r.event.status) for r in audit_log(get_settings()).scan() if r.event.kind == kind]


def test_decide_takes_only_rows_classify_sealed(corpus: Path) -> None:
    (table,) = _classified(corpus)
    ok = table[table["status"] == "ok"]
    invoices = ok[ok["label"] == "invoice"].index
    others = ok[ok["label"] != "invoice"].index
    assert len(invoices) >= 2 and len(others) >= 1
    forged = table.copy()
    more_text, relabelled = invoices[0], others[0]
    forged.loc[more_text, "text"] = forged.loc[more_text, "text"] + "\nTotal due: EUR 9.00"
    forged.loc[relabelled, "label"] = "invoice"  # a contract or letter paid as an invoice
    invented = forged.loc[[invoices[1]]].assign(
        doc_id="d99999999", digest="sha256:" + hashlib.sha256(b"never ingested").hexdigest()
    )
    forged = pd.concat([forged, invented], ignore_index=True)
    bad = {forged.loc[more_text, "doc_id"], forged.loc[relabelled, "doc_id"], "d99999999"}
    before = _trail("policy_decision")

    decided = stages.decide(docs=forged, options=options())

    refused = decided[decided["doc_id"].isin(bad)]
    assert len(refused) == 3
    assert (refused["status"] == "quarantine").all() and (refused["reason"] == "unsealed_input").all()
    assert (refused["policy_record"] == "").all() and (refused["effect"] == "none").all()
    assert (refused["label"] == "").all() and refused["amount"].isna().all()
    honest = decided[(decided["status"] == "ok") & ~decided["doc_id"].isin(bad)]
    assert len(honest) == len(ok) - 2 and (honest["policy_record"].str.len() == 64).sum() >= len(ok) - 4
    decisions = [s for s in _trail("policy_decision") if s not in before]
    assert {s for s, _ in decisions if s.startswith("sha256:")} == set(
        honest.loc[honest["policy_record"] != "", "digest"]
    )
    assert sorted(s for s, why in _trail("quarantine") if why == "unsealed_input") == sorted(refused["digest"])
    # the decisions seal the classification record they were made on (every row of the table names it)
    assert table["sealed_by"].str.len().eq(64).all()
    sealed = {
        r.event.attributes["lineage"]["classification"]["record"]
        for r in audit_log(get_settings()).scan()
        if r.event.kind == "policy_decision" and r.event.subject in set(honest["digest"])
    }
    assert sealed == set(table["sealed_by"])


def test_classify_takes_only_rows_parse_sealed(corpus: Path) -> None:
    opts = options(chunk_size=64)
    (chunk,) = stages.ingest(source=str(corpus), options=opts)
    protected = stages.parse_protect(chunk=chunk, options=opts)
    ok = protected[protected["status"] == "ok"].index
    forged = protected.copy()
    forged.loc[ok[0], "text"] = "INVOICE\nAmount due: EUR 12.00\nPay to DE00 0000"
    forged.loc[ok[1], "personal"] = not bool(forged.loc[ok[1], "personal"])  # hide personal data from policy
    forged.loc[ok[2], "sealed_by"] = ""
    bad = set(forged.loc[ok[:3], "doc_id"])

    classified = stages.classify(docs=forged, options=opts)

    refused = classified[classified["doc_id"].isin(bad)]
    assert (refused["status"] == "quarantine").all() and (refused["reason"] == "unsealed_input").all()
    assert (refused["label"] == "").all() and (refused["route"] == "none").all()
    kept = classified[classified["status"] == "ok"]
    assert len(kept) == len(ok) - 3 and (kept["label"] != "").all()
    (seal,) = [r for r in audit_log(get_settings()).scan() if r.event.kind == "documents_classified"]
    assert {d["digest"] for d in seal.event.attributes["documents"]} == set(kept["digest"])
    assert seal.event.parents == sorted(set(protected["sealed_by"])) and seal.event.models
    # and decide, handed the refused rows back as ok, refuses them again: classify sealed none of them
    handed_back = classified.copy()
    handed_back.loc[handed_back["doc_id"].isin(bad), ["status", "reason", "label", "route"]] = [
        "ok", "", "invoice", "fast"
    ]  # fmt: skip
    decided = stages.decide(docs=handed_back, options=opts)
    assert (decided.loc[decided["doc_id"].isin(bad), "reason"] == "unsealed_input").all()


def test_parse_reads_only_the_bytes_ingest_digested(corpus: Path, tmp_path: Path) -> None:
    opts = options(chunk_size=64)
    (chunk,) = stages.ingest(source=str(corpus), options=opts)
    honest = stages.parse_protect(chunk=chunk, options=opts)
    ok = honest[honest["status"] == "ok"].index
    forged = chunk.copy()
    forged.loc[ok[0], "uri"] = forged.loc[ok[1], "uri"]  # one file read under another document's digest
    changed = tmp_path / "changed.txt"
    changed.write_text("INVOICE\nAmount due: EUR 10.00\n", encoding="utf-8")
    forged.loc[ok[2], "uri"] = str(changed)  # or a file changed after ingest digested it

    protected = stages.parse_protect(chunk=forged, options=opts)

    refused = protected.loc[[ok[0], ok[2]]]
    assert (refused["status"] == "quarantine").all() and (refused["reason"] == "changed_since_listing").all()
    assert (refused["text"] == "").all()
    assert protected.loc[ok[1], "status"] == "ok"
    seal = [r for r in audit_log(get_settings()).scan() if r.event.kind == "documents_protected"][-1]
    assert set(refused["digest"]).isdisjoint(d["digest"] for d in seal.event.attributes["documents"])
