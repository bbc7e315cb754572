"""Checkpoint store: newest of this attempt (elastic restart) and the previous attempt (Flyte retry);
a torn or foreign checkpoint is not resumed."""

from __future__ import annotations

from pathlib import Path

import torch

from tasks.training.checkpoint import LATEST, CheckpointStore


def _state(step: int) -> dict:
    return {"step": step, "pos": step * 16, "losses": [0.5] * step, "trainable": {"w": torch.full((2,), float(step))}}


def test_retry_reads_previous_attempt_and_newest_wins(tmp_path: Path) -> None:
    prev, cur = tmp_path / "attempt0", tmp_path / "attempt1"
    CheckpointStore(str(prev)).save(_state(4))
    retry = CheckpointStore(str(cur), src=str(prev))
    got = retry.load_latest()
    assert got is not None and got["step"] == 4 and torch.equal(got["trainable"]["w"], torch.full((2,), 4.0))
    retry.save(_state(6))
    assert retry.load_latest()["step"] == 6  # this attempt's newer checkpoint wins over the previous attempt
    assert CheckpointStore(str(tmp_path / "none")).load_latest() is None


def test_torn_checkpoint_is_ignored(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path))
    store.save(_state(2))
    (tmp_path / "state-00000002.pt").write_bytes(b"truncated")
    assert store.load_latest() is None
    (tmp_path / LATEST).write_text("{not json")
    assert store.load_latest() is None


def test_save_without_destination_fails_clearly() -> None:
    import pytest

    with pytest.raises(RuntimeError, match="no checkpoint destination"):
        CheckpointStore(None).save(_state(1))
