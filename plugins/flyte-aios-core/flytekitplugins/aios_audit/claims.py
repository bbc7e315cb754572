"""Re-deriving the ``audit_claims`` table from the sealed log.

A claim (one use of an approval, one action per policy decision) is written twice in one transaction: in the
record's sealed entry (``attributes.claims``) and as a row of ``audit_claims``, whose primary key makes the
rule structural. The table is derived data, so the verifier trusts none of it: it reads every claim from the
sealed entries (whose bytes ``aios audit verify`` has checked against the hash chain) and reports

* ``claim_duplicated``  two sealed records claim the same key (the uniqueness rule was bypassed);
* ``claim_missing``     a sealed claim has no row (a row was deleted: the rule no longer holds for that key);
* ``claim_extra``       a row that no sealed record claims (it would block a legitimate use);
* ``claim_changed``     a row whose holder or sequence number differs from the sealed claim.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import tempfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, AuditStore, claim_pairs

_NEEDLE = b'"' + CLAIMS_ATTR.encode() + b'":'


@dataclasses.dataclass(frozen=True)
class ClaimProblem:
    """One difference between the sealed claims and the claims table."""

    code: str
    key: str
    seq: int
    detail: str

    def line(self) -> str:
        """One line for people."""
        return f"{self.code} at seq {self.seq}: {self.key}: {self.detail}"


MALFORMED = "the record's claims attribute is not a list of {key, holder} objects: no code of the pack writes one"


def malformed_claims(seqs: list[int]) -> list[ClaimProblem]:
    """A ``claim_malformed`` problem for each record ``seqs`` names (the full walk's and the incremental one's)."""
    return [ClaimProblem("claim_malformed", CLAIMS_ATTR, seq, MALFORMED) for seq in seqs]


def sealed_claims(store: AuditStore, malformed: list[int] | None = None) -> Iterator[tuple[str, str, int]]:
    """``(key, holder, seq)`` of every claim sealed in the log, in sequence order; the seq of each record whose
    claims attribute is malformed (:func:`.stores.claim_pairs`) is added to ``malformed``."""
    for seq, entry, _leaf, _prev, _chain in store.scan_raw(1):
        if _NEEDLE not in entry:
            continue
        pairs = claim_pairs(json.loads(entry)["event"].get("attributes"))
        if pairs is None and malformed is not None:
            malformed.append(int(seq))
        for key, holder in pairs or ():
            yield key, holder, int(seq)


def verify_claims(store: AuditStore) -> list[ClaimProblem]:
    """Compare the claims table with the claims sealed in the log; an empty list means they agree.

    Both sides are written to a scratch SQLite file (a private temporary folder, removed afterwards) and compared by
    joins there: memory stays flat whatever the number of claims (two dictionaries of every claim took about 300 MB
    a million claims). The first sealed claim of a key is the one its row must match; later ones are duplicates.
    """
    with tempfile.TemporaryDirectory(prefix="aios-claims-") as tmp:
        db = sqlite3.connect(Path(tmp) / "claims.db", isolation_level=None)
        try:
            return _compare(db, store)
        finally:
            db.close()


def _compare(db: sqlite3.Connection, store: AuditStore) -> list[ClaimProblem]:
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE sealed (n INTEGER PRIMARY KEY, key TEXT NOT NULL, holder TEXT NOT NULL, seq INTEGER)")
    db.execute("CREATE TABLE rows (key TEXT PRIMARY KEY, holder TEXT NOT NULL, seq INTEGER NOT NULL)")
    db.execute("BEGIN")
    malformed: list[int] = []
    sealed = sealed_claims(store, malformed)
    while batch := list(islice(sealed, 10_000)):
        db.executemany("INSERT INTO sealed (key, holder, seq) VALUES (?, ?, ?)", batch)
    rows = ((str(k), str(h), int(s)) for k, h, s in store.scan_claims())
    while batch := list(islice(rows, 10_000)):
        db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)", batch)
    db.execute("CREATE TABLE first AS SELECT key, MIN(n) AS n FROM sealed GROUP BY key")
    db.execute("CREATE UNIQUE INDEX first_key ON first(key)")
    db.execute("COMMIT")
    problems = malformed_claims(malformed)
    later = "SELECT s.key, s.seq, f.seq FROM sealed s JOIN first m ON m.key = s.key AND s.n > m.n"
    later += " JOIN sealed f ON f.n = m.n"
    for key, seq, first in db.execute(later):
        problems.append(ClaimProblem("claim_duplicated", key, seq, f"already claimed by the record at seq {first}"))
    firsts = (
        "SELECT f.key, f.holder, f.seq, r.holder, r.seq FROM first m JOIN sealed f ON f.n = m.n"
        " LEFT JOIN rows r ON r.key = f.key WHERE r.key IS NULL OR r.holder <> f.holder OR r.seq <> f.seq"
    )
    for key, holder, seq, row_holder, row_seq in db.execute(firsts):
        if row_holder is None:
            problems.append(ClaimProblem("claim_missing", key, seq, "sealed in the log but absent from audit_claims"))
        else:
            detail = f"audit_claims says holder {row_holder!r} at seq {row_seq}, the log says {holder!r} at seq {seq}"
            problems.append(ClaimProblem("claim_changed", key, seq, detail))
    extra = "SELECT r.key, r.holder, r.seq FROM rows r WHERE NOT EXISTS (SELECT 1 FROM first m WHERE m.key = r.key)"
    for key, holder, seq in db.execute(extra):
        detail = f"held by {holder!r} in audit_claims but claimed by no sealed record"
        problems.append(ClaimProblem("claim_extra", key, seq, detail))
    return sorted(problems, key=lambda p: (p.seq, p.key))
