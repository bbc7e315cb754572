"""Policy test cases kept beside the policies (``<policy dir>/tests/*.yaml``), with rule coverage.

A case file holds ``cases:``, each with a ``name``, a ``request`` (the dict form of
:class:`~flytekitplugins.aios_policy.PolicyRequest`) and the expected outcome::

    cases:
      - name: invoice over 10k needs a finance sign-off
        request: {principal: service:document-pipeline, action: act_on_document, resource: {...}, context: {...}}
        expect: require_approval        # allow | deny | require_approval
        gate: payment-signoff           # optional: expected approval gate
        risk: medium                    # optional: expected approval risk
        policies: [payment-signoff-medium]   # optional: ids that must be among the determining policies

Coverage: a rule is *exercised* when it is among the determining policies of at least one case.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from flytekitplugins.aios_core.errors import ConfigError
from flytekitplugins.aios_core.settings import Settings
from flytekitplugins.aios_core.text_files import read_yaml
from flytekitplugins.aios_policy.decide import evaluate_many, policy_source
from flytekitplugins.aios_policy.engine import get_engine


@dataclasses.dataclass(frozen=True)
class CaseResult:
    """Outcome of one case."""

    file: str
    name: str
    passed: bool
    expected: str
    got: str
    policy_ids: tuple[str, ...]
    problems: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TestReport:
    """All case results plus rule coverage."""

    results: tuple[CaseResult, ...]
    rule_ids: tuple[str, ...]
    exercised: tuple[str, ...]

    @property
    def failed(self) -> list[CaseResult]:
        """Cases whose outcome differed from the expectation."""
        return [r for r in self.results if not r.passed]

    @property
    def uncovered(self) -> list[str]:
        """Rules no case exercised."""
        return [r for r in self.rule_ids if r not in set(self.exercised)]


def load_cases(case_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, case) for every case in ``case_dir/*.yaml``; ConfigError naming a malformed file."""
    out: list[tuple[str, dict[str, Any]]] = []
    for f in sorted(case_dir.glob("*.yaml")):
        data = read_yaml(f, "policy test file") or {}
        cases = data.get("cases") if isinstance(data, dict) else None
        if not isinstance(cases, list):
            raise ConfigError(f"policy test file {f} must hold 'cases:' as a list")
        for i, case in enumerate(cases):
            if not isinstance(case, dict) or "request" not in case or "expect" not in case:
                raise ConfigError(f"{f.name} case #{i + 1} needs 'request' and 'expect' (allow|deny|require_approval)")
            out.append((f.name, case))
    return out


def run_cases(
    settings: Settings, policy_dir: Path | str | None = None, case_dir: Path | str | None = None
) -> TestReport:
    """Evaluate every case against the policies in ``policy_dir`` (default: ``settings.policy_dir``) in one batch."""
    source = policy_source(settings, policy_dir)
    cases = load_cases(Path(case_dir) if case_dir else source.policy_dir / "tests")
    if not cases:
        raise ConfigError(f"no policy test cases found under {case_dir or source.policy_dir / 'tests'}")
    requests = [c["request"] for _, c in cases]
    decisions = evaluate_many(requests, settings=settings, policy_dir=source.policy_dir, budget=10_000)
    results = []
    for (fname, case), d in zip(cases, decisions, strict=True):
        problems = _compare(case, d.effect, d.policy_ids, d.approval.model_dump() if d.approval else {})
        if problems and d.reasons:
            problems.append("reasons: " + "; ".join(d.reasons))
        results.append(
            CaseResult(fname, str(case.get("name", "?")), not problems, str(case["expect"]), d.effect,
                       tuple(d.policy_ids), tuple(problems))
        )  # fmt: skip
    try:
        rule_ids = tuple(get_engine().rule_ids(source))
    except Exception:  # an unloadable set has no rules to cover; every case already failed
        rule_ids = ()
    exercised = tuple(sorted({p for r in results for p in r.policy_ids}))
    return TestReport(tuple(results), rule_ids, exercised)


def _compare(case: dict[str, Any], effect: str, policy_ids: list[str], approval: dict[str, Any]) -> list[str]:
    problems = []
    if effect != case["expect"]:
        problems.append(f"expected {case['expect']}, got {effect}")
    for key in ("gate", "risk"):
        if key in case and approval.get(key) != case[key]:
            problems.append(f"expected {key} {case[key]!r}, got {approval.get(key)!r}")
    missing = [p for p in case.get("policies", []) if p not in policy_ids]
    if missing:
        problems.append(f"expected determining policies {missing}, got {policy_ids}")
    return problems
