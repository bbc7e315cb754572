"""``aios policy``: test, evaluate and validate the policies (what ops and compliance run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from flytekitplugins.aios_core.cli import settings_from


def _policy_dir(ctx: click.Context, override: str | None) -> Path:
    return Path(override).resolve() if override else Path(settings_from(ctx).policy_dir)


@click.group()
def policy() -> None:
    """Policy-as-code (Cedar) for the pack's gates: test cases, single decisions, schema validation."""


@policy.command("validate")
@click.option("--dir", "pdir", default=None, help="Policy directory (default: settings policy_dir).")
@click.pass_context
def validate(ctx: click.Context, pdir: str | None) -> None:
    """Parse the policies and check them against the Cedar schema; exit 1 on any problem."""
    from flytekitplugins.aios_policy.decide import policy_source
    from flytekitplugins.aios_policy.engine import get_engine

    source = policy_source(settings_from(ctx), policy_dir=_policy_dir(ctx, pdir))
    engine = get_engine()
    problems = engine.validate(source)
    if problems:
        for p in problems:
            click.echo(f"invalid: {p}", err=True)
        sys.exit(1)
    rules = engine.rule_ids(source)
    click.echo(f"ok: {len(rules)} rules in {source.policy_dir} ({engine.kind}), {engine.policy_set_digest(source)}")


@policy.command("eval")
@click.option("--request", "request_file", required=True, help="JSON or YAML request file, or - for stdin.")
@click.option("--dir", "pdir", default=None, help="Policy directory (default: settings policy_dir).")
@click.pass_context
def eval_cmd(ctx: click.Context, request_file: str, pdir: str | None) -> None:
    """Decide one request and print the decision with its determining policies (exit 3 on deny)."""
    import yaml

    from flytekitplugins.aios_policy.decide import evaluate

    text = sys.stdin.read() if request_file == "-" else Path(request_file).read_text(encoding="utf-8")
    try:
        request: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise click.ClickException(f"request is neither JSON nor YAML: {e}") from e
    settings_from(ctx)
    decision = evaluate(request, policy_dir=_policy_dir(ctx, pdir))
    click.echo(json.dumps(decision.model_dump(mode="json"), indent=2, sort_keys=True))
    click.echo(f"{decision.effect}: determined by {', '.join(decision.policy_ids) or 'default deny'}", err=True)
    if decision.effect == "deny":
        sys.exit(3)


@policy.command("test")
@click.option("--dir", "pdir", default=None, help="Policy directory (default: settings policy_dir).")
@click.option("--cases", "case_dir", default=None, help="Folder of *.yaml cases (default: <policy dir>/tests).")
@click.option("--require-coverage/--no-require-coverage", default=True, help="Fail when a rule is not exercised.")
@click.pass_context
def test_cmd(ctx: click.Context, pdir: str | None, case_dir: str | None, require_coverage: bool) -> None:
    """Run the policy test cases and report which rules they exercise; exit 1 on failure."""
    from flytekitplugins.aios_policy.testing import run_cases

    report = run_cases(_policy_dir(ctx, pdir), case_dir)
    for r in report.results:
        mark = click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark} {r.file}: {r.name}")
        for p in r.problems:
            click.echo(f"      {p}")
    covered = len(report.rule_ids) - len(report.uncovered)
    click.echo(f"{len(report.results) - len(report.failed)}/{len(report.results)} cases passed")
    click.echo(f"rule coverage: {covered}/{len(report.rule_ids)} rules exercised")
    for rule in report.uncovered:
        click.echo(f"  not exercised: {rule}")
    if report.failed or (require_coverage and report.uncovered) or not report.rule_ids:
        sys.exit(1)
