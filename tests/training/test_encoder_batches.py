"""``Encoder.embed`` tokenizes every text in one call and pads batch by batch itself: each text must get exactly the
embedding it gets alone through the tokenizer's own padding (the real MiniLM, on this machine's CPU), in the caller's
order, whatever the batch size, and an empty list gives an empty array."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.ml.minilm import Encoder, shared_encoder

TEXTS = [
    "Invoice INV-2291 from Acme GmbH, total 12,500.00 EUR, due 2026-01-31.",
    "",
    "Hi team, the meeting moves to Thursday.",
    "word " * 400,  # past max_length: truncated
    "Contract between Northwind Ltd and Contoso plc for the supply of 40 servers over three years.",
    "ok",
]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return shared_encoder(bf16=False)


def _reference(enc: Encoder, text: str) -> np.ndarray:
    """One text through the tokenizer's own padding and the model, as the encoder did batch by batch before."""
    import torch

    with torch.inference_mode():
        batch = enc.tokenizer([text], padding=True, truncation=True, max_length=enc.max_length, return_tensors="pt")
        hidden = enc.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled.float(), dim=-1)[0].numpy()


@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_each_text_gets_its_own_embedding_in_the_callers_order(encoder: Encoder, batch_size: int) -> None:
    got = encoder.embed(TEXTS, batch_size=batch_size)
    assert got.shape == (len(TEXTS), 384)
    assert got.dtype == np.float32
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(got[i], _reference(encoder, text), atol=2e-5, err_msg=f"text {i} ({text[:20]!r})")
    # distinct texts give distinct vectors: a row written to another text's place would show here
    assert len({got[i].tobytes() for i in range(len(TEXTS))}) == len(TEXTS)


def test_the_same_texts_give_the_same_bytes_at_every_batch_size(encoder: Encoder) -> None:
    one = encoder.embed(TEXTS, batch_size=1)
    assert np.allclose(one, encoder.embed(TEXTS, batch_size=3), atol=2e-5)
    assert np.array_equal(encoder.embed(TEXTS, batch_size=3), encoder.embed(TEXTS, batch_size=3))


def test_no_text_gives_an_empty_array(encoder: Encoder) -> None:
    assert encoder.embed([]).shape == (0, 384)
