"""``aios approvals``: list, show, approve and reject requests, locally or against a Flyte cluster.

The same commands work in both places: they check the rules, append the decision (or the refusal) to
the audit trail and, with ``approvals_backend: flyteremote``, set the gate's Flyte signal once the last
request of that gate in that execution is decided. Exit status: 0 accepted, 3 refused, 2 error.
"""

from __future__ import annotations

import json
from typing import Any

import click

from flytekitplugins.aios_approvals.clock import get_clock
from flytekitplugins.aios_approvals.evaluate import Env, evaluate
from flytekitplugins.aios_approvals.models import Action
from flytekitplugins.aios_approvals.service import ApprovalNotFound, DecideResult, decide, record_refusal
from flytekitplugins.aios_approvals.state import RequestState, pending_candidates, projection
from flytekitplugins.aios_core.cli import settings_from
from flytekitplugins.aios_core.cli_output import Column, UserError, echo_json, print_table
from flytekitplugins.aios_core.redact import mask_url
from flytekitplugins.aios_core.visible import visible

REFUSED_EXIT = 3
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")


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


def _reading_env(ctx: click.Context) -> Env:
    """The environment of a command that looks a request up: its store must exist (a missing one is an error naming
    it, and nothing is created; ``approve`` and ``reject`` record their decision, or their refusal, and create it)."""
    from flytekitplugins.aios_audit.existing import require_log

    settings = settings_from(ctx)
    require_log(settings)
    return Env.load(settings)


@approvals.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include decided and timed-out requests.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Pending requests: what, why, who may decide, time left."""
    from flytekitplugins.aios_audit.existing import absent_note

    settings = settings_from(ctx)
    rows: list[dict[str, Any]] = []
    if note := absent_note(settings):  # no store yet: no request, and none is created by looking
        click.echo(note, err=True)
    else:
        env = Env.load(settings)
        # a pending request has not expired and its approval is unused: the expiry index and the claims find them
        now = get_clock().now()
        states = projection(env.store).requests.values() if show_all else pending_candidates(env.store, now)
        # the open requests are read a chunk at a time as they are evaluated: only the pending ones' rows are kept
        rows = [r for st in states if (r := _row(st, env))["status"] == "pending" or show_all]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    cells = [
        [
            r["request_id"],
            f"{r['gate']}/{r['risk']}",
            ", ".join(f"{k}={v}" for k, v in r["summary"].items()) or r["subject"],
            r["reason"],
            ", ".join(r["may_decide"]),
            r["approvals"],
            _left(r["seconds_left"]),
            r["status"],
        ]
        for r in rows
    ]
    # pending: the time left counts, the status says nothing; --all: decided requests have no time left
    left = Column("left", key=True, drop=4 if show_all else 0)
    columns = [*LIST_COLUMNS, left, Column("status", key=True)] if show_all else [*LIST_COLUMNS, left]
    more = "`aios approvals show <id>` has every field"
    print_table(
        f"approval requests ({'all' if show_all else 'pending'})",
        columns,
        [c[: len(columns)] for c in cells],
        more=more,
    )


def _left(seconds: int) -> str:
    """Time left, compact: ``59m12s``, ``23h59m``."""
    h, m, s = seconds // 3600, seconds % 3600 // 60, seconds % 60
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _gate_short(text: str) -> str:
    """``payment-signoff/high`` -> ``payment/high`` (the gate's first word and the risk)."""
    gate, _, risk = text.rpartition("/")
    return f"{gate.split('-')[0]}/{risk}"


LIST_COLUMNS = [
    Column("id", key=True),
    Column("gate/risk", min_width=15, short=_gate_short),
    Column("what", min_width=12),
    Column("why", min_width=16, drop=2),
    Column("may decide", min_width=14, drop=1),
    Column("quorum", key=True),
]
"""``aios approvals list``: at 80 columns the id, gate/risk, what, quorum (approved/needed) and time left stay; why
and who may decide give way (``aios approvals show <id>`` has them)."""


@approvals.command("show")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True, help="Accepted for scripts: `show` always prints JSON.")
@click.pass_context
def show_cmd(ctx: click.Context, request_id: str, as_json: bool) -> None:
    """The request, its evidence digests, its verified status and the decision trail (JSON)."""
    env = _reading_env(ctx)
    st = projection(env.store).get(request_id)
    if st is None:
        msg = f"no approval request {request_id!r} in {mask_url(env.store.url)}; see `aios approvals list --all`"
        raise ApprovalNotFound(msg)
    out = evaluate(st, env)
    doc = {
        "request": st.request.model_dump(mode="json"),
        "request_digest": st.request.digest(),
        "request_record": st.record_id,
        "outcome": out.model_dump(mode="json", exclude={"decisions"}),
        "decisions": [_decision_row(d, st.request, env, out) for d in st.decisions],
        "refusals": st.refusals,
        "consumed_by": st.consumed_by,
    }
    click.echo(json.dumps(doc, indent=2, default=str))


def _decision_row(d: Any, req: Any, env: Env, out: Any) -> dict[str, Any]:
    """One recorded decision, with whether it counts and, if not, why it is ignored."""
    from flytekitplugins.aios_approvals.evaluate import decision_problem

    counts = any(d == c for c in out.decisions)
    why = "" if counts else decision_problem(d, req, env) or "replay, or recorded after the outcome was final"
    return {**d.model_dump(mode="json"), "counts": counts, "ignored_because": why}


def _remote() -> Any:
    """The flytekit plugin's FlyteRemote helpers (``approvals_backend: flyteremote``), or an error naming it."""
    from flytekitplugins.aios_core.extras import flytekit_plugin

    return flytekit_plugin("remote", needed_for="approvals_backend: flyteremote (signalling a Flyte gate node)")


def _identity(env: Env, as_: str | None) -> tuple[str, Any, str]:
    """(principal, FlyteRemote or None, mismatch reason or "")."""
    if env.settings.approvals_backend != "flyteremote":
        principal = as_ or env.settings.principal
        if not principal:
            raise click.UsageError("say who decides: --as <principal from roles.yaml> (or AIOS_PRINCIPAL)")
        _suggest_principal(env, principal)
        return principal, None, ""
    remote_mod = _remote()
    cluster_principal, flyte_remote = remote_mod.cluster_principal, remote_mod.flyte_remote

    remote = flyte_remote()
    principal = cluster_principal(remote)
    if as_ and as_ != principal:
        return principal, remote, f"--as {as_} does not match your cluster identity {principal}"
    return principal, remote, ""


def _suggest_principal(env: Env, principal: str) -> None:
    """``--as bob`` where roles.yaml knows ``user:bob``: a usage error naming it (nothing is recorded)."""
    known = env.book.principals
    if principal in known or ":" in principal:
        return
    close = sorted(p for p in known if p.partition(":")[2] == principal)
    if close:
        msg = f"unknown principal {principal!r}; did you mean --as {close[0]}? (principals are kind:name)"
        raise UserError(msg)


def _finish(env: Env, res: DecideResult, remote: Any, request_id: str, as_json: bool = False) -> None:
    if as_json:
        out = res.outcome.model_dump(mode="json") if res.outcome is not None else None
        echo_json(
            {
                "request_id": request_id,
                "accepted": res.accepted,
                "code": res.code,
                "message": res.message,
                "record_id": res.record_id,
                "outcome": out,
            }
        )
    else:
        click.echo(("accepted: " if res.accepted else f"refused ({res.code}): ") + visible(res.message))
        click.echo(f"audit record {res.record_id}")
    if not res.accepted:
        raise SystemExit(REFUSED_EXIT)
    if remote is None:
        return
    remote_mod = _remote()
    gate_settled, release_gate = remote_mod.gate_settled, remote_mod.release_gate

    st = projection(env.store).get(request_id)
    if st is not None and gate_settled(env, st.request):
        sent = release_gate(remote, st.request)
        click.echo(f"signal {sent.id.signal_id!r} set on {st.request.execution}")


def _decide(
    ctx: click.Context, request_id: str, as_: str | None, action: Action, reason: str, as_json: bool = False
) -> None:
    env = Env.load(settings_from(ctx))
    principal, remote, mismatch = _identity(env, as_)
    if mismatch:
        res = record_refusal(request_id, principal, action, "identity_mismatch", mismatch, "cli", env=env)
    else:
        res = decide(request_id, principal, action, reason, env=env)
    _finish(env, res, remote, request_id, as_json)


@approvals.command("approve")
@click.argument("request_id")
@click.option("--as", "as_", default=None, help="Principal from roles.yaml (local); on a cluster your OAuth identity.")
@click.option("--reason", default="", help="Why you approve (recorded and signed).")
@_JSON
@click.pass_context
def approve_cmd(ctx: click.Context, request_id: str, as_: str | None, reason: str, as_json: bool) -> None:
    """Approve a request (refused and audited unless you hold an allowed role and did not ask for it)."""
    _decide(ctx, request_id, as_, "approve", reason, as_json)


@approvals.command("reject")
@click.argument("request_id")
@click.option("--as", "as_", default=None, help="Principal from roles.yaml (local); on a cluster your OAuth identity.")
@click.option("--reason", required=True, help="Why you reject (required; recorded and signed).")
@_JSON
@click.pass_context
def reject_cmd(ctx: click.Context, request_id: str, as_: str | None, reason: str, as_json: bool) -> None:
    """Reject a request; one authorized rejection is final and the gated action does not run."""
    _decide(ctx, request_id, as_, "reject", reason, as_json)
