"""An independent reference model of the pack's policy rules, in plain Python (no Cedar).

Written from the rules as stated in docs/policy.md, not from the .cedar files, so that the differential
test compares two implementations. Returns ``(effect, gate, risk)``.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import yaml

ROLES_FILE = Path(__file__).resolve().parents[2] / "config" / "roles.yaml"
PRINCIPALS: dict[str, set[str]] = {
    k: set(v["roles"]) for k, v in yaml.safe_load(ROLES_FILE.read_text())["principals"].items()
}
DOC_TYPES = {"invoice", "payment_instruction", "receipt", "contract", "letter", "other"}
CURRENCIES = {"EUR", "USD", "GBP", "CHF"}
DATA_CLASSES = {"public", "internal", "personal"}
RISKS = {"low": 0, "medium": 1, "high": 2}

NUM, STR, BOOL = "num", "str", "bool"
ACTIONS: dict[str, tuple[set[str], set[str], dict[str, str], set[str]]] = {
    # action: (principal kinds, resource types, required context attrs, optional context attrs)
    "run_task": ({"user", "service"}, {"Task", "Workflow"}, {}, set()),
    "act_on_document": (
        {"user", "service"},
        {"Document"},
        {"amount": NUM, "currency": STR, "data_class": STR, "doc_type": STR, "confidence": NUM},
        set(),
    ),
    "use_model": ({"user", "service"}, {"Model"}, {"data_class": STR}, set()),
    "promote_model": (
        {"user", "service"},
        {"Model"},
        {"accuracy_delta": NUM, "drift_passed": BOOL},
        {"risk", "no_skill_delta"},
    ),
    "write_catalog": ({"user", "service"}, {"Model"}, {}, set()),
    "approve": ({"user"}, {"Task", "Workflow", "Document", "Model"}, {"gate": STR}, set()),
}
DENY = ("deny", None, None)
ALLOW = ("allow", None, None)


def q(x: Any) -> Decimal:
    """Four-place decimal, half-even, from the shortest repr (the documented conversion)."""
    return Decimal(repr(x) if isinstance(x, float) else x).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def _typed(value: Any, kind: str) -> bool:
    if kind == NUM:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        d = Decimal(repr(value) if isinstance(value, float) else value)
        return abs(d) < Decimal("922337203685477") and d == q(value)  # more than 4 places: refused
    if kind == STR:
        return isinstance(value, str)
    return isinstance(value, bool)


def _well_formed(req: dict[str, Any]) -> bool:
    p, a, r, c = req.get("principal"), req.get("action"), req.get("resource"), req.get("context", {})
    if p not in PRINCIPALS or a not in ACTIONS or not isinstance(r, dict) or not isinstance(c, dict):
        return False
    kinds, rtypes, required, optional = ACTIONS[a]
    if p.split(":")[0] not in kinds or r.get("type") not in rtypes or not isinstance(r.get("id"), str) or not r["id"]:
        return False
    extra = set(r) - {"type", "id", "approved_data_classes"}
    classes = r.get("approved_data_classes", [])
    if extra or (r["type"] != "Model" and "approved_data_classes" in r):
        return False
    if not isinstance(classes, list) or not all(isinstance(x, str) for x in classes):
        return False
    if set(c) - set(required) - optional or any(k not in c for k in required):
        return False
    if "risk" in c and not isinstance(c["risk"], str):
        return False
    if "no_skill_delta" in c and not _typed(c["no_skill_delta"], NUM):
        return False
    return all(_typed(c[k], kind) for k, kind in required.items())


def reference_decision(req: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """What the rules say about ``req``."""
    if not _well_formed(req):
        return DENY
    roles, action, c = PRINCIPALS[req["principal"]], req["action"], req.get("context", {})
    if action == "run_task":
        return ALLOW if roles & {"pipeline", "ml-engineer", "ops-analyst"} else DENY
    if action == "act_on_document":
        return _document(roles, c)
    if action == "use_model":
        approved = req["resource"].get("approved_data_classes", [])
        ok = roles & {"pipeline", "ml-engineer"} and c["data_class"] in DATA_CLASSES
        ok = ok and (c["data_class"] == "public" or c["data_class"] in approved)
        return ALLOW if ok else DENY
    if action == "promote_model":
        ok = roles & {"catalog-writer", "ml-engineer"} and q(c["accuracy_delta"]) > 0 and c["drift_passed"]
        ok = ok and ("no_skill_delta" not in c or q(c["no_skill_delta"]) > 0)
        if not ok or ("risk" in c and c["risk"] not in RISKS):
            return DENY
        return ("require_approval", "model-promotion", "high" if c.get("risk") == "high" else "medium")
    if action == "write_catalog":
        return ALLOW if "catalog-writer" in roles else DENY
    approvers = {"payment-signoff": {"finance-approver"}, "model-promotion": {"model-approver"}}
    approvers["document-review"] = {"ops-analyst", "finance-approver"}
    return ALLOW if roles & approvers.get(c["gate"], set()) else DENY


def _document(roles: set[str], c: dict[str, Any]) -> tuple[str, str | None, str | None]:
    amount, conf = q(c["amount"]), q(c["confidence"])
    ok = bool(roles & {"pipeline", "ops-analyst"}) and c["doc_type"] in DOC_TYPES and c["currency"] in CURRENCIES
    ok = ok and c["data_class"] in DATA_CLASSES and 0 <= conf <= 1 and amount >= 0
    if not ok:
        return DENY
    if amount > 50000:
        return ("require_approval", "payment-signoff", "high")
    if amount > 10000:
        return ("require_approval", "payment-signoff", "medium")
    if conf < Decimal("0.6"):
        return ("require_approval", "document-review", "low")
    return ALLOW
