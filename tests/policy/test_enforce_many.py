"""enforce_many: one engine call and one durable audit transaction for a batch; fails closed as a whole."""

from __future__ import annotations

import pytest

from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_policy import enforce, enforce_many

from .conftest import doc_request, policy_records


def test_batch_decisions_match_single_ones_and_are_all_recorded() -> None:
    requests = [
        doc_request(),  # allow
        doc_request(amount=25_000.0),  # payment sign-off needed
        doc_request(currency="XBT"),  # unknown currency: deny
        {"principal": "user:mallory", "action": "act_on_document", "resource": {"type": "Document", "id": "x"}},
    ]
    subjects = [f"sha256:doc{i}" for i in range(len(requests))]
    batch = enforce_many(
        requests, subjects=subjects, attributes=[{"i": i} for i in range(len(requests))], settings=get_settings()
    )
    assert [d.effect for d in batch] == ["allow", "require_approval", "deny", "deny"]
    assert batch[1].approval is not None and batch[1].approval.gate == "payment-signoff"
    records = policy_records()
    assert [r.event.subject for r in records] == subjects
    assert [r.record_id for r in records] == [d.audit_record_id for d in batch]
    assert [r.event.status for r in records] == [d.effect for d in batch]
    assert [r.event.attributes["i"] for r in records] == [0, 1, 2, 3]
    # the same requests one by one reach the same effects and policies
    for req, d in zip(requests[:2], batch[:2], strict=True):
        single = enforce(req, settings=get_settings())
        assert (single.effect, single.policy_ids) == (d.effect, d.policy_ids)


def test_an_audit_failure_denies_the_whole_batch() -> None:
    from flytekitplugins.aios_audit import AuditWriteError, audit_log

    store = audit_log(get_settings())

    def broken(events: object) -> None:
        raise AuditWriteError("disk full")

    # only the store's append is patched (and restored): the test's own state dir stays in place
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "append_many", broken)
        with pytest.raises(GovernanceDenied) as exc:
            enforce_many([doc_request(), doc_request()], subjects=["a", "b"], settings=get_settings())
    assert exc.value.reason_code == "audit_write_failed"
    assert "2 requests" in str(exc.value)
    assert audit_log(get_settings()) is store
    assert policy_records() == []  # nothing was acknowledged
    # the same reader sees a batch that is written: the assertion above reads the store enforce_many writes to
    enforce_many([doc_request(), doc_request()], subjects=["c", "d"], settings=get_settings())
    assert [r.event.subject for r in policy_records()] == ["c", "d"]
