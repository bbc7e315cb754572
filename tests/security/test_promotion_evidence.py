"""Promotion acts on the audit trail's evaluation, not on the report handed to the step (defects 2, 3, 4, 10).

Real VADER heads, real flytekit local execution, the pack's Cedar policy and signed approvals. Each case is what an
attacker with launch rights can hand a promotion step: a report typed by hand, a model folder that names another
catalog version, a drift check about other data, an approval given while another champion was crowned.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_approvals import decide
from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.models import ApprovalOutcome
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_catalog import catalog
from flytekitplugins.aios_core.settings import get_settings

NAME = "vader-sentiment"
DRIFT_ARGS = {"dataset": "vader-tweets", "suite": "vader_text", "columns": ["score"], "text_column": "text"}
pytestmark = pytest.mark.slow


def _approve(rid: str, who: str) -> None:
    assert decide(rid, who, "approve", reason="figures reviewed", env=Env.load(get_settings())).accepted


def _crowned(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any], Any, Any]:
    """Real VADER heads, a drift check of the held-out rows, and two requests opened while the name had no champion
    (weak vs baseline, strong vs baseline), both approved; the weak head promoted. Returns the split, the evaluation
    arguments, and the two reports."""
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, promote_after_approval, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    drift = check_drift(reference=s.train, current=s.test, text_sample=150, **DRIFT_ARGS)
    weak_drift = check_drift(reference=s.train.head(80), current=s.test, text_sample=150, **DRIFT_ARGS)
    assert not drift.drifted and not weak_drift.drifted
    common = {"test": s.test, "drift_record": drift.audit_record_id, "latency_sample": 8}
    first = evaluate_model(
        candidate=s.weak, champion=s.baseline, **{**common, "drift_record": weak_drift.audit_record_id}
    )
    strong = evaluate_model(candidate=s.strong, champion=s.baseline, **common)
    assert first.decision == strong.decision == "needs_approval"
    _approve(first.approval_request_id, "user:frank")
    _approve(strong.approval_request_id, "user:grace")
    promote_after_approval(evaluation_record=first.audit_record_id, approval_request_id=first.approval_request_id)
    assert catalog(get_settings()).champion(NAME).model_id == first.candidate.model
    return s, common, first, strong


def test_a_drift_check_of_other_rows_does_not_pass_the_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 4: a ``no_drift`` record about other rows (here the training rows against themselves) is no check of
    the rows the evaluation tested."""
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    other = check_drift(reference=s.train, current=s.train, text_sample=150, **DRIFT_ARGS)
    assert not other.drifted
    unbound = evaluate_model(
        candidate=s.strong, champion=s.baseline, test=s.test, drift_record=other.audit_record_id, latency_sample=8
    )
    assert not unbound.drift_passed and unbound.decision == "keep", unbound.reasons


def test_a_drift_check_whose_reference_is_not_the_candidates_training_rows_does_not_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review case 3: a drift check with the held-out rows as both its reference and its current batch found
    ``no_drift``, and the evaluation, its promotion evidence and the approval request said ``drift_passed``. Only a
    check of the candidate's own training rows (as the catalog pins them) against the tested rows counts."""
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    itself = check_drift(reference=s.test, current=s.test, text_sample=150, **DRIFT_ARGS)
    assert not itself.drifted  # a genuine no_drift: the rows against themselves
    evaluated = {"champion": s.baseline, "test": s.test, "latency_sample": 8}
    unbound = evaluate_model(candidate=s.strong, drift_record=itself.audit_record_id, **evaluated)
    assert not unbound.drift_passed and unbound.decision == "keep", unbound.reasons
    record = audit_log(get_settings()).get(unbound.audit_record_id)
    assert record is not None and record.event.attributes["drift_passed"] is False

    honest = check_drift(reference=s.train, current=s.test, text_sample=150, **DRIFT_ARGS)
    assert not honest.drifted
    # the strong head's training rows: its check; not the weak head's, which was trained on the first 80 of them
    weak = evaluate_model(candidate=s.weak, drift_record=honest.audit_record_id, **evaluated)
    assert not weak.drift_passed and weak.decision == "keep", weak.reasons
    bound = evaluate_model(candidate=s.strong, drift_record=honest.audit_record_id, **evaluated)
    assert bound.drift_passed and bound.decision == "needs_approval", bound.reasons
    binding = audit_log(get_settings()).get(bound.audit_record_id).event.attributes["drift_binding"]
    split, trained = (audit_log(get_settings()).get(binding[k]) for k in ("split", "trained"))
    assert split is not None and split.event.kind == "dataset" and split.event.outputs["test"] == bound.test_digest
    assert trained is not None and trained.event.outputs["model"] == bound.candidate.digest
    (request,) = [
        r.event.attributes["request"]
        for r in audit_log(get_settings()).scan()
        if r.event.kind == "approval_request" and bound.approval_request_id in json.dumps(r.event.attributes)
    ]
    summary = request["summary"]  # whoever signs off sees what the candidate was compared with
    assert summary["champion_model"] == bound.champion.model and summary["champion_digest"] == bound.champion.digest

    # the same rows at thresholds no data crosses: the check's launch inputs, not a check of these rows
    loose = {"psi_threshold": 1e9, "js_threshold": 1.0, "wasserstein_threshold": 1e9}
    lax = check_drift(reference=s.train, current=s.test, text_sample=150, **loose, **DRIFT_ARGS)
    unchecked = evaluate_model(candidate=s.strong, drift_record=lax.audit_record_id, **evaluated)
    assert not unchecked.drift_passed and unchecked.decision == "keep", unchecked.reasons


def test_a_model_registered_as_trained_on_the_held_out_rows_does_not_pass_their_drift_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The catalog's training digests are whoever registered the model's word: ``register_models`` pins what the
    artifact's card says. A card claiming the held-out rows as training data made the check of the held-out rows
    against themselves the candidate's own. A drift check counts only when a pack step's split seal drew its
    reference rows as training rows and the tested rows as held-out rows."""
    from tasks.evaluation.train import register_models
    from tasks.ml import rows_digest
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    claimed = tmp_path / "claimed"
    shutil.copytree(Path(s.strong.download()), claimed)
    manifest = claimed / "aios_model.json"
    card = json.loads(manifest.read_text())
    held_out = rows_digest(s.test["text"].tolist(), s.test["label"].tolist())
    card.update(version="tweets-claimed-held-out", training_data_digests=[held_out])
    manifest.write_text(json.dumps(card))
    (model_id,) = register_models(models=[FlyteDirectory(str(claimed))], owner="team:ml-platform")
    assert catalog(get_settings()).get(NAME, "tweets-claimed-held-out").training_data_digests == [held_out]

    itself = check_drift(reference=s.test, current=s.test, text_sample=150, **DRIFT_ARGS)
    assert not itself.drifted
    forged = evaluate_model(
        candidate=FlyteDirectory(str(claimed)), champion=s.baseline, test=s.test,
        drift_record=itself.audit_record_id, latency_sample=8,
    )  # fmt: skip
    assert forged.candidate.model == model_id
    assert not forged.drift_passed and forged.decision == "keep", forged.reasons
    record = audit_log(get_settings()).get(forged.audit_record_id)
    assert record is not None and record.event.attributes["drift_binding"] == {}


def test_a_model_trained_on_the_held_out_rows_does_not_pass_with_another_models_training_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Review of 2026-12-05, evaluation finding 2: a head trained on the held-out rows themselves, registered with a
    card claiming the strong head's training rows, passed the honest drift check of those rows against the held-out
    ones: nothing tied the candidate to the rows the check compared. A check counts only for a candidate the pack's
    own training step sealed as trained on that split's training rows (the same hole through ``register_candidate``
    with a training result of such a head, finding 3, closes with it)."""
    from tasks.evaluation.train import register_models
    from tasks.ml.classifier import TextClassifier, train_head
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    strong = TextClassifier.load(Path(s.strong.download())).card
    texts, labels = s.test["text"].tolist(), s.test["label"].tolist()
    leaky = train_head(texts, labels, name=NAME, version="tweets-leaky", seed=0)  # fitted on the held-out rows
    leaky.card.training_data_digests = list(strong.training_data_digests)  # the claim
    folder = tmp_path / "leaky"
    leaky.save(folder)
    register_models(models=[FlyteDirectory(str(folder))], owner="team:ml-platform")
    assert catalog(get_settings()).get(NAME, "tweets-leaky").training_data_digests == strong.training_data_digests

    honest = check_drift(reference=s.train, current=s.test, text_sample=150, **DRIFT_ARGS)
    assert not honest.drifted
    common = {"champion": s.baseline, "test": s.test, "drift_record": honest.audit_record_id, "latency_sample": 8}
    report = evaluate_model(candidate=FlyteDirectory(str(folder)), **common)
    assert report.candidate.accuracy > 0.9  # it has seen these rows
    assert not report.drift_passed and report.decision == "keep", report.reasons
    assert evaluate_model(candidate=s.strong, **common).drift_passed  # the strong head, sealed as trained on them


def test_an_approval_given_before_the_champion_changed_promotes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 10: the strong head was approved against the baseline; the champion is now the weak head."""
    from workflows.evaluation import promote_after_approval

    _s, _common, first, strong = _crowned(monkeypatch)
    with pytest.raises(Exception, match="no longer the champion"):
        promote_after_approval(evaluation_record=strong.audit_record_id, approval_request_id=strong.approval_request_id)
    assert catalog(get_settings()).champion(NAME).model_id == first.candidate.model


def test_a_report_typed_by_hand_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 2: a worse challenger's report with its figures typed by hand: the step refuses instead of asking with
    them, and ``finish_promotion`` handed it (with an approval of another request, or saying "promoted") promotes
    nothing."""
    from tasks.evaluation.tasks import decide_promotion
    from tasks.training.promotion import _decide
    from workflows.evaluation import evaluate_model, vader_models

    s, common, first, _strong = _crowned(monkeypatch)
    worse_split = vader_models(n_weak=12, n_strong=400, n_test=300)
    worse = evaluate_model(candidate=worse_split.weak, champion=s.weak, **common)
    assert worse.decision == "keep" and worse.comparison.accuracy_delta < 0
    forged = worse.model_copy(deep=True)
    forged.comparison.accuracy_delta, forged.comparison.significant = 0.25, True
    forged.candidate.accuracy, forged.drift_passed, forged.decision = 0.99, True, "pending"
    with pytest.raises(Exception, match="differs from evaluation record"):
        decide_promotion(report=forged)
    granted = ApprovalOutcome(request_id="apr-x", gate="model-promotion", status="approved", approvers=["user:grace"])
    forged.decision, forged.approval_request_id = "needs_approval", "apr-x"
    decision, reasons = _decide(forged, [granted], get_settings())
    assert decision == "rejected", reasons
    forged.decision = "promote"  # ... and a summary that says "promoted" is what the catalog says
    decision, reasons = _decide(forged, [], get_settings())
    assert decision == "kept" and "the catalog's champion" in reasons[0], reasons
    assert catalog(get_settings()).champion(NAME).model_id == first.candidate.model


def test_a_model_folder_that_names_another_version_is_not_that_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Defect 3: a folder whose ``aios_model.json`` names another model's version holds other weights: not the
    catalog's artifact."""
    from workflows.evaluation import evaluate_model, vader_models

    s, common, first, _strong = _crowned(monkeypatch)
    worse_split = vader_models(n_weak=12, n_strong=400, n_test=300)
    disguised = tmp_path / "disguised"
    shutil.copytree(Path(s.strong.download()), disguised)
    manifest = disguised / "aios_model.json"
    card = json.loads(manifest.read_text())
    card["version"] = json.loads((Path(worse_split.weak.download()) / "aios_model.json").read_text())["version"]
    manifest.write_text(json.dumps(card))
    with pytest.raises(Exception, match="not the catalog's"):
        evaluate_model(candidate=FlyteDirectory(str(disguised)), champion=s.weak, **common)
    assert catalog(get_settings()).champion(NAME).model_id == first.candidate.model


def test_an_approval_promotes_only_in_a_run_of_the_launcher_that_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of 2026-12-05, case 1: the catalog acted on a model-promotion approval without the launcher rule that
    ``verify_requests`` and the acting point apply. Erin, who launched neither the evaluation nor its request, ran
    ``promote_after_approval`` with Alice's record and request ids: the model was promoted on Frank's sign-off under
    Erin's name, and the approval used up (Alice's own run was then refused). Now Erin's run promotes nothing and
    uses nothing up; Alice's promotes."""
    from flytekitplugins.aios_catalog.catalog import _catalogs
    from flytekitplugins.aios_core.context import local_run
    from flytekitplugins.aios_core.settings import reset_settings
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, promote_after_approval, vader_models

    def become(principal: str, launched_by: str = "") -> None:
        monkeypatch.setenv("AIOS_PRINCIPAL", principal)
        if launched_by:
            monkeypatch.setenv("AIOS_LAUNCHED_BY", launched_by)
        else:
            monkeypatch.delenv("AIOS_LAUNCHED_BY", raising=False)
        reset_settings()
        _catalogs.clear()  # each launch opens the catalog as its own principal

    become("service:retraining", "user:alice")
    with local_run("alice-evaluates"):
        s = vader_models(n_weak=80, n_strong=400, n_test=300)
        drift = check_drift(reference=s.train, current=s.test, text_sample=150, **DRIFT_ARGS)
        report = evaluate_model(
            candidate=s.strong, champion=s.baseline, test=s.test, drift_record=drift.audit_record_id, latency_sample=8
        )
    assert report.decision == "needs_approval"
    _approve(report.approval_request_id, "user:frank")
    ids = {"evaluation_record": report.audit_record_id, "approval_request_id": report.approval_request_id}
    become("user:erin")
    with local_run("erin-promotes"), pytest.raises(Exception, match="launched by user:erin"):
        promote_after_approval(**ids)
    champion = catalog(get_settings()).champion(NAME)
    assert champion is None or champion.model_id != report.candidate.model
    become("service:retraining", "user:alice")
    with local_run("alice-promotes"):
        assert promote_after_approval(**ids) == report.candidate.model
    assert catalog(get_settings()).champion(NAME).model_id == report.candidate.model


def _inverted(folder: FlyteDirectory, tmp_path: Path) -> FlyteDirectory:
    """The head in ``folder`` with its weights and bias negated: it answers the opposite of what it learned."""
    from tasks.ml.classifier import ModelCard, TextClassifier

    clf = TextClassifier.load(Path(folder.download()))
    card = ModelCard(name=clf.card.name, version="inverted", labels=clf.labels, params={"kind": "inverted head"})
    out = tmp_path / "inverted"
    TextClassifier(card, -clf.weight, -clf.bias, clf.encoder).save(out)
    return FlyteDirectory(path=str(out))


def test_a_first_champion_is_judged_against_the_no_skill_floor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Review of 2026-12-05 (the known gap it left open): when a name has no champion yet, the model a candidate is
    compared with is whatever folder its launcher hands in. An inverted head there gave the weak head an accuracy
    delta of about +0.5, and that was the margin the policy and the approver saw. Now a first champion must also beat
    the held-out rows' no-skill floor (always answering their most frequent label), which no launcher chooses: the
    evaluation records it, the catalog asks for it and the policy reads ``no_skill_delta``
    (``model-promote-beats-no-skill``); an evaluation recorded without it promotes no first champion."""
    from flytekitplugins.aios_catalog.evidence import recorded_evaluation
    from flytekitplugins.aios_core.errors import GovernanceDenied
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    drift = check_drift(reference=s.train.head(80), current=s.test, text_sample=150, **DRIFT_ARGS)
    report = evaluate_model(
        candidate=s.weak,
        champion=_inverted(s.strong, tmp_path),
        test=s.test,
        drift_record=drift.audit_record_id,
        latency_sample=8,
    )
    assert report.comparison.accuracy_delta > 0.3  # the margin over the launcher's folder: what used to count
    counts = s.test["label"].value_counts()
    floor = counts.max() / len(s.test)
    assert report.no_skill is not None and report.no_skill.label == counts.idxmax()
    assert report.no_skill.accuracy == pytest.approx(floor, abs=1e-6)
    margin = round(report.candidate.accuracy - report.no_skill.accuracy, 6)
    assert 0 < margin < 0.1 and report.decision == "needs_approval", report.reasons

    store = audit_log(get_settings())
    (request,) = [
        r.event.attributes["request"]
        for r in store.scan()
        if r.event.kind == "approval_request" and report.approval_request_id in json.dumps(r.event.attributes)
    ]
    summary = request["summary"]  # whoever signs off sees that this is a first champion, and its real margin
    assert summary["first_champion"] is True and summary["no_skill_delta"] == margin
    assert summary["no_skill_accuracy"] == report.no_skill.accuracy
    # the policy reads the margin: the same figures with the candidate under the floor are refused, whatever the
    # margin over the folder compared with (figures stated by hand, as `aios models promote --evidence` does)
    name, _, version = report.candidate.model.partition("@")
    stated = {"accuracy_delta": 0.5, "drift_passed": True, "no_skill_delta": -0.0133}
    with pytest.raises(GovernanceDenied, match="model-promote-beats-no-skill"):
        catalog(get_settings()).promote(name, version, actor="service:retraining", evidence=stated)

    # the same evaluation as it would have been recorded before evaluations kept the floor: no first champion on it
    rec = store.get(report.audit_record_id)
    assert rec is not None
    attrs = {k: v for k, v in rec.event.attributes.items() if k != "no_skill"}
    old = store.append(rec.event.model_copy(update={"attributes": attrs}))
    assert "no_skill_delta" not in recorded_evaluation(store, old.record_id).evidence
    with pytest.raises(GovernanceDenied, match="no no-skill floor") as refused:
        catalog(get_settings()).promote(
            name, version, actor="service:retraining", evidence={"evaluation_record": old.record_id}
        )
    assert refused.value.reason_code == "no_skill_floor_missing"
    assert catalog(get_settings()).champion(NAME) is None


def test_an_approval_asked_without_the_evaluation_or_on_other_figures_promotes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reviews of 2026-12-07, launch rights: the catalog compared a request's gate, risk and subject, and its
    evaluation only where the request named one. The launcher's own request at the same gate and risk for the same
    model, naming no evaluation and showing its approver made-up figures, was approved and promoted the model on the
    real evaluation; and a second request with one evidence key added (other content is another request) stood in
    for the one an approver had rejected, as did one showing the same figures with ``True`` written ``1`` (equal in
    Python, other content for the request id), opened under the evaluation's execution (``serving``). Now only the
    first request naming the evaluation counts, naming it, showing exactly the figures it recorded, opened in its
    execution by its actor."""
    from flytekitplugins.aios_approvals import open_request, outcome
    from flytekitplugins.aios_catalog import ApprovalRequired
    from flytekitplugins.aios_core.context import serving
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, promote_after_approval, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    drift = check_drift(reference=s.train, current=s.test, text_sample=150, **DRIFT_ARGS)
    report = evaluate_model(
        candidate=s.strong, champion=s.baseline, test=s.test, drift_record=drift.audit_record_id, latency_sample=8
    )
    assert report.decision == "needs_approval"
    env = Env.load(get_settings())
    genuine = outcome(report.approval_request_id, env)
    assert genuine.summary and genuine.evidence["evaluation"] == report.audit_record_id
    made_up = {**genuine.summary, "accuracy_delta": 0.25}
    bools_as_ints = {k: int(v) if isinstance(v, bool) else v for k, v in genuine.summary.items()}
    assert bools_as_ints == genuine.summary and bools_as_ints != made_up
    name, _, version = report.candidate.model.partition("@")
    with pytest.raises(ApprovalRequired) as asked_again:
        catalog(get_settings()).promote(
            name, version, actor="service:retraining", evidence={"evaluation_record": report.audit_record_id}
        )
    retried = {"evaluation": report.audit_record_id, "policy_decision": asked_again.value.decision.audit_record_id}
    evaluated = audit_log(get_settings()).get(report.audit_record_id)
    assert evaluated is not None and evaluated.event.execution is not None
    twins = [  # (evidence, summary, refusal) of requests the launcher opens itself, at the genuine gate and risk
        ({"policy_decision": genuine.evidence["policy_decision"]}, made_up, "asked on evaluation none"),
        (dict(genuine.evidence), made_up, "is not the request the run of evaluation"),
        ({**genuine.evidence, "ticket": "ML-4711"}, genuine.summary, "is not the request the run of evaluation"),
        # the same figures as Python sees them (True == 1) opened under the evaluation's execution: other content
        (dict(genuine.evidence), bools_as_ints, "is not the request the run of evaluation"),
        # asked again under a new policy decision (as a retry of the step asks), after the rejection: it stands
        (retried, genuine.summary, "was rejected"),
    ]
    ids = {"evaluation_record": report.audit_record_id}
    for i, (evidence, summary, refusal) in enumerate(twins):
        if i == 2:  # the request the evaluation's run opened is rejected: a second one must not stand in for it
            assert decide(report.approval_request_id, "user:grace", "reject", "too few rows", env=env).accepted
        with serving(evaluated.event.execution):
            rid = open_request(genuine.gate, genuine.risk, genuine.subject, summary=summary, evidence=evidence,
                               requester="service:retraining", reason=f"twin {i}", env=env)  # fmt: skip
        assert rid != report.approval_request_id
        _approve(rid, "user:frank")
        with pytest.raises(Exception, match=refusal):
            promote_after_approval(**ids, approval_request_id=rid)
        assert catalog(get_settings()).champion(NAME) is None, i
    with pytest.raises(Exception, match="rejected"):
        promote_after_approval(**ids, approval_request_id=report.approval_request_id)
    assert catalog(get_settings()).champion(NAME) is None


def test_a_rejected_promotion_stands_when_the_candidate_is_evaluated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of 2026-12-07, launch rights: a rejection stood against requests naming the evaluation it was asked on
    only. Evaluating the same candidate again (same champion, same held-out rows) made a new evaluation record and a
    new request, and a second approver's yes promoted the model the first approver had rejected. A rejection now
    stands for the model version, whichever evaluation a later request names."""
    from workflows.drift import check_drift
    from workflows.evaluation import evaluate_model, promote_after_approval, vader_models

    monkeypatch.setenv("AIOS_PRINCIPAL", "service:retraining")
    s = vader_models(n_weak=80, n_strong=400, n_test=300)
    drift = check_drift(reference=s.train, current=s.test, text_sample=150, **DRIFT_ARGS)
    args = {"candidate": s.strong, "champion": s.baseline, "test": s.test, "drift_record": drift.audit_record_id}
    first = evaluate_model(**args, latency_sample=8)
    assert first.decision == "needs_approval"
    env = Env.load(get_settings())
    assert decide(first.approval_request_id, "user:grace", "reject", "too few rows", env=env).accepted
    again = evaluate_model(**args, latency_sample=8)
    assert again.candidate.model == first.candidate.model and again.decision == "needs_approval"
    assert again.audit_record_id != first.audit_record_id
    assert again.approval_request_id != first.approval_request_id
    _approve(again.approval_request_id, "user:frank")
    with pytest.raises(Exception, match=f"was rejected \\({first.approval_request_id}\\)"):
        promote_after_approval(evaluation_record=again.audit_record_id, approval_request_id=again.approval_request_id)
    assert catalog(get_settings()).champion(NAME) is None
    catalog_records = audit_log(get_settings()).scan_kinds(("catalog",))
    promoted = [r for r in catalog_records if r.event.attributes.get("op") == "promote"]
    assert promoted == []
