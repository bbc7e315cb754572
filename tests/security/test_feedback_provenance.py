"""Human-review corrections stand on the trail and never move held-out rows into training (review of 2026-12-06, R2).

``prepare_data`` reads ``{state}/feedback/corrections.jsonl`` into the training rows it seals. A line's only check
was the digest of its own text, so anyone with a shell wrote the 60 held-out rows there as reviews "by user:alice":
the sealed split trained on every held-out row (the start model then scored 0.967 on them, 0.700 honestly), the trail
held no review and no alice, and every figure measured on the held-out rows was a figure on training data. Now a
correction counts only on an intact ``review_correction`` record saying exactly what its line says, and a correction
of a held-out row is left out and counted. Real flytekit task, real VADER rows, real audit store.
"""

from __future__ import annotations

import json
from pathlib import Path

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import get_settings
from tasks.ml.feedback import append_correction, feedback_path


def _prepare() -> object:
    from tasks.training.data import prepare_data

    return prepare_data(
        source="movieReviewSnippets", n_train=120, n_test=60, seed=0, use_feedback=True, min_abs_score=0.5
    )


def test_corrections_count_only_on_a_review_record_and_never_for_held_out_rows(aios_env: Path) -> None:
    settings = get_settings()
    honest = _prepare()
    held_out = honest.test[["text", "label"]].to_dict("records")
    path = feedback_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:  # the shell: the held-out rows as reviews nobody made
        for row in held_out:
            line = {"text_digest": digest_value(row["text"]), "text": row["text"], "label": row["label"]}
            f.write(json.dumps({**line, "reviewer": "user:alice", "source": "doc:forged"}) + "\n")
    forged = _prepare()
    assert forged.lineage.n_feedback == 0 and set(forged.train["text"]).isdisjoint(forged.test["text"])
    assert len(forged.lineage.feedback_rejected) == len(held_out)
    assert all("no intact review_correction record" in v for v in forged.lineage.feedback_rejected.values())

    # a line naming a real review record but saying another label: the record decides, not the line
    real = append_correction("A warm, funny and quietly moving story.", "positive", "user:alice", settings=settings)
    with path.open("a", encoding="utf-8") as f:
        f.write(real.model_copy(update={"label": "negative"}).model_dump_json() + "\n")
    # a reviewed correction of a held-out row: recorded, but never moved into training
    append_correction(held_out[0]["text"], held_out[0]["label"], "user:alice", settings=settings, source="doc:7")
    mixed = _prepare()
    assert set(mixed.train["text"]).isdisjoint(mixed.test["text"])
    assert mixed.lineage.n_feedback == 1
    fed = mixed.train[mixed.train["source"] == "feedback"]
    assert fed[["text", "label"]].values.tolist() == [[real.text, "positive"]]
    assert any(k.startswith("held-out sha256:") for k in mixed.lineage.feedback_rejected)
    reviews = [r for r in audit_log(settings).scan() if r.event.kind == "review_correction"]
    assert [r.event.actor for r in reviews] == ["user:alice", "user:alice"]
