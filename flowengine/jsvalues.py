"""JavaScript value semantics, as relied upon by Node-RED's switch, change and template nodes.

Node-RED compares and converts message values with plain JavaScript operators: the
switch node's ``eq`` is ``a == b``, ``lt`` is ``a < b``, ``cont`` is ``(a + "")``,
``empty``/``nempty``/``istype`` inspect JS types, and the change node's ``change`` rule
is ``String.prototype.replace`` with a global ``RegExp``.  To behave the same on the
same data, this module emulates those operations on Python values:

===========================  ===========================
JavaScript                    Python
===========================  ===========================
``undefined``                 :data:`flowengine.paths.MISSING`
``null``                      ``None``
boolean                       ``bool``
number                        ``int`` / ``float`` (other ``numbers.Real`` too)
string                        ``str``
Array                         ``list`` (``tuple`` accepted)
Object                        ``dict`` (and any other object)
Buffer                        ``bytes`` / ``bytearray``
===========================  ===========================

Covered reference cases: SW-04, SW-05, SW-07, SW-12, SW-13, SW-24 (switch) and
CH-14 (change regex) in ``docs/reference/nodered-cases.md``.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from flowengine.paths import MISSING

__all__ = [
    "compile_js_regex",
    "inspect",
    "is_empty",
    "is_not_empty",
    "is_type",
    "js_ge",
    "js_gt",
    "js_le",
    "js_lt",
    "js_replace",
    "js_typeof",
    "loose_eq",
    "node_red_type",
    "parse_float",
    "strict_eq",
    "to_number",
    "to_string",
]

# Characters JavaScript's String.prototype.trim / StringToNumber treat as white space
# (WhiteSpace + LineTerminator).  Python's str.strip() differs (e.g. \x1c, \x85, \ufeff).
_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_MAX_SAFE_INTEGER = 2**53


# --------------------------------------------------------------------------- types


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_buffer(v: Any) -> bool:
    return isinstance(v, (bytes, bytearray, memoryview))


def _is_array(v: Any) -> bool:
    return isinstance(v, (list, tuple))


def js_typeof(v: Any) -> str:
    """JavaScript ``typeof v``: "undefined", "object" (also null, arrays and Buffers),
    "boolean", "number", "string" or "function"."""
    if v is MISSING:
        return "undefined"
    if isinstance(v, bool):
        return "boolean"
    if _is_number(v):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None or isinstance(v, (Mapping, list, tuple, bytes, bytearray, memoryview)):
        return "object"
    if callable(v):
        return "function"
    return "object"


def node_red_type(v: Any) -> str:
    """The type category Node-RED editors and the switch ``istype`` rule use.

    One of "string", "number", "boolean", "array", "buffer", "object", "null",
    "undefined".  NaN counts as "number" here; :func:`is_type` applies the switch
    node's extra rule that NaN is not a number.
    """
    if v is MISSING:
        return "undefined"
    if v is None:
        return "null"
    if _is_array(v):
        return "array"
    if _is_buffer(v):
        return "buffer"
    kind = js_typeof(v)
    return "object" if kind == "function" else kind


def is_type(v: Any, type_name: str) -> bool:
    """The switch node's ``istype`` rule (SW-13).

    "json" means ``JSON.parse(v)`` succeeds, and ``JSON.parse`` converts a non-string
    argument with ``String(v)`` first (so numbers, booleans and null pass too).
    "number" rejects NaN but accepts Infinity; "object" excludes arrays, Buffers and null.
    """
    if type_name == "json":
        return _json_parses(v)
    if type_name == "number":
        return _is_number(v) and not math.isnan(v)
    return node_red_type(v) == type_name


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_parses(v: Any) -> bool:
    try:
        # JS JSON.parse rejects NaN/Infinity, which Python's json accepts by default.
        json.loads(to_string(v), parse_constant=_reject_constant)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return False
    return True


# --------------------------------------------------------------------------- String(v)


def to_string(v: Any) -> str:
    """JavaScript ``String(v)``.

    ``True`` -> "true", ``None`` -> "null", MISSING -> "undefined", ``1.0`` -> "1",
    ``1e21`` -> "1e+21", NaN -> "NaN", lists -> elements joined by "," (null and
    undefined as ""), dicts -> "[object Object]", bytes -> UTF-8 text (invalid bytes
    replaced, like ``Buffer.toString()``).
    """
    return _to_string(v, set())


def _to_string(v: Any, seen: set[int]) -> str:
    if isinstance(v, str):
        return v
    if v is MISSING:
        return "undefined"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if _is_number(v):
        return _number_to_string(v)
    if _is_array(v):
        return _join_array(v, seen)
    if _is_buffer(v):
        return bytes(v).decode("utf-8", errors="replace")
    if isinstance(v, Mapping):
        return "[object Object]"
    return str(v)


def _join_array(items: list[Any] | tuple[Any, ...], seen: set[int]) -> str:
    # Array.prototype.join: null/undefined become "", and a cyclic reference
    # contributes "" instead of recursing forever (what engines do in practice).
    if id(items) in seen:
        return ""
    seen.add(id(items))
    try:
        return ",".join(
            "" if item is None or item is MISSING else _to_string(item, seen) for item in items
        )
    finally:
        seen.discard(id(items))


def _number_to_string(x: float) -> str:
    """JavaScript Number::toString for ints and floats."""
    if isinstance(x, int):
        if abs(x) < 10**21:
            return str(x)  # exact; JS would only switch to exponent form from 1e21
        try:
            x = float(x)
        except OverflowError:
            return "Infinity" if x > 0 else "-Infinity"
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"  # also for -0
    if x < 0:
        return "-" + _number_to_string(-x)
    if x.is_integer() and x < 1e21:
        return str(int(x))
    return _format_float(x)


def _format_float(x: float) -> str:
    """Shortest round-trip digits placed as ECMAScript Number::toString does."""
    # repr() gives the shortest round-trip digits, like JS; Decimal splits them.
    _, digit_tuple, exponent = Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = int(exponent) + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{sign}{abs(e)}"


# --------------------------------------------------------------------------- util.inspect(v)

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_INSPECT_DEPTH = 2  # util.inspect's default depth
_BREAK_LENGTH = 80


def inspect(v: Any) -> str:
    """Node.js ``util.inspect(v)`` for message values (what Node-RED's debug node shows in its
    status for a value that is not a string): ``{ a: 1, b: 'x' }``, ``[ 1, 2 ]``,
    ``<Buffer 68 69>``, nesting past depth 2 as ``[Object]``/``[Array]``. A value whose one-line
    form is too long for 80 columns is laid out one entry per line, as Node.js does."""
    return _inspect(v, 0, 0)


def _inspect(v: Any, depth: int, indent: int) -> str:
    if v is MISSING:
        return "undefined"
    if isinstance(v, str):
        return _quote(v) if depth else v
    if v is None or isinstance(v, bool) or _is_number(v):
        return _to_string(v, set())
    if _is_buffer(v):
        data = bytes(v)
        more = f" ... {len(data) - 50} more bytes" if len(data) > 50 else ""
        return "<Buffer" + "".join(f" {b:02x}" for b in data[:50]) + more + ">"
    if _is_array(v):
        if not v:
            return "[]"
        if depth > _INSPECT_DEPTH:
            return "[Array]"
        entries = [_inspect(item, depth + 1, indent + 2) for item in v]
        return _wrap("[", "]", entries, indent)
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        if depth > _INSPECT_DEPTH:
            return "[Object]"
        entries = [f"{k if _IDENTIFIER.match(str(k)) else _quote(str(k))}: "
                   f"{_inspect(item, depth + 1, indent + 2)}" for k, item in v.items()]
        return _wrap("{", "}", entries, indent)
    return str(v)


def _wrap(open_: str, close: str, entries: list[str], indent: int) -> str:
    # Node.js keeps an object on one line when its entries fit in breakLength (80) columns.
    start = len(entries) + indent + len(open_) + 10
    total = sum(len(e) for e in entries) + len(entries) + start
    if total <= _BREAK_LENGTH and not any("\n" in e for e in entries):
        return f"{open_} {', '.join(entries)} {close}"
    pad = " " * (indent + 2)
    return f"{open_}\n{pad}" + f",\n{pad}".join(entries) + f"\n{' ' * indent}{close}"


def _quote(text: str) -> str:
    quote = "'" if "'" not in text else ('"' if '"' not in text else "`")
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return f"{quote}{escaped}{quote}"


# --------------------------------------------------------------------------- Number(v)

_DECIMAL_LITERAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RADIX_LITERAL = {
    "x": (16, re.compile(r"[0-9a-fA-F]+")),
    "o": (8, re.compile(r"[0-7]+")),
    "b": (2, re.compile(r"[01]+")),
}


def to_number(v: Any) -> int | float:
    """JavaScript ``Number(v)``.

    "" and white space -> 0, " 1 " -> 1, "1.0" -> 1, "0x10" -> 16, "abc" -> NaN,
    True -> 1, None -> 0, MISSING -> NaN, [] -> 0, [5] -> 5, dict -> NaN.
    Integral results are returned as ``int`` (within 2**53), others as ``float``.
    """
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return _normalise_number(v)
    if isinstance(v, str):
        return _string_to_number(v)
    if v is None:
        return 0
    if v is MISSING or isinstance(v, Mapping):
        return math.nan
    if _is_array(v) or _is_buffer(v):
        return _string_to_number(to_string(v))  # ToPrimitive via toString()
    if _is_number(v):
        return _normalise_number(float(v))
    return math.nan


def _normalise_number(x: float) -> int | float:
    """``int`` for integral values within 2**53; NaN, infinities, fractions and -0.0
    (whose sign JS keeps) stay ``float``."""
    is_negative_zero = x == 0 and math.copysign(1.0, x) < 0
    if x.is_integer() and abs(x) <= _MAX_SAFE_INTEGER and not is_negative_zero:
        return int(x)
    return x


def _string_to_number(text: str) -> int | float:
    s = text.strip(_JS_WHITESPACE)
    if not s:
        return 0
    if s in ("Infinity", "+Infinity"):
        return math.inf
    if s == "-Infinity":
        return -math.inf
    if len(s) > 2 and s[0] == "0" and s[1].lower() in _RADIX_LITERAL:
        base, allowed = _RADIX_LITERAL[s[1].lower()]
        return int(s[2:], base) if allowed.fullmatch(s[2:]) else math.nan
    if _DECIMAL_LITERAL.fullmatch(s):
        # The regex rules out what float() would also accept ("inf", "nan", "1_0").
        return _normalise_number(float(s))
    return math.nan


# --------------------------------------------------------------------------- equality


def _kind(v: Any) -> str:
    """Type for the equality algorithms: functions are objects there."""
    if v is None:
        return "null"
    kind = js_typeof(v)
    return "object" if kind == "function" else kind


def _to_primitive(v: Any) -> Any:
    """ToPrimitive for the values this module models (objects -> their toString())."""
    if _kind(v) == "object":
        return to_string(v)
    return v


def strict_eq(a: Any, b: Any) -> bool:
    """JavaScript ``a === b``: same type and value; objects, arrays and Buffers by
    identity; NaN is never equal to itself."""
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind == "object":
        return a is b
    if kind in ("null", "undefined"):
        return True
    return bool(a == b)  # NaN != NaN and 0 == -0 hold for Python numbers too


def loose_eq(a: Any, b: Any) -> bool:
    """JavaScript ``a == b`` (abstract equality), used by the switch ``eq`` rule.

    null == undefined; number vs string compares numbers; a boolean is converted to a
    number first; an object or array compared with a primitive uses its string form;
    two objects compare by identity; NaN equals nothing.
    """
    ka, kb = _kind(a), _kind(b)
    if ka == kb:
        return strict_eq(a, b)
    nullish = ("null", "undefined")
    if ka in nullish or kb in nullish:
        return ka in nullish and kb in nullish
    if ka == "boolean":
        return loose_eq(int(a), b)
    if kb == "boolean":
        return loose_eq(a, int(b))
    if ka == "number" and kb == "string":
        return bool(a == to_number(b))
    if ka == "string" and kb == "number":
        return bool(to_number(a) == b)
    if ka == "object":
        return loose_eq(_to_primitive(a), b)
    if kb == "object":
        return loose_eq(a, _to_primitive(b))
    return False


# --------------------------------------------------------------------------- relations


def _has_astral(s: str) -> bool:
    return not s.isascii() and any(ord(c) > 0xFFFF for c in s)


def _utf16(s: str) -> bytes:
    # Big-endian UTF-16 bytes order exactly like JS compares code units.
    return s.encode("utf-16-be", errors="surrogatepass")


def _relational(a: Any, b: Any, number_op: Callable[[Any, Any], bool]) -> bool:
    pa, pb = _to_primitive(a), _to_primitive(b)
    if isinstance(pa, str) and isinstance(pb, str):
        if _has_astral(pa) or _has_astral(pb):
            return number_op(_utf16(pa), _utf16(pb))
        return number_op(pa, pb)
    # Any NaN (e.g. from undefined or "abc") makes every comparison false.
    return number_op(to_number(pa), to_number(pb))


def js_lt(a: Any, b: Any) -> bool:
    """JavaScript ``a < b``: two strings compare by UTF-16 code units, anything else
    as numbers (undefined and non-numeric strings are NaN, so the result is false)."""
    return _relational(a, b, lambda x, y: x < y)


def js_le(a: Any, b: Any) -> bool:
    """JavaScript ``a <= b`` (false whenever a NaN is involved)."""
    return _relational(a, b, lambda x, y: x <= y)


def js_gt(a: Any, b: Any) -> bool:
    """JavaScript ``a > b``."""
    return _relational(a, b, lambda x, y: x > y)


def js_ge(a: Any, b: Any) -> bool:
    """JavaScript ``a >= b``."""
    return _relational(a, b, lambda x, y: x >= y)


# --------------------------------------------------------------------------- empty


def is_empty(v: Any) -> bool:
    """The switch ``empty`` rule (SW-12): a string, array or Buffer of length 0, or an
    object without keys.  null, undefined, numbers and booleans are not empty."""
    if isinstance(v, str) or _is_array(v) or _is_buffer(v) or isinstance(v, Mapping):
        return len(v) == 0
    return False


def is_not_empty(v: Any) -> bool:
    """The switch ``nempty`` rule (SW-12): a string, array or Buffer with content, or an
    object with keys.  null, undefined, numbers and booleans are neither empty nor
    not-empty.  Other Python objects count as non-empty (they have content)."""
    if isinstance(v, str) or _is_array(v) or _is_buffer(v) or isinstance(v, Mapping):
        return len(v) != 0
    return _kind(v) == "object" and v is not None


# --------------------------------------------------------------------------- RegExp

_QUANTIFIER = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_NAMED_GROUP = re.compile(r"\(\?<([^>=!][^>]*)>")
# JS \w, \d, \b are ASCII-only; Python's are Unicode-aware unless scoped with (?a:...).
_ASCII_CLASS_ESCAPES = "dDwWbB"
_CLASS_EXPANSIONS = {"d": "0-9", "w": "A-Za-z0-9_"}
# Escapes whose meaning JS and Python share (besides the ones handled specially).
_SHARED_ESCAPES = "fnrtvsS"
_JS_DOT = r"[^\n\r\u2028\u2029]"  # JS '.' stops at all four line terminators


class _RegexTranslator:
    """Rewrites a JavaScript RegExp source into an equivalent Python pattern.

    Handles the common differences: named groups and backreferences, ASCII-only
    ``\\d \\w \\b``, ``.`` and ``$`` semantics, ``[^]``/``[]``, identity escapes such as
    ``\\e`` or ``\\/``, ``\\cX``, and Python-only syntax that JS rejects (possessive
    quantifiers, atomic groups, ``{,n}``).
    """

    def __init__(self, source: str) -> None:
        self.src = source
        self.i = 0
        self.out: list[str] = []
        self.after_quantifier = False  # JS: a quantifier cannot follow a quantifier
        self.lazy_taken = False  # whether that quantifier already has its lazy '?'

    def translate(self) -> str:
        while self.i < len(self.src):
            self._step()
        return "".join(self.out)

    def _fail(self, reason: str) -> ValueError:
        return ValueError(f"Invalid regular expression /{self.src}/: {reason}")

    def _emit(self, text: str, *, quantifier: bool = False) -> None:
        if quantifier and self.after_quantifier:
            raise self._fail("Nothing to repeat")
        self.out.append(text)
        self.after_quantifier = quantifier
        self.lazy_taken = False

    def _step(self) -> None:
        src, i = self.src, self.i
        c = src[i]
        if c == "\\":
            self._escape()
        elif c == "[":
            self._char_class()
        elif c in "*+?":
            if c == "?" and self.after_quantifier and not self.lazy_taken:
                self.out.append("?")  # lazy modifier, e.g. a*? or a??
                self.lazy_taken = True
                self.i += 1
                return
            self._emit(c, quantifier=True)
            self.i += 1
        elif c == "{":
            match = _QUANTIFIER.match(src, i)
            if match:
                self._emit(match.group(), quantifier=True)
                self.i = match.end()
            else:
                self._emit(r"\{")  # JS (Annex B) treats a stray '{' literally
                self.i += 1
        elif c == "(":
            self._group()
        elif c == ".":
            self._emit(_JS_DOT)
            self.i += 1
        elif c == "$":
            self._emit(r"\Z")  # end of input only (Python's $ also matches before a final \n)
            self.i += 1
        else:
            self._emit(c)
            self.i += 1

    def _group(self) -> None:
        src, i = self.src, self.i
        if src.startswith("(?>", i):
            raise self._fail("Invalid group")
        match = _NAMED_GROUP.match(src, i)
        if match:
            self._emit(f"(?P<{match.group(1)}>")
            self.i = match.end()
            return
        self._emit("(")
        self.i += 1

    def _escape(self) -> None:
        src, i = self.src, self.i
        if i + 1 >= len(src):
            raise self._fail("\\ at end of pattern")
        c = src[i + 1]
        self.i += 2
        if c in _ASCII_CLASS_ESCAPES:
            self._emit(f"(?a:\\{c})")
        elif c == "k" and src.startswith("<", self.i):
            end = src.find(">", self.i)
            if end == -1:
                raise self._fail("Invalid named reference")
            self._emit(f"(?P={src[self.i + 1 : end]})")
            self.i = end + 1
        else:
            self._emit(self._common_escape(c))

    def _common_escape(self, c: str) -> str:
        """An escape valid both outside and inside a character class (after the ``\\``)."""
        src = self.src
        if c == "c" and self.i < len(src) and src[self.i].isascii() and src[self.i].isalpha():
            letter = src[self.i]
            self.i += 1
            return f"\\x{ord(letter) % 32:02x}"
        if c == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", src[self.i : self.i + 2]):
            self.i += 2
            return "\\x" + src[self.i - 2 : self.i]
        if c == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", src[self.i : self.i + 4]):
            self.i += 4
            return "\\u" + src[self.i - 4 : self.i]
        if c in "0123456789" or c in _SHARED_ESCAPES:
            return "\\" + c
        # Identity escape (\/, \-, and in JS even \e or \a mean the character itself).
        return re.escape(c)

    def _char_class(self) -> None:
        src = self.src
        if src.startswith("[^]", self.i):
            self._emit(r"[\s\S]")  # JS: any character
            self.i += 3
            return
        if src.startswith("[]", self.i):
            self._emit("(?!)")  # JS: matches nothing
            self.i += 2
            return
        parts = ["["]
        self.i += 1
        if src.startswith("^", self.i):
            parts.append("^")
            self.i += 1
        while self.i < len(src) and src[self.i] != "]":
            parts.append(self._class_atom())
        if self.i >= len(src):
            raise self._fail("Unterminated character class")
        self.i += 1
        parts.append("]")
        self._emit("".join(parts))

    def _class_atom(self) -> str:
        src = self.src
        c = src[self.i]
        self.i += 1
        if c != "\\":
            # Escape characters Python might read as set operations ([[, &&, ~~, ||).
            return "\\" + c if c in "[&~|" else c
        if self.i >= len(src):
            raise self._fail("\\ at end of pattern")
        e = src[self.i]
        self.i += 1
        if e in _CLASS_EXPANSIONS:
            return _CLASS_EXPANSIONS[e]
        if e == "b":
            return r"\x08"  # backspace inside a class, in both languages
        if e in "DWB":
            return "\\" + e
        return self._common_escape(e)


@lru_cache(maxsize=512)
def compile_js_regex(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile JavaScript RegExp source ``pattern`` (no slashes/flags) for Python ``re``.

    Raises ``ValueError`` naming the pattern when it is invalid in JavaScript or
    cannot be translated (e.g. ``\\+**+`` -> "Nothing to repeat").
    """
    translated = _RegexTranslator(pattern).translate()
    flags = re.IGNORECASE if ignore_case else 0
    try:
        return re.compile(translated, flags)
    except re.error as err:
        raise ValueError(f"Invalid regular expression /{pattern}/: {err}") from None


@lru_cache(maxsize=512)
def _literal_regex(text: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(re.escape(text), re.IGNORECASE if ignore_case else 0)


# Replacement template pieces: a literal string or a callable taking the match.
_Piece = str | Callable[[re.Match[str]], str]


def _group_text(index: int | str) -> Callable[[re.Match[str]], str]:
    return lambda m: m.group(index) or ""


def _text_before(match: re.Match[str]) -> str:
    return match.string[: match.start()]


def _text_after(match: re.Match[str]) -> str:
    return match.string[match.end() :]


def _parse_replacement(template: str, pattern: re.Pattern[str]) -> list[_Piece]:
    """Split a JS replacement string into pieces (ECMAScript GetSubstitution)."""
    pieces: list[_Piece] = []
    literal: list[str] = []
    group_count = pattern.groups
    i = 0
    while i < len(template):
        c = template[i]
        nxt = template[i + 1] if i + 1 < len(template) else ""
        piece: _Piece | None = None
        width = 2
        if c != "$" or not nxt:
            pass
        elif nxt == "$":
            piece = "$"
        elif nxt == "&":
            piece = _group_text(0)
        elif nxt == "`":
            piece = _text_before
        elif nxt == "'":
            piece = _text_after
        elif nxt.isascii() and nxt.isdigit():
            piece, width = _numbered_group(template, i, group_count)
        elif nxt == "<" and pattern.groupindex:
            end = template.find(">", i + 2)
            if end != -1:
                name = template[i + 2 : end]
                known = name in pattern.groupindex
                piece = _group_text(name) if known else ""
                width = end + 1 - i
        if piece is None:
            literal.append(c)
            i += 1
            continue
        if isinstance(piece, str):
            literal.append(piece)
        else:
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append(piece)
        i += width
    if literal:
        pieces.append("".join(literal))
    return pieces


def _numbered_group(template: str, i: int, group_count: int) -> tuple[_Piece | None, int]:
    """``$n`` / ``$nn`` at ``template[i]``: (piece, consumed width) or (None, 0)."""
    two = template[i + 1 : i + 3]
    if len(two) == 2 and two.isascii() and two.isdigit() and 1 <= int(two) <= group_count:
        return _group_text(int(two)), 3
    one = int(template[i + 1])
    if 1 <= one <= group_count:
        return _group_text(one), 2
    return None, 0  # "$0" or a group that does not exist stays literal


def js_replace(
    text: Any,
    pattern: str,
    replacement: Any,
    *,
    regex: bool,
    ignore_case: bool = False,
) -> str:
    """``text.replace(new RegExp(pattern, "g"), replacement)`` as the change node does.

    With ``regex=False`` every literal occurrence of ``pattern`` is replaced (Node-RED
    escapes the string into a global RegExp, so ``$&`` etc. still work in the
    replacement).  ``replacement`` uses JS syntax: ``$1``..``$99``, ``$&``, ``$$``,
    ``$```, ``$'``, ``$<name>``.  Non-string ``text``/``replacement`` are converted with
    :func:`to_string`.  Raises ``ValueError`` for an invalid regex.
    """
    subject = text if isinstance(text, str) else to_string(text)
    template = replacement if isinstance(replacement, str) else to_string(replacement)
    compiled = (
        compile_js_regex(pattern, ignore_case) if regex else _literal_regex(pattern, ignore_case)
    )
    if "$" not in template:
        return compiled.sub(lambda _m: template, subject)
    pieces = _parse_replacement(template, compiled)

    def expand(match: re.Match[str]) -> str:
        return "".join(p if isinstance(p, str) else p(match) for p in pieces)

    return compiled.sub(expand, subject)


_FLOAT_PREFIX = re.compile(r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def parse_float(value: Any) -> float | None:
    """JavaScript's ``parseFloat``: a number, or the number a string starts with; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return None if math.isnan(value) else float(value)
    if isinstance(value, str):
        match = _FLOAT_PREFIX.match(value)
        if match:
            return float(match.group())
    return None
