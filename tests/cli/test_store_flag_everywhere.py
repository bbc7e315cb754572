"""``aios --store X ...`` reads and writes only X, for every command (issue 14: settings passed explicitly).

The trail X is filled through the pack's own code (real policy decisions, approval requests, catalog seed), then
every command runs in-process with ``--store X`` while AIOS_AUDIT_STORE names another store, the default one.
The default store must never be created or written, and every record a command writes must land in X. Before
the settings were passed down, ``approvals approve`` looked the decision up (and wrote its refusal) in the
default store and ``models promote`` wrote its policy decision there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit.stores import open_store
from flytekitplugins.aios_core.cli import cli
from flytekitplugins.aios_core.settings import reset_settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def trail(aios_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, list[str]]:
    """(X's URL, the default store's file, two pending payment sign-off request ids in X)."""
    from flytekitplugins.aios_catalog import ModelEntry, catalog
    from flytekitplugins.aios_core.settings import get_settings
    from tests.governed_rows import decided_docs

    x = tmp_path / "x" / "audit.db"
    x.parent.mkdir()
    url = f"sqlite:///{x}"
    monkeypatch.setenv("AIOS_AUDIT_STORE", url)  # fill X through the pack's own code
    reset_settings()
    docs = decided_docs(2, tag="big", amount=20_000.0) + decided_docs(2, tag="small")
    candidate = ModelEntry(name="vader-sentiment", version="v9", digest="sha256:" + "9" * 64, owner="team:ml-platform")
    catalog(get_settings()).register(candidate, actor="service:retraining")  # seed + register, both in X
    pending = [d["request_id"] for d in docs if d["request_id"]]
    assert len(pending) == 2
    default = aios_env / "audit.db"
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{default}")  # the store every command must leave alone
    reset_settings()
    return url, default, pending


def _run(args: list[str], codes: tuple[int, ...] = (0,)) -> str:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code in codes, f"aios {' '.join(args)} exited {res.exit_code}: {res.output}"
    return res.output


def test_every_command_reads_and_writes_only_the_store_it_was_given(
    trail: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    url, default, (rid1, rid2) = trail
    store = open_store(url)
    out = tmp_path / "out"
    out.mkdir()
    (out / "req.json").write_text(
        json.dumps(
            {
                "principal": "service:document-pipeline",
                "action": "act_on_document",
                "resource": {"type": "Document", "id": "sha256:" + "1" * 64},
                "context": {"amount": 10.0, "currency": "EUR", "data_class": "internal", "doc_type": "invoice",
                            "confidence": 0.99},
            }
        )
    )  # fmt: skip
    s = ["--store", url]
    commands: list[tuple[list[str], bool]] = [  # (arguments, writes to the trail); refused ones exit 2 (see below)
        (["config", "show", "--json"], False),
        (["audit", "verify"], False),
        (["audit", "show", "--limit", "5"], False),
        (["audit", "integrate", "--json"], False),
        (["audit", "checkpoint", "--out", str(out / "cp1.json")], False),
        (["approvals", "list", "--json"], False),
        (["approvals", "show", rid1], False),
        (["approvals", "approve", rid1, "--as", "user:bob", "--reason", "invoice checked"], True),
        (["approvals", "approve", rid2, "--as", "user:dave", "--reason", "not a finance approver"], True),
        (["approvals", "reject", rid2, "--as", "user:carol", "--reason", "duplicate invoice"], True),
        (["audit", "prove", "#1", "--checkpoint", str(out / "cp1.json"), "--out", str(out / "p.json")], False),
        (["audit", "verify-proof", str(out / "p.json"), "--checkpoint", str(out / "cp1.json")], False),
        (["audit", "checkpoint", "--out", str(out / "cp2.json")], False),
        (["audit", "consistency", "--from", str(out / "cp1.json"), "--out", str(out / "c.json")], False),
        (["audit", "verify", "--checkpoint", str(out / "cp1.json")], False),
        (["lineage", "trace", rid1, "--json"], False),
        (["lineage", "report", "--out", str(out / "r.html")], False),
        (["models", "list"], False),
        (["models", "show", "vader-sentiment@v9"], False),
        (["models", "history", "vader-sentiment"], False),
        (["models", "promote", "vader-sentiment@v9", "--evidence", '{"accuracy_delta": 0.01}'], True),
        (["policy", "eval", "--request", str(out / "req.json")], False),
        (["policy", "validate"], False),
        (["evidence", "export", "--document", "sha256:" + "big".ljust(64, "0"), "-o", str(out / "e.zip")], False),
    ]
    # refused, and audited: dave holds no finance role (exit 3); the shell's user:root may not promote (exit 2)
    refused = {"user:dave": 3, "promote": 2}
    for args, writes in commands:
        before = store.size()
        _run([*s, *args], tuple(code for arg, code in refused.items() if arg in args) or (0,))
        assert not default.exists(), f"aios {' '.join(args)} created the default store"
        if writes:
            assert store.size() > before, f"aios {' '.join(args)} wrote nothing to the store it was given"
    kinds = [r.event.kind for r in store.scan()]
    assert "approval_decision" in kinds and "approval_refused" in kinds  # bob approved, dave was refused, in X
    promote = [r for r in store.scan() if r.event.kind == "policy_decision" and "vader-sentiment" in r.event.subject]
    assert promote, "the promotion's policy decision is in X"
    assert _run([*s, "audit", "verify"]).startswith("OK")


def test_policy_dir_flag_reaches_the_catalogs_policy_decision(
    trail: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    """``--policy-dir`` reaches a decision made deep in the catalog: an empty policy folder denies (fail closed)
    and the recorded decision names that folder, not the configured one."""
    url, default, _ = trail
    empty = tmp_path / "no-policies"
    empty.mkdir()
    args = ["--store", url, "--policy-dir", str(empty), "models", "promote", "vader-sentiment@v9"]
    out = _run([*args, "--evidence", '{"accuracy_delta": 0.01}'], (2,))
    assert "no *.cedar policy files" in out and str(empty) in out
    last = list(open_store(url).scan())[-1]
    assert last.event.kind == "policy_decision" and str(empty) in " ".join(last.event.policy_decisions[0]["reasons"])
    assert not default.exists()
