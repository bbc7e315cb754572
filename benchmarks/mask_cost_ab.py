"""What the secret masking costs: ``mask_text`` over the benchmark corpus's lines and the document ``redact`` over its
texts, one checkout's code against another's, alternating, best of ``--repeat``.

Run from the repo root (the base as a ``git worktree``):
    .venv/bin/python benchmarks/mask_cost_ab.py --base /tmp/base --code . [--n 400] [--repeat 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

REDACT = "plugins/flyte-aios-core/flytekitplugins/aios_core/redact.py"
PROTECT = "tasks/documents/protect.py"


def _load(root: Path, tag: str) -> tuple[Callable[[str], str], Callable[[str], Any]]:
    """``mask_text`` and ``redact`` of the checkout at ``root``, loaded under names of their own."""
    spec = importlib.util.spec_from_file_location(f"redact_{tag}", root / REDACT)
    assert spec is not None and spec.loader is not None
    redact_mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = redact_mod
    spec.loader.exec_module(redact_mod)
    source = (root / PROTECT).read_text(encoding="utf-8")
    source = source.replace("from flytekitplugins.aios_core.redact import", f"from redact_{tag} import")
    protect = types.ModuleType(f"protect_{tag}")
    protect.__file__ = str(root / PROTECT)
    sys.modules[protect.__name__] = protect
    exec(compile(source, protect.__file__, "exec"), protect.__dict__)  # the checkout's own module, renamed imports
    return redact_mod.mask_text, protect.redact


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="the checkout to compare with")
    ap.add_argument("--code", type=Path, default=Path("."), help="the checkout measured (default: this one)")
    ap.add_argument("--n", type=int, default=400, help="documents of the corpus")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    sys.path[:0] = [str(args.code.resolve()), str(args.code.resolve() / "plugins/flyte-aios-core")]
    from tasks.documents.corpus_text import generate

    texts = [d.text for d in generate(args.n, 11, hard_share=0.25)]
    lines = [line for t in texts for line in t.splitlines()]
    arms = {"base": _load(args.base.resolve(), "base"), "code": _load(args.code.resolve(), "code")}
    times: dict[str, dict[str, list[float]]] = {k: {"mask_text": [], "redact": []} for k in arms}
    for _ in range(args.repeat):
        for name, (mask, redact) in arms.items():
            t0 = time.perf_counter()
            for line in lines:
                mask(line)
            times[name]["mask_text"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for text in texts:
                redact(text)
            times[name]["redact"].append(time.perf_counter() - t0)
    print(f"{len(lines)} lines, {len(texts)} texts, best of {args.repeat} (ms)")
    for name, fns in times.items():
        for fn, xs in fns.items():
            xs.sort()
            print(f"{name} {fn}: best {xs[0] * 1e3:.1f}, second {xs[1] * 1e3:.1f}, median {xs[len(xs) // 2] * 1e3:.1f}")


if __name__ == "__main__":
    main()
