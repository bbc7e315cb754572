"""``aios evidence``: export the records of an execution, document or model version as a bundle; verify one offline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flytekitplugins.aios_core.cli import settings_from
from flytekitplugins.aios_core.cli_output import names_stdout, output_path


@click.group()
def evidence() -> None:
    """Evidence bundles a third party verifies without the database."""


@evidence.command()
@click.option("--execution", default="", help="Every record of this execution (name or project/domain/name).")
@click.option("--document", default="", help="The decision trail of this document (sha256: digest).")
@click.option("--model", default="", help="The lineage of this model version (name@version).")
@click.option("-o", "--out", type=output_path(path_type=Path), required=True, help="Zip file to write.")
@click.option("--store", "url", default=None, help="Audit store URL (default: AIOS_AUDIT_STORE).")
@click.pass_context
def export(ctx: click.Context, execution: str, document: str, model: str, out: Path, url: str | None) -> None:
    """Write the records, their inclusion proofs, a signed checkpoint, the trusted keys and a README."""
    from flytekitplugins.aios_audit.evidence import EvidenceError, select
    from flytekitplugins.aios_audit.evidence import export as write_bundle
    from flytekitplugins.aios_audit.lineage_cli import tracer_for
    from flytekitplugins.aios_audit.proofs import ProofError

    if sum(bool(x) for x in (execution, document, model)) != 1:
        raise click.UsageError("name exactly one of --execution, --document or --model")
    scope = f"execution {execution}" if execution else f"document {document}" if document else f"model {model}"
    tracer = tracer_for(ctx, url)
    err = names_stdout(out)  # the line saying so goes beside the bundle, not into it
    try:
        ids = select(tracer, execution=execution, document=document, model=model)
        manifest = write_bundle(tracer, settings_from(ctx), ids, scope, out)
    except (EvidenceError, ProofError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(
        f"evidence: {len(manifest['records'])} records of {scope}, checkpoint of {manifest['tree_size']} -> {out}",
        err=err,
    )


@evidence.command()
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    help="Trust exactly this PEM key (repeatable) instead of the bundle's.",
)
def verify(bundle: Path, public_keys: tuple[str, ...]) -> None:
    """Check BUNDLE offline: entries, inclusion proofs, checkpoint signature, file digests, lineage edges."""
    from flytekitplugins.aios_audit.evidence_verify import verify_bundle
    from flytekitplugins.aios_core.visible import visible

    check = verify_bundle(bundle, public_keys)
    summary = visible(check.summary)  # it quotes the bundle, which its sender wrote: escaped, never obeyed
    click.echo(summary if check.ok else f"FAILED: {summary}")
    if not check.ok:
        sys.exit(1)
