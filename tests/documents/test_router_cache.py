"""The router's answer cache is keyed by everything that decides an answer: both model digests, the thresholds and
the precision each encoder runs at. A host whose encoder precision changes (the CPU rule of
``tasks.ml.minilm.cpu_bf16_fast``, or an explicit ``bf16=``) must not be served the other precision's answers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tasks.documents.router import ResultCache, Routed, Router


def _models(bf16: bool, fast: str = "sha256:" + "a" * 64, strong: str = "sha256:" + "b" * 64) -> SimpleNamespace:
    # the router's digest reads each model's digest and its encoder's precision, nothing else
    enc = SimpleNamespace(precision="bf16" if bf16 else "fp32")
    return SimpleNamespace(
        fast=SimpleNamespace(digest=fast, encoder=enc), strong=SimpleNamespace(digest=strong, encoder=enc)
    )


def test_the_digest_covers_models_thresholds_and_precision() -> None:
    base = Router(_models(False), 0.8, 0.7).digest  # type: ignore[arg-type]
    assert Router(_models(False), 0.8, 0.7).digest == base  # type: ignore[arg-type]
    assert Router(_models(True), 0.8, 0.7).digest != base  # type: ignore[arg-type]
    assert Router(_models(False), 0.85, 0.7).digest != base  # type: ignore[arg-type]
    assert Router(_models(False, strong="sha256:" + "c" * 64), 0.8, 0.7).digest != base  # type: ignore[arg-type]


def test_an_answer_cached_at_one_precision_is_not_served_at_the_other(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache" / "documents.db")
    try:
        bf16, fp32 = Router(_models(True), 0.8, 0.7), Router(_models(False), 0.8, 0.7)  # type: ignore[arg-type]
        cache.put_many({"sha256:doc": Routed("invoice", 0.81, "fast")}, bf16.digest)
        assert cache.get_many(["sha256:doc"], bf16.digest) == {"sha256:doc": Routed("invoice", 0.81, "fast", True)}
        assert cache.get_many(["sha256:doc"], fp32.digest) == {}
    finally:
        cache.close()
