"""Decompression budgets for the container formats the pack reads: ZIP (DOCX), PDF streams and images.

Every check runs BEFORE a parser expands anything, in bounded memory, and raises
``Quarantined("decompression_bomb")`` when a document would expand past ``Budget.max_bytes`` in all or
past ``Budget.max_ratio`` times its compressed size (ratios are checked only above ``RATIO_GRACE`` bytes:
small parts compress oddly and cannot hurt). ZIP members are checked on their declared sizes first, then
streamed through zlib (64 KiB at a time, nothing kept) counting the bytes really produced, since headers
can lie. PDF content streams (pages and the form XObjects they draw) are inflated the same way, and
pypdf's own per-stream limits are set from the same budget. Images are checked on their header
(width x height x bands) before any pixel is decoded; they get no ratio limit, because a scanned white
page compresses beyond any ratio that would be useful and its pixel count already bounds the memory.

NOTE: pypdf keeps a stream's raw (still encoded) bytes in the private ``StreamObject._data``; it is read
in :func:`_raw_stream_bytes` only, and ``tests/security/test_bombs.py`` pins that behaviour.
"""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.documents.readers import Quarantined

RATIO_GRACE = 1 << 20
MAX_ZIP_MEMBERS = 10_000
MAX_FORM_DEPTH = 8
_CHUNK = 1 << 16
_FLATE = frozenset({"/FlateDecode", "/Fl"})
BOMB = "decompression_bomb"


@dataclass(frozen=True)
class Budget:
    """How far one document may expand: bytes in all, and decompressed/compressed ratio of one part."""

    max_bytes: int = 50 << 20
    max_ratio: float = 100.0

    def check(self, expanded: int, compressed: int, what: str) -> None:
        """Raise ``decompression_bomb`` when ``expanded`` bytes are over the budget or the ratio limit."""
        if expanded > self.max_bytes:
            raise Quarantined(BOMB, f"{what} expands past {self.max_bytes} bytes")
        if expanded > RATIO_GRACE and expanded > self.max_ratio * max(compressed, 1):
            raise Quarantined(BOMB, f"{what} compresses more than {self.max_ratio:g}:1")

    def check_total(self, expanded: int, what: str) -> None:
        """Raise ``decompression_bomb`` when the parts of a document together pass the byte budget."""
        if expanded > self.max_bytes:
            raise Quarantined(BOMB, f"{what} expand past {self.max_bytes} bytes")


def check_zip(path: Path, budget: Budget) -> None:
    """Refuse a ZIP whose members declare, or really produce, more than the budget allows."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise Quarantined(BOMB, f"{len(infos)} ZIP members (limit {MAX_ZIP_MEMBERS})")
            declared, on_disk = 0, path.stat().st_size
            for i, info in enumerate(infos):
                declared += info.file_size
                budget.check(info.file_size, info.compress_size, f"ZIP member {i} (declared)")
                budget.check(declared, on_disk, "ZIP members together (declared)")  # overlapping-member bombs
            total = 0
            for i, info in enumerate(infos):
                total += _stream_member(zf, info, budget, total, f"ZIP member {i}")
    except Quarantined:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError) as e:
        raise Quarantined("corrupt", type(e).__name__) from None


def _stream_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget, before: int, what: str) -> int:
    n = 0
    with zf.open(info) as f:
        while chunk := f.read(_CHUNK):
            n += len(chunk)
            if n > info.file_size:
                raise Quarantined(BOMB, f"{what} produces more than its declared size")
            budget.check(n, info.compress_size, what)
            budget.check_total(before + n, "ZIP members together")
    return n


def pdf_limits(budget: Budget) -> contextlib.AbstractContextManager[Any]:
    """pypdf's own decompression limits, set from the budget for the duration of one document."""
    from pypdf import apply_configuration

    cap = budget.max_bytes
    return apply_configuration(
        maximum_declared_stream_length=cap,
        array_based_stream_maximum_output_length=cap,
        zlib_maximum_output_length=cap,
        lzw_maximum_output_length=cap,
        run_length_maximum_output_length=cap,
        brotli_maximum_output_length=cap,
        jbig2_maximum_output_length=cap,
        image_maximum_buffer_size=cap,
        stream_decoding_work_maximum_length=cap,
    )


def check_pdf(reader: Any, budget: Budget, max_pages: int) -> None:
    """Count what the text extractor would inflate (content streams of the first pages and their forms)."""
    seen: set[int] = set()
    total = 0
    for p, page in enumerate(reader.pages[:max_pages]):
        for stream in _page_streams(page, seen):
            total += _stream_size(stream, budget, total, f"PDF stream of page {p + 1}")


def _page_streams(page: Any, seen: set[int]) -> Iterator[Any]:
    contents = page.get("/Contents")
    contents = contents.get_object() if contents is not None else None
    items = list(contents) if isinstance(contents, list) else [contents] if contents is not None else []
    for item in items:
        yield from _once(item.get_object(), seen)
    yield from _forms(page.get("/Resources"), seen, 0)


def _forms(resources: Any, seen: set[int], depth: int) -> Iterator[Any]:
    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if isinstance(resources, dict) else None
    xobjects = xobjects.get_object() if xobjects is not None else None
    if not isinstance(xobjects, dict) or depth >= MAX_FORM_DEPTH:
        return
    for ref in xobjects.values():
        obj = ref.get_object()
        if isinstance(obj, dict) and obj.get("/Subtype") == "/Form":
            fresh = list(_once(obj, seen))
            yield from fresh
            if fresh:
                yield from _forms(obj.get("/Resources"), seen, depth + 1)


def _once(obj: Any, seen: set[int]) -> Iterator[Any]:
    ref = getattr(obj, "indirect_reference", None)
    key = ref.idnum if ref is not None else id(obj)
    if key not in seen and hasattr(obj, "get_data"):
        seen.add(key)
        yield obj


def _raw_stream_bytes(stream: Any) -> bytes:
    """A pypdf stream's encoded bytes (pypdf keeps them in the private ``_data``)."""
    raw = getattr(stream, "_data", b"")
    return raw if isinstance(raw, bytes) else b""


def _stream_size(stream: Any, budget: Budget, before: int, what: str) -> int:
    raw = _raw_stream_bytes(stream)
    filters = stream.get("/Filter")
    names = [str(f) for f in filters] if isinstance(filters, list) else [str(filters)] if filters else []
    if not names:
        n = len(raw)
    elif set(names) <= _FLATE and len(names) == 1:
        n = _inflated_size(raw, budget, before, what)
    else:  # other filters: pypdf decodes under its own limits (pdf_limits), and the result is counted
        n = len(stream.get_data())
    budget.check(n, len(raw), what)
    budget.check_total(before + n, "PDF streams together")
    return n


def _inflated_size(raw: bytes, budget: Budget, before: int, what: str) -> int:
    """Bytes a zlib stream inflates to, counted 64 KiB at a time (nothing kept); a broken tail ends the count."""
    d = zlib.decompressobj()
    n, data = 0, raw
    try:
        while data or not d.eof:
            out = d.decompress(data, _CHUNK)
            if not out:
                break
            n += len(out)
            budget.check(n, len(raw), what)
            budget.check_total(before + n, "PDF streams together")
            data = d.unconsumed_tail
    except zlib.error:
        pass  # pypdf has its own recovery for damaged streams, under pdf_limits
    return n


def check_image(img: Any, budget: Budget) -> None:
    """Refuse an image whose decoded pixels (from its header) would pass the budget."""
    width, height = img.size
    per_band = 4 if img.mode in {"I", "F"} else 2 if "16" in img.mode else 1
    decoded = width * height * len(img.getbands()) * per_band
    if decoded > budget.max_bytes:
        raise Quarantined(BOMB, f"image of {width}x{height} pixels is over {budget.max_bytes} bytes decoded")
