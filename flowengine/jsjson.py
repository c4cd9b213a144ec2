"""``JSON.parse`` and ``JSON.stringify`` for message values: :func:`loads` and :func:`dumps`.

:func:`dumps` writes ``JSON.stringify``'s output: no spaces, non-ASCII kept, integral floats
without ``.0``, JavaScript's exponent forms, NaN and infinities as ``null``, bytes as a Buffer's
``{"type": "Buffer", "data": [...]}``, dates as ``Date.prototype.toJSON``.

The json node and the websocket nodes sit on the hot path of most flows, so serialization takes
orjson (or the C encoder of the stdlib ``json`` module) and only falls back to the
JavaScript-exact writer below when the fast output shows a float written the Python way (``5.0``,
``1e-05``) or the value holds NaN or an infinity. Plugins use it through :mod:`flowengine.js`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from flowengine.jsvalues import to_string
from flowengine.paths import MISSING


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity/-Infinity; JSON.parse does not.
    raise ValueError(f"Unexpected token '{name}': not valid JSON")


def _to_json(value: Any) -> Any:
    """What JSON.stringify would make of a non-JSON Python value (the encoder's ``default``)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "Buffer", "data": list(bytes(value))}  # Buffer.prototype.toJSON
    if isinstance(value, datetime):
        # Date.prototype.toJSON: UTC, milliseconds, "Z"; a naive datetime is local time.
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):  # PostgreSQL numeric columns, avg()
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if value is MISSING:
        return None
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                            default=_to_json)
_encode_string = json.JSONEncoder(ensure_ascii=False).encode  # a str -> its JSON literal

# orjson is several times faster than the stdlib on both sides (this node is on every signaling
# message); the stdlib stays the fallback for what orjson refuses (ints beyond 64 bits, circular
# data) and the source of error texts. orjson writes NaN/infinity as null, as JSON.stringify.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _compact(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_to_json, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _COMPACT.encode(value)


# A float as Python's repr writes it where JavaScript would not: integral ("5.0", "-0.0") or in
# exponent form ("1e-05", "1e+16"). Two patterns with a literal start, because the regex engine
# then skips ahead quickly (one alternation is ~20x slower on long strings). They may match
# inside a string too; that only costs the exact writer's time.
_PY_INTEGRAL_FLOAT = re.compile(r"\.0(?=[,\]}]|$)")
_PY_EXPONENT = re.compile(r"e[-+][0-9]")


class LoneSurrogateError(ValueError):
    """JSON text whose ``\\uD800``-style escape decodes to a lone surrogate: a string no UTF-8
    text can hold, which every later step (a websocket frame, a database row) would fail on."""


def loads(text: str | bytes | bytearray) -> Any:
    """``JSON.parse``: surrounding whitespace allowed, NaN/Infinity rejected, bytes as UTF-8.

    Unlike ``JSON.parse``, a string escape that decodes to a lone surrogate is refused
    (:class:`LoneSurrogateError`): the text is refused where it enters, not where it leaves.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # big ints, bad UTF-8, lone surrogates or invalid JSON: the stdlib decides
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", errors="replace")
    try:
        value = _DECODER.decode(text)
    except RecursionError:  # deeper than the interpreter's limit (orjson stops at 1024)
        raise ValueError("JSON nested too deeply") from None
    try:  # orjson refuses lone surrogates; find out whether that was the reason
        _COMPACT.encode(value).encode()
    except UnicodeEncodeError as exc:
        char = exc.object[exc.start]
        raise LoneSurrogateError(
            f"lone surrogate \\u{ord(char):04x} in a string: text must be valid Unicode"
        ) from None
    return value


def dumps(value: Any, pretty: bool = False) -> str:
    """``JSON.stringify(value)``, or ``JSON.stringify(value, null, 4)`` with ``pretty``.

    Raises ValueError for a circular structure, TypeError for a value with no JSON form.
    """
    if pretty:
        return _js_dumps(value, "    ")
    try:
        text = _compact(value)
    except ValueError:  # circular data, or NaN in the stdlib fallback
        return _js_dumps(value, "")
    if _PY_INTEGRAL_FLOAT.search(text) is None and _PY_EXPONENT.search(text) is None:
        return text
    return _js_dumps(value, "")


def _js_dumps(value: Any, step: str) -> str:
    """The exact writer, with JavaScript number formatting. ``step`` is one level of indent
    (``"    "``) for pretty output, ``""`` for compact output."""
    out: list[str] = []
    _write(value, out, step, "\n", set())
    return "".join(out)


def _write(value: Any, out: list[str], step: str, indent: str, active: set[int]) -> None:
    if isinstance(value, str):
        out.append(_encode_string(value))
    elif value is None or value is MISSING:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(to_string(value) if math.isfinite(value) else "null")
    elif isinstance(value, dict | list | tuple):
        _write_container(value, out, step, indent, active)
    else:
        _write(_to_json(value), out, step, indent, active)


def _write_container(value: dict[Any, Any] | list[Any] | tuple[Any, ...], out: list[str],
                     step: str, indent: str, active: set[int]) -> None:
    if id(value) in active:
        raise ValueError("Circular reference detected")
    active.add(id(value))
    is_dict = isinstance(value, dict)
    inner = indent + step
    items: list[str] = []
    if isinstance(value, dict):
        separator = ": " if step else ":"
        for key, item in value.items():
            if item is MISSING:
                continue  # JSON.stringify leaves out undefined properties
            part: list[str] = [_encode_string(_key_text(key)), separator]
            _write(item, part, step, inner, active)
            items.append("".join(part))
    else:
        for item in value:
            part = []
            _write(item, part, step, inner, active)
            items.append("".join(part))
    active.discard(id(value))
    opening, closing = ("{", "}") if is_dict else ("[", "]")
    if not items:
        out.append(opening + closing)
    elif step:
        out.append(opening + inner + ("," + inner).join(items) + indent + closing)
    else:
        out.append(opening + ",".join(items) + closing)


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return to_string(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
