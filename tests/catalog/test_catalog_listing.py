"""`aios models list` at scale: streamed one name at a time from the projection, paged, and checked against the log."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_audit.projections import ProjectionTampered
from flytekitplugins.aios_catalog import Catalog, ModelEntry, fold
from flytekitplugins.aios_catalog.fold import CatalogState
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import get_settings
from flytekitplugins.aios_core.types import PolicyDecision

DIGEST = "sha256:" + "cd" * 32


def allow(action: str, actor: str, resource: dict[str, Any], context: dict[str, Any]) -> PolicyDecision:
    """Writes allowed (the policy engine is tested elsewhere); this file is about reading."""
    return PolicyDecision(effect="allow", reasons=["test"])


def make() -> Catalog:
    return Catalog(get_settings(), decide=allow, check_approval=lambda _id: None)


def fill(cat: Catalog) -> None:
    """Versions registered out of name order, two promotions (the second retires the first champion), a retire."""
    for name, version in [("zeta", "1"), ("alpha", "1"), ("zeta", "2"), ("mid", "a"), ("alpha", "2"), ("zeta", "3")]:
        cat.register(ModelEntry(name=name, version=version, digest=DIGEST, owner="team:ml"), actor="service:ml")
    cat.promote("zeta", "1", actor="service:ml", evidence={})
    cat.promote("zeta", "3", actor="service:ml", evidence={})
    cat.retire("alpha", "1", actor="service:ml", reason="superseded")


def folded() -> list[tuple[str, str, str]]:
    """The whole log folded in memory (what the listing must agree with), sorted by name then registration."""
    state = CatalogState()
    for record in audit_log(get_settings()).scan():
        state.apply(record)
    return [(e.name, e.version, e.stage) for e in sorted(state.entries.values(), key=lambda e: e.name)]


def test_listing_streams_by_name_and_agrees_with_the_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    fill(make())
    want = folded()
    assert [w[0] for w in want] == sorted(w[0] for w in want)
    assert ("zeta", "1", "retired") in want and ("zeta", "3", "champion") in want and ("alpha", "1", "retired") in want
    got = [(e.name, e.version, e.stage) for e in make().entries()]
    assert got == want
    # one row a page: every seed record (several rows, several names) straddles pages, and is folded once
    monkeypatch.setattr(fold, "NAMES_PAGE", 1)
    assert [(e.name, e.version, e.stage) for e in make().entries()] == want
    assert [e.version for e in make().entries("zeta", "retired")] == ["1"]
    assert list(make().names()) == sorted({w[0] for w in want})


def test_cli_list_pages_and_says_what_it_left_out() -> None:
    fill(make())
    want = folded()
    runner = CliRunner()
    out = runner.invoke(cli, ["models", "list", "--json", "--limit", "2"])
    assert out.exit_code == 0, out.output
    assert [(e["name"], e["version"]) for e in json.loads(out.stdout)] == [w[:2] for w in want[:2]]
    assert f"showing the first 2 entries (to {want[1][0]}@{want[1][1]})" in out.stderr and "--limit 0" in out.stderr
    out = runner.invoke(cli, ["models", "list", "--json", "--limit", "0"])  # streamed, every entry
    assert [(e["name"], e["version"], e["stage"]) for e in json.loads(out.stdout)] == want and not out.stderr
    out = runner.invoke(cli, ["models", "list", "--json"])  # the default page holds this small catalog whole
    assert len(json.loads(out.stdout)) == len(want) and not out.stderr
    out = runner.invoke(cli, ["models", "list", "--limit", "-1"])
    assert out.exit_code == 2 and "--limit" in out.output and "Traceback" not in out.output


def test_a_name_row_no_record_supports_is_refused() -> None:
    """Store write access: a projection row claiming a model the log never registered is caught on read."""
    fill(make())
    store = audit_log(get_settings())
    seq = max(int(r[0]) for r in store.read_sql("SELECT seq FROM audit_proj_catalog WHERE name = 'mid'"))
    with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:  # type: ignore[attr-defined]
        conn.execute("INSERT INTO audit_proj_catalog VALUES (?, 7, 'register', 'ghost', '9', '')", (seq,))
    with pytest.raises(ProjectionTampered, match="projection was edited"):
        list(make().entries())
    out = CliRunner().invoke(cli, ["models", "list"])
    assert out.exit_code != 0 and "projection was edited" in out.output and "Traceback" not in out.output


def test_a_store_whose_projection_is_not_built_lists_the_same_from_the_whole_fold() -> None:
    """An upgraded store before `aios audit rebuild-projections`: the fold of the log, in the same order."""
    from flytekitplugins.aios_audit import projections as pj

    fill(make())
    want = folded()
    store = audit_log(get_settings())
    store.projection_reset()  # every record marked as not built
    assert not pj.available(store)
    assert [(e.name, e.version, e.stage) for e in make().entries()] == want
    assert list(make().names()) == sorted({w[0] for w in want})
    assert [e.version for e in make().entries("zeta")] == ["1", "2", "3"]
    pj.rebuild(store)
    assert pj.available(store) and [(e.name, e.version, e.stage) for e in make().entries()] == want
