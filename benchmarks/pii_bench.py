"""Recall and precision of PII redaction (``tasks.documents.protect.redact``), the function the pipeline runs.

1. Recall per kind on generated obfuscations (full-width and zero-width characters, ``(at)``/``[dot]``/``at``
   forms, cards with dots or a line break, lower-case IBANs, bare SSNs beside a label, ...), each planted in
   the sentence contexts of the vector tests (followed by a BIC, an amount, a date, punctuation, a newline;
   preceded by numbers). "removed": the value is gone; "exact": nothing but the value was replaced. Goal >= 0.99.
2. Recall on the published vectors (SWIFT registry IBAN examples, payment providers' test cards), exact. Goal 1.00.
3. Precision on the clean demo corpus (``tasks.documents.corpus_text``, the texts ``tasks.documents.corpus``
   writes): a span is right when it overlaps planted personal data. Goal >= 0.95. Plus the time per document.
4. Precision on the real e-mails, PDFs and DOCX files the parse tests use (``scripts/fetch_data.sh``, under
   ``--data``): a finding counts as right only when it was judged personal data by hand (SHA-256 fingerprints of
   file, kind and value in ``pii_real_judged.txt``; new findings count as wrong until judged).
5. With ``--compare REV``: ``redact`` time of the working tree against git revision REV's (its ``pii.py`` and
   ``protect.py`` loaded beside the working tree's), interleaved round by round in one process, on the demo
   corpus and on the parsed real documents. Run it on a quiet machine; a loaded one only shows the ratio.

    .venv/bin/python benchmarks/pii_bench.py --n 300 --docs 400 --data .data [--compare 506b54e]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stdnum import iban as stdnum_iban  # noqa: E402
from stdnum import luhn as stdnum_luhn  # noqa: E402
from stdnum import numdb  # noqa: E402

from tasks.documents import pii  # noqa: E402
from tasks.documents.pii import iban_lengths, normalize  # noqa: E402
from tasks.documents.protect import redact, spans  # noqa: E402
from tests.references.test_pii_vectors import CARD_LIST, CONTEXTS, IBANS, card_forms, iban_forms, misses  # noqa: E402

JUDGED = Path(__file__).with_name("pii_real_judged.txt")
Plant = tuple[str, str]  # (text to plant, the value that must disappear)


def _fw(s: str) -> str:  # full-width digits and letters
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() and c.isascii() else c for c in s)


def _zw(r: random.Random, s: str) -> str:  # a zero-width character inside
    i = r.randint(1, len(s) - 1)
    return s[:i] + r.choice("\u200b\u200c\u200d\u2060\ufeff\u00ad") + s[i:]


def _emails(r: random.Random) -> list[Plant]:
    user = r.choice(["jane.doe", "j_smith", "ops+billing", "anna.maria", "x9", "first-last99"])
    dom, tld = r.choice(["example", "mail-host", "corp"]), r.choice(["com", "de", "org", "io"])
    plain = f"{user}@{dom}.{tld}"
    forms = [plain, f"{user} (at) {dom} [dot] {tld}", f"{user} [at] {dom} (dot) {tld}", f"{user} at {dom} dot {tld}",
             f"{user} AT {dom} DOT {tld}".upper(), f"{user}\uff20{dom}.{tld}", _zw(r, plain), f"{user}&#64;{dom}.{tld}",
             f"{user} {{at}} {dom} {{dot}} {tld}", f"{user} @ {dom}.{tld}"]  # fmt: skip
    return [(f, f) for f in forms]


def _card(r: random.Random) -> str:
    prefix, length = r.choice([("4", 16), ("51", 16), ("2221", 16), ("37", 15), ("6011", 16), ("35", 16)])
    body = prefix + "".join(r.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return body + stdnum_luhn.calc_check_digit(body)


def _cards(r: random.Random) -> list[Plant]:
    n = _card(r)
    g = [n[i : i + 4] for i in range(0, len(n), 4)]
    forms = [n, " ".join(g), "-".join(g), ".".join(g), " - ".join(g), " ".join(g[:2]) + "\n" + " ".join(g[2:]),
             _fw(" ".join(g)), _zw(r, n)]  # fmt: skip
    if len(n) == 15:  # Amex as printed on the card
        forms.append(f"{n[:4]} {n[4:10]} {n[10:]}")
    return [(f, f) for f in forms]


def _ibans(r: random.Random) -> list[Plant]:
    # random BBANs fail the national checks of BE, ES, ME and NO: those countries come from the registry vectors
    cc = r.choice(sorted(set(iban_lengths()) - {"BE", "ES", "ME", "NO"}))
    layout = numdb.get("iban").info(cc)[0][1]["bban"]
    chars = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + string.ascii_uppercase}
    bban = "".join(r.choice(chars[k]) for n, k in re.findall(r"(\d+)!([nac])", layout) for _ in range(int(n)))
    value = cc + stdnum_iban.calc_check_digits(cc + "00" + bban) + bban
    g = stdnum_iban.format(value)
    forms = [value, g, g.lower(), value.lower(), g.replace(" ", "-"), _zw(r, value), _fw(g),
             g[:9] + "\n" + g[10:]]  # fmt: skip
    return [(f, f) for f in forms]


def _ssns(r: random.Random) -> list[Plant]:
    a, b, c = f"{r.randint(100, 665):03d}", f"{r.randint(10, 99):02d}", f"{r.randint(1000, 9999):04d}"
    bare = a + b + c
    return [(f"{a}-{b}-{c}", f"{a}-{b}-{c}"), (f"{a} {b} {c}", f"{a} {b} {c}"), (f"SSN: {bare}", bare),
            (f"SSN {a}.{b}.{c}", f"{a}.{b}.{c}"), (f"Social Security Number {bare}", bare), (f"{bare} (SSN)", bare),
            (f"ssn is {bare}", bare), (f"SS# {_fw(bare)}", _fw(bare))]  # fmt: skip


def _phones(r: random.Random) -> list[Plant]:
    a, b, c = r.randint(201, 989), r.randint(200, 999), r.randint(1000, 9999)
    forms = [f"+1 ({a}) {b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"+44 20 {r.randint(7000, 7999)} {c}",
             f"+49 30 {r.randint(1000000, 9999999)}", _fw(f"+1 {a} {b} {c}")]  # fmt: skip
    return [(f, f) for f in forms]


def _ninos(r: random.Random) -> list[Plant]:
    v = f"{r.choice(['AB', 'CE', 'HJ', 'JA', 'PR', 'WX'])}{r.randint(100000, 999999)}{r.choice('ABCD')}"
    return [(v, v), (f"{v[:2]} {v[2:4]} {v[4:6]} {v[6:8]} {v[8]}", f"{v[:2]} {v[2:4]} {v[4:6]} {v[6:8]} {v[8]}")]


GENERATORS: dict[str, Callable[[random.Random], list[Plant]]] = {
    "EMAIL": _emails, "CARD": _cards, "IBAN": _ibans, "SSN": _ssns, "PHONE": _phones, "NINO": _ninos,
}  # fmt: skip


def _compact(s: str) -> str:
    return re.sub(r"[\W_]", "", normalize(s)).lower()


def obfuscation_recall(n: int, seed: int) -> dict[str, tuple[float, float, int]]:
    """(removed, exact, cases) per kind over ``n`` values per kind in every form and context."""
    r, out = random.Random(seed), {}
    for kind, gen in GENERATORS.items():
        removed = exact = total = 0
        for i in range(n):
            for planted, value in gen(r):
                context = CONTEXTS[(i + total) % len(CONTEXTS)]
                red = redact(context.format(v=planted))
                gone = normalize(value) not in red.text and _compact(value) not in _compact(red.text)
                removed += gone and red.counts.get(kind, 0) >= 1
                exact += red.text == normalize(context.format(v=planted.replace(value, f"[{kind}]")))
                total += 1
        out[kind] = (removed / total, exact / total, total)
    return out


def vector_recall() -> tuple[float, int]:
    """Share of (vector, form, context) cases redacted exactly."""
    cases = [(f, "[IBAN]") for p in IBANS for f in iban_forms(p)] + [
        (f, "[CARD]") for b, n in CARD_LIST for f in card_forms(b, n)
    ]
    missed = sum(len(misses(value, ph)) for value, ph in cases)
    total = len(cases) * len(CONTEXTS)
    return 1 - missed / total, total


def corpus_precision(n: int, seed: int) -> tuple[float, float, int, float]:
    """(precision, recall of planted values, spans, microseconds per document of ``redact``) on the demo corpus."""
    from tasks.documents.corpus_text import generate

    docs = generate(n, seed)
    right = wrong = found = 0
    for d in docs:
        text = normalize(d.text)
        planted = [(m.start(), m.end()) for _, v in d.pii for m in re.finditer(re.escape(normalize(v)), text)]
        for _, a, b in spans(text):
            ok = any(a < pe and ps < b for ps, pe in planted)
            right, wrong = right + ok, wrong + (not ok)
        out = redact(d.text).text
        found += all(normalize(v) not in out for _, v in d.pii)
    t0 = time.perf_counter()
    for _ in range(3):
        for d in docs:
            redact(d.text)
    per_doc = (time.perf_counter() - t0) / 3 / len(docs) * 1e6
    return right / max(1, right + wrong), found / len(docs), right + wrong, per_doc


def _real_files(data: Path) -> list[Path]:
    files = sorted(data.glob("mails/tests/mails/mail_*")) + sorted(data.glob("pypdf/resources/*.pdf"))
    stdlib_mails = Path("/usr/lib/python3.11/test/test_email/data").glob("msg_*.txt")  # as test_parse.py reads
    return files + sorted(data.glob("docx/**/*.docx")) + sorted(stdlib_mails)


def fingerprint(file: Path, kind: str, value: str) -> str:
    """What ``pii_real_judged.txt`` stores for a finding judged to be personal data (never the value)."""
    return hashlib.sha256(f"{file.name}\0{kind}\0{value}".encode()).hexdigest()[:16]


def _real_texts(data: Path) -> list[tuple[Path, str]]:
    """(file, normalized text) of every real document that parses (quarantined ones are not part of the measure)."""
    from tasks.documents.parse import Limits, parse_file

    out = []
    for f in _real_files(data):
        try:
            out.append((f, normalize(parse_file(f, Limits(ocr_pages=0)).text)))
        except Exception:  # quarantined or unreadable
            continue
    return out


def real_precision(data: Path) -> tuple[dict[str, tuple[int, int]], int]:
    """{kind: (judged personal data, findings)} over the real documents, and the number of documents read."""
    judged = set(JUDGED.read_text().split()) if JUDGED.exists() else set()
    out: dict[str, tuple[int, int]] = {}
    texts = _real_texts(data)
    for f, text in texts:
        for kind, a, b in spans(text):
            ok, total = out.get(kind, (0, 0))
            out[kind] = (ok + (fingerprint(f, kind, text[a:b]) in judged), total + 1)
    return out, len(texts)


def redact_of(rev: str) -> Callable[[str], object]:
    """``redact`` of git revision ``rev``: its ``pii.py`` and ``protect.py``, loaded beside the working tree's."""
    import tasks.documents

    names = ("pii", "protect")
    saved = {n: sys.modules.pop(f"tasks.documents.{n}") for n in names}
    folder, loaded = Path(tempfile.mkdtemp(prefix="pii-bench-")), {}
    try:
        for n in names:  # pii first: protect's "from tasks.documents import pii" then finds rev's
            show = ["git", "-C", str(REPO), "show", f"{rev}:tasks/documents/{n}.py"]
            (folder / f"{n}.py").write_text(subprocess.run(show, capture_output=True, text=True, check=True).stdout)
            spec = importlib.util.spec_from_file_location(f"tasks.documents.{n}", folder / f"{n}.py")
            assert spec is not None and spec.loader is not None
            module: ModuleType = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            setattr(tasks.documents, n, module)
            spec.loader.exec_module(module)
            loaded[n] = module
    finally:
        for n, module in saved.items():
            sys.modules[f"tasks.documents.{n}"] = module
            setattr(tasks.documents, n, module)
        shutil.rmtree(folder, ignore_errors=True)  # the modules are loaded: their sources are not read again
    return loaded["protect"].redact  # type: ignore[no-any-return]


def compare_time(rev: str, texts: dict[str, list[str]], rounds: int = 11) -> dict[str, tuple[float, float]]:
    """{set: (microseconds per text now, at ``rev``)}: the median of ``rounds`` rounds, now and ``rev`` alternating."""
    funcs = {"now": redact, rev: redact_of(rev)}
    out = {}
    for name, docs in texts.items():
        times: dict[str, list[float]] = {k: [] for k in funcs}
        for r in range(rounds):
            for key in list(funcs)[:: 1 if r % 2 else -1]:  # alternate which goes first
                pii._possible_international.cache_clear()  # every round meets the numbers for the first time
                pii._valid_national.cache_clear()
                t0 = time.perf_counter()
                for text in docs:
                    funcs[key](text)
                times[key].append((time.perf_counter() - t0) / len(docs) * 1e6)
        out[name] = (sorted(times["now"])[rounds // 2], sorted(times[rev])[rounds // 2])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=300, help="generated values per kind")
    p.add_argument("--docs", type=int, default=400, help="demo corpus documents")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data", type=Path, default=REPO / ".data", help="scripts/fetch_data.sh output")
    p.add_argument("--compare", metavar="REV", help="also time redact against git revision REV's (interleaved)")
    args = p.parse_args()
    rows = [("measure", "value", "cases", "goal")]
    for kind, (removed, exact, total) in obfuscation_recall(args.n, args.seed).items():
        rows.append((f"obfuscated {kind}: recall (exact)", f"{removed:.4f} ({exact:.4f})", str(total), ">= 0.99"))
    rec, total = vector_recall()
    rows.append(("registry IBANs + test cards: recall, exact", f"{rec:.4f}", str(total), "1.00"))
    prec, found, n_spans, us = corpus_precision(args.docs, args.seed)
    rows.append(("demo corpus: precision", f"{prec:.4f}", f"{n_spans} spans", ">= 0.95"))
    rows.append(("demo corpus: documents with all planted PII gone", f"{found:.4f}", str(args.docs), "1.00"))
    rows.append(("demo corpus: redact time per document", f"{us:.0f} us", str(args.docs), "not slower"))
    real, docs = real_precision(args.data)
    for kind, (ok, total) in sorted(real.items()):
        rows.append((f"real documents: precision {kind}", f"{ok / total:.4f}", f"{total} in {docs} docs", "-"))
    if args.compare:
        from tasks.documents.corpus_text import generate

        texts = {"demo corpus": [d.text for d in generate(args.docs, args.seed)]}
        texts["real documents"] = [t for _, t in _real_texts(args.data)]
        for name, (now, then) in compare_time(args.compare, texts).items():
            ratio = f"{now:.0f} vs {then:.0f} us = {now / then:.2f}"
            rows.append((f"{name}: redact time per text, now vs {args.compare}", ratio, str(len(texts[name])), "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
