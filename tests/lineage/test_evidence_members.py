"""A bundle whose zip can be read more than one way is refused: a record held twice (this verifier read the last
copy and said OK while a zip viewer may show the first, forged one), a name that leaves the folder it is unpacked
in, a link or a folder member. The bundle is meant to be unpacked and read by people; its verification must be about
the files they will see."""

from __future__ import annotations

import hashlib
import json
import stat
import warnings
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from flytekitplugins.aios_audit.evidence_verify import verify_bundle
from flytekitplugins.aios_core.cli import cli
from tests.lineage.synthetic import exported_bundle


def _copy_with(src: Path, dst: Path, first: zipfile.ZipInfo | str, data: bytes) -> Path:
    """``src``'s members after a member ``first`` holding ``data``."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: the point of one of the cases
        out.writestr(first, data)
        for info in z.infolist():
            out.writestr(info.filename, z.read(info.filename))
    return dst


def _record(bundle: Path) -> tuple[str, bytes]:
    with zipfile.ZipFile(bundle) as z:
        name = next(n for n in z.namelist() if n.startswith("records/"))
        return name, z.read(name)


def test_an_intact_bundle_still_verifies(aios_env: Path, tmp_path: Path) -> None:
    assert verify_bundle(exported_bundle(tmp_path)).ok


def test_a_record_held_twice_is_refused(aios_env: Path, tmp_path: Path) -> None:
    bundle = exported_bundle(tmp_path)
    name, data = _record(bundle)
    forged = data.replace(b'\\"status\\":\\"', b'\\"status\\":\\"forged-', 1)
    assert forged != data
    dup = _copy_with(bundle, tmp_path / "dup.zip", name, forged)
    with zipfile.ZipFile(dup) as z:
        assert [i.filename for i in z.infolist()].count(name) == 2  # what a viewer lists: two different copies
    res = CliRunner().invoke(cli, ["evidence", "verify", str(dup)])
    assert res.exit_code == 1 and res.output.startswith("FAILED"), res.output
    assert f"holds '{name}' more than once" in res.output, res.output


@pytest.mark.parametrize("bad", ["../escape.json", "/abs.json", "records/../x.json", "a\\b.json", "records/x y.json"])
def test_a_member_name_that_is_no_plain_relative_name_is_refused(aios_env: Path, tmp_path: Path, bad: str) -> None:
    bundle = exported_bundle(tmp_path)
    check = verify_bundle(_copy_with(bundle, tmp_path / "bad.zip", bad, b"{}"))
    assert not check.ok and "is not a plain relative file name" in check.summary, check.summary


def test_a_link_member_is_refused(aios_env: Path, tmp_path: Path) -> None:
    bundle = exported_bundle(tmp_path)
    link = zipfile.ZipInfo("records/link.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    check = verify_bundle(_copy_with(bundle, tmp_path / "link.zip", link, b"/etc/passwd"))
    assert not check.ok and "is a link or a folder" in check.summary, check.summary


def test_a_member_that_leaves_the_folder_is_refused_even_when_the_manifest_lists_it(
    aios_env: Path, tmp_path: Path
) -> None:
    """The manifest is the sender's (unsigned): before, listing ``../escape.txt`` with its digest made the bundle verify
    OK, and unpacking it with a tool that trusts names wrote beside the folder the auditor chose."""
    bundle = exported_bundle(tmp_path)
    with zipfile.ZipFile(bundle) as z:
        files = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(files.pop("manifest.json"))
    files["../escape.txt"] = b"planted"
    manifest["files"]["../escape.txt"] = hashlib.sha256(b"planted").hexdigest()
    forged = tmp_path / "escape.zip"
    with zipfile.ZipFile(forged, "w") as z:
        z.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            z.writestr(name, data)
    check = verify_bundle(forged)
    assert not check.ok and "'../escape.txt' is not a plain relative file name" in check.summary, check.summary
