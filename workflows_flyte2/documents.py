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
from pathlib import Path
from typing import Any

import flyte
from pydantic import BaseModel

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


@env.task
@governed(subject=lambda text: "sha256:" + hashlib.sha256(text.encode()).hexdigest())
def read_document(text: str) -> Extracted:
    """Extract the typed facts the policy decides on (amounts only for payment types)."""
    f = _fields(text)
    doc_type = f.get("type", "other")
    pays = doc_type in PAYMENT_TYPES
    return Extracted(
        digest="sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest(),
        doc_type=doc_type if doc_type in KNOWN_TYPES else "other",
        amount=float(f.get("amount", "0") or 0) if pays else 0.0,
        currency=f.get("currency", "EUR") if pays else "EUR",
        confidence=0.95 if doc_type in KNOWN_TYPES else 0.3,
        data_class="personal" if f.get("personal", "no").lower() in ("yes", "true") else "internal",
    )


def _context(doc: Extracted, **_: Any) -> dict[str, Any]:
    keys = ("amount", "currency", "data_class", "doc_type", "confidence")
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in doc.model_dump(include=set(keys)).items()}


@env.task
@governed(
    action="act_on_document",
    resource=lambda doc, **_: {"type": "Document", "id": doc.digest},
    context=_context,
    approval_timeout_s="approval_timeout_s",
)
async def act_on_document(doc: Extracted, approval_timeout_s: float) -> str:
    """Act on a document (post the payment, file it): runs only when the policy allows or sign-off was verified."""
    return f"posted {doc.doc_type} {doc.amount:.2f} {doc.currency} for {doc.digest}"


async def _one(text: str, approval_timeout_s: float) -> dict[str, Any]:
    doc = await read_document.aio(text=text)
    try:
        receipt = await act_on_document(doc=doc, approval_timeout_s=approval_timeout_s)
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
)


def _reason(error: BaseException) -> str:
    """The governance reason code of a failed child action (flyte re-raises it as a RuntimeUserError)."""
    text = str(error)
    return next((code for fragment, code in _REASONS if fragment in text), type(error).__name__)


@env.task
@governed()
async def process_documents(texts: list[str], approval_timeout_s: float = 3600.0) -> str:
    """Process a batch: every document read, decided, approved when needed and acted on, all audited."""
    results = await asyncio.gather(*(_one(t, approval_timeout_s) for t in texts))
    return json.dumps({"run": flyte.ctx().action.run_name, "documents": list(results)}, sort_keys=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m workflows_flyte2.documents DOCS_DIR [--approval-timeout S]``: one local run, JSON on stdout."""
    args = list(sys.argv[1:] if argv is None else argv)
    timeout = 3600.0
    if "--approval-timeout" in args:
        i = args.index("--approval-timeout")
        timeout = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m workflows_flyte2.documents DOCS_DIR [--approval-timeout SECONDS]", file=sys.stderr)
        return 2
    texts = [p.read_text(encoding="utf-8") for p in sorted(Path(args[0]).glob("*.txt"))]
    flyte.init()
    run = flyte.with_runcontext(mode="local").run(process_documents, texts=texts, approval_timeout_s=timeout)
    print(run.outputs()[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
