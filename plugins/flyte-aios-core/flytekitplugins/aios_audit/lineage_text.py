"""The readable form of ``aios lineage trace``: one block per document, one per model, then the records."""

from __future__ import annotations

from typing import Any

from flytekitplugins.aios_core.visible import visible


def _money(a: dict[str, Any]) -> str:
    amount = a.get("amount")
    return f"{amount:,.2f} {a.get('currency') or ''}".strip() if isinstance(amount, int | float) else "no amount"


def _case(c: dict[str, Any]) -> list[str]:
    src = c.get("source") or {}
    name = f" (source {src.get('name')}, personal data redacted)" if src.get("name") else ""
    lines = [f"document {c['document']}{name}", f"  outcome: {c['outcome']}"]
    if c.get("protected_text"):
        lines.append(f"  protected text: {c['protected_text']}")
    cl = c.get("classification") or {}
    if cl:
        ms = ", ".join(f"{m.get('name')}@{m.get('version')} ({m.get('digest', '')})" for m in cl.get("models", []))
        lines.append(
            f"  classified: {cl.get('label') or cl.get('doc_type') or '?'} by {ms or 'model not recorded'}; "
            f"route {cl.get('route') or '?'}, confidence {cl.get('confidence')}"
        )
    for p in c["policy_decisions"]:
        lines.append(f"  policy decision #{p['seq']}: {p['effect']} for {p['action']} by {p['principal']}")
        lines.append(f"      policies: {', '.join(p['policy_ids']) or 'none'}; set {p['policy_set_digest']}")
        lines += [f"      reason: {r}" for r in p["reasons"]]
    for r in c["approval_requests"]:
        lines.append(
            f"  approval request {r['request_id']} (#{r['seq']}): gate {r['gate']}, risk {r['risk']}, "
            f"quorum {r['quorum']}, requested by {r['requester']}, execution {r['execution']}"
        )
    for a in c["approvals"]:
        lines.append(
            f"      {a['decision']} by {a['approver']} [{', '.join(a['roles']) or 'no role'}] "
            f"reason {a['reason']!r}, signature {a['signature']} (#{a['seq']})"
        )
    lines += [f"      refused: {r['who']} ({r['code']}, #{r['seq']})" for r in c["refusals"]]
    for a in c["actions"]:
        if a["kind"] == "action":
            lines.append(
                f"  action #{a['seq']} {a['status']}: {a['action']} {_money(a)} in system of record "
                f"{a['system_of_record']} row action_key={a['action_key']} (by {a['actor']})"
            )
            if a.get("row"):
                lines.append(f"      system-of-record row: {', '.join(f'{k}={v}' for k, v in a['row'].items())}")
        else:
            lines.append(f"  action refused #{a['seq']}: {a['status']}: {a.get('reason') or ''}")
    lines += [f"  quarantined #{q['seq']}: {q['reason']}" for q in c["quarantine"]]
    return lines


def _model(m: dict[str, Any]) -> list[str]:
    lines = [f"model {m['model']} {m['digest']}"]
    lines += [f"  trained on {d}" for d in m["training_data"]]
    lines += [f"  training #{t['seq']} (trigger: {t['trigger'] or 'on demand'})" for t in m["training"]]
    lines += [f"  drift trigger #{d['seq']}: {d['status']} {d['subject']}" for d in m["drift_triggers"]]
    lines += [f"  evaluation #{e['seq']}" for e in m["evaluations"]]
    lines += [f"  registered #{r['seq']} by {r['actor']} ({r['op']})" for r in m["registered"]]
    for p in m["promotions"]:
        who = "; ".join(f"{a['approver']} [{', '.join(a['roles'])}] {a['reason']!r}" for a in p["approvers"])
        lines.append(
            f"  promoted #{p['seq']} by {p['actor']}: policy {p['policy']['effect']}; approvers: {who or 'none'}"
        )
    return lines


def render_text(doc: dict[str, Any]) -> str:
    """Plain text for people (and logs): the same facts as the JSON, each line with its control characters and
    invisible direction marks shown as escapes (:func:`.visible.visible`): the records quote what documents, file
    names and launchers chose (a quarantined file's name, a vendor, a task name), and printed raw an escape sequence
    in them would redraw the auditor's terminal."""
    starts = ", ".join(f"{s['kind']} #{s['seq']} {s['record_id'][:16]}" for s in doc["start"]) or ", ".join(
        doc["resolved"]
    )
    lines = [f"lineage of {doc['ref']}: {starts}", ""]
    for c in doc["cases"]:
        lines += [*_case(c), ""]
    for m in doc["models"]:
        lines += [*_model(m), ""]
    for name in ("upstream", "downstream"):
        lines.append(f"{name}: {len(doc[name])} records")
        lines += [
            f"  #{d['seq']} {d['kind']} {d['status']} by {d['actor']} ({d['task'] or '-'}; {d['execution']})"
            for d in doc[name]
        ]
    lines.append(f"sources: {len(doc['sources'])}")
    lines += [f"  {d} used by {', '.join(f'#{s}' for s in seqs)}" for d, seqs in doc["sources"].items()]
    lines.append(f"actions taken: {', '.join(f'#{s}' for s in doc['actions']) or 'none'}")
    if doc["truncated"]:
        lines.append("(trace truncated: too many nodes; narrow the reference)")
    return "\n".join(visible(line) for line in lines)
