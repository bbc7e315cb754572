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
from collections.abc import Iterator

from flytekitplugins.aios_audit.stores import CLAIMS_ATTR, AuditStore

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


def sealed_claims(store: AuditStore) -> Iterator[tuple[str, str, int]]:
    """``(key, holder, seq)`` of every claim sealed in the log, in sequence order."""
    for seq, entry, _leaf, _prev, _chain in store.scan_raw(1):
        if _NEEDLE not in entry:
            continue
        event = json.loads(entry)["event"]
        for c in (event.get("attributes") or {}).get(CLAIMS_ATTR) or ():
            yield str(c["key"]), str(c["holder"]), int(seq)


def verify_claims(store: AuditStore) -> list[ClaimProblem]:
    """Compare the claims table with the claims sealed in the log; an empty list means they agree."""
    problems: list[ClaimProblem] = []
    sealed: dict[str, tuple[str, int]] = {}
    for key, holder, seq in sealed_claims(store):
        if key in sealed:
            first = sealed[key][1]
            problems.append(ClaimProblem("claim_duplicated", key, seq, f"already claimed by the record at seq {first}"))
            continue
        sealed[key] = (holder, seq)
    table: dict[str, tuple[str, int]] = {}
    for key, holder, seq in store.scan_claims():
        table[key] = (str(holder), int(seq))
    for key, (holder, seq) in sealed.items():
        row = table.get(key)
        if row is None:
            problems.append(ClaimProblem("claim_missing", key, seq, "sealed in the log but absent from audit_claims"))
        elif row != (holder, seq):
            detail = f"audit_claims says holder {row[0]!r} at seq {row[1]}, the log says {holder!r} at seq {seq}"
            problems.append(ClaimProblem("claim_changed", key, seq, detail))
    for key, (holder, seq) in table.items():
        if key not in sealed:
            detail = f"held by {holder!r} in audit_claims but claimed by no sealed record"
            problems.append(ClaimProblem("claim_extra", key, seq, detail))
    return sorted(problems, key=lambda p: (p.seq, p.key))
