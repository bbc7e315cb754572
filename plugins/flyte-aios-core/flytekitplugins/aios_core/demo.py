"""``aios demo``: the pack's main job end to end on the embedded default, as a new user first sees it.

1. generate a deterministic, labelled demo corpus (PDF, DOCX, e-mail, HTML, scanned image, bad files);
2. run ``pyflyte run workflows/document_processing.py process_documents`` as a separate process, launched as
   ``service:document-pipeline``;
3. from this process, act as the humans: ``aios approvals list --json`` until the workflow's gates wait, then
   ``aios approvals approve`` the first payment sign-off (with as many distinct approvers as its quorum needs),
   ``reject`` the other payment requests, and approve the document reviews;
4. verify the audit trail, export a signed checkpoint, write the lineage report, and print where it all is.

It needs the repository (``workflows/`` and ``tasks/``) in the working directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from flytekitplugins.aios_core.cli import settings_from
from flytekitplugins.aios_core.redact import mask_text, mask_url

LAUNCHER = "service:document-pipeline"
SUMMARY_TAG = "AIOS_BATCH_SUMMARY "


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _run(cmd: list[str], env: dict[str, str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        msg = f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise click.ClickException(mask_text(msg))
    return proc


def _decide(row: dict[str, Any], first_payment: bool, env: dict[str, str], cwd: Path) -> str:
    """Decide one pending request through the same CLI a person uses; returns a one-line account."""
    rid, gate, eligible = row["request_id"], row["gate"], list(row["may_decide"])
    have, need = (int(x) for x in row["approvals"].split("/"))
    if gate == "payment-signoff" and not first_payment:
        who = eligible[0]
        cmd = ["approvals", "reject", rid, "--as", who, "--reason", "demo: only one payment is signed off per run"]
        _run([_bin("aios"), *cmd], env, cwd)
        return f"rejected {rid} ({gate}, {row['risk']}) as {who}"
    approvers = eligible[have:need]
    if len(approvers) < need - have:
        msg = f"request {rid} needs {need} approvers but only {eligible} may decide: check config/roles.yaml"
        raise click.ClickException(msg)
    for who in approvers:
        reason = "demo: checked against the purchase order"
        _run([_bin("aios"), "approvals", "approve", rid, "--as", who, "--reason", reason], env, cwd)
    return f"approved {rid} ({gate}, {row['risk']}) as {', '.join(approvers)}"


def _drive_approvals(
    proc: subprocess.Popen[str], env: dict[str, str], cwd: Path, timeout: float, follow: Any = None
) -> list[str]:
    """Poll pending requests while the workflow runs and decide each once; ``follow`` shows its progress lines."""
    decided: set[str] = set()
    log: list[str] = []
    payment_done = False
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            msg = f"the workflow did not finish within {timeout:.0f} s"
            raise click.ClickException(msg)
        rows = json.loads(_run([_bin("aios"), "approvals", "list", "--json"], env, cwd).stdout or "[]")
        for row in sorted(rows, key=lambda r: (r["gate"], r["request_id"])):
            if row["request_id"] in decided or row["status"] != "pending":
                continue
            first_payment = row["gate"] == "payment-signoff" and not payment_done
            log.append(_decide(row, first_payment, env, cwd))
            (follow.reporter.echo if follow is not None else click.echo)(f"  {log[-1]}")  # above the bars
            payment_done = payment_done or first_payment
            decided.add(row["request_id"])
        time.sleep(1.0)
        if follow is not None:
            follow.poll()
    if follow is not None:
        follow.poll()
    return log


def _summary_from(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if SUMMARY_TAG in line:
            parsed: dict[str, Any] = json.loads(line.split(SUMMARY_TAG, 1)[1])
            return parsed
    return {}


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder for corpus and reports.")
@click.option(
    "--n", "n_docs", type=click.IntRange(min=1), default=40, show_default=True, help="Documents in the corpus."
)
@click.option("--seed", default=7, show_default=True, help="Corpus seed (the corpus is deterministic).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=900.0,
    show_default=True,
    help="Seconds to wait for the workflow.",
)
@click.pass_context
def demo(ctx: click.Context, out: Path | None, n_docs: int, seed: int, timeout: float) -> None:
    """Run the governed document workflow end to end on a generated corpus, approving through `aios approvals`."""
    repo = Path.cwd()
    if not (repo / "workflows" / "document_processing.py").is_file():
        msg = "run `aios demo` from the repository root (it needs workflows/ and tasks/)"
        raise click.ClickException(msg)
    s = settings_from(ctx)
    out = (out or s.state_dir / "demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **s.as_env()}  # the children (pyflyte, aios) resolve exactly this command's settings
    env["PYTHONPATH"] = f"{repo}{os.pathsep}{env.get('PYTHONPATH', '')}"
    corpus = out / "corpus"
    click.echo(f"1/4 generating {n_docs} documents (seed {seed}) in {corpus}")
    gen = [sys.executable, "-m", "tasks.documents.corpus", "--out", str(corpus)]
    gen += ["--n", str(n_docs), "--seed", str(seed)]
    _run(gen, env, repo)
    click.echo(f"2/4 running process_documents as {LAUNCHER} (local Flyte execution)")
    log_path = out / "workflow.log"
    wf_env = {**env, "AIOS_PRINCIPAL": LAUNCHER, "AIOS_RESULTS_DIR": str(out / "results")}
    if s.document_sources:  # a deployment that lists its document sources: the demo's own corpus is one more
        wf_env["AIOS_DOCUMENT_SOURCES"] = f"{s.document_sources},{corpus}"
    options = json.dumps({"approval_timeout_s": 600})  # bounded: an undecided request times out, it never hangs
    cmd = [_bin("pyflyte"), "run", "workflows/document_processing.py", "process_documents", "--source", str(corpus)]
    cmd += ["--options", options]
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(cmd, env=wf_env, cwd=repo, stdout=log_file, stderr=subprocess.STDOUT, text=True)
        click.echo("3/4 deciding approvals through `aios approvals` (a second process, as the approvers)")
        from flytekitplugins.aios_core.progress import LogFollower, Reporter

        # the workflow's `progress:` lines (its stderr is the log) as bars on a terminal, as lines in a CI log
        with Reporter("documents", every_s=60.0) as bars:
            decided = _drive_approvals(proc, env, repo, timeout, LogFollower(log_path, bars))
    output = log_path.read_text()
    if proc.returncode != 0:
        msg = f"the workflow failed (exit {proc.returncode}); its log is {log_path}:\n{output[-3000:]}"
        raise click.ClickException(msg)
    sor = s.system_of_record_url
    _report(_summary_from(output), out, env, repo, (s.audit_store, sor), log_path)
    from flytekitplugins.aios_audit.demo_evidence import show_evidence  # lineage and evidence, as a reviewer sees them

    show_evidence(decided, out, env, repo)


def _report(
    summary: dict[str, Any], out: Path, env: dict[str, str], repo: Path, stores: tuple[str, str], log: Path
) -> None:
    click.echo("4/4 verifying the audit trail and writing the reports")
    store, sor = stores
    verify = _run([_bin("aios"), "audit", "verify"], env, repo, check=False)
    checkpoint, report = out / "checkpoint.json", out / "lineage-report.html"
    _run([_bin("aios"), "audit", "checkpoint", "--out", str(checkpoint)], env, repo)
    _run([_bin("aios"), "lineage", "report", "--out", str(report)], env, repo)
    click.echo("")
    click.echo("batch summary:")
    click.echo(json.dumps(summary, indent=2, sort_keys=True) if summary else "  (no summary line found)")
    click.echo("")
    click.echo(f"results:        {out / 'results' / 'results.csv'}")
    click.echo(f"quarantine:     {out / 'results' / 'quarantine.csv'}")
    click.echo(f"actions posted: {mask_url(sor)} (table document_actions)")
    click.echo(f"workflow log:   {log}")
    click.echo(f"audit store:    {mask_url(store)}")
    click.echo(f"audit verify:   {(verify.stdout or verify.stderr).strip()}")
    click.echo(f"checkpoint:     {checkpoint}")
    click.echo(f"lineage report: {report}")
    if verify.returncode != 0:
        raise click.ClickException("audit verification failed")
