"""One ``retrain_triggered`` drift decision starts one retraining (review F1).

``start_retraining`` (the monitoring chain's acting step, a node anyone with launch rights can start on its own)
checked only that no retraining had *registered* a model on the decision yet: the ``retrain-trigger:`` claim is taken
by ``register_candidate`` at the end of a training run, so until then the same decision started as many retrainings
as a launcher asked for, each recorded as caused by the drift. ``start_retraining`` now claims the decision for its
execution (``retrain-start:<decision>``, sealed in an audited ``kind="retraining"`` record written before anything is
launched) and ``register_candidate`` registers on the decision only in the execution that holds that claim.

Design, as these tests pin it: another execution's start is refused (``trigger_used``, naming the decision and the
execution that holds it); a second call in the same execution is refused too, unless it is a later attempt of the
same node (Flyte retrying it on a cluster), which launches again under the claim it already holds, writing no
second claim.

Real flytekit tasks and workflows run locally (the stand-in retraining workflow), the pack's Cedar policy, the audit
trail of each test's own state dir.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_audit.claims import verify_claims
from flytekitplugins.aios_catalog import catalog
from flytekitplugins.aios_core.context import ExecutionRef, local_run
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings
from tests.security.test_candidate_registration import DIGESTS, NAME, STANDIN, _act_as
from tests.security.test_candidate_registration import _decision as decided_on

VERSION = "ft-20990101000000-f1f1f1"


def _decision(monkeypatch: pytest.MonkeyPatch, target: str) -> tuple[str, str]:
    """The monitoring chain's ``retrain_triggered`` decision for ``target`` on a sealed drift check: (id, reason),
    acting as the monitoring service afterwards (which starts retrainings)."""
    _check, decided, reason = decided_on(monkeypatch, target)
    _act_as(monkeypatch, "service:monitoring")
    return decided, reason


def _ran(decision: str) -> list[Any]:
    """The stand-in retraining's own records naming ``decision``: one per retraining that actually ran."""
    store = audit_log(get_settings())
    return [
        r for r in store.scan_kinds(("task",)) if r.event.status == "retrain_started" and decision in r.event.parents
    ]


def _starts(decision: str) -> list[Any]:
    """``start_retraining``'s audited claims of ``decision`` (``kind="retraining"``, status ``started``)."""
    from tasks.drift.monitor import START_KIND

    return [r for r in audit_log(get_settings()).scan_kinds((START_KIND,)) if r.event.parents == [decision]]


def _holder(decision: str) -> tuple[str, int] | None:
    from tasks.drift.monitor import start_claim

    return audit_log(get_settings()).claim_holders([start_claim(decision)]).get(start_claim(decision))


def _refused(call: Any, reason_code: str, *needles: str) -> GovernanceDenied:
    with pytest.raises(GovernanceDenied) as caught:
        call()
    assert caught.value.reason_code == reason_code, caught.value
    for needle in needles:
        assert needle in str(caught.value), (needle, str(caught.value))
    return caught.value


def test_a_second_start_on_one_decision_is_refused_from_another_execution_and_from_the_same_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reviewer's repro started the stand-in retraining twice on one decision. The first start claims the
    decision for its run; a start from another execution is refused naming the decision and the run that holds it,
    and so is a second call in the same run (a local run has no retries): the retraining ran once."""
    from tasks.drift.monitor import start_retraining

    decided, reason = _decision(monkeypatch, STANDIN)
    start = lambda: start_retraining(target=STANDIN, reason=reason, drift_record=decided)  # noqa: E731
    with local_run("monitoring") as first:
        assert start().startswith(f"retraining ran: {STANDIN} for drift on flights"), "the first start runs"
        _refused(start, "trigger_used", decided, first, "a second start, not a retry")
    with local_run("launcher") as second:
        refusal = _refused(start, "trigger_used", decided, f"in execution local/local/{first}")
        assert second not in str(refusal)
    assert len(_ran(decided)) == 1  # the old code: 2 (and as many as it was asked for)
    (claimed,) = _starts(decided)
    held = _holder(decided)
    assert held is not None and held[0].endswith(f"/{first}") and held[1] == claimed.seq
    assert claimed.event.status == "started" and claimed.event.attributes["target"] == STANDIN
    assert claimed.event.attributes["reason"] == reason  # the decision's reason, not the one handed in
    assert verify_claims(audit_log(get_settings())) == []  # the claim is sealed in the record and its row agrees


def test_a_start_racing_another_is_refused_by_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check-then-append is not the rule: the claims table is. A start that read the claim as free just before
    another execution took it is refused when its own record would take it too, and launches nothing."""
    from flytekitplugins.aios_audit.stores import AuditStore
    from tasks.drift.monitor import start_retraining

    decided, reason = _decision(monkeypatch, STANDIN)
    with local_run("monitoring") as first:
        start_retraining(target=STANDIN, reason=reason, drift_record=decided)
    with monkeypatch.context() as m, local_run("launcher"):
        m.setattr(AuditStore, "claim_holders", lambda self, keys: {})  # reads as if nobody held it yet
        _refused(
            lambda: start_retraining(target=STANDIN, reason=reason, drift_record=decided),
            "trigger_used",
            decided,
            first,
        )
    assert len(_ran(decided)) == 1 and len(_starts(decided)) == 1


def test_a_start_whose_claim_cannot_be_written_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Governance fails closed: when the audited start (and with it the claim) cannot be made durable, nothing is
    launched (``audit_write_failed``), and the decision stays free for a start that can record itself."""
    from flytekitplugins.aios_audit.stores import AuditWriteError
    from tasks.drift.monitor import START_KIND, start_retraining

    decided, reason = _decision(monkeypatch, STANDIN)
    store_type = type(audit_log(get_settings()))
    append = store_type.append

    def failing(self: Any, event: Any) -> Any:
        if event.kind == START_KIND:
            raise AuditWriteError("disk full (test)")
        return append(self, event)

    start = lambda: start_retraining(target=STANDIN, reason=reason, drift_record=decided)  # noqa: E731
    with monkeypatch.context() as m:
        m.setattr(store_type, "append", failing)
        _refused(start, "audit_write_failed", decided, "nothing is started")
    assert _ran(decided) == [] and _starts(decided) == [] and _holder(decided) is None
    assert start().startswith("retraining ran") and len(_ran(decided)) == 1


def test_a_retry_of_the_starting_node_launches_again_under_the_claim_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cluster a node is retried in the same execution with a higher attempt number: that retry launches again
    (idempotent on the claim: no second claim record), while another node of that execution, the same attempt
    again, or another execution are refused."""
    import flytekitplugins.aios_core.context as context
    from tasks.drift.monitor import start_retraining

    decided, reason = _decision(monkeypatch, STANDIN)
    current = {"ex": ExecutionRef(project="aios", domain="production", name="f1a2b3c4", node_id="n3")}
    monkeypatch.setattr(context, "current_execution", lambda task_name="": current["ex"])
    start = lambda: start_retraining(target=STANDIN, reason=reason, drift_record=decided)  # noqa: E731

    assert start().startswith("retraining ran")
    _refused(start, "trigger_used", decided, "aios/production/f1a2b3c4", "not a retry")
    current["ex"] = current["ex"].model_copy(update={"retry_attempt": 1})  # Flyte retried the node
    assert start().startswith("retraining ran")
    assert len(_ran(decided)) == 2 and len(_starts(decided)) == 1  # the retry holds the claim of its first attempt
    current["ex"] = current["ex"].model_copy(update={"node_id": "n7", "retry_attempt": 2})  # another node
    _refused(start, "trigger_used", decided, "not a retry")
    current["ex"] = ExecutionRef(project="aios", domain="production", name="e9d8c7b6", node_id="n3", retry_attempt=1)
    _refused(start, "trigger_used", decided, "in execution aios/production/f1a2b3c4")
    assert len(_ran(decided)) == 2 and len(_starts(decided)) == 1
    assert _holder(decided) == ("aios/production/f1a2b3c4", _starts(decided)[0].seq)


def _artifact(folder: Path) -> Path:
    folder.mkdir(parents=True)
    card = {"name": NAME, "version": VERSION, "labels": ["negative", "positive"], "kind": "minilm-head"}
    (folder / "aios_model.json").write_text(json.dumps(card))
    (folder / "head.npz").write_bytes(b"a head trained on the sealed split")
    return folder


def _register(folder: Path, drift: str, version: str = VERSION) -> Any:
    """``register_candidate`` of ``folder`` as the retraining workflow calls it, after the training step's seals
    (``prepare_data``'s split, ``train_distributed``'s trained artifact)."""
    from tasks.ml import seal_split, seal_trained
    from tasks.ml.classifier import artifact_digest
    from tasks.training.config import TrainConfig, TrainResult
    from tasks.training.data import DataLineage
    from tasks.training.promotion import register_candidate

    settings = get_settings()
    data = {"train_digest": DIGESTS["train"], "test_digest": DIGESTS["test"], "reference_rows_digest": DIGESTS["ref"]}
    lineage = DataLineage(source="movieReviewSnippets", version=version, **data)
    held = {"train": DIGESTS["train"], "reference_rows": DIGESTS["ref"], "test": DIGESTS["test"]}
    lineage.sealed_by = seal_split("dataset:vader-movieReviewSnippets", held, {"version": version}, settings)
    digest = artifact_digest(folder)
    seal_trained(f"{NAME}@{version}", digest, DIGESTS["train"], "", settings)
    result = TrainResult(model=FlyteDirectory(str(folder)), digest=digest, losses=[0.7, 0.5], steps=2)
    return register_candidate(
        result=result, lineage=lineage, config=TrainConfig(), name=NAME, owner="team:ml-platform",
        trigger="on demand", drift_record=drift,
    )  # fmt: skip


def test_a_candidate_registers_on_a_decision_only_in_the_execution_that_started_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``register_candidate`` in another execution than the one holding the decision's start claim (the retraining
    workflow launched by hand with the decision while the monitoring chain's retraining runs) is refused before
    anything is stored; in the starting execution it registers. A registration on a decision nobody started takes
    the start claim with its training record, and a later ``start_retraining`` on the decision starts nothing."""
    from tasks.drift.monitor import DEFAULT_TARGET, start_retraining, trigger_claim
    from tests.evaluation.standin_retrain import retrain as standin

    art = _artifact(tmp_path / "head")
    decided, reason = _decision(monkeypatch, DEFAULT_TARGET)
    with local_run("monitoring") as first:
        with monkeypatch.context() as m:  # the real start on a decision for workflows.retraining; the stand-in runs
            as_default = copy.copy(standin)  # the stand-in's body under the default's Flyte name, which the
            as_default._name = DEFAULT_TARGET  # decision names (start_retraining asks the entity for its name)
            m.setattr("tasks.drift.monitor.resolve_target", lambda target: as_default)
            assert start_retraining(target=DEFAULT_TARGET, reason=reason, drift_record=decided).startswith("retraining")
        _act_as(monkeypatch, "service:retraining")
        with local_run("by-hand") as other:  # the retraining workflow launched by hand with the decision
            _refused(lambda: _register(art, decided), "trigger_used", decided, first, other, "nothing is registered")
        store = audit_log(get_settings())
        assert catalog(get_settings()).find(NAME, VERSION) is None
        assert not list(store.scan_kinds(("training",)))
        assert not (get_settings().state_dir / "models" / NAME / VERSION).exists()
        registered = _register(art, decided)  # the starting run's own retraining (its register_candidate step)
    training = store.get(registered.training_record)
    assert training is not None and training.event.parents[0] == decided
    keys = {c["key"] for c in training.event.attributes["claims"]}
    assert keys == {trigger_claim(decided)}  # the start claim is the starting run's, held already

    # nobody started it: the registration takes the start claim itself, and a start after it starts nothing
    from tasks.drift.monitor import START_KIND, start_claim

    later, _ = _decision(monkeypatch, DEFAULT_TARGET)
    _act_as(monkeypatch, "service:retraining")
    with local_run("by-hand") as direct:
        art2 = _artifact(tmp_path / "head2")
        _register(art2, later, version=VERSION + "-2")
    held = store.claim_holders([start_claim(later)])[start_claim(later)]
    assert held[0].endswith(f"/{direct}")
    _act_as(monkeypatch, "service:monitoring")
    with local_run("monitoring"):
        _refused(
            lambda: start_retraining(target=DEFAULT_TARGET, reason="x", drift_record=later),
            "trigger_used",
            "already started a retraining",
        )
    assert not [r for r in store.scan_kinds((START_KIND,)) if r.event.parents == [later]]
    assert verify_claims(store) == []
