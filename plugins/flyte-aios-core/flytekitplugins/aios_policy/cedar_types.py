"""Python values -> Cedar JSON values, checked against the Cedar schema (JSON form).

Typing is strict and happens before Cedar sees the request, so that every ill-typed attribute is a
deny with a reason naming the attribute: ``bool`` is not a number, a string is not a decimal (Cedar
itself would accept ``"12.5"`` for a decimal), NaN and infinities are refused.

Decimals: Cedar's ``decimal`` has four fractional digits. Floats are read through their shortest ``repr``
(the number the caller wrote); a value with more than four fractional digits is refused, never rounded:
no rounding direction is safe for every policy (rounding ``10000.00005`` down escapes the ``> 10000``
sign-off, rounding ``-0.00005`` up escapes the ``< 0`` forbid). Values beyond Cedar's range
(|x| >= 922337203685477) are refused; ``-0.0`` is zero and is sent as ``0.0000``.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

_Q = Decimal("0.0001")
_DECIMAL_MAX = Decimal("922337203685477")


class RequestError(ValueError):
    """A request does not fit the schema; the message names the attribute and the problem."""


def to_decimal_str(value: Any, where: str) -> str:
    """Cedar decimal literal (4 places) for an int/float/Decimal it represents exactly; raise RequestError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        msg = f"{where} must be a number (decimal), got {type(value).__name__} {value!r}"
        raise RequestError(msg)
    if isinstance(value, float) and not math.isfinite(value):
        msg = f"{where} must be a finite number, got {value!r}"
        raise RequestError(msg)
    d = Decimal(repr(value) if isinstance(value, float) else value)
    if not d.is_finite() or abs(d) >= _DECIMAL_MAX:
        msg = f"{where} is out of range for a Cedar decimal (finite, |x| < {_DECIMAL_MAX}): {value!r}"
        raise RequestError(msg)
    try:
        q = d.quantize(_Q)
    except InvalidOperation as e:
        msg = f"{where} is not a usable number: {value!r}"
        raise RequestError(msg) from e
    if q != d:
        msg = (
            f"{where} = {value!r} has more than 4 decimal places, which a Cedar decimal cannot hold; it is refused, "
            "not rounded (rounding could move it across a policy threshold): round it to 4 places before asking"
        )
        raise RequestError(msg)
    return f"{q.copy_abs() if q.is_zero() else q:.4f}"


def to_cedar(value: Any, typ: dict[str, Any], where: str) -> Any:
    """Convert ``value`` to Cedar JSON for schema type ``typ``; raise RequestError naming ``where``."""
    kind = typ.get("type")
    if kind == "String":
        if not isinstance(value, str):
            raise RequestError(f"{where} must be a string, got {type(value).__name__} {value!r}")
        return value
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise RequestError(f"{where} must be a boolean, got {type(value).__name__} {value!r}")
        return value
    if kind == "Long":
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
            raise RequestError(f"{where} must be a 64-bit integer, got {type(value).__name__} {value!r}")
        return value
    if kind == "Extension" and typ.get("name") == "decimal":
        return {"__extn": {"fn": "decimal", "arg": to_decimal_str(value, where)}}
    if kind == "Set":
        if not isinstance(value, list | tuple | set | frozenset):
            raise RequestError(f"{where} must be a list, got {type(value).__name__}")
        items = [to_cedar(v, typ["element"], f"{where}[]") for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if kind == "Record":
        if not isinstance(value, dict):
            raise RequestError(f"{where} must be a mapping, got {type(value).__name__}")
        return record_to_cedar(value, typ.get("attributes", {}), where)
    raise RequestError(f"{where} has schema type {typ!r}, which this pack does not convert")


def record_to_cedar(values: dict[str, Any], attributes: dict[str, Any], where: str) -> dict[str, Any]:
    """Convert a record: no unknown attribute, every required attribute present, each well typed."""
    unknown = sorted(set(values) - set(attributes))
    if unknown:
        declared = ", ".join(sorted(attributes)) or "none"
        raise RequestError(f"{where} has unexpected attribute(s) {unknown}; the schema declares: {declared}")
    out: dict[str, Any] = {}
    for name, typ in attributes.items():
        if name not in values or values[name] is None:
            if typ.get("required", True):
                raise RequestError(f"{where} is missing required attribute {name!r} ({_type_name(typ)})")
            continue
        out[name] = to_cedar(values[name], typ, f"{where}.{name}")
    return out


def _type_name(typ: dict[str, Any]) -> str:
    if typ.get("type") == "Extension":
        return str(typ.get("name"))
    if typ.get("type") == "Set":
        return f"Set<{_type_name(typ['element'])}>"
    return str(typ.get("type"))
