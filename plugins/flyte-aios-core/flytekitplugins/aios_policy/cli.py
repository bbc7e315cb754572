"""``aios policy``: test, evaluate and validate the policies (what ops and compliance run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from flytekitplugins.aios_core.cli import settings_from
from flytekitplugins.aios_core.cli_output import UserError, echo_json

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")


def _policy_dir(ctx: click.Context, override: str | None) -> Path:
    path = Path(override).resolve() if override else Path(settings_from(ctx).policy_dir)
    if not path.is_dir():
        msg = f"policy directory {path} does not exist; pass --dir DIR or set AIOS_POLICY_DIR"
        raise UserError(msg)
    return path


def _read_request(request_file: str) -> Any:
    """The request in ``request_file`` (``-``: stdin), parsed as JSON or YAML; a UserError when it is not."""
    import yaml

    try:
        text = sys.stdin.read() if request_file == "-" else Path(request_file).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        msg = f"request file {request_file} is not UTF-8 text (byte {e.start} cannot be read); pass a JSON or YAML file"
        raise UserError(msg) from None
    except OSError as e:
        msg = f"cannot read request file {request_file}: {e.strerror or e}; pass an existing JSON or YAML file, or -"
        raise UserError(msg) from None
    try:
        request = yaml.safe_load(text)
    except RecursionError:
        raise UserError(f"{request_file} nests its values too deeply to read; fix the file") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1} column {where.column + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        msg = f"{request_file} is neither JSON nor YAML ({problem}{at}); fix the file"
        raise UserError(msg) from None
    if not isinstance(request, dict):
        msg = (
            f"{request_file} must hold one object (principal, action, resource, context), not {type(request).__name__}"
        )
        raise UserError(msg)
    return request


@click.group()
def policy() -> None:
    """Policy-as-code (Cedar) for the pack's gates: test cases, single decisions, schema validation."""


@policy.command("validate")
@click.option("--dir", "pdir", default=None, help="Policy directory (default: settings policy_dir).")
@_JSON
@click.pass_context
def validate(ctx: click.Context, pdir: str | None, as_json: bool) -> None:
    """Parse the policies and check them against the Cedar schema; exit 1 on any problem."""
    from flytekitplugins.aios_policy.decide import policy_source
    from flytekitplugins.aios_policy.engine import get_engine

    source = policy_source(settings_from(ctx), policy_dir=_policy_dir(ctx, pdir))
    engine = get_engine()
    problems = engine.validate(source)
    rules = [] if problems else engine.rule_ids(source)
    if as_json:
        echo_json({"ok": not problems, "problems": [str(p) for p in problems], "rules": list(rules)})
    for p in [] if as_json else problems:
        click.echo(f"invalid: {p}", err=True)
    if problems:
        sys.exit(1)
    if not as_json:
        click.echo(f"ok: {len(rules)} rules in {source.policy_dir} ({engine.kind}), {engine.policy_set_digest(source)}")


@policy.command("eval")
@click.option("--request", "request_file", required=True, help="JSON or YAML request file, or - for stdin.")
@click.option("--dir", "pdir", default=None, help="Policy directory (default: settings policy_dir).")
@click.option("--json", "as_json", is_flag=True, help="Accepted for scripts: the decision is always JSON on stdout.")
@click.pass_context
def eval_cmd(ctx: click.Context, request_file: str, pdir: str | None, as_json: bool) -> None:
    """Decide one request and print the decision with its determining policies (exit 3 on deny)."""
    from flytekitplugins.aios_policy.decide import evaluate

    request = _read_request(request_file)
    decision = evaluate(request, settings=settings_from(ctx), policy_dir=_policy_dir(ctx, pdir))
    click.echo(json.dumps(decision.model_dump(mode="json"), indent=2, sort_keys=True))
    click.echo(f"{decision.effect}: determined by {', '.join(decision.policy_ids) or 'default deny'}", err=True)
    if decision.effect == "deny":
        sys.exit(3)


@policy.command("test")
@click.option("--dir", "pdir", default=None, help="Policy directory (default: settings policy_dir).")
@click.option("--cases", "case_dir", default=None, help="Folder of *.yaml cases (default: <policy dir>/tests).")
@click.option("--require-coverage/--no-require-coverage", default=True, help="Fail when a rule is not exercised.")
@_JSON
@click.pass_context
def test_cmd(ctx: click.Context, pdir: str | None, case_dir: str | None, require_coverage: bool, as_json: bool) -> None:
    """Run the policy test cases and report which rules they exercise; exit 1 on failure."""
    from flytekitplugins.aios_policy.testing import run_cases

    if case_dir is not None and not Path(case_dir).is_dir():
        raise UserError(f"test case folder {case_dir} does not exist; pass --cases DIR (a folder of *.yaml cases)")
    report = run_cases(settings_from(ctx), _policy_dir(ctx, pdir), case_dir)
    failed = bool(report.failed or (require_coverage and report.uncovered) or not report.rule_ids)
    if as_json:
        echo_json(_report_doc(report, failed))
        sys.exit(1 if failed else 0)
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
    if failed:
        sys.exit(1)


def _report_doc(report: Any, failed: bool) -> dict[str, Any]:
    cases = [
        {"file": str(r.file), "name": r.name, "passed": r.passed, "problems": list(r.problems)} for r in report.results
    ]
    return {
        "ok": not failed,
        "cases": cases,
        "passed": len(report.results) - len(report.failed),
        "total": len(report.results),
        "rules": list(report.rule_ids),
        "uncovered": list(report.uncovered),
    }
