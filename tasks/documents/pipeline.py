"""The stages of the document pipeline as plain functions on tables (the Flyte tasks in ``stages`` wrap them).

Rows are never dropped: a document that cannot go on keeps its row with ``status`` ``quarantine`` or
``duplicate`` and an empty text, so every table of a chunk has exactly the chunk's documents.
Error details never include exception messages (parsers quote document bytes in them).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

import pandas as pd

from flytekitplugins.aios_core.settings import Settings
from tasks.documents import progress, seals, source_local
from tasks.documents.schemas import MIN_CHARS, ProcessingOptions

log = logging.getLogger(__name__)


def _ref_row(i: int, uri: str, name: str, size: int, digest: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "doc_id": f"d{i:08d}",
        "uri": uri,
        "name": name,
        "size": size,
        "digest": digest,
        "status": status,
        "reason": reason,
    }


def iter_refs(
    source: str,
    options: ProcessingOptions,
    *,
    allowed: str = "",
    on_cluster: bool = False,
    tables: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream reference rows: digest, de-duplicate (first copy wins), flag oversize files unread. ``allowed`` and
    ``on_cluster`` say where the source may be (``sources.check_allowed``), ``tables`` which tables of a database
    source (``sources.check_table``; None: any).

    Entries the source lists with a reason (symlinks leaving the source, FIFOs, hidden files, ...) are
    quarantined here unopened; their digest is of uri + reason.
    """
    from flytekitplugins.aios_core.digest import digest_value
    from tasks.documents.protect import redact
    from tasks.documents.readers import Quarantined
    from tasks.documents.sources import content_digest, list_documents

    seen: set[str] = set()
    limit = int(options.max_file_mb * 1024 * 1024)
    listing = list_documents(source, options.sql_table, allowed=allowed, on_cluster=on_cluster, tables=tables)
    for i, listed in enumerate(listing):
        name = _shown_name(listed.name, redact)  # file names can carry personal data too
        # and so can the locator, which Flyte stores with the chunk (a link's target, a SQL row id, the folder): one
        # holding personal data is located by a handle parse resolves by listing the source again
        # (:func:`resolve_locators`), never by its path
        personal = name != listed.name or _shown_name(listed.uri, redact) != listed.uri
        doc = dataclasses.replace(listed, uri=named_handle(source, listed.uri)) if personal else listed
        if doc.reason or doc.size > limit:
            reason = doc.reason or "too_large"
            digest = digest_value({"uri": doc.uri, "size": doc.size, "reason": reason})
            yield _ref_row(i, doc.uri, name, doc.size, digest, "quarantine", reason)
            continue
        try:
            digest = content_digest(listed.uri, limit)
        except Quarantined as q:
            yield _ref_row(i, doc.uri, name, doc.size, digest_value({"uri": doc.uri}), "quarantine", q.reason)
            continue
        except OSError as e:
            yield _ref_row(i, doc.uri, name, doc.size, digest_value({"uri": doc.uri}), "quarantine", "unreadable")
            log.warning("document %s is unreadable: %s", i, type(e).__name__)
            continue
        status = "duplicate" if digest in seen else "ok"
        seen.add(digest)
        yield _ref_row(i, doc.uri, name, doc.size, digest, status, "duplicate" if status == "duplicate" else "")


NAMED = "aios-named:"
"""Prefix of a handle that locates a document whose name holds personal data: ``aios-named:<digest>:<source>``."""


def named_handle(source: str, uri: str) -> str:
    """The handle of the document at ``uri`` in ``source``: the SHA-256 of its locator, and the source to list."""
    return f"{NAMED}{hashlib.sha256(uri.encode('utf-8', 'surrogateescape')).hexdigest()}:{source}"


_MAIL_ESCAPE = re.compile(r"=([2-7][0-9A-Fa-f])")
"""A mail header's escape of a printable character (``=40`` is ``@``)."""

_ENCODED_WORD = re.compile(r"=\?([^?]{0,40})\?([BbQq])\?([^?]*+)\?=")
"""An RFC 2047 encoded word (``=?utf-8?B?<base64>?=``, ``=?iso-8859-1?q?j=F6rg?=``), as mail clients write the
names of the attachments they save; read as leniently as Python's own mail library reads one (any charset text,
blanks in the payload), since this decides only whether a name holds personal data."""
_ENCODED_RUN = re.compile(rf"{_ENCODED_WORD.pattern}(?:[ \t\r\n]*+{_ENCODED_WORD.pattern})*+")
"""Encoded words one after the other: the white space between them is no part of the text."""
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def _word_bytes(kind: str, payload: str) -> bytes:
    """The bytes an encoded word stands for: Q's ``=XX`` and ``_``; B's base64 with its padding left off or wrong
    and stray characters dropped, as a mail program shows it (a trailing part of a group is ignored)."""
    if kind in "Qq":  # a name's characters beyond ASCII stay as they are (a2b_qp takes ASCII text only)
        try:
            raw = payload.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate beyond those (UTF-7 decodes to them, "replace" or not)
            raw = payload.encode("utf-8", "surrogatepass")
        return binascii.a2b_qp(raw, header=True)
    digits = _NOT_BASE64.sub("", payload)
    digits = digits[: len(digits) - len(digits) % 4] if len(digits) % 4 == 1 else digits
    return base64.b64decode(digits + "=" * (-len(digits) % 4))


@functools.cache  # on first use, not at every task's import of this module (a listing of the codecs' folder)
def _codec_names() -> frozenset[str]:
    """The standard library's codecs, by every name it knows them by (normalized), less the escape codecs (they
    warn about a name's bytes)."""
    import encodings
    import encodings.aliases
    import pkgutil

    names = {*encodings.aliases.aliases, *encodings.aliases.aliases.values()}
    names |= {m.name for m in pkgutil.iter_modules(encodings.__path__)}
    return frozenset(names - {"unicode_escape", "raw_unicode_escape", "undefined", "mbcs", "oem"})


def _charset_text(data: bytes, charset: str) -> str:
    """``data`` in ``charset``; in Latin-1 where Python knows no such text encoding (``unknown-8bit``, ``hex``):
    a mail client shows such bytes as they are, so their ASCII must be read too. Only the standard library's codec
    names are looked up (each name looked up is cached for good, and a SQL source's names have no limit)."""
    import encodings

    name = encodings.normalize_encoding(charset.partition("*")[0].strip().lower())  # an RFC 2231 language after *
    if name in _codec_names() or name.replace(".", "_") in _codec_names():
        try:
            return data.decode(name, "replace")
        except (LookupError, ValueError, TypeError):  # a codec that is no text encoding
            pass
    return data.decode("latin-1")


def _decoded_run(run: re.Match[str]) -> str:
    """The text of a run of encoded words. Adjacent words of one charset are joined before decoding (a character
    may be split between them); the pieces are joined once, so a long run costs its length."""
    shown: list[str] = []
    charset, pieces = "", list[bytes]()
    for word in _ENCODED_WORD.finditer(run.group(0)):
        if pieces and word.group(1).lower() != charset:
            shown.append(_charset_text(b"".join(pieces), charset))
            pieces = []
        charset = word.group(1).lower()
        pieces.append(_word_bytes(word.group(2), word.group(3)))
    shown.append(_charset_text(b"".join(pieces), charset))
    decoded = "".join(shown)
    return decoded if len(decoded) < len(run.group(0)) else run.group(0)  # each pass shortens the text


NAME_DECODE_PASSES = 16
"""Layers of escapes a name is decoded through (``%2540`` is two); one nested deeper travels as a handle."""
NAME_DECODE_LIMIT = 4096
"""A name or locator longer than this (no file name is: Linux allows 255 bytes a name, 4096 a path; a SQL id or an
object key may be) is not decoded to look for personal data; it travels as a handle, whatever it holds. Decoding
nested escapes takes a pass a level, so an unbounded name cost time with the square of its length."""
_LONG_NAME = "[LONG NAME]"


def _shown_name(text: str, redact: Any) -> str:
    """``text`` redacted as a person reads it (``_`` as a space, ``%40`` as ``@``, RFC 2047 encoded words
    decoded) if that finds personal data, else as it is: ``DE89_3704_0044_0532_0130_00.pdf``,
    ``jane.doe%40example.com.pdf`` and ``=?utf-8?B?amFuZS5kb2VAZXhhbXBsZS5jb20=?=.pdf`` were kept."""
    if len(text) > NAME_DECODE_LIMIT:
        return _LONG_NAME
    # as written with its escapes undone, and with its encoded words decoded too: the text of a word that is no valid
    # encoding (=?utf-8?B?jane.doe@example.com?=) is garbage decoded, and was found as written
    forms = [_unescaped(text, words=False)]
    if forms[0] is not None and "=?" in forms[0]:  # no "=?" there: no layer held an encoded word, the forms are one
        forms.append(_unescaped(text, words=True))
    if None in forms:
        return _LONG_NAME  # nested deeper than any name a person reads
    for plain in dict.fromkeys(forms):
        spaced = str(plain).replace("_", " ")
        for variant in (spaced, spaced.replace("+", " ")) if "+" in spaced else (spaced,):  # + kept first: +44 ...
            red = str(redact(variant).text)
            if red != variant:
                return red
    return text


def _unescaped(text: str, words: bool) -> str | None:
    """``text`` with its percent and printable mail escapes undone (``%2540`` and ``=3D40`` are still an ``@``),
    and with ``words`` its RFC 2047 encoded words decoded, through at most :data:`NAME_DECODE_PASSES` layers (None:
    more). Each pass shortens the text."""
    plain = text
    for _ in range(NAME_DECODE_PASSES):
        before = plain  # encoded words before =XX: =3F in a Q word is a ? of its text, not of its syntax
        plain = unquote(plain)
        if words:
            plain = _ENCODED_RUN.sub(_decoded_run, plain)
        plain = _MAIL_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), plain)
        if plain == before:
            return plain
    return None


def resolve_locators(
    refs: list[dict[str, Any]], table: str, allowed: str, on_cluster: bool, tables: str | None
) -> None:
    """Check every locator of ``refs`` before a byte is read, and replace each handle (:func:`named_handle`) by the
    locator it stands for. A chunk is a launch input: a locator outside the deployment's document sources or, for a
    SQL locator, its document ``tables`` (``sources.locator_rule``) is quarantined ``outside_source``; handles are
    resolved by listing their source once (its ``table`` held to ``tables`` too), one source a chunk (a chunk naming
    a source many ways listed a large folder once for each), and one no longer listed is quarantined
    ``changed_since_listing``. The locators stay in this process: the parsed rows hold
    no ``uri``."""
    from tasks.documents.sources import list_documents, locator_rule

    allows = locator_rule(allowed, on_cluster, tables)
    found: dict[str, str] | None = None
    listed_source = ""
    for ref in refs:
        if ref["status"] != "ok":
            continue
        uri = str(ref["uri"])
        if uri.startswith(NAMED):
            want, sep, source = uri.removeprefix(NAMED).partition(":")
            if not sep:  # a hand-made handle naming no source: nothing to list, the chunk goes on
                ref.update(status="quarantine", reason="outside_source")
                continue
            if found is None:
                listed_source, found = source, {}
                try:  # a source gone or no longer allowed: each of its documents is quarantined, the chunk goes on
                    listing = list_documents(source, table, allowed=allowed, on_cluster=on_cluster, tables=tables)
                    found = {named_handle(source, d.uri): d.uri for d in listing if not d.reason}
                except (OSError, ValueError) as e:
                    log.warning("document source of a chunk's handles could not be listed again: %s", type(e).__name__)
            if source != listed_source:
                ref.update(status="quarantine", reason="outside_source")
                continue
            uri = found.get(f"{NAMED}{want}:{source}", "")
            if not uri:
                ref.update(status="quarantine", reason="changed_since_listing")
                continue
        if not allows(uri):
            ref.update(status="quarantine", reason="outside_source")
        else:
            ref["uri"] = uri


def ingest_chunks(
    source: str,
    options: ProcessingOptions,
    *,
    allowed: str = "",
    on_cluster: bool = False,
    tables: str | None = None,
) -> list[pd.DataFrame]:
    """Reference tables of ``options.chunk_size`` documents each (``allowed``, ``on_cluster``, ``tables``:
    :func:`iter_refs`)."""
    progress.begin("ingest", options.progress)
    rows = list(iter_refs(source, options, allowed=allowed, on_cluster=on_cluster, tables=tables))
    progress.start(len(rows), options.progress)
    progress.advance("ingest", len(rows), options.progress)
    progress.chunk_done("ingest")
    return [pd.DataFrame(rows[i : i + options.chunk_size]) for i in range(0, len(rows), options.chunk_size)]


def _file_digest(path: Path) -> str:
    """``sha256:<hex>`` of the file parse is about to read (what ingest's ``content_digest`` gave for it)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _protect_one(ref: dict[str, Any], options: ProcessingOptions) -> dict[str, Any]:
    from flytekitplugins.aios_approvals.acting import content_key
    from tasks.documents.extract import injection_flag
    from tasks.documents.parse import Limits, parse_file
    from tasks.documents.protect import PERSONAL_KINDS, redact
    from tasks.documents.readers import Quarantined
    from tasks.documents.sources import local_copy

    t0, c0 = time.perf_counter(), time.process_time()
    out = {k: ref[k] for k in ("doc_id", "name", "digest", "status", "reason")}
    out.update(fmt="", ocr=False, pii=0, secrets=0, personal=False, injection=False, sealed_by="", text="")
    if ref["status"] == "ok":
        expanded = int(options.max_expanded_mb * 1024 * 1024)
        limits = Limits(
            options.max_pages, options.ocr_pages, MIN_CHARS, options.max_chars, expanded, options.max_compression_ratio
        )
        try:
            with local_copy(ref["uri"], int(options.max_file_mb * 1024 * 1024)) as path:
                if _file_digest(path) != ref["digest"]:  # changed since ingest listed it, or a hand-made reference
                    raise Quarantined("changed_since_listing", "the document's bytes are not the ones ingest digested")
                parsed = parse_file(path, limits)
            red = redact(parsed.text)
            personal = sum(red.counts.get(k, 0) for k in PERSONAL_KINDS)
            out.update(fmt=parsed.fmt, ocr=parsed.ocr, pii=personal, secrets=red.secrets, personal=red.personal)
            out.update(injection=injection_flag(red.text), text=red.text)
            out["content_key"] = content_key(red.text)  # one action a text (acting.content_key): sealed, never the text
        except Quarantined as q:
            out.update(status="quarantine", reason=q.reason)
        except Exception as e:  # any parser failure quarantines this document, never the batch
            log.warning("document %s: parser failed with %s; quarantined", ref["doc_id"], type(e).__name__)
            out.update(status="quarantine", reason="parse_error")
    out.update(latency_ms=(time.perf_counter() - t0) * 1000, cpu_s=time.process_time() - c0)
    return out


def parse_protect(chunk: pd.DataFrame, options: ProcessingOptions, settings: Settings) -> pd.DataFrame:
    """Parse and redact every document of a chunk; quarantine what cannot be read (audited in ``settings``' store),
    and seal what the parsed rows hold in one ``documents_protected`` record, which every row names (``sealed_by``).

    With ``options.parse_workers`` above 1 (and as many CPUs usable), forked helpers parse their shares of the
    chunk while this process parses its own: same rows, same order (see :func:`_parse_shares`).
    """
    from flytekitplugins.aios_core.context import in_cluster_task
    from tasks.documents.governance import quarantine_events

    progress.begin("parse + protect", options.progress)
    refs = chunk.to_dict(orient="records")
    resolve_locators(refs, options.sql_table, settings.document_sources, in_cluster_task(), settings.document_tables)
    rows = _parse_shares(refs, options, parse_workers(options, sum(r["status"] == "ok" for r in refs)))
    quarantine_events([r for r in rows if r["status"] == "quarantine"], options.principal, settings)
    rid = seals.seal(rows, seals.PROTECTED, options.principal, settings)
    for r in rows:
        r["sealed_by"] = rid
    progress.chunk_done("parse + protect")
    return pd.DataFrame(rows, columns=_PROTECTED_COLUMNS)


MIN_DOCS_PER_WORKER = 16
"""Fewer documents than this per process are parsed here alone: a helper costs about 10 ms to fork and answer."""


def parse_workers(options: ProcessingOptions, documents: int) -> int:
    """Processes to parse ``documents`` with: ``options.parse_workers`` at most, no more than the CPUs this process
    may use (its affinity and its cgroup's CPU quota, as ``joblib.cpu_count`` reads them), and at least
    :data:`MIN_DOCS_PER_WORKER` documents each."""
    import joblib

    return max(1, min(options.parse_workers, joblib.cpu_count(), documents // MIN_DOCS_PER_WORKER))


def _protect_share(refs: list[dict[str, Any]], options: ProcessingOptions) -> list[dict[str, Any]]:
    """One helper's share, parsed (no progress drawn: the parent counts the share when it arrives); the helper's
    folder of pinned links is removed before it answers (:func:`.source_local.release_links`)."""
    try:
        return [_protect_one(ref, options) for ref in refs]
    finally:
        source_local.release_links()


def _parse_shares(refs: list[dict[str, Any]], options: ProcessingOptions, workers: int) -> list[dict[str, Any]]:
    """Rows of ``refs`` in order, parsed by this process and ``workers - 1`` forked helpers.

    Each process takes every ``workers``-th document in the order of their content digests, not of the listing: a
    folder whose names alternate a scanned and a text copy (``a.txt``, ``a_scan.pdf``, ...) would otherwise give one
    process every slow document. Parsing touches nothing but the document and its own row (no store, no audit
    scope), so a share parsed in a helper is the rows this process would have made. A helper that fails, dies or
    cannot be started costs only time: :class:`~flytekitplugins.aios_audit.aside.Aside` parses its share here.
    """
    from flytekitplugins.aios_audit.aside import Aside

    order = sorted(range(len(refs)), key=lambda i: (str(refs[i]["digest"]), i))
    shares = [order[k::workers] for k in range(workers)]
    helpers = [Aside(_protect_share, [refs[i] for i in share], options) for share in shares[1:]]
    rows: list[dict[str, Any] | None] = [None] * len(refs)
    try:
        for i in shares[0]:  # one document at a time here: the slow stage (OCR), counted per file
            rows[i] = _protect_one(refs[i], options)
            progress.advance("parse + protect", 1, options.progress)
    except BaseException:
        for h in helpers:
            h.cancel()
        raise
    for share, helper in zip(shares[1:], helpers, strict=True):
        for i, row in zip(share, helper.result(), strict=True):
            rows[i] = row
        progress.advance("parse + protect", len(share), options.progress)
    return cast("list[dict[str, Any]]", rows)  # every index is in exactly one share, each share filled (strict zip)


_PROTECTED_COLUMNS = [
    "doc_id", "name", "digest", "status", "reason", "fmt", "ocr", "pii", "secrets", "personal", "injection",
    "latency_ms", "cpu_s", "sealed_by", "text",
]  # fmt: skip


def _spread(df: pd.DataFrame, mask: pd.Series, seconds: float, cpu: float) -> pd.DataFrame:
    """Add a batched stage's wall and CPU time to its documents, evenly."""
    n = int(mask.sum())
    if n:
        df.loc[mask, "latency_ms"] += seconds * 1000 / n
        df.loc[mask, "cpu_s"] += cpu / n
    return df


def check_thresholds(options: ProcessingOptions, settings: Settings) -> None:
    """Refuse routing thresholds below the deployment's floors (``AIOS_FAST_THRESHOLD_FLOOR``,
    ``AIOS_STRONG_THRESHOLD_FLOOR``). They are launch options and choose which model's label counts: with
    ``fast_threshold=0.05`` the cheap model's guess at a contract (``invoice``, 0.48) became the sealed label where
    the strong model sent it to review; only the policy's 0.6 confidence floor stopped the payment. Raising them
    (more review) is the launcher's to choose; lowering them is the deployment's.

    Raises:
        GovernanceDenied: ``threshold_below_floor``, naming the option and its floor.
    """
    from flytekitplugins.aios_core.errors import GovernanceDenied

    low = [
        f"{name}={value} (the floor is {floor}, {env})"
        for name, value, floor, env in (
            ("fast_threshold", options.fast_threshold, settings.fast_threshold_floor, "AIOS_FAST_THRESHOLD_FLOOR"),
            (
                "strong_threshold",
                options.strong_threshold,
                settings.strong_threshold_floor,
                "AIOS_STRONG_THRESHOLD_FLOOR",
            ),
        )
        if value < floor
    ]
    if low:
        msg = f"routing thresholds below the deployment's floors: {'; '.join(low)}; launch with them at or above"
        raise GovernanceDenied(msg, reason_code="threshold_below_floor")


def classify(
    docs: pd.DataFrame, options: ProcessingOptions, router: Any, cache: Any, settings: Settings
) -> pd.DataFrame:
    """Document type per ``ok`` row through the router (cheap, then strong, then review).

    Only rows the parse seal they name covers are classified (others are quarantined, ``unsealed_input``); the
    answers are sealed in one ``documents_classified`` record, which every row then names (``sealed_by``).
    """
    progress.begin("classify", options.progress)
    t0, c0 = time.perf_counter(), time.process_time()
    rows = docs.to_dict(orient="records")
    parents = sorted({str(r["sealed_by"]) for r in rows if r["status"] == "ok"})
    if seals.quarantine_unsealed(rows, seals.PROTECTED, options.principal, settings, log):
        docs = pd.DataFrame(rows, columns=docs.columns)
    df = docs.copy()
    df["label"], df["confidence"], df["route"], df["cached"] = "", 0.0, "none", False
    ok = df["status"] == "ok"
    texts = list(df.loc[ok, "text"])
    keys = [seals.text_digest(t) for t in texts]  # the cache answers for exactly this text, never for the document
    answers = router.route_cached(keys, texts, cache, options.batch_size)
    if answers:
        df.loc[ok, "label"] = [a.label for a in answers]
        df.loc[ok, "confidence"] = [min(1.0, max(0.0, a.confidence)) for a in answers]
        df.loc[ok, "route"] = [a.route for a in answers]
        df.loc[ok, "cached"] = [a.cached for a in answers]
    refs = list(getattr(router, "refs", []))
    sealed = df.to_dict(orient="records")
    contents = seals.sealed_contents(rows, seals.PROTECTED, settings)  # each text's key, as parse_protect sealed it
    for row, key in zip((r for r in sealed if r["status"] == "ok"), keys, strict=True):
        row["text_digest"] = key  # the seal names the text by the digest the cache was keyed on: hashed once
        row["content_key"] = contents.get(str(row["digest"]), "")
    rid = seals.seal(sealed, seals.CLASSIFIED, options.principal, settings, parents=parents, models=refs)
    df["sealed_by"] = rid
    progress.advance("classify", len(df), options.progress)
    progress.chunk_done("classify")
    return _spread(df, ok, time.perf_counter() - t0, time.process_time() - c0)


def _extract_one(row: dict[str, Any]) -> dict[str, Any]:
    from tasks.documents.extract import extract

    t0, c0 = time.perf_counter(), time.process_time()
    out = {k: v for k, v in row.items() if k != "text"}
    out["text_digest"] = seals.text_digest(row["text"])  # sealed by the decision
    out.update(amount=None, currency="", parties="[]", dates="[]", action="", effect="none")
    out.update(gate="", request_id="", policy_record="", decision_digest="")
    if row["status"] == "ok":
        f = extract(row["text"], injection=bool(row["injection"]))
        out.update(amount=f.amount, currency=f.currency or "", parties=json.dumps(f.parties), dates=json.dumps(f.dates))
    out["latency_ms"] += (time.perf_counter() - t0) * 1000
    out["cpu_s"] += time.process_time() - c0
    return out


def _decide_rows(rows: list[dict[str, Any]], options: ProcessingOptions, settings: Settings) -> None:
    """Policy for every parsed row of a chunk in one batch; the time is shared out per row."""
    from tasks.documents.governance import decide_many

    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return
    t0, c0 = time.perf_counter(), time.process_time()
    decisions = decide_many(ok, options.principal, options.approval_timeout_s, settings)
    wall, cpu = (time.perf_counter() - t0) * 1000 / len(ok), (time.process_time() - c0) / len(ok)
    for out, d in zip(ok, decisions, strict=True):
        fields = {"label": out["label"], "amount": out["amount"], "currency": out["currency"]}
        out.update(action=d.action, effect=d.effect, gate=d.gate, request_id=d.request_id)
        out.update(policy_record=d.policy_record, decision_digest=d.digest(out["digest"], fields), reason=d.reason)
        out["latency_ms"] += wall
        out["cpu_s"] += cpu


def decide_chunk(docs: pd.DataFrame, options: ProcessingOptions, settings: Settings) -> pd.DataFrame:
    """Extract typed fields, decide, ask policy and open approval requests; the text is dropped here."""
    progress.begin("decide + policy", options.progress)
    given = docs.to_dict(orient="records")
    seals.quarantine_unsealed(given, seals.CLASSIFIED, options.principal, settings, log)  # only what classify sealed
    rows = [_extract_one(r) for r in given]
    _decide_rows(rows, options, settings)
    progress.advance("decide + policy", len(rows), options.progress)
    progress.chunk_done("decide + policy")
    df = pd.DataFrame(rows).drop(columns=["text_digest", "sealed_by"])  # each decision seals its seal's id
    df["amount"] = df["amount"].astype("float64")
    return df
