"""Classification quality of the document-type models on a held-out labelled set, and the routing trade-off.

Held-out set: the generated corpus at seed 99 (training uses seed 1001), redacted as in production.
Reports accuracy of the fast and strong heads (all, easy and hard documents), then for each pair of
thresholds the share answered by each model, the share sent to human review and the accuracy of
the automatic answers.

    .venv/bin/python benchmarks/documents_quality.py --n 800
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the Flyte project's tasks/, from any working directory

from flytekitplugins.aios_core.settings import get_settings  # noqa: E402
from tasks.documents.models import models_dir  # noqa: E402

os.environ.setdefault("AIOS_DOCUMENT_MODELS_DIR", str(REPO / ".aios" / "cache" / "document-models"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=800)
    p.add_argument("--seed", type=int, default=99)
    args = p.parse_args()
    from tasks.documents.corpus_text import generate
    from tasks.documents.models import load_or_train, strong_features
    from tasks.documents.protect import redact

    models = load_or_train(models_dir(get_settings()))
    docs = generate(args.n, args.seed)
    texts = [redact(d.text).text for d in docs]
    y = np.array([d.label for d in docs])
    hard, vague = np.array([d.hard for d in docs]), np.array(["Please find the document" in d.text for d in docs])
    enc, labels = models.fast.encoder, np.array(models.fast.labels)
    pf = models.fast.predict_proba_embeddings(enc.embed(texts))
    ps = models.strong.predict_proba_embeddings(strong_features(enc, texts))
    out: dict[str, object] = {
        "n": args.n,
        "seed": args.seed,
        "hard_share": float(hard.mean()),
        "vague_share": float(vague.mean()),
    }
    for name, prob in (("fast", pf), ("strong", ps)):
        pred = labels[prob.argmax(1)]
        out[name] = {
            "accuracy": float((pred == y).mean()),
            "accuracy_easy": float((pred[~hard] == y[~hard]).mean()),
            "accuracy_hard": float((pred[hard] == y[hard]).mean()),
        }
    grid = []
    for t1 in (0.6, 0.7, 0.8, 0.9):
        for t2 in (0.5, 0.6, 0.7, 0.8):
            use_fast = pf.max(1) >= t1
            use_strong = ~use_fast & (ps.max(1) >= t2)
            auto = use_fast | use_strong
            pred = np.where(use_fast, labels[pf.argmax(1)], labels[ps.argmax(1)])
            grid.append({
                "fast_threshold": t1, "strong_threshold": t2, "fast_share": float(use_fast.mean()),
                "strong_share": float(use_strong.mean()), "review_share": float((~auto).mean()),
                "auto_accuracy": float((pred[auto] == y[auto]).mean()), "overall_accuracy": float((pred == y).mean()),
            })  # fmt: skip
    out["routing"] = grid
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
