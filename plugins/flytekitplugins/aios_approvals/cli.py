"""``aios approvals``: list, show, approve and reject requests, locally or against a Flyte cluster.

The same commands work in both places: they check the rules, append the decision (or the refusal) to
the audit trail and, with ``approvals_backend: flyteremote``, set the gate's Flyte signal once the last
request of that gate in that execution is decided. Exit status: 0 accepted, 3 refused, 2 error.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from flytekitplugins.aios_approvals.clock import get_clock
from flytekitplugins.aios_approvals.evaluate import Env, evaluate
from flytekitplugins.aios_approvals.models import Action
from flytekitplugins.aios_approvals.service import ApprovalNotFound, DecideResult, decide, record_refusal
from flytekitplugins.aios_approvals.state import RequestState, projection
from flytekitplugins.aios_core.cli import settings_from

REFUSED_EXIT = 3


def _row(st: RequestState, env: Env) -> dict[str, Any]:
    r, out = st.request, evaluate(st, env)
    left = (r.expires_at - get_clock().now()).total_seconds()
    return {
        "request_id": r.request_id,
        "gate": r.gate,
        "risk": r.risk,
        "status": out.status,
        "subject": r.subject,
        "summary": r.summary,
        "reason": r.reason,
        "requester": r.requester,
        "launcher": r.launcher,
        "may_decide": env.book.eligible(r.gate, {r.requester, r.launcher}),
        "approvals": f"{len(out.approvers)}/{out.quorum}",
        "seconds_left": max(0, int(left)),
        "execution": r.execution,
    }


@click.group()
def approvals() -> None:
    """Approval requests on Flyte gates: who asked, why, who may decide, and the decision trail."""


@approvals.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include decided and timed-out requests.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Pending requests: what, why, who may decide, time left."""
    env = Env.load(settings_from(ctx))
    rows = [_row(st, env) for st in projection(env.store).requests.values()]
    rows = [r for r in rows if show_all or r["status"] == "pending"]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"approval requests ({'all' if show_all else 'pending'}): {len(rows)}")
    for col in ("id", "gate/risk", "what", "why", "who may decide", "approvals", "time left", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        what = ", ".join(f"{k}={v}" for k, v in r["summary"].items()) or r["subject"]
        left = f"{r['seconds_left'] // 60}m{r['seconds_left'] % 60:02d}s"
        table.add_row(
            r["request_id"],
            f"{r['gate']}/{r['risk']}",
            what,
            r["reason"],
            ", ".join(r["may_decide"]),
            r["approvals"],
            left,
            r["status"],
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@approvals.command("show")
@click.argument("request_id")
@click.pass_context
def show_cmd(ctx: click.Context, request_id: str) -> None:
    """The request, its evidence digests, its verified status and the decision trail (JSON)."""
    env = Env.load(settings_from(ctx))
    st = projection(env.store).get(request_id)
    if st is None:
        msg = f"no approval request {request_id!r} in {env.store.url}; see `aios approvals list --all`"
        raise ApprovalNotFound(msg)
    doc = {
        "request": st.request.model_dump(mode="json"),
        "request_digest": st.request.digest(),
        "request_record": st.record_id,
        "outcome": evaluate(st, env).model_dump(mode="json", exclude={"decisions"}),
        "decisions": [d.model_dump(mode="json") for d in st.decisions],
        "refusals": st.refusals,
        "consumed_by": st.consumed_by,
    }
    click.echo(json.dumps(doc, indent=2, default=str))


def _identity(env: Env, as_: str | None) -> tuple[str, Any, str]:
    """(principal, FlyteRemote or None, mismatch reason or "")."""
    if env.settings.approvals_backend != "flyteremote":
        principal = as_ or env.settings.principal
        if not principal:
            raise click.UsageError("say who decides: --as <principal from roles.yaml> (or AIOS_PRINCIPAL)")
        return principal, None, ""
    from flytekitplugins.aios_approvals.remote import cluster_principal, flyte_remote

    remote = flyte_remote()
    principal = cluster_principal(remote)
    if as_ and as_ != principal:
        return principal, remote, f"--as {as_} does not match your cluster identity {principal}"
    return principal, remote, ""


def _finish(env: Env, res: DecideResult, remote: Any, request_id: str) -> None:
    click.echo(("accepted: " if res.accepted else f"refused ({res.code}): ") + res.message)
    click.echo(f"audit record {res.record_id}")
    if not res.accepted:
        raise SystemExit(REFUSED_EXIT)
    if remote is None:
        return
    from flytekitplugins.aios_approvals.remote import gate_settled, release_gate

    st = projection(env.store).get(request_id)
    if st is not None and gate_settled(env, st.request):
        sent = release_gate(remote, st.request)
        click.echo(f"signal {sent.id.signal_id!r} set on {st.request.execution}")


def _decide(ctx: click.Context, request_id: str, as_: str | None, action: Action, reason: str) -> None:
    env = Env.load(settings_from(ctx))
    principal, remote, mismatch = _identity(env, as_)
    if mismatch:
        res = record_refusal(request_id, principal, action, "identity_mismatch", mismatch, "cli")
    else:
        res = decide(request_id, principal, action, reason)
    _finish(env, res, remote, request_id)


@approvals.command("approve")
@click.argument("request_id")
@click.option("--as", "as_", default=None, help="Principal from roles.yaml (local); on a cluster your OAuth identity.")
@click.option("--reason", default="", help="Why you approve (recorded and signed).")
@click.pass_context
def approve_cmd(ctx: click.Context, request_id: str, as_: str | None, reason: str) -> None:
    """Approve a request (refused and audited unless you hold an allowed role and did not ask for it)."""
    _decide(ctx, request_id, as_, "approve", reason)


@approvals.command("reject")
@click.argument("request_id")
@click.option("--as", "as_", default=None, help="Principal from roles.yaml (local); on a cluster your OAuth identity.")
@click.option("--reason", required=True, help="Why you reject (required; recorded and signed).")
@click.pass_context
def reject_cmd(ctx: click.Context, request_id: str, as_: str | None, reason: str) -> None:
    """Reject a request; one authorized rejection is final and the gated action does not run."""
    _decide(ctx, request_id, as_, "reject", reason)
