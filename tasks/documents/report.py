"""Acting and reporting: action rows for the system of record, outcomes, the batch summary and its Deck."""

from __future__ import annotations

import html
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.redact import mask_url
from tasks.documents.html_tables import STYLE, table_html
from tasks.documents.schemas import BatchSummary, ProcessingOptions

ACTIONS_TABLE = "document_actions"
"""The system-of-record table the document workflow posts its actions to (``post_document_actions``)."""
ACTION_COLUMNS = [
    "action_key", "doc_digest", "decision_digest", "action", "doc_type",
    "amount", "currency", "request_id", "principal", "policy_record",
]  # fmt: skip


def action_rows(decided: pd.DataFrame, principal: str, approved: set[str] | None = None) -> pd.DataFrame:
    """Rows to post: auto-allowed decisions (``approved is None``) or the approved requests' decisions."""
    d = decided[(decided["status"] == "ok") & (decided["action"] != "")]
    d = d[d["effect"] == "allow"] if approved is None else d[d["request_id"].isin(approved)]
    out = pd.DataFrame(
        {
            "action_key": [
                digest_value({"doc": a, "decision": b}) for a, b in zip(d["digest"], d["decision_digest"], strict=True)
            ],
            "doc_digest": d["digest"],
            "decision_digest": d["decision_digest"],
            "action": d["action"],
            "doc_type": d["label"],
            "amount": d["amount"].astype("float64"),
            "currency": d["currency"],
            "request_id": d["request_id"],
            "principal": principal,
            "policy_record": d["policy_record"],
        },
        columns=ACTION_COLUMNS,
    )
    text_cols = [c for c in ACTION_COLUMNS if c != "amount"]
    out = out.astype({c: "str" for c in text_cols})
    return out.drop_duplicates("action_key").reset_index(drop=True)


def outcome_of(row: dict[str, Any], approvals: dict[str, str], holders: dict[str, tuple[str, int]]) -> str:
    """Final outcome of one processed row. An action counts as taken (``acted``, ``acted_after_approval``) exactly
    where the trail's claims (``holders``, :func:`acted_claims`) show the acting point authorized it for
    :data:`ACTIONS_TABLE`, whatever the batch's gates saw; a decided action it refused (the same text acted on in
    another file, another action on the document, the action taken elsewhere first) is ``refused_at_acting_point``:
    the row used to say ``acted`` for it, and its reason is the trail's ``action_refused`` record."""
    if row["status"] == "duplicate":
        return "duplicate"
    if row["effect"] == "deny":
        return "denied"
    acting = row["effect"] in ("allow", "require_approval") and bool(row["action"])
    if acting and _authorized(row, holders):
        return "acted" if row["effect"] == "allow" else "acted_after_approval"
    if row["effect"] == "allow" and row["action"]:
        return "refused_at_acting_point"
    if row["effect"] == "require_approval":
        status = approvals.get(row["request_id"], "pending")
        return "refused_at_acting_point" if status == "approved" and acting else f"approval_{status}"
    return "review_missing_fields" if row["reason"] == "missing_amount" else "no_action"


def acted_claims(decided: pd.DataFrame) -> list[str]:
    """The claims whose holders :func:`outcome_of` reads: the post claim of every decided action."""
    from flytekitplugins.aios_approvals.acting import post_claim

    d = decided[(decided["status"] == "ok") & (decided["action"] != "")]
    return sorted({post_claim(str(a), str(b)) for a, b in zip(d["digest"], d["action"], strict=True)})


def _authorized(row: dict[str, Any], holders: dict[str, tuple[str, int]]) -> bool:
    from flytekitplugins.aios_approvals.acting import acted_on

    key = digest_value({"doc": row["digest"], "decision": row["decision_digest"]})  # as action_rows makes it
    return acted_on(holders, str(row["digest"]), str(row["action"]), key, ACTIONS_TABLE)


def read_labels(source: str, allowed: str = "", on_cluster: bool | None = None) -> dict[str, str]:
    """Ground truth (``name -> label``) from ``<source>/.aios-labels.csv`` when the source is a labelled corpus.

    ``source`` is a launch input, so the file is read only where the deployment keeps documents: ``allowed`` (the
    deployment's ``Settings.document_sources``) and ``on_cluster`` (a task on a Flyte cluster; None: ask flytekit)
    apply ``sources.check_allowed``'s rule, and a source outside them has no labels (an empty dict: the batch goes
    on, without accuracy). The folder is opened once and checked as opened (a link swapped in after the check is
    not followed out of the sources); the labels file is opened without following a link or waiting on a FIFO and
    read only if it is a regular file."""
    from tasks.documents import sources

    if on_cluster is None:
        from flytekitplugins.aios_core.context import in_cluster_task

        on_cluster = in_cluster_task()
    local = source.removeprefix("file://")
    if "://" in local:
        return {}
    try:
        sources.check_source(source)
        sources.check_allowed(source, allowed, on_cluster)
    except ValueError:  # not a source of this deployment: no ground truth, and nothing of that folder is read
        return {}
    roots = sources.local_roots(allowed) if allowed.strip() else None
    try:
        fd = _open_labels(Path(local).expanduser(), roots)
    except (OSError, ValueError):  # no labels file, not a folder, a link (ELOOP), unreadable, a NUL in the name
        return {}
    if fd is None:
        return {}
    try:
        with os.fdopen(fd, "rb") as f:
            labels = pd.read_csv(f, dtype=str, keep_default_na=False)
        return {n: lab for n, lab in zip(labels["name"], labels["label"], strict=True) if lab}
    except (ValueError, KeyError, OSError):  # not a labels file: no ground truth, the batch goes on
        return {}


def _open_labels(folder: Path, roots: list[Path] | None) -> int | None:
    """A descriptor of ``folder``'s labels file, or None where it may not be read: the folder, as opened, is not at
    or under one of ``roots`` (None: anywhere) with no hidden name between, or the file is not a regular file."""
    from tasks.documents.source_local import LABELS_FILE, under_root

    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    dfd = os.open(folder, flags | getattr(os, "O_DIRECTORY", 0))
    try:
        if roots is not None:
            where = _opened_dir(dfd, folder)
            if where is None or under_root(where, roots) is None:
                return None
        # never a link (O_NOFOLLOW: ELOOP), never a wait on a FIFO (O_NONBLOCK), looked up in the folder checked
        fd = os.open(LABELS_FILE, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dfd)
    finally:
        os.close(dfd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _opened_dir(dfd: int, folder: Path) -> Path | None:
    """Where the open folder ``dfd`` is: its path as the kernel knows it, or (no ``/proc``) ``folder`` resolved now
    if that is still the same folder."""
    proc = f"/proc/self/fd/{dfd}"
    if os.path.exists(proc):
        return Path(os.readlink(proc))
    try:
        where = folder.resolve(strict=True)
        now, opened = os.stat(where), os.fstat(dfd)
    except (OSError, RuntimeError):
        return None
    return where if (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino) else None


def results_tables(
    decided: pd.DataFrame, approvals: dict[str, str], labels: dict[str, str], holders: dict[str, tuple[str, int]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, quarantine) tables; together they hold every document exactly once (``holders``: the trail's
    holders of :func:`acted_claims`)."""
    q = decided["status"] == "quarantine"
    results = decided[~q].copy()
    # text columns even when no document was processed (every one quarantined): a list of nothing is float64, which
    # the result table's schema refuses, and the batch ended in a schema error instead of its summary
    outcomes = [outcome_of(r, approvals, holders) for r in results.to_dict(orient="records")]
    results["outcome"] = pd.Series(outcomes, index=results.index, dtype="string[pyarrow]")
    labelled = [labels.get(n, "") for n in results["name"]]
    results["true_label"] = pd.Series(labelled, index=results.index, dtype="string[pyarrow]")
    quarantine = decided.loc[q, ["doc_id", "name", "digest", "reason", "fmt"]].reset_index(drop=True)
    return results.reset_index(drop=True), quarantine


def summarize(
    results: pd.DataFrame,
    quarantine: pd.DataFrame,
    posted: tuple[int, ...],
    source: str,
    options: ProcessingOptions,
) -> BatchSummary:
    """The batch summary; raises when documents in != processed + quarantined (nothing may be lost)."""
    lat = np.concatenate([results["latency_ms"].to_numpy(float), np.zeros(0)])
    cpu = float(results["cpu_s"].sum())
    n_in = len(results) + len(quarantine)
    ok = results[results["status"] == "ok"]
    labelled = ok[ok["true_label"] != ""]
    s = BatchSummary(
        documents_in=n_in,
        processed=len(results),
        quarantined=len(quarantine),
        outcomes={str(k): int(v) for k, v in results["outcome"].value_counts().sort_index().items()},
        quarantine_reasons={str(k): int(v) for k, v in quarantine["reason"].value_counts().sort_index().items()},
        routes={str(k): int(v) for k, v in ok["route"].value_counts().sort_index().items()},
        routed_to_review=int((ok["route"] == "review").sum() + (results["outcome"] == "review_missing_fields").sum()),
        approvals={
            str(k): int(v) for k, v in results.loc[results["request_id"] != "", "outcome"].value_counts().items()
        },
        posted=posted[0],
        already_posted=posted[1],
        refused_at_acting_point=posted[2] if len(posted) > 2 else 0,
        latency_ms_p50=float(np.percentile(lat, 50)) if len(lat) else 0.0,
        latency_ms_p95=float(np.percentile(lat, 95)) if len(lat) else 0.0,
        latency_ms_p99=float(np.percentile(lat, 99)) if len(lat) else 0.0,
        cpu_seconds=cpu,
        cost_per_document_usd=cpu / 3600 * options.cost_per_cpu_hour / max(1, n_in),
        accuracy=float((labelled["label"] == labelled["true_label"]).mean()) if len(labelled) else -1.0,
        labelled=len(labelled),
        source=mask_url(source),  # a credential is refused when the source is read; never shown if one slips by
    )
    if s.documents_in != s.processed + s.quarantined or s.documents_in != sum(s.outcomes.values()) + s.quarantined:
        msg = f"row conservation violated: {s.documents_in} in, {s.processed} processed, {s.quarantined} quarantined"
        raise AssertionError(msg)
    return s


def deck_html(summary: BatchSummary, results: pd.DataFrame, quarantine: pd.DataFrame) -> str:
    """HTML of the batch Deck: summary, confusion matrix (labelled runs) and the quarantine table."""
    parts = [STYLE, "<h2>Batch summary</h2>", "<pre>", html.escape(_pretty(summary)), "</pre>"]
    lab = results[(results["true_label"] != "") & (results["status"] == "ok")]
    if len(lab):
        cm = pd.crosstab(lab["true_label"], lab["label"], rownames=["true"], colnames=["predicted"])
        parts += [f"<h2>Confusion (accuracy {summary.accuracy:.3f} on {len(lab)} labelled)</h2>", cm.to_html(border=0)]
    parts += [f"<h2>Quarantine ({len(quarantine)})</h2>", table_html(quarantine, 200)]
    cols = ["doc_id", "name", "label", "confidence", "route", "amount", "currency", "action", "effect", "outcome"]
    parts += [f"<h2>Results ({len(results)}, first 200)</h2>", table_html(results[cols], 200)]
    return "\n".join(parts)


def _pretty(summary: BatchSummary) -> str:
    import dataclasses
    import json

    return json.dumps(dataclasses.asdict(summary), indent=2, sort_keys=True)


RESULTS_DIR_ENV = "AIOS_RESULTS_DIR"


def export_tables(
    summary: BatchSummary, results: pd.DataFrame, quarantine: pd.DataFrame, results_dir: str
) -> Path | None:
    """Copy the batch's tables to ``results_dir`` (the ``results_dir`` setting, ``AIOS_RESULTS_DIR``; empty: do
    nothing). A local convenience: on a cluster they are workflow outputs.

    Writes ``results.csv``, ``quarantine.csv`` and ``summary.json``. The tables hold redacted fields and
    digests only, like the workflow outputs.
    """
    import dataclasses
    import json

    target = results_dir
    if not target:
        return None
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    quarantine.to_csv(out / "quarantine.csv", index=False)
    (out / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), indent=2, sort_keys=True))
    return out
