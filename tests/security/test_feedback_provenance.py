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


def test_the_newest_review_wins_and_a_held_out_row_stays_out_whatever_its_spacing(aios_env: Path) -> None:
    """Re-review of 2026-12-06: the newest line of the file won, so a reviewer's withdrawn correction copied to the
    end of the file was trained on again; and a held-out row with a space added passed the held-out filter. The trail
    orders reviews now, and held-out rows are compared as the tokenizer sees them."""
    from tasks.ml.feedback import read_corrections

    settings = get_settings()
    text = "A warm, funny and quietly moving story."
    withdrawn = append_correction(text, "negative", "user:alice", settings=settings)
    append_correction(text, "positive", "user:alice", settings=settings)  # she corrects her correction
    path = feedback_path(settings)
    with path.open("a", encoding="utf-8") as f:  # the shell replays the withdrawn line at the end
        f.write(withdrawn.model_dump_json() + "\n")
    batch = read_corrections(path, labels=["negative", "positive"], settings=settings)
    assert [(c.text, c.label) for c in batch.corrections] == [(text, "positive")]

    held = _prepare().test.iloc[0]
    flipped = "negative" if held["label"] == "positive" else "positive"
    append_correction(held["text"] + " ", flipped, "user:alice", settings=settings, source="doc:9")
    prepared = _prepare()
    spaced = {" ".join(t.split()).casefold() for t in prepared.train["text"]}
    assert " ".join(held["text"].split()).casefold() not in spaced
    assert any(k.startswith("held-out sha256:") for k in prepared.lineage.feedback_rejected)


def test_a_held_out_row_stays_out_however_it_is_spelled_for_the_tokenizer(aios_env: Path) -> None:
    """Third review of 2026-12-06: the held-out filter folded case and spacing by hand, so a held-out row with its
    accents stripped or a zero-width space inserted (the same token ids) was trained on. Rows are compared by the
    base tokenizer's ids now."""
    settings = get_settings()
    held = _prepare().test.iloc[1]
    flipped = "negative" if held["label"] == "positive" else "positive"
    append_correction(held["text"].replace(" ", " \u200b", 1), flipped, "user:alice", settings=settings, source="z")
    prepared = _prepare()
    fed = prepared.train[prepared.train["source"] == "feedback"]
    assert fed.empty and any(k.startswith("held-out sha256:") for k in prepared.lineage.feedback_rejected)


def test_a_held_out_row_with_words_past_what_training_reads_stays_out() -> None:
    """Fourth review of 2026-12-06: training reads a text's first 62 token ids (the default max_length of 64), so a
    long held-out row with words added after them passed the filter and was trained on as the held-out row itself."""
    from tasks.training.data import SEEN_TOKENS, _held_out

    row = tuple(range(1000, 1000 + SEEN_TOKENS + 5))
    held, heads = {row}, {row[:SEEN_TOKENS]}
    assert _held_out((*row, 7, 8, 9), held, heads) and _held_out(row, held, heads)
    assert not _held_out((*row[: SEEN_TOKENS - 1], 1), held, heads)  # another text
