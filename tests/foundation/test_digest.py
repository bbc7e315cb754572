"""Content digests are canonical: equal values give equal digests in any process and key order."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from flytekitplugins.aios_core.digest import canonical_json, digest_file, digest_value


class Doc(BaseModel):
    name: str
    amount: float


@dataclasses.dataclass
class Item:
    a: int
    b: list[str]


def test_key_order_and_container_kind_do_not_matter() -> None:
    assert digest_value({"a": 1, "b": [1, 2]}) == digest_value({"b": (1, 2), "a": 1})
    assert digest_value({"a": 1}) != digest_value({"a": 2})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_models_dataclasses_frames_and_files(tmp_path: Path) -> None:
    assert digest_value(Doc(name="x", amount=1.5)) == digest_value({"name": "x", "amount": 1.5})
    assert digest_value(Item(1, ["q"])) == digest_value({"a": 1, "b": ["q"]})
    df = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert digest_value(df) == digest_value(df.copy())
    assert digest_value(df) != digest_value(df.iloc[::-1].reset_index(drop=True))
    assert digest_value(df) != digest_value(df.astype({"x": "float64"}))
    f = tmp_path / "f.bin"
    f.write_bytes(b"hello")
    assert digest_file(f) == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert digest_value(f) == digest_value({"$file": digest_file(f)})


def test_stable_across_processes() -> None:
    code = (
        "from flytekitplugins.aios_core.digest import digest_value; "
        "print(digest_value({'z': [1.25, None, True], 'a': 'x'}))"
    )
    a = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert a == digest_value({"a": "x", "z": [1.25, None, True]})


def test_unsupported_values_are_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="cannot digest a value of type"):
        digest_value(object())


def test_flyte_files_are_digested_by_content_not_path(tmp_path: Path) -> None:
    from flytekit.types.directory import FlyteDirectory
    from flytekit.types.file import FlyteFile

    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    b.parent.mkdir()
    a.write_text("same bytes")
    b.write_text("same bytes")
    assert digest_value(FlyteFile(str(a))) == digest_value(FlyteFile(str(b)))
    assert digest_value(FlyteFile(str(a))) == digest_value(a)
    assert digest_value(FlyteDirectory(str(b.parent))) != digest_value(FlyteDirectory(str(tmp_path)))
