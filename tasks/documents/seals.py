"""What each step of the document pipeline saw, sealed in the audit trail and checked by the next step.

A table handed to ``classify`` or ``decide`` is a claim, not proof: anyone with launch rights can start either task
on its own with hand-made rows (a real invoice's digest with a lower amount in its text, a label that needs no
sign-off, a document that was never ingested). So each step seals what it produced in ONE audit record per chunk,
and the next step takes a row only when the record the row names (its ``sealed_by`` column) is intact, of the
step's kind, and seals exactly that row:

- ``parse_protect`` parses the bytes it reads (which must be the bytes ingest digested: its content digest is
  computed again) and seals, per document, the content digest, the protected text's digest and the flags
  (``documents_protected``);
- ``classify`` takes only rows the parse seal covers (same text, same flags) and seals the label, confidence and
  route beside them, with the parse seals as parents and the models it used (``documents_classified``);
- ``decide`` takes only rows the classification seal covers; the policy decision seals the classification record
  it was made on (``lineage.classification.record``).

A row that fails goes to quarantine with reason ``unsealed_input`` (audited like any quarantine): the batch goes on
and the counts add up. Someone who can append arbitrary records to the audit store can forge a seal as he can forge
a policy decision (docs/security.md, "What is out of scope").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flytekitplugins.aios_approvals.acting import CLASSIFICATION_SEAL as CLASSIFIED
from flytekitplugins.aios_approvals.acting import seal_entries
from flytekitplugins.aios_core.settings import Settings

PROTECTED = "documents_protected"
UNSEALED = "unsealed_input"
_FLAGS = ("personal", "injection")
_CLASSES = ("label", "route")


def text_digest(text: str) -> str:
    """The digest of a protected text, as every step computes it (the policy decision seals it too)."""
    from flytekitplugins.aios_core.digest import digest_bytes

    return digest_bytes(text.encode("utf-8")) if text else ""


def _entry(row: dict[str, Any], kind: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "doc_id": str(row["doc_id"]),
        "digest": str(row["digest"]),
        "text": row.get("text_digest") or text_digest(str(row["text"])),
    }
    entry.update({k: bool(row[k]) for k in _FLAGS})
    if kind == CLASSIFIED:
        entry.update({k: str(row[k]) for k in _CLASSES})
        entry["confidence"] = round(float(row["confidence"]), 4)
    if row.get("content_key"):  # the protected text's key (acting.content_key): the acting point claims it
        entry["content"] = str(row["content_key"])
    return entry


def seal(
    rows: Sequence[dict[str, Any]],
    kind: str,
    actor: str,
    settings: Settings,
    *,
    parents: Iterable[str] = (),
    models: Sequence[Any] = (),
) -> str:
    """Append the record that seals the ``ok`` rows of one chunk; its record id ("" when no row is ``ok``).

    Raises:
        AuditWriteError: the seal could not be written (the task fails: nothing unsealed goes on).
    """
    from flytekitplugins.aios_audit import AuditEvent, audit_log, current_audit
    from flytekitplugins.aios_audit.recorder import execution_ref

    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return ""
    scope = current_audit()
    task = scope.task_name if scope is not None else f"tasks.documents.stages.{kind.removeprefix('documents_')}"
    event = AuditEvent(
        kind=kind,
        actor=actor,
        status="sealed",
        execution=execution_ref(task),
        parents=sorted({p for p in parents if p}),
        models=list(models),
        attributes={"documents": [_entry(r, kind) for r in ok]},
    )
    return audit_log(settings).append_many([event])[0].record_id


def unsealed(rows: Sequence[dict[str, Any]], kind: str, settings: Settings) -> dict[int, str]:
    """Index -> what is wrong, for each ``ok`` row the ``kind`` record it names does not seal exactly as it is.

    Raises:
        Exception: whatever the store raises when it cannot be read (the task fails: nothing unchecked goes on).
    """
    from flytekitplugins.aios_audit import audit_log

    ok = [(i, r) for i, r in enumerate(rows) if r["status"] == "ok"]
    wanted = {str(r.get("sealed_by") or "") for _, r in ok} - {""}
    sealed = seal_entries(audit_log(settings).get_many(wanted), kind)
    problems: dict[int, str] = {}
    for i, row in ok:
        rid = str(row.get("sealed_by") or "")
        entries = sealed.get(rid)
        if entries is None:
            problems[i] = f"no intact {kind} record {rid or '(none named)'} in the audit trail"
            continue
        got = entries.get(str(row["digest"]))
        if got is None:
            problems[i] = f"record {rid} does not seal document {row['digest']}"
        elif diff := sorted(k for k, v in _entry(row, kind).items() if got.get(k) != v):  # the seal may hold more
            problems[i] = f"record {rid} sealed other {', '.join(diff)} for document {row['digest']}"
    return problems


def sealed_contents(rows: Sequence[dict[str, Any]], kind: str, settings: Settings) -> dict[str, str]:
    """Document digest -> the content key (``acting.content_key``) the ``kind`` seal each ``ok`` row names holds for
    it, for those that hold one: ``classify`` carries the key ``parse_protect`` sealed into its own seal."""
    from flytekitplugins.aios_audit import audit_log

    wanted = {str(r.get("sealed_by") or "") for r in rows if r["status"] == "ok"} - {""}
    out: dict[str, str] = {}
    for entries in seal_entries(audit_log(settings).get_many(wanted), kind).values():
        out.update({d: str(e["content"]) for d, e in entries.items() if isinstance(e.get("content"), str)})
    return out


def quarantine_unsealed(
    rows: list[dict[str, Any]], kind: str, actor: str, settings: Settings, log: Any
) -> list[dict[str, Any]]:
    """Quarantine (reason ``unsealed_input``, audited) every ``ok`` row ``kind``'s seal does not cover; the rows
    quarantined. Their text is dropped."""
    from tasks.documents.governance import quarantine_events

    problems = unsealed(rows, kind, settings)
    for i, why in sorted(problems.items()):
        log.warning("document %s refused: %s", rows[i]["doc_id"], why)
        rows[i].update(status="quarantine", reason=UNSEALED, text="")
        if "label" in rows[i]:  # nothing the row claimed about the document is kept
            rows[i].update(label="", confidence=0.0, route="none", cached=False)
    bad = [rows[i] for i in sorted(problems)]
    quarantine_events(bad, actor, settings)
    return bad
