"""Training checkpoints in Flyte's checkpoint location, read back after a worker restart or a task retry.

flytekit gives every task attempt a checkpoint destination (``current_context().checkpoint``: a prefix in
the blob store on a cluster, ``<sandbox>/__cp`` locally) and, on a retry, the previous attempt's
destination as the source. Two kinds of failure must resume from the newest checkpoint:

* torch elastic restarts the worker group inside the same attempt (``Elastic(max_restarts>=1)``): the
  newest checkpoint is in this attempt's *destination*;
* Flyte retries the task (``retries>=1``, e.g. a lost node): it is in the *source* of the new attempt.

:class:`CheckpointStore` looks in both and takes the newest step. Each save writes
``state-<step>.pt`` and then ``latest.json`` naming it, so a save cut short by a kill leaves the
previous checkpoint readable. The locations are private attributes of flytekit's ``SyncCheckpoint``, read
through ``flytekitplugins.aios.compat.flytekit`` (kfpytorch itself reads the same attributes to hand
them to spawned workers).
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
LATEST = "latest.json"


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


class CheckpointStore:
    """Newest-checkpoint store over a destination (this attempt) and a source (previous attempt).

    Args:
        dest: where this attempt writes (local folder or blob-store prefix); None disables saving.
        src: where the previous attempt wrote, if any.
    """

    def __init__(self, dest: str | None, src: str | None = None) -> None:
        self.dest = dest
        self.src = src

    @classmethod
    def from_flyte_context(cls) -> CheckpointStore:
        """The store of the running Flyte task (no checkpointing outside a task)."""
        import flytekit

        try:
            cp = flytekit.current_context().checkpoint
        except (NotImplementedError, ValueError, AttributeError):
            return cls(None, None)
        from flytekitplugins.aios.compat.flytekit import sync_checkpoint_locations

        return cls(*sync_checkpoint_locations(cp))

    # ---- writing -------------------------------------------------------------------------------
    def save(self, state: dict[str, Any]) -> str:
        """Write ``state`` (must hold ``step``) as the newest checkpoint; returns its URI."""
        import torch

        if not self.dest:
            msg = "no checkpoint destination: run inside a Flyte task or pass dest"
            raise RuntimeError(msg)
        name = f"state-{int(state['step']):08d}.pt"
        buf = io.BytesIO()
        torch.save(state, buf)
        pointer = json.dumps({"file": name, "step": int(state["step"])}).encode()
        self._write(name, buf.getvalue())
        self._write(LATEST, pointer)  # only after the state is complete
        return f"{self.dest.rstrip('/')}/{name}"

    def _write(self, name: str, data: bytes) -> None:
        assert self.dest is not None
        if _is_local(self.dest):
            folder = _local(self.dest)
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / name)
            return
        from flytekit.core.context_manager import FlyteContextManager

        fa = FlyteContextManager.current_context().file_access
        with tempfile.TemporaryDirectory() as td:
            p = Path(td) / name
            p.write_bytes(data)
            fa.put_data(str(p), f"{self.dest.rstrip('/')}/{name}")

    # ---- reading -------------------------------------------------------------------------------
    def _read(self, base: str, name: str) -> bytes | None:
        if _is_local(base):
            p = _local(base) / name
            return p.read_bytes() if p.is_file() else None
        from flytekit.core.context_manager import FlyteContextManager

        fa = FlyteContextManager.current_context().file_access
        uri = f"{base.rstrip('/')}/{name}"
        if not fa.exists(uri):
            return None
        with tempfile.TemporaryDirectory() as td:
            local = Path(td) / name
            fa.get_data(uri, str(local))
            return local.read_bytes()

    def _load_from(self, base: str) -> dict[str, Any] | None:
        import torch

        try:
            pointer = self._read(base, LATEST)
            if pointer is None:
                return None
            name = json.loads(pointer)["file"]
            data = self._read(base, name)
            if data is None:
                return None
            state: dict[str, Any] = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            return state
        except Exception as e:  # an unreadable checkpoint means "start from the one before": fresh
            log.warning("ignoring unreadable checkpoint under %s: %s", base, e)
            return None

    def load_latest(self) -> dict[str, Any] | None:
        """The newest readable checkpoint of this attempt or the previous one, or None."""
        found = [s for s in (self._load_from(b) for b in (self.dest, self.src) if b) if s is not None]
        return max(found, key=lambda s: int(s["step"])) if found else None
