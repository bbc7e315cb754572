"""``check_proof`` (``aios audit verify-proof``, and every record of ``aios evidence verify``) takes each field of a
proof document at its type: a whole-number index or size, hashes as 64 hex digits, the entry as text, checkpoints
as objects. ``int()`` used to turn an edited leaf index of 2.5, "2" or true into a number, so an edited field read
VALID; an entry that was a number ended in an AttributeError (exit 4), a checkpoint that was a list in pydantic's
multi-line block."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flytekitplugins.aios_audit import AuditEvent, audit_log
from flytekitplugins.aios_audit.proofs import check_proof, make_checkpoint, prove_consistency, prove_inclusion
from flytekitplugins.aios_audit.trust import TrustedKeys
from flytekitplugins.aios_core.settings import get_settings


def _fill(n: int) -> None:
    audit_log(get_settings()).append_many([AuditEvent(kind="task", actor=f"user:a{i}") for i in range(n)])


Edit = Callable[[dict[str, Any]], object]
INCLUSION: dict[str, tuple[Edit, str]] = {
    "leaf index 2.5": (lambda d: d.__setitem__("leaf_index", 2.5), "field leaf_index must be a whole number of 0 or"),
    "leaf index '2'": (lambda d: d.__setitem__("leaf_index", "2"), "not '2'"),
    "leaf index true": (lambda d: d.__setitem__("leaf_index", True), "not True"),
    "leaf index -1": (lambda d: d.__setitem__("leaf_index", -1), "not -1"),
    "tree size 13.0": (lambda d: d.__setitem__("tree_size", 13.0), "field tree_size must be a whole number"),
    "tree size missing": (lambda d: d.pop("tree_size"), "field tree_size is missing"),
    "entry a number": (lambda d: d.__setitem__("entry", 5), "field entry must be the entry's text, not 5"),
    "leaf hash upper case": (lambda d: d.__setitem__("leaf_hash", d["leaf_hash"].upper()), "field leaf_hash"),
    "path as text": (lambda d: d.__setitem__("path", "".join(d["path"])), "field path must be a list of hashes"),
    "path of numbers": (lambda d: d.__setitem__("path", [1, 2]), "field path must be a list of hashes"),
    "checkpoint a list": (lambda d: d.__setitem__("checkpoint", [1]), "field checkpoint must be a checkpoint object"),
    "checkpoint partial": (
        lambda d: d.__setitem__("checkpoint", {"origin": "x"}),
        "a checkpoint in it is no checkpoint (tree_size: Field required)",
    ),
}


@pytest.mark.parametrize("case", list(INCLUSION))
def test_an_inclusion_proof_field_of_another_type_is_malformed(aios_env: Path, case: str) -> None:
    _fill(13)
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    doc = prove_inclusion(audit_log(get_settings()), "#3", cp)
    keys = TrustedKeys.from_settings(get_settings())
    assert check_proof(doc, cp, keys) == (True, "record seq 3 is included in the checkpointed tree of 13")
    edit, want = INCLUSION[case]
    bad = copy.deepcopy(doc)
    edit(bad)
    ok, why = check_proof(bad, cp, keys)
    assert not ok and why.startswith("malformed proof document: ") and want in why, why
    assert "\n" not in why


def test_a_proof_that_is_no_object_is_malformed(aios_env: Path) -> None:
    _fill(2)
    cp = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    keys = TrustedKeys.from_settings(get_settings())
    for doc in ([1, 2], "proof", 5, None):
        ok, why = check_proof(doc, cp, keys)  # type: ignore[arg-type]
        assert not ok and why.startswith("malformed proof document: a "), why


def test_a_consistency_proof_checks_the_fields_it_shows_and_needs_only_what_it_is_checked_by(aios_env: Path) -> None:
    _fill(5)
    old = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    _fill(8)
    new = make_checkpoint(audit_log(get_settings()), get_settings().signing_key)
    doc = prove_consistency(audit_log(get_settings()), old, new)
    keys = TrustedKeys.from_settings(get_settings())
    assert check_proof(doc, new, keys) == (True, "tree of 13 extends tree of 5")
    shown_only = {k: v for k, v in doc.items() if k not in ("old_size", "new_size", "old_root", "new_root")}
    assert check_proof(shown_only, new, keys)[0]  # the fields a proof only shows may be left out
    for field, value, want in (
        ("old_size", "5", "field old_size must be a whole number of 0 or more, not '5'"),
        ("new_root", 13, "field new_root must be a hash (64 hex digits), not 13"),
        ("old_checkpoint", [1], "field old_checkpoint must be a checkpoint object, not [1]"),
    ):
        bad = {**doc, field: value}
        ok, why = check_proof(bad, new, keys)
        assert not ok and why == f"malformed proof document: {want}", why
    ok, why = check_proof({k: v for k, v in doc.items() if k != "old_checkpoint"}, new, keys)
    assert not ok and why == "malformed proof document: field old_checkpoint is missing", why
