"""Load a Cedar policy directory once per process: parse, split by effect, validate, build entities.

Layout of a policy directory (``AIOS_POLICY_DIR``, default ``config/policies``):

* ``*.cedar``: policies. Every policy carries ``@id("...")`` (unique; it names the rule in decisions,
  audit records and coverage) and ``@reason("...")`` (the human reason shown on a decision).
  Policies annotated ``@effect("require_approval")`` with ``@gate`` and ``@risk`` form the second pass.
* ``schema.cedarschema.json``: the Cedar schema (JSON form, so the pack can type requests from it).
* ``tests/*.yaml``: policy test cases (``aios policy test``).

Principals and their roles come from ``roles.yaml`` (Cedar entities whose parents are ``Role`` entities).
The parsed set is cached by a stat fingerprint of the files and by their content digest; the
fingerprint is re-checked at most every ``RECHECK_S`` seconds, so an edited policy takes effect within that.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy
import yaml

from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_policy.engine import PolicyLoadError, PolicySource

SCHEMA_FILE = "schema.cedarschema.json"
REQUIRE_APPROVAL = "require_approval"
RISKS = ("low", "medium", "high")
RECHECK_S = 0.25


@dataclass(frozen=True)
class CedarPolicySet:
    """A parsed, validated policy set and everything needed to decide against it."""

    digest: str
    access: cedarpy.PolicySet
    approval: cedarpy.PolicySet | None
    schema: cedarpy.Schema
    base_entities: cedarpy.Entities
    entity_types: dict[str, Any]
    actions: dict[str, Any]
    principals: dict[str, tuple[str, ...]]
    annotations: dict[str, dict[str, str]]
    rule_ids: tuple[str, ...]
    approval_actions: frozenset[str] | None = None
    """Actions some approval policy can match (all of them scoped ``action == Action::"x"``); None: any."""


_lock = threading.Lock()
_by_fingerprint: dict[tuple[Any, ...], str] = {}
_by_digest: dict[tuple[str, str], CedarPolicySet] = {}
_fresh: dict[PolicySource, tuple[float, CedarPolicySet]] = {}


def load_policy_set(source: PolicySource) -> CedarPolicySet:
    """The cached policy set of ``source``; raise PolicyLoadError if it is unusable."""
    now = time.monotonic()
    hit = _fresh.get(source)
    if hit is not None and now - hit[0] < RECHECK_S:
        return hit[1]
    loaded = _load(source)
    _fresh[source] = (now, loaded)
    return loaded


def _load(source: PolicySource) -> CedarPolicySet:
    fp = _fingerprint(source)
    with _lock:
        digest = _by_fingerprint.get(fp)
        cached = _by_digest.get((str(source.policy_dir), digest)) if digest else None
    if cached is not None:
        return cached
    texts = _read_sources(source)
    digest = digest_value(texts)
    with _lock:
        cached = _by_digest.get((str(source.policy_dir), digest))
    if cached is None:
        cached = _build(texts, digest, source)
    with _lock:
        _by_fingerprint[fp] = digest
        _by_digest[(str(source.policy_dir), digest)] = cached
    return cached


def clear_cache() -> None:
    """Forget every parsed policy set (tests; after editing policies in a long-lived process)."""
    with _lock:
        _by_fingerprint.clear()
        _by_digest.clear()
        _fresh.clear()


def _fingerprint(source: PolicySource) -> tuple[Any, ...]:
    parts: list[Any] = [str(source.policy_dir), str(source.roles_file)]
    try:
        with os.scandir(source.policy_dir) as it:
            for e in sorted(it, key=lambda e: e.name):
                if e.name.endswith(".cedar") or e.name == SCHEMA_FILE:
                    st = e.stat()
                    parts.append((e.name, st.st_mtime_ns, st.st_size, st.st_ino))
        st = source.roles_file.stat()
        parts.append((st.st_mtime_ns, st.st_size, st.st_ino))
    except OSError:
        parts.append("unreadable")
    return tuple(parts)


def _read_sources(source: PolicySource) -> dict[str, Any]:
    pdir = source.policy_dir
    if not pdir.is_dir():
        msg = f"policy directory {pdir} does not exist: set AIOS_POLICY_DIR (or --policy-dir) to the *.cedar folder"
        raise PolicyLoadError(msg)
    files = sorted(pdir.glob("*.cedar"))
    if not files:
        msg = f"no *.cedar policy files in {pdir}: an empty policy set would deny everything; add policies"
        raise PolicyLoadError(msg)
    schema = pdir / SCHEMA_FILE
    if not schema.is_file():
        msg = f"no Cedar schema at {schema}: the pack types every request from it; restore {SCHEMA_FILE}"
        raise PolicyLoadError(msg)
    if not source.roles_file.is_file():
        msg = f"roles file {source.roles_file} not found: principals and their roles come from it"
        raise PolicyLoadError(msg)
    try:
        return {
            "policies": {f.name: f.read_text(encoding="utf-8") for f in files},
            "schema": schema.read_text(encoding="utf-8"),
            "roles": source.roles_file.read_text(encoding="utf-8"),
        }
    except (OSError, UnicodeDecodeError) as e:
        msg = f"cannot read the policy set in {pdir}: {e}"
        raise PolicyLoadError(msg) from e


def _build(texts: dict[str, Any], digest: str, source: PolicySource) -> CedarPolicySet:
    schema_json = _parse_schema(texts["schema"])
    policies = _parse_policies(texts["policies"])
    full_text = "\n".join(texts["policies"].values())
    result = cedarpy.validate_policies(full_text, texts["schema"])
    if not result.validation_passed:
        names = result.id_annotations_by_policy_id
        errs = "; ".join(f"[{names.get(e.policy_id, e.policy_id)}] {e.error}" for e in result.errors)
        msg = f"policies in {source.policy_dir} do not match {SCHEMA_FILE}: {errs}"
        raise PolicyLoadError(msg)
    access = {k: v for k, v in policies.items() if v.get("annotations", {}).get("effect") != REQUIRE_APPROVAL}
    approval = {k: v for k, v in policies.items() if k not in access}
    if not any(p["effect"] == "permit" for p in access.values()):
        msg = f"policy set in {source.policy_dir} has no permit policy: nothing could ever be allowed"
        raise PolicyLoadError(msg)
    principals = _parse_roles(texts["roles"], source.roles_file)
    schema = cedarpy.Schema.from_json_str(texts["schema"])
    return CedarPolicySet(
        digest=digest,
        access=_policy_set(access),
        approval=_policy_set(approval) if approval else None,
        schema=schema,
        base_entities=_entities(principals, schema),
        entity_types=schema_json["entityTypes"],
        actions=schema_json["actions"],
        principals=principals,
        annotations={k: dict(v.get("annotations", {})) for k, v in policies.items()},
        rule_ids=tuple(policies),
        approval_actions=_scoped_actions(approval.values()),
    )


def _scoped_actions(policies: Iterable[dict[str, Any]]) -> frozenset[str] | None:
    """The actions these policies can match, when every one is scoped to a single action; else None.

    A request whose action is not in the set cannot match any of them, so the approval pass is skipped for
    it. Any other scope (``action in [...]``, action groups, unscoped) gives None: always evaluate.
    """
    out: set[str] = set()
    for pol in policies:
        scope = pol.get("action", {})
        entity = scope.get("entity", {}) if scope.get("op") == "==" else {}
        if entity.get("type") != "Action" or not isinstance(entity.get("id"), str):
            return None
        out.add(entity["id"])
    return frozenset(out)


def _parse_schema(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
        ns = data[""]
        if not isinstance(ns.get("entityTypes"), dict) or not isinstance(ns.get("actions"), dict):
            raise KeyError("entityTypes/actions")
        cedarpy.Schema.from_json_str(text)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:  # deep nesting: RecursionError
        msg = f"{SCHEMA_FILE} is not a usable Cedar JSON schema with an empty namespace: {e}"
        raise PolicyLoadError(msg) from e
    return dict(ns)


def _parse_policies(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Policies by their ``@id``, in file order; each file parsed alone so errors name the file."""
    out: dict[str, dict[str, Any]] = {}
    for name, text in files.items():
        try:
            est = json.loads(cedarpy.policies_to_json_str(text))
        except ValueError as e:
            msg = f"cannot parse policy file {name}: {e}"
            raise PolicyLoadError(msg) from e
        if est.get("templates"):
            msg = f"{name}: policy templates are not supported here; write static policies"
            raise PolicyLoadError(msg)
        for pid, pol in est.get("staticPolicies", {}).items():
            rule_id = _check_policy(name, pid, pol)
            if rule_id in out:
                msg = f"{name}: duplicate @id({rule_id!r}); every rule needs a unique id"
                raise PolicyLoadError(msg)
            out[rule_id] = pol
    return out


def _check_policy(file: str, pid: str, pol: dict[str, Any]) -> str:
    ann = pol.get("annotations", {})
    rule_id = ann.get("id")
    if not rule_id:
        msg = f'{file}: policy {pid} has no @id("...") annotation; every rule needs a unique id'
        raise PolicyLoadError(msg)
    effect = ann.get("effect")
    if effect is None:
        return str(rule_id)
    if effect != REQUIRE_APPROVAL:
        msg = f"{file}: @id({rule_id!r}) has @effect({effect!r}); the only supported value is {REQUIRE_APPROVAL!r}"
        raise PolicyLoadError(msg)
    if pol.get("effect") != "permit" or not ann.get("gate") or ann.get("risk") not in RISKS:
        msg = f'{file}: @id({rule_id!r}) must be a permit with @gate("<kind>") and @risk(low|medium|high)'
        raise PolicyLoadError(msg)
    return str(rule_id)


def _policy_set(policies: dict[str, dict[str, Any]]) -> cedarpy.PolicySet:
    doc = {"staticPolicies": policies, "templates": {}, "templateLinks": []}
    return cedarpy.PolicySet.from_json_str(json.dumps(doc))


def _parse_roles(text: str, path: Path) -> dict[str, tuple[str, ...]]:
    try:
        data = yaml.safe_load(text) or {}
        raw = data.get("principals") or {}
        principals = {str(k): tuple(str(r) for r in (v or {}).get("roles", [])) for k, v in raw.items()}
    except (yaml.YAMLError, AttributeError, TypeError, RecursionError) as e:
        msg = f"roles file {path} is not a mapping 'principals: {{user:x: {{roles: [...]}}}}': {e}"
        raise PolicyLoadError(msg) from e
    bad = [p for p in principals if p.partition(":")[0] not in ("user", "service")]
    if bad:
        msg = f"roles file {path}: principals must be 'user:<name>' or 'service:<name>', got {bad}"
        raise PolicyLoadError(msg)
    return principals


def _entities(principals: dict[str, tuple[str, ...]], schema: cedarpy.Schema) -> cedarpy.Entities:
    roles = sorted({r for rs in principals.values() for r in rs})
    ents: list[dict[str, Any]] = [{"uid": {"type": "Role", "id": r}, "attrs": {}, "parents": []} for r in roles]
    for pid, prs in principals.items():
        kind, _, name = pid.partition(":")
        uid = {"type": "User" if kind == "user" else "Service", "id": name}
        ents.append({"uid": uid, "attrs": {}, "parents": [{"type": "Role", "id": r} for r in prs]})
    try:
        return cedarpy.Entities.from_json_str(json.dumps(ents), schema)
    except ValueError as e:
        msg = f"principals from roles.yaml do not fit the Cedar schema: {e}"
        raise PolicyLoadError(msg) from e
