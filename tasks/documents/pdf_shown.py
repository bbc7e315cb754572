"""What a PDF page shows: text a reader's eye cannot see is flagged, so a document is decided on what a person sees.

pypdf's text layer holds every string a page's content stream shows, painted or not. An invoice that shows
``Services rendered: EUR 95,000.00`` and also holds ``Total amount due: EUR 950.00`` in invisible text (render mode
3, the mode OCR tools use for their text layer over a scan) was read, and decided, at 950. :class:`ShownWatch`
walks a page's content stream (and the forms it draws) with the graphics state a viewer keeps (``q`` /
``Q``, the text render mode, the fill colour and alpha, the font size and matrices) and names every way a string
was shown that a person may not see:

* ``invisible``: render mode 3 or 7 (neither filled nor stroked), or painted only at an alpha near 0 (``/ca``,
  ``/CA`` of an ExtGState);
* ``faint``: the colour it is painted in near white (fill or stroke, as its render mode paints it; a tint of no ink;
  a pattern or palette this walk does not read), an effective font size under :data:`MIN_SIZE` points or a
  horizontal scaling under 10%, or a start point off the page;
* ``optional``: marked content of an optional-content group (a layer a viewer may hide; ``BDC /OC``).

Its visitors run inside pypdf's own text extraction, so the content is parsed once and the text layer and the
marks come from the same parse. The reader then OCRs a page that draws an image under invisible text holding an
amount (what a person sees there is the image), and holds any other flagged document to the rule the HTML and DOCX
readers apply: the total read must be its largest amount (``tasks.documents.parse.check_views``). Not modelled:
text covered by a shape drawn after it, clipping paths, glyphs a font draws empty; the total rule is the backstop
for what this walk does not see.
"""

from __future__ import annotations

from typing import Any

MIN_SIZE = 2.0
"""Effective font size (points) under which text counts as too small to read."""
WHITE = 0.9
"""A fill colour whose every component is at least this light (gray and RGB; CMYK at most 1 - this) is near white."""
_SHOW = {b"Tj", b"TJ", b"'", b'"'}
_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _mul(m: _Matrix, n: _Matrix) -> _Matrix:
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s, e * p + f * r + t, e * q + f * s + u)


def _nums(args: list[Any]) -> list[float]:
    out = []
    for a in args:
        try:
            out.append(float(a))
        except (TypeError, ValueError):
            continue
    return out


class _State:
    __slots__ = (
        "alpha", "ctm", "dash", "fill", "fill_space", "leading", "mode", "odd", "scale", "size", "spacing", "stroke",
        "stroke_space",
    )  # fmt: skip

    def __init__(self) -> None:
        self.ctm: _Matrix = _IDENTITY
        self.mode = 0
        self.fill: tuple[str, list[float]] = ("gray", [0.0])
        self.stroke: tuple[str, list[float]] = ("gray", [0.0])
        self.fill_space = self.stroke_space = "gray"
        self.alpha = (1.0, 1.0)  # fill, stroke
        self.size = 12.0
        self.scale = 100.0
        self.leading = 0.0
        self.dash = False  # stroked with a dash pattern (whose gaps may hide every glyph)
        self.odd = False  # an ExtGState this walk does not model, or a Type3 font (glyphs drawn by content streams)
        self.spacing = 0.0  # the largest |Tc|, |Tw|, |Ts| in force

    def copy(self) -> _State:
        other = _State()
        for k in self.__slots__:
            setattr(other, k, getattr(self, k))
        return other


_DEVICE = {
    "/DeviceGray": "gray",
    "/G": "gray",
    "/DeviceRGB": "rgb",
    "/RGB": "rgb",
    "/DeviceCMYK": "cmyk",
    "/CMYK": "cmyk",
}
_INITIAL = {"gray": [0.0], "rgb": [0.0] * 3, "cmyk": [0.0, 0.0, 0.0, 1.0], "lab": [0.0]}
"""The colour ``cs`` / ``CS`` sets with a colour space: black (none: ``unknown``)."""
MAX_SPACING = 50.0
"""Character or word spacing (``Tc``, ``Tw``) or a text rise (``Ts``) beyond this many points moves glyphs away from
where the text starts: such text counts as faint."""
MAX_TJ_OFFSET = 10_000
"""A ``TJ`` adjustment beyond this many thousandths of an em (ten ems) moves the next glyphs out of sight."""
_ODD_EXT = ("/TR", "/TR2", "/Font")
"""ExtGState entries that change how text looks beyond what this walk models (a transfer function can paint it white;
a font set there is not the ``Tf`` one): text under them counts as faint."""


def _space_kind(name: Any, resources: Any) -> str:
    """How to read colour values in colour space ``name``: ``gray``, ``rgb``, ``cmyk``, ``lab``, or ``unknown`` (a
    Separation or DeviceN tint, a pattern, an indexed palette, anything else: counted as near white)."""
    key = str(name)
    if key in _DEVICE:
        return _DEVICE[key]
    try:
        space = resources["/ColorSpace"][name].get_object()
    except (KeyError, TypeError, AttributeError):
        return "unknown"
    if not isinstance(space, list) or not space:
        return _DEVICE.get(str(space), "unknown")
    family = str(space[0])
    if family in ("/Separation", "/DeviceN"):  # a tint transform may paint white, a /None colourant nothing
        return "unknown"
    if family == "/ICCBased":
        try:
            n = int(space[1].get_object()["/N"])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return "unknown"
        return {1: "gray", 3: "rgb", 4: "cmyk"}.get(n, "unknown")
    return {"/CalGray": "gray", "/CalRGB": "rgb", "/Lab": "lab"}.get(family, "unknown")


def _near_white(colour: tuple[str, list[float]]) -> bool:
    space, values = colour
    if space == "unknown":
        return True
    if not values:
        return False
    if space == "cmyk":
        return len(values) == 4 and all(v <= 1 - WHITE for v in values)
    if space == "lab":
        return values[0] >= 100 * WHITE
    return space in ("gray", "rgb") and all(v >= WHITE for v in values)


class ShownWatch:
    """Visitors for one page's ``extract_text`` call (one parse of its content: the text and the marks together).

    ``before`` and ``after`` are pypdf's ``visitor_operand_before`` and ``visitor_operand_after``: pypdf calls them
    for every operator, the operators of the forms a ``Do`` draws included (between that ``Do``'s two calls)."""

    def __init__(self, page: Any) -> None:
        box = page.cropbox
        self.box = (float(box.left), float(box.bottom), float(box.right), float(box.top))
        self.marks: set[str] = set()
        resources = page.get("/Resources")
        self._resources: list[Any] = [resources.get_object() if resources is not None else {}]
        self._state = _State()
        self._stack: list[_State] = []
        self._forms: list[tuple[_State, list[_State], _Matrix]] = []
        self._tm: _Matrix = _IDENTITY
        self.images = False  # draws an image (an XObject or inline): what a person sees there is not in the text
        self.opaque = False  # draws text the text layer does not hold (a tiling pattern's or a Type3 font's)
        self.draws = 0  # Do operators (pypdf follows a bounded number of form draws: past it text is not read)
        media = page.mediabox
        self.box = (
            max(self.box[0], float(media.left)), max(self.box[1], float(media.bottom)),
            min(self.box[2], float(media.right)), min(self.box[3], float(media.top)),
        )  # fmt: skip  # what a viewer shows: the crop box within the media box
        self._scan_resources(self._resources[0])

    def before(self, op: bytes, args: list[Any], _cm: Any, _tm: Any) -> None:
        state = self._state
        if op == b"q":
            self._stack.append(state.copy())
        elif op == b"Q":
            if self._stack:
                self._state = self._stack.pop()
        elif op == b"cm":
            n = _nums(args)
            if len(n) == 6:
                state.ctm = _mul((n[0], n[1], n[2], n[3], n[4], n[5]), state.ctm)
        elif op == b"Tr":
            n = _nums(args)
            state.mode = int(n[0]) if n else 0
        elif op in (b"g", b"rg", b"k"):
            state.fill = ({b"g": "gray", b"rg": "rgb", b"k": "cmyk"}[op], _nums(args))
        elif op in (b"G", b"RG", b"K"):
            state.stroke = ({b"G": "gray", b"RG": "rgb", b"K": "cmyk"}[op], _nums(args))
        elif op == b"cs":
            state.fill_space = _space_kind(args[0] if args else "", self._resources[-1])
            state.fill = (state.fill_space, _INITIAL.get(state.fill_space, []))
        elif op == b"CS":
            state.stroke_space = _space_kind(args[0] if args else "", self._resources[-1])
            state.stroke = (state.stroke_space, _INITIAL.get(state.stroke_space, []))
        elif op in (b"sc", b"scn"):
            state.fill = (state.fill_space, _nums(args))
        elif op in (b"SC", b"SCN"):
            state.stroke = (state.stroke_space, _nums(args))
        elif op == b"gs":
            self._ext_state(args, state)
        elif op == b"Tf":
            n = _nums(args)
            if n:
                state.size = n[-1]
            state.odd = state.odd or self._type3(args)
        elif op in (b"Tc", b"Tw", b"Ts"):
            n = _nums(args)
            if n:
                state.spacing = max(state.spacing, abs(n[0]))
        elif op == b"d":
            state.dash = bool(args) and isinstance(args[0], list) and len(args[0]) > 0
        elif op == b"INLINE IMAGE":
            self.images = True
        elif op == b"Tz":
            n = _nums(args)
            if n:
                state.scale = n[0]
        elif op == b"TL":
            n = _nums(args)
            if n:
                state.leading = n[0]
        elif op == b"BT":
            self._tm = _IDENTITY
        elif op == b"Tm":
            n = _nums(args)
            if len(n) == 6:
                self._tm = (n[0], n[1], n[2], n[3], n[4], n[5])
        elif op in (b"Td", b"TD"):
            n = _nums(args)
            if len(n) == 2:
                if op == b"TD":
                    state.leading = -n[1]
                self._tm = _mul((1.0, 0.0, 0.0, 1.0, n[0], n[1]), self._tm)
        elif op == b"T*":
            self._next_line()
        elif op == b"BDC":
            if args and str(args[0]) == "/OC":  # content of an optional-content group: a layer a viewer may hide
                self.marks.add("optional")
        elif op == b"Do":
            self.draws += 1
            self._enter_form(args)
        if op in _SHOW:
            if op != b"TJ" and op != b"Tj":
                self._next_line()
            self._shown()
            if op == b"TJ" and args and isinstance(args[0], list):
                if any(abs(v) > MAX_TJ_OFFSET for v in _nums(list(args[0]))):
                    self.marks.add("faint")

    def after(self, op: bytes, _args: list[Any], _cm: Any, _tm: Any) -> None:
        if op == b"Do" and self._forms:  # the form drawn is done: the state is the one before it
            self._state, self._stack, self._tm = self._forms.pop()
            self._resources.pop()

    def _next_line(self) -> None:
        self._tm = _mul((1.0, 0.0, 0.0, 1.0, 0.0, -self._state.leading), self._tm)

    def _shown(self) -> None:
        state = self._state
        mode = state.mode % 4  # 4-7: the same, and added to the clip path
        filled, stroked = mode in (0, 2), mode in (1, 2)
        if not (filled and state.alpha[0] >= 0.1) and not (stroked and state.alpha[1] >= 0.1):
            self.marks.add("invisible")  # mode 3 or 7, or painted only at an alpha near 0
            return
        white = (not filled or _near_white(state.fill)) and (not stroked or _near_white(state.stroke))
        dashed = stroked and not filled and state.dash
        m = _mul(self._tm, state.ctm)
        across = (m[0] * m[0] + m[1] * m[1]) ** 0.5  # text space's x axis on the page: the baseline's scale
        height = abs(state.size) * abs(m[0] * m[3] - m[1] * m[2]) / across if across else 0.0
        width = abs(state.size) * across * abs(state.scale) / 100  # one em along the baseline
        x0, y0, x1, y1 = self.box
        off = not (x0 - 2 <= m[4] < x1 and y0 <= m[5] <= y1)
        odd = state.odd or state.spacing > MAX_SPACING
        if white or dashed or odd or height < MIN_SIZE or width < MIN_SIZE / 2 or off:
            self.marks.add("faint")

    def _ext_state(self, args: list[Any], state: _State) -> None:
        try:
            ext = self._resources[-1]["/ExtGState"][args[0]].get_object()
            fill = float(ext["/ca"]) if "/ca" in ext else state.alpha[0]
            stroke = float(ext["/CA"]) if "/CA" in ext else state.alpha[1]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return
        state.alpha = (fill, stroke)
        transfer = any(k in ext and str(ext[k]) not in ("/Identity", "/Default") for k in _ODD_EXT)
        mask = "/SMask" in ext and str(ext["/SMask"]) != "/None"  # a soft mask may hide what it masks
        state.odd = state.odd or transfer or mask

    def _type3(self, args: list[Any]) -> bool:
        """Whether ``Tf`` selects a Type3 font: its glyphs are content streams, drawing whatever they draw."""
        try:
            font = self._resources[-1]["/Font"][args[0]].get_object()
        except (KeyError, IndexError, TypeError, AttributeError):
            return False
        return str(font.get("/Subtype")) == "/Type3"

    def _scan_resources(self, resources: Any) -> None:
        """Note what a resource dictionary brings that the text layer does not show as drawn: default colour spaces
        (``0 g`` may then paint white: faint) and tiling patterns that draw text (opaque)."""
        try:
            spaces = resources.get("/ColorSpace")
            spaces = spaces.get_object() if spaces is not None else {}
            if any(k in spaces for k in ("/DefaultGray", "/DefaultRGB", "/DefaultCMYK")):
                self.marks.add("faint")
            patterns = resources.get("/Pattern")
            patterns = patterns.get_object() if patterns is not None else {}
            for ref in patterns.values():
                pattern = ref.get_object()
                if int(pattern.get("/PatternType", 0)) == 1 and b"BT" in pattern.get_data():
                    self.opaque = True
        except (KeyError, TypeError, ValueError, AttributeError):
            self.opaque = True  # unreadable resources: what the page draws is not known

    def _enter_form(self, args: list[Any]) -> None:
        saved = (self._state, self._stack, self._tm)
        inner = self._state.copy()
        resources = self._resources[-1]
        try:
            form = resources["/XObject"][args[0]].get_object()
        except (KeyError, IndexError, TypeError, AttributeError):
            form = None
        if form is not None and form.get("/Subtype") == "/Image":
            self.images = True
        if form is not None and form.get("/Subtype") == "/Form":
            if form.get("/OC") is not None:  # a form drawn only when its optional-content group is on
                self.marks.add("optional")
            n = _nums(list(form.get("/Matrix") or []))
            if len(n) == 6:
                inner.ctm = _mul((n[0], n[1], n[2], n[3], n[4], n[5]), inner.ctm)
            own = form.get("/Resources")
            resources = own.get_object() if own is not None else resources
            self._scan_resources(resources)
        self._forms.append(saved)
        self._resources.append(resources)
        self._state, self._stack = inner, []


_NOT_SHOWN = 2 | 32
"""Annotation flags under which a viewer shows nothing: Hidden, NoView (Invisible applies to unknown types only)."""


def annotation_texts(page: Any) -> list[str]:
    """The text of what ``page``'s annotations show on it: their appearance streams (the text they draw), a free-text
    note's ``/Contents`` and a form field's value (``/V``). pypdf's page text leaves annotations out, so a total a
    person sees in a filled-in form field or a free-text note was not read: the reader requires every amount in them
    to be in the text read (``hidden_text`` otherwise)."""
    from pypdf.generic import NameObject

    texts: list[str] = []
    annots = page.get("/Annots")
    annots = annots.get_object() if annots is not None else None
    for ref in annots or ():
        annot = ref.get_object()
        if not hasattr(annot, "get"):
            continue
        try:
            flags = int(annot.get("/F", 0))
        except (TypeError, ValueError):
            flags = 0
        if flags & _NOT_SHOWN:
            continue
        for key in ("/Contents", "/V") if annot.get("/Subtype") in ("/FreeText", "/Widget") else ():
            value = annot.get(key)
            if isinstance(value, str) and not isinstance(value, NameObject):  # a name is a check box's state
                texts.append(value)
        appearance = _appearance(annot)
        if appearance is not None:
            texts.append(page.extract_xform_text(appearance) or "")
    return texts


def _appearance(annot: Any) -> Any:
    """The normal appearance stream an annotation is drawn with (its ``/AS`` state's, where it has states)."""
    ap = annot.get("/AP")
    normal = ap.get_object().get("/N") if ap is not None and hasattr(ap.get_object(), "get") else None
    normal = normal.get_object() if normal is not None else None
    if normal is None or hasattr(normal, "get_data"):
        return normal
    state = annot.get("/AS")
    chosen = normal.get(state) if state is not None and hasattr(normal, "get") else None
    return chosen.get_object() if chosen is not None else None
