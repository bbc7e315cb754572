"""A reduced document pipeline on Flyte 2 with the flytekit version's gates (docs/flyte2.md).

read -> policy (``act_on_document``, config/policies) -> payment sign-off for amounts over 10,000 (an approval on a
Flyte 2 condition, roles and quorum from config/roles.yaml) -> act -> audit. Documents are small ``key: value``
texts (``type``, ``amount``, ``currency``, ``personal``). Run it locally, no cluster::

    python -m workflows_flyte2.documents DOCS_DIR [--approval-timeout 3600]

The run waits for the sign-off requests it opens; decide them from another terminal with
``aios approvals list`` / ``aios approvals approve <id> --as user:bob``. It prints one JSON line: the run name
and, per document, what happened. ``aios audit verify`` checks the trail it wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import flyte
from pydantic import BaseModel

from flytekitplugins.aios_approvals.service import check_timeout
from flytekitplugins.aios_core.amounts import read_written
from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_flyte2 import governed

env = flyte.TaskEnvironment(name="aios_documents")

PAYMENT_TYPES = ("invoice", "payment_instruction")
KNOWN_TYPES = ("invoice", "payment_instruction", "receipt", "contract", "letter")


class Extracted(BaseModel):
    """Typed facts of one document (its text never reaches a policy)."""

    digest: str
    doc_type: str
    amount: float
    currency: str
    confidence: float
    data_class: str


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def said(text: str) -> str:
    """What a document says, one way: Unicode NFKC; each ``key: value`` line as its lower-cased key and its value, the
    last line of a key counting (as the fields are read), an amount that reads one way as that number (``900``,
    ``900.00`` and ``900,00`` are one amount; one with more than four decimal places as read, not rounded: 10000.00004
    was decided as 10000.0, under the sign-off); the keys in order, then the other lines stripped and sorted. The
    facts are read from it (:func:`extract`) and :func:`same_document` is its digest, so two texts with one key always
    have the same facts, and one invoice written with its lines reordered, repeated or its amount spelt otherwise has
    one key (reviews of 2026-12-06)."""
    import unicodedata

    fields: dict[str, str] = {}
    other: list[str] = []
    for line in unicodedata.normalize("NFKC", text).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
        elif line.strip():
            other.append(line.strip())
    amount = read_written(fields["amount"]) if fields.get("amount") else None
    if amount is not None:  # past four places the amount is kept as read: the policy refuses it, never a rounding
        four = f"{amount:.4f}"  # else as read, in digits: 1e-05 is no amount the reader reads
        fields["amount"] = four if float(four) == amount else format(Decimal(repr(amount)), "f")
    return "\n".join([*(f"{k}: {fields[k]}" for k in sorted(fields)), *sorted(other)])


def same_document(text: str) -> str:
    """The digest of what a document says (:func:`said`): the key of duplicates in a batch and of the post claim. The
    same invoice with CRLF line endings, another spacing or capitalised keys was another document and was paid twice;
    a look-alike whose key folded to a real invoice's but whose facts were read from the raw text hid the real one as
    its duplicate (reviews of 2026-12-06)."""
    return _digest(said(text))


def _amount(text: str | None) -> float:
    """A payment's amount as written (``1200.50``, ``12,500.00``, ``12.500,00``), else ValueError naming what was
    written (the document is set aside): no amount line, no number, or a number that cannot be read one way only.

    ``float`` read ``12.500`` (twelve thousand five hundred in German) as 12.5, acted on without the sign-off over
    10,000, and a payment with no amount line as 0.0, posted (``flytekitplugins.aios_core.amounts``)."""
    if text is None or not text.strip():
        raise ValueError("unreadable_amount: a payment without an amount")
    value = read_written(text)
    if value is None:
        raise ValueError(f"unreadable_amount: {text[:40]!r} is no number that reads one way only")
    return value


@env.task
@governed(subject=_digest)
def read_document(text: str) -> Extracted:
    """Extract the typed facts the policy decides on (amounts only for payment types)."""
    return extract(text)


def extract(text: str) -> Extracted:
    """The typed facts of what ``text`` says (:func:`said`; :func:`read_document`'s body, and
    :func:`act_on_document` reads them again)."""
    f = _fields(said(text))
    doc_type = f.get("type", "other")
    pays = doc_type in PAYMENT_TYPES
    return Extracted(
        digest=_digest(text),
        doc_type=doc_type if doc_type in KNOWN_TYPES else "other",
        amount=_amount(f.get("amount")) if pays else 0.0,
        currency=f.get("currency", "EUR") if pays else "EUR",
        confidence=0.95 if doc_type in KNOWN_TYPES else 0.3,
        data_class="personal" if f.get("personal", "no").lower() in ("yes", "true") else "internal",
    )


def _context(text: str, **_: Any) -> dict[str, Any]:
    """The facts the policy decides on, as read: never rounded (``round(amount, 4)`` made 10000.00004 10000.0, under
    the sign-off); what Cedar's four decimal places cannot hold is refused by the policy (docs/security.md)."""
    keys = ("amount", "currency", "data_class", "doc_type", "confidence")
    return extract(text).model_dump(include=set(keys))


@env.task
@governed(
    action="act_on_document",
    resource=lambda text, **_: {"type": "Document", "id": _digest(text)},
    context=_context,
    approval_timeout_s="approval_timeout_s",
)
async def act_on_document(text: str, approval_timeout_s: float) -> str:
    """Act on a document (post the payment, file it): runs only when the policy allows or sign-off was verified.

    It takes the document's text, not facts read elsewhere: the policy decides on the facts read here, of exactly
    this text (an ``Extracted`` handed in by a launcher, a real invoice's digest with 9,000 for its 95,000, was
    decided and posted without the sign-off; review of 2026-12-06). A document is acted on once ever: the post is
    claimed (``post:<digest>:act_on_document``) by this run in the trail before it is made, and another run's post
    of the same document is refused (``already_used``); a retry of this run's post goes through."""
    from flytekitplugins.aios_core.settings import get_settings

    doc = extract(text)
    settings = get_settings()  # this task's entry point: settings resolved here
    claim_post(same_document(text), "act_on_document", settings)
    return f"posted {doc.doc_type} {doc.amount:.2f} {doc.currency} for {doc.digest}"


def claim_post(digest: str, action: str, settings: Settings) -> None:
    """Claim ``post:<digest>:<action>`` for the execution in progress (a ``document_acted`` record holding the claim).

    Raises:
        GovernanceDenied: ``already_used`` when another execution claimed it.
    """
    from flytekitplugins.aios_audit import AuditEvent, audit_log
    from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, ClaimTaken, claim
    from flytekitplugins.aios_core.context import current_execution
    from flytekitplugins.aios_core.errors import GovernanceDenied

    execution = current_execution()
    key, holder = f"post:{digest}:{action}", execution.execution_key
    store = audit_log(settings)
    held = store.claim_holders([key]).get(key)
    if held is None:
        event = AuditEvent(
            kind="document_acted", actor=settings.actor, status="claimed", subject=digest, execution=execution,
            attributes={"action": action, CLAIMS_ATTR: [claim(key, holder)]},
        )  # fmt: skip
        try:
            store.append(event)
            return
        except ClaimTaken as e:  # another execution claimed it since it was read
            held = (e.holder, e.seq)
    if held[0] == holder:
        return  # this run's own post, retried
    msg = f"{action} on {digest} is already_used: execution {held[0]} acted on it; a document is acted on once"
    raise GovernanceDenied(msg, reason_code="already_used")


async def _one(text: str, approval_timeout_s: float) -> dict[str, Any]:
    try:
        doc = await read_document.aio(text=text)
    except Exception as e:  # a document that cannot be read is set aside with its reason; the batch goes on
        return {"digest": _digest(text), "outcome": "quarantined", "reason": _quarantine_reason(e)}
    try:
        receipt = await act_on_document(text=text, approval_timeout_s=approval_timeout_s)
    except Exception as e:  # a governed denial fails the child action; the batch goes on
        return {"digest": doc.digest, "outcome": "not_acted", "reason": _reason(e)}
    return {"digest": doc.digest, "outcome": "acted", "receipt": receipt}


_REASONS = (
    ("policy denied", "policy_deny"),
    (" is refused", "approval_refused"),
    (" is rejected", "approval_rejected"),
    ("timed out", "approval_timed_out"),
    (" is timed_out", "approval_timed_out"),
    ("could not be written", "audit_write_failed"),
    ("already_used", "already_used"),
)


def _quarantine_reason(error: BaseException) -> str:
    """``unreadable_amount`` (what :func:`_amount` says), else the governance reason (:func:`_reason`)."""
    text = str(error)
    return "unreadable_amount" if "unreadable_amount" in text else _reason(error)


def _reason(error: BaseException) -> str:
    """The governance reason code of a failed child action (flyte re-raises it as a RuntimeUserError)."""
    text = str(error)
    return next((code for fragment, code in _REASONS if fragment in text), type(error).__name__)


@env.task
@governed()
async def process_documents(texts: list[str], approval_timeout_s: float = 3600.0) -> str:
    """Process a batch: every document read, decided, approved when needed and acted on, all audited.

    A document in the batch twice (two files, one text) is processed once, and its copies are listed as
    ``duplicate``: both copies opened the same sign-off request, and one approval paid twice (review of 2026-12-06).
    """
    from flytekitplugins.aios_flyte2.identity import flyte_execution

    keys = [same_document(t) for t in texts]  # once a text
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    outcomes = await asyncio.gather(*(_one(texts[i], approval_timeout_s) for i in first.values()))
    done = dict(zip(first, outcomes, strict=True))
    results = [
        done[k] if first[k] == i else {"digest": _digest(texts[i]), "outcome": "duplicate"} for i, k in enumerate(keys)
    ]
    run = flyte_execution("process_documents").name  # the execution name the run's records carry
    return json.dumps({"run": run, "documents": results}, sort_keys=True)


USAGE = "usage: python -m workflows_flyte2.documents DOCS_DIR [--approval-timeout SECONDS]"


def _usage(problem: str) -> int:
    print(f"error: {problem}\n{USAGE}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m workflows_flyte2.documents DOCS_DIR [--approval-timeout S]``: one local run, JSON on stdout.

    The JSON names the run and what happened to each document; files that are no UTF-8 text are listed under
    ``quarantined`` with their reason (they never reach the run) and the batch goes on.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    timeout = 3600.0
    if "--approval-timeout" in args:
        i = args.index("--approval-timeout")
        try:
            value = float(args[i + 1])
        except (IndexError, ValueError):
            return _usage("--approval-timeout needs a number of seconds")
        try:
            timeout = check_timeout(value, "--approval-timeout")  # the bound every request's timeout has
        except ValueError as e:
            return _usage(str(e))
        del args[i : i + 2]
    if len(args) != 1 or not Path(args[0]).is_dir():
        return _usage("name one folder of documents")
    texts: list[str] = []
    quarantined: list[dict[str, str]] = []
    for path in sorted(Path(args[0]).glob("*.txt")):
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            quarantined.append({"file": path.name, "outcome": "quarantined", "reason": "not_utf8_text"})
        except OSError as e:
            quarantined.append({"file": path.name, "outcome": "quarantined", "reason": e.strerror or "unreadable"})
    flyte.init()
    run = flyte.with_runcontext(mode="local").run(process_documents, texts=texts, approval_timeout_s=timeout)
    summary = json.loads(run.outputs()[0])
    print(json.dumps({**summary, "quarantined": quarantined}, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
