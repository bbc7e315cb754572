"""A table's digest binds its values: two tables with other values never share one.

The digest of a data frame was the SHA-256 of pandas' per-row ``hash_pandas_object``: 64-bit row hashes built to
bucket rows, whose float hash can be run backwards and whose column combination undone. A launcher relabelled 71 of
300 held-out rows to what the weak head predicts, set each row's ``score`` so the row hashed as before, and the
evaluation on that table carried the sealed test set's digest, passed its drift check and was promoted (review of
2026-12-05, evaluation finding 1). The forgery below is that one, on a small table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flytekitplugins.aios_core.digest import digest_value

M = (1 << 64) - 1


def _unxorshift(y: int, s: int) -> int:
    x = y
    for _ in range(64 // s + 1):
        x = y ^ (x >> s)
    return x & M


def _unmix(h: int) -> int:
    """The inverse of pandas' 64-bit finalizer of a float's bits (splitmix64's)."""
    x = _unxorshift(h, 31)
    x = (x * pow(0x94D049BB133111EB, -1, 1 << 64)) & M
    x = _unxorshift(x, 27)
    x = (x * pow(0xBF58476D1CE4E5B9, -1, 1 << 64)) & M
    return _unxorshift(x, 30)


def _forge(orig: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``new`` with its last (float) column rewritten so that every row has the row hash it has in ``orig``."""
    cols = list(orig.columns)
    target = pd.util.hash_pandas_object(orig, index=False).to_numpy().astype(np.uint64)
    hashes = [pd.util.hash_pandas_object(new[c], index=False).to_numpy().astype(np.uint64) for c in cols]
    mults, mult = [], 1000003
    for i in range(len(cols)):
        mults.append(mult)
        mult = (mult + 82520 + 2 * (len(cols) - i)) & M
    fixed = []
    for r in range(len(new)):
        acc = 0x345678
        for i in range(len(cols) - 1):
            acc = ((acc ^ int(hashes[i][r])) * mults[i]) & M
        last = ((int(target[r]) - 97531) * pow(mults[-1], -1, 1 << 64)) & M
        fixed.append(np.array([_unmix(last ^ acc)], dtype=np.uint64).view(np.float64)[0])
    out = new.copy()
    out[cols[-1]] = np.array(fixed, dtype=np.float64)
    return out


def test_a_table_with_other_labels_and_compensating_scores_has_another_digest() -> None:
    held_out = pd.DataFrame(
        {
            "text": ["a wonderful film", "a dreary slog", "fine, if long", "never again"],
            "label": ["positive", "negative", "positive", "negative"],
            "score": [2.1, -1.8, 0.9, -2.6],
        }
    )
    relabelled = held_out.assign(label=["negative", "positive", "negative", "positive"])
    forged = _forge(held_out, relabelled)
    assert (forged["label"] != held_out["label"]).all()
    rows = pd.util.hash_pandas_object
    assert (rows(forged, index=False).to_numpy() == rows(held_out, index=False).to_numpy()).all()  # the forgery holds
    assert digest_value(forged) != digest_value(held_out)
    assert digest_value(held_out.copy()) == digest_value(held_out)  # equal values, equal digest


def test_values_that_only_move_between_cells_or_types_change_the_digest() -> None:
    base = pd.DataFrame({"t": ["ab", "c"], "n": [1.0, float("nan")]})
    assert digest_value(pd.DataFrame({"t": ["a", "bc"], "n": [1.0, float("nan")]})) != digest_value(base)
    assert digest_value(base.rename(columns={"t": "u"})) != digest_value(base)
    assert digest_value(pd.DataFrame({"t": ["ab", None], "n": [1.0, 2.0]})) != digest_value(
        pd.DataFrame({"t": ["ab", "None"], "n": [1.0, 2.0]})
    )
    assert digest_value(base.set_axis([7, 9])) == digest_value(base)  # the index is not content


def test_categories_column_name_types_and_tuples_are_part_of_the_digest() -> None:
    """Re-review of 2026-12-05, finding 6: these pairs shared one digest (none changed what an evaluation scores)."""
    a = pd.DataFrame({"c": pd.Categorical(["x", "y"], categories=["x", "y"])})
    b = pd.DataFrame({"c": pd.Categorical(["x", "y"], categories=["y", "x"])})
    c = pd.DataFrame({"c": pd.Categorical(["x", "y"], categories=["x", "y"], ordered=True)})
    assert len({digest_value(a), digest_value(b), digest_value(c)}) == 3
    assert digest_value(pd.DataFrame({1: ["x"]})) != digest_value(pd.DataFrame({"1": ["x"]}))
    assert digest_value(pd.DataFrame({"v": [(1, 2)]})) != digest_value(pd.DataFrame({"v": [[1, 2]]}))
