"""The seeds the workflows take as inputs (``seed``), checked where they enter.

numpy's generators refuse a negative seed ("expected non-negative integer"), pandas' ``sample`` and scikit-learn's
``random_state`` anything past 32 bits, each in its own words and deep inside a task; a seed is therefore checked by
name before anything is loaded.
"""

from __future__ import annotations

SEED_MAX = 2**32 - 1
"""The largest seed every library the tasks seed takes (pandas and scikit-learn: 32 bits)."""


def check_seed(seed: int, name: str = "seed") -> int:
    """``seed`` if it is a seed every task can use (0 to :data:`SEED_MAX`), else a ValueError naming it."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"{name}={seed!r}: give a whole number from 0 to {SEED_MAX}")
    return seed
