"""The reviewer-facing Flyte Deck of the verification step: request, policy decision, decision trail."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_approvals.models import ApprovalOutcome
from flytekitplugins.aios_approvals.state import RequestState, projection
from flytekitplugins.aios_core.visible import visible

_STYLE = (
    "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:6px 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
    ".approved{color:#070}.rejected,.refused,.timed_out{color:#a00}.pending{color:#a60}code{font-size:90%}</style>"
)


def _e(value: Any) -> str:
    """A value as the reviewer reads it: its control characters and direction marks shown as escapes (a right-to-left
    override in a vendor name would display another name than the request holds), then HTML-escaped."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return html.escape(visible(text))


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str] = ()) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{f'<tr>{th}</tr>' if th else ''}{body}</table>"


def _policy_section(env: Env, st: RequestState) -> str:
    rid = st.request.evidence.get("policy_decision", "")
    rec = env.store.get(rid) if rid else None
    if rec is None:
        return f"<p>Policy decision: <code>{_e(rid or 'not recorded')}</code></p>"
    ev = rec.event
    rows: list[list[Any]] = [
        ["record", rid],
        ["status", ev.status],
        ["actor", ev.actor],
        ["decisions", ev.policy_decisions],
    ]
    return "<h4>Policy decision</h4>" + _table(rows)


def _request_section(env: Env, st: RequestState, out: ApprovalOutcome) -> str:
    r = st.request
    facts = [
        ["status", out.status],
        ["why", r.reason],
        ["requester / launcher", f"{r.requester} / {r.launcher}"],
        ["who may decide", f"roles {list(r.roles)}, quorum {out.quorum}"],
        ["subject", r.subject],
        ["created / expires", f"{r.created_at.isoformat()} / {r.expires_at.isoformat()}"],
        ["execution", r.execution],
        ["request digest", r.digest()],
    ]
    trail = [[d.decided_at.isoformat(), d.approver, d.action, d.reason, d.signature[:16] + "..."] for d in st.decisions]
    trail += [["", f["actor"], f"refused: {f['code']}", f["reason"], ""] for f in st.refusals]
    return (
        f"<h3 class='{out.status}'>{_e(r.request_id)}: {_e(out.status)}</h3><p>{_e(out.reason)}</p>"
        + _table(facts)
        + "<h4>Summary</h4>"
        + _table(sorted(r.summary.items()), ("field", "value"))
        + "<h4>Evidence (digests)</h4>"
        + _table(sorted(r.evidence.items()), ("name", "digest / record"))
        + _policy_section(env, st)
        + "<h4>Decision trail</h4>"
        + _table(trail, ("when", "who", "action", "reason", "signature"))
    )


def render_deck(gate: str, outcomes: Sequence[ApprovalOutcome], env: Env) -> str:
    """Self-contained HTML for the verification step's Deck."""
    proj = projection(env.store)
    parts = [_STYLE, f"<h2>Approval gate <code>{_e(gate)}</code>: {len(outcomes)} request(s)</h2>"]
    parts.append(
        _table(
            [[o.request_id, o.status, ", ".join(o.approvers), o.reason] for o in outcomes],
            ("id", "status", "approvers", "reason"),
        )
    )
    for out in outcomes:
        st = proj.get(out.request_id)
        parts.append(_request_section(env, st, out) if st else f"<h3>{_e(out.request_id)}: {_e(out.reason)}</h3>")
    return "\n".join(parts)
