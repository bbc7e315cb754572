"""Linear time checked so that a slow host cannot fail it and a quadratic pattern cannot pass it.

A fixed limit of CPU seconds for a long input was met by 0.7-0.9 s on most hosts and missed by 1.06-1.28 s on a Zen 3
host with other work on it (2026-12-06): the same code, linear either way. The input a tenth as long is timed too,
and the long one passes when it stays under the limit or under :data:`GROWTH` times the short one's time: ten times
for linear work, a hundred for quadratic, so the minutes a quadratic pattern takes are still a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
GROWTH = 25.0


def in_linear_time(fn: Callable[[str], T], make: Callable[[int], str], size: int, seconds: float) -> T:
    """``fn(make(size))``, asserting its CPU time is under ``seconds`` or under :data:`GROWTH` times that of
    ``fn(make(size // 10))``; returns its result for the caller's checks."""
    small_text, text = make(size // 10), make(size)
    t0 = time.process_time()
    fn(small_text)
    small = time.process_time() - t0
    t0 = time.process_time()
    out = fn(text)
    took = time.process_time() - t0
    why = f"{took:.2f} s for {len(text):,} characters, {small:.3f} s for a tenth of them"
    assert took < seconds or took < GROWTH * small, why
    return out
