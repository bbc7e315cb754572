"""Forged approval decisions an evidence bundle's sender could hide from ``aios evidence verify`` (review F2).

A store writer appends an ``approval_decision`` with a junk signature ("approved by user:carol") beside bob's
signed rejection, and the bundle is exported as usual: the verifier flags the junk decision as counting for nothing.
The sender of the bundle then

* relabels the junk decision's ``kind`` in the manifest (which nothing signs): the verifier must refuse the bundle,
  naming the record and both kinds, instead of passing over the decision as a record of another kind;
* leaves the ``approval_request`` record out (``lineage.json`` recomputed to match): the verifier must still check
  every decision's signature under the shipped approvals key, flag the junk one as counting for nothing, and say
  that the decisions cannot be judged against their request, which is not in the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_audit.evidence import sealed_edges
from flytekitplugins.aios_audit.evidence_verify import verify_bundle
from flytekitplugins.aios_core.settings import get_settings
from tests.security.test_evidence_forgery import _aios, _files, _published_key, _zip, junk_decision_bundle


def _bundle_with_junk_decision(tmp_path: Path) -> tuple[Path, Path, str, str]:
    """``(bundle, pinned checkpoint key, junk decision's record id, request id)``: bob's signed rejection and a junk
    "approve by user:carol" a store writer appended, exported by document as usual."""
    bundle, junk, rid = junk_decision_bundle(tmp_path)
    pinned = tmp_path / "org-pinned.pem"
    code, out = _aios("audit", "public-key", "--out", str(pinned))
    assert code == 0, out
    # as exported, the junk decision is flagged (test_evidence_forgery checks the honest bundle in full)
    code, out = _aios("evidence", "verify", str(bundle), "--public-key", str(pinned))
    assert code == 0 and f"counts for nothing): record #4 {junk}: decision by user:carol" in out, out
    return bundle, pinned, junk, rid


@pytest.mark.parametrize(
    ("relabel", "sealed"),
    [
        ("approval_decision", "approval_verified"),  # the junk decision passed off as another kind of record
        ("approval_request", "approval_decision"),  # the request passed off as a decision
    ],
)
def test_a_record_whose_manifest_kind_is_not_its_sealed_kind_fails(
    aios_env: Path, tmp_path: Path, relabel: str, sealed: str
) -> None:
    bundle, pinned, _junk, _rid = _bundle_with_junk_decision(tmp_path)
    files = _files(bundle)
    manifest = json.loads(files.pop("manifest.json"))
    target = next(r for r in manifest["records"] if r["kind"] == relabel)
    if relabel == "approval_decision":
        target = [r for r in manifest["records"] if r["kind"] == relabel][-1]  # the junk one (appended last)
    target["kind"] = sealed
    forged = _zip(tmp_path / "relabelled.zip", files, manifest)
    entry = json.loads(json.loads(files[target["file"]])["entry"])
    assert entry["event"]["kind"] == relabel  # the record file still holds what it held

    code, out = _aios("evidence", "verify", str(forged), "--public-key", str(pinned))
    assert code == 1, out
    assert out.startswith("FAILED: ") and out.count("\n") == 1 and "Traceback" not in out, out
    want = (
        f"record #{target['seq']} ({target['record_id']}): the manifest labels it '{sealed}', but its sealed entry "
        f"is of kind '{relabel}': the bundle was altered"
    )
    assert want in out, out
    check = verify_bundle(forged, [str(pinned)])
    assert not check.ok and check.record == target["file"], check


def test_a_decision_whose_request_is_left_out_is_still_judged(aios_env: Path, tmp_path: Path) -> None:
    bundle, pinned, junk, rid = _bundle_with_junk_decision(tmp_path)
    files = _files(bundle)
    manifest = json.loads(files.pop("manifest.json"))
    req = next(r for r in manifest["records"] if r["kind"] == "approval_request")
    manifest["records"].remove(req)
    del files[req["file"]]
    entries = {r["seq"]: (json.loads(files[r["file"]])["entry"].encode(), r["record_id"]) for r in manifest["records"]}
    files["lineage.json"] = json.dumps(sealed_edges(entries), indent=1).encode()  # so the edges match again
    forged = _zip(tmp_path / "no-request.zip", files, manifest)
    decisions = [r for r in manifest["records"] if r["kind"] == "approval_decision"]
    assert [r["record_id"] for r in decisions][-1] == junk and len(decisions) == 2

    code, out = _aios("evidence", "verify", str(forged), "--public-key", str(pinned))
    # as `aios audit verify` flags a decision that counts for nothing: OK (every record is genuine), with warnings
    assert code == 0 and out.startswith("OK: ") and out.count("\n") == 1, out
    flagged = f"warning: ignored approval decision (counts for nothing): record #4 {junk}: decision by user:carol"
    assert flagged in out, out
    missing = f"cannot be judged against its request: request {rid} is not in the bundle"
    for r in decisions:  # bob's signed rejection too: whether it covers the request's version cannot be told
        assert f"record #{r['seq']} {r['record_id']}: decision by " in out and out.count(missing) == 2, out
    assert "counts for nothing): record #3" not in out, out  # bob's signature verifies

    check = verify_bundle(forged, [str(pinned)])
    assert check.ok, check.summary
    assert sum("counts for nothing" in n and "is not signed by approvals key" in n for n in check.notes) == 1
    assert sum(missing in n for n in check.notes) == 2, check.notes


def test_the_log_walk_still_passes_over_a_decision_without_a_request(aios_env: Path) -> None:
    """``aios audit verify`` walks the whole log: there, a decision with no request before it counts toward nothing
    and is not listed (unchanged); only a selection (a bundle) keeps it, its signature checked, to be reported."""
    from flytekitplugins.aios_approvals import decide, open_request
    from flytekitplugins.aios_approvals.audit_check import DecisionCheck
    from flytekitplugins.aios_approvals.evaluate import Env

    doc = f"sha256:{2:064x}"
    env = Env.load(get_settings())
    rid = open_request("payment-signoff", "high", doc, {"amount": 60001}, {"document": doc}, requester="svc:x", env=env)
    assert decide(rid, "user:bob", "reject", reason="duplicate invoice", env=Env.load(get_settings())).accepted
    store = audit_log(get_settings(), emit=False)
    (row,) = [row for row in store.scan_raw() if b'"kind":"approval_decision"' in row[1]]  # its request left out
    walk, selection = DecisionCheck(env.public_key), DecisionCheck(env.public_key, selection=True)
    for check in (walk, selection):
        check.see(int(row[0]), row[1], row[2], row[3], row[4])
    assert not walk.finish().lines and not walk.part.pending
    part = selection.finish()
    assert not part.lines and [(p[2], p[3], p[5]) for p in part.pending] == [(rid, "user:bob", True)], part


def test_a_decision_naming_another_request_than_its_record_is_reported(aios_env: Path, tmp_path: Path) -> None:
    """Re-review of 2026-12-07: a junk "approve by user:carol" whose decision names another request id than the
    record it sits in counts for nothing (the fold passes it over) but was reported by neither verifier, while
    readers print its record as carol's approval. Both verifiers now show it."""
    other = "apr-" + "0" * 20
    bundle, junk, rid = junk_decision_bundle(tmp_path, names=other)
    shown = f"record {junk}: decision by user:carol names request {other}, but is recorded for {rid}"
    code, out = _aios("audit", "verify")
    assert code == 0 and f"warning: ignored approval decision (counts for nothing): {shown}" in out, out
    code, out = _aios("evidence", "verify", str(bundle), "--public-key", str(_published_key(tmp_path)))
    assert code == 0 and shown.replace("record ", "record #4 ", 1) in out, out
