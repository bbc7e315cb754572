"""A bundle's sender writes its manifest (it is not signed) and its proof files (their digests are in the manifest):
whatever shape they give them, ``aios evidence verify`` answers FAILED naming what is wrong, exit 1, never an
"unexpected" error (each of these ended in an AttributeError, TypeError or RecursionError, exit 4), and never OK."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_core.cli import cli
from tests.lineage.synthetic import exported_bundle


@pytest.fixture
def bundle(aios_env: Path, tmp_path: Path) -> Path:
    return exported_bundle(tmp_path)


Change = Callable[[dict[str, Any], dict[str, bytes]], "bytes | None"]


def _forge(src: Path, dst: Path, change: Change) -> Path:
    """A copy of ``src`` whose members ``change(manifest, files)`` rewrote, the manifest's digests made to agree with
    them (or, where ``change`` returns bytes, those bytes as the manifest)."""
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(files.pop("manifest.json"))
    raw = change(manifest, files)
    if raw is None:
        for name in manifest["files"]:
            manifest["files"][name] = hashlib.sha256(files[name]).hexdigest()
        raw = json.dumps(manifest).encode()
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("manifest.json", raw)
        for name, data in files.items():
            z.writestr(name, data)
    return dst


def _proof(change: Callable[[dict[str, Any]], object]) -> Change:
    def edit(manifest: dict[str, Any], files: dict[str, bytes]) -> None:
        name = manifest["records"][0]["file"]
        doc = json.loads(files[name])
        change(doc)
        files[name] = json.dumps(doc).encode()

    return edit


def _manifest(change: Callable[[dict[str, Any]], object]) -> Change:
    def edit(manifest: dict[str, Any], files: dict[str, bytes]) -> bytes:
        del files
        change(manifest)
        return json.dumps(manifest).encode()  # as written: the change may leave no digest list to fix

    return edit


def _raw_manifest(data: bytes) -> Change:
    return lambda manifest, files: data


CASES: dict[str, tuple[Change, str]] = {
    "manifest is a list": (_raw_manifest(b"[1]"), "manifest.json holds a list, not an object"),
    "manifest nests 100,000 deep": (_raw_manifest(b"[" * 100_000 + b"]" * 100_000), "unreadable (RecursionError)"),
    "records are numbers": (_manifest(lambda m: m.__setitem__("records", [1, 2])), "records must be a list of objects"),
    "records is text": (_manifest(lambda m: m.__setitem__("records", "x")), "records must be a list of objects"),
    "a key is a number": (_manifest(lambda m: m.__setitem__("keys", [5])), "keys must be a list of objects"),
    "a record's file is a number": (
        _manifest(lambda m: m["records"][0].__setitem__("file", 5)),
        "records[0].file must be str, not 5",
    ),
    "a record's seq is text": (
        _manifest(lambda m: m["records"][0].__setitem__("seq", "1")),
        "records[0].seq must be int, not '1'",
    ),
    "a proof's entry is a number": (_proof(lambda d: d.__setitem__("entry", 5)), "unreadable (TypeError)"),
    "a proof without its entry": (_proof(lambda d: d.pop("entry")), "unreadable (KeyError)"),
    "a leaf index of 0.5 more": (
        _proof(lambda d: d.__setitem__("leaf_index", d["leaf_index"] + 0.5)),
        "field leaf_index must be a whole number of 0 or more, not 0.5",
    ),
    "a leaf index as text": (
        _proof(lambda d: d.__setitem__("leaf_index", str(d["leaf_index"]))),
        "field leaf_index must be a whole number of 0 or more, not '0'",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_bundle_fails_naming_what_is_wrong(bundle: Path, tmp_path: Path, case: str) -> None:
    change, want = CASES[case]
    forged = _forge(bundle, tmp_path / "forged.zip", change)
    res = CliRunner().invoke(cli, ["evidence", "verify", str(forged)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1, res.output
    assert res.output.startswith("FAILED: ") and want in res.output, res.output


def test_the_bundle_as_exported_still_verifies(bundle: Path, tmp_path: Path) -> None:
    same = _forge(bundle, tmp_path / "same.zip", lambda manifest, files: None)
    res = CliRunner().invoke(cli, ["evidence", "verify", str(same)])
    assert res.exit_code == 0 and res.output.startswith("OK: "), res.output
