"""Node-RED property expressions (``payload.items[0].name``) for plain Python messages.

This module mirrors the behaviour of Node-RED's ``@node-red/util`` helpers
``normalisePropertyExpression``, ``getMessageProperty`` / ``getObjectProperty`` and
``setObjectProperty`` (see ``docs/reference/nodered-runtime.md`` §5):

* Grammar: ``a.b.c``, ``a["b c"]``, ``a['b.c']``, ``a[0]`` and nested message
  references ``a[msg.topic]``.  A leading ``msg.`` is stripped.  ``a[]``, ``.a``,
  ``a.``, ``a b``, ``a[b]`` and ``""`` are invalid.
* A purely numeric segment written with a dot in the *middle* of an expression
  (``a.0.c``) becomes an array index, but a numeric *last* segment after a dot
  stays a string key: setting ``foo.0`` on ``{}`` gives ``{"foo": {"0": v}}``
  while ``foo[0]`` gives ``{"foo": [v]}``.
* Reading a missing leaf gives ``undefined`` (:data:`MISSING` here); reading a child
  of a missing (or null) parent throws in Node-RED, which :meth:`Path.get` reproduces
  with ``strict=True``.
* Setting creates missing intermediate containers (an object when the next key is a
  string, an array when it is a number) and refuses to write beneath a primitive.

Values follow JavaScript conventions: :data:`MISSING` is ``undefined``, ``None`` is
``null``, dicts are objects, lists are arrays, ``bytes`` are Buffers.  JavaScript
object keys are always strings, so an integer key used on a dict is looked up (and
stored) as its decimal string, and an all-digit string key indexes a list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

__all__ = [
    "MISSING",
    "MsgRef",
    "Path",
    "PathError",
    "delete_path",
    "get_path",
    "parse_path",
    "set_path",
]


class _Missing:
    """Type of :data:`MISSING`, the stand-in for JavaScript ``undefined``."""

    _instance: _Missing | None = None
    __slots__ = ()

    def __new__(cls) -> _Missing:
        # A true singleton, so that ``value is MISSING`` is always the right test.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> _Missing:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Missing:
        return self

    def __reduce__(self) -> str:
        # Pickles by reference to the module-level name, preserving identity.
        return "MISSING"


MISSING: Final = _Missing()
"""JavaScript ``undefined``: the property is absent.  Distinct from ``None`` (``null``)."""


class PathError(ValueError):
    """An invalid property expression (Node-RED's ``INVALID_EXPR``), or, with
    ``strict=True``, an attempt to read a child of a missing/null parent."""


@dataclass(frozen=True)
class MsgRef:
    """A nested message reference used as a key, e.g. the ``msg.topic`` in
    ``payload[msg.topic]``; it is evaluated against the message when the path is used.

    ``segments`` is the parsed inner path (already without the leading ``msg.``);
    ``expr`` is the inner source text, kept for error messages only.
    """

    segments: tuple[str | int | MsgRef, ...]
    expr: str = field(default="", compare=False)

    def __repr__(self) -> str:
        return f"MsgRef({self.segments!r})"


Segment = str | int | MsgRef
Key = str | int

# After a '.', the next character must start an identifier (Node-RED: /[a-z0-9\$\_]/i).
_IDENT_START = re.compile(r"[A-Za-z0-9$_]")
# JavaScript's /^\d+$/ only accepts ASCII digits (Python's \d would accept any Unicode digit).
_DIGITS = re.compile(r"[0-9]+")


# --------------------------------------------------------------------------- parsing


def parse_path(expr: str) -> tuple[str | int | MsgRef, ...]:
    """Parse a Node-RED property expression into its segments.

    ``"msg.payload.items[0].name"`` -> ``("payload", "items", 0, "name")``;
    ``"payload[msg.topic]"`` -> ``("payload", MsgRef(("topic",)))``.
    A leading ``msg.`` is stripped only when something follows it.
    Raises :class:`PathError` for an invalid expression.  Results are cached.
    """
    if not isinstance(expr, str):
        raise PathError(f"Invalid property expression {expr!r}: not a string")
    return _parse_cached(expr)


@lru_cache(maxsize=4096)
def _parse_cached(expr: str) -> tuple[Segment, ...]:
    # Same rule as getMessageProperty: only the exact prefix "msg." is stripped.
    body = expr[4:] if expr.startswith("msg.") and len(expr) > 4 else expr
    return _parse(body, expr)


def _invalid(original: str, reason: str) -> PathError:
    return PathError(f"Invalid property expression {original!r}: {reason}")


def _parse(text: str, original: str) -> tuple[Segment, ...]:
    """The state machine of ``normalisePropertyExpression`` (positions refer to ``text``)."""
    length = len(text)
    if length == 0:
        raise _invalid(original, "zero-length")
    parts: list[Segment] = []
    start = 0
    in_string = in_box = False
    quote = ""
    i = 0
    while i < length:
        c = text[i]
        if in_string:
            if c == quote:
                _end_quoted(text, original, start, i, in_box, parts)
                start = i + 1
                in_string = False
        elif c in "'\"":
            if i != start:
                raise _invalid(original, f"unexpected {c} at position {i}")
            in_string, quote, start = True, c, i + 1
        elif c == ".":
            _check_dot(text, original, i)
            if start != i:
                word = text[start:i]
                # Numeric segments in the middle become array indexes (Node-RED quirk).
                parts.append(int(word) if _DIGITS.fullmatch(word) else word)
            start = i + 1
        elif c == "[":
            if i == 0:
                raise _invalid(original, "unexpected [ at position 0")
            if start != i:
                parts.append(text[start:i])  # no numeric conversion before '['
            if i == length - 1:
                raise _invalid(original, "unterminated expression")
            if text.startswith(("msg.", "msg["), i + 1):
                close = _matching_bracket(text, original, i)
                parts.append(_nested_ref(text[i + 1 : close], original, i + 1))
                i = start = close + 1
                continue
            if text[i + 1] not in "'\"0123456789":
                raise _invalid(original, f"unexpected {text[i + 1]} at position {i + 1}")
            start, in_box = i + 1, True
        elif c == "]":
            if not in_box:
                raise _invalid(original, f"unexpected ] at position {i}")
            if start != i:
                word = text[start:i]
                if not _DIGITS.fullmatch(word):
                    raise _invalid(original, f"unexpected array expression at position {start}")
                parts.append(int(word))
            start, in_box = i + 1, False
        elif c == " ":
            raise _invalid(original, f"unexpected ' ' at position {i}")
        i += 1
    if in_box or in_string:
        raise _invalid(original, "unterminated expression")
    if start < length:
        parts.append(text[start:])  # a trailing numeric segment stays a string key
    return tuple(parts)


def _check_dot(text: str, original: str, i: int) -> None:
    if i == 0:
        raise _invalid(original, "unexpected . at position 0")
    if i == len(text) - 1:
        raise _invalid(original, "unterminated expression")
    if not _IDENT_START.match(text[i + 1]):
        raise _invalid(original, f"unexpected {text[i + 1]} at position {i + 1}")


def _end_quoted(
    text: str, original: str, start: int, i: int, in_box: bool, parts: list[Segment]
) -> None:
    """Handle the closing quote at ``i`` of a string that started at ``start``."""
    if i == start:
        raise _invalid(original, f"zero-length string at position {start}")
    parts.append(text[start:i])
    following = text[i + 1] if i + 1 < len(text) else ""
    if in_box and following != "]":
        raise _invalid(original, f"unexpected array expression at position {start}")
    if not in_box and following not in ("", "[", "."):
        raise _invalid(original, f"unexpected {following} expression at position {i + 1}")


def _matching_bracket(text: str, original: str, open_at: int) -> int:
    """Index of the ``]`` closing the ``[`` at ``open_at`` (brackets inside quotes ignored)."""
    depth = 1
    quote = ""
    for j in range(open_at + 1, len(text)):
        c = text[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
    raise _invalid(original, f"unmatched '[' at position {open_at}")


def _nested_ref(inner: str, original: str, position: int) -> MsgRef:
    try:
        return MsgRef(parse_path(inner), inner)
    except PathError as err:
        reason = f"invalid nested expression at position {position}: {err}"
        raise _invalid(original, reason) from None


# --------------------------------------------------------------------------- access helpers


def _array_index(key: Key) -> int | None:
    """The list index ``key`` denotes in JavaScript (``1`` or ``"1"``), else None."""
    if isinstance(key, int):
        return key
    if _DIGITS.fullmatch(key) and (key == "0" or key[0] != "0"):
        return int(key)
    return None


def _dict_key(d: Mapping[Any, Any], key: Key) -> Key:
    """The key of ``d`` that JavaScript property ``key`` names.

    JS object keys are strings, so ``0`` and ``"0"`` are the same property.  Prefer an
    existing key of either form (Python code may have stored an int key); otherwise
    use the JavaScript (string) form.
    """
    if key in d:
        return key
    if isinstance(key, int):
        return str(key)
    index = _array_index(key)
    if index is not None and index in d:
        return index
    return key


def _lookup(container: Any, key: Key) -> Any:
    """``container[key]`` with JavaScript semantics; MISSING when there is no such property."""
    # Fast paths for the overwhelmingly common cases (plain dict key, list index).
    container_type = type(container)
    if container_type is dict and key in container:
        return container[key]
    if container_type is list and type(key) is int:
        return container[key] if 0 <= key < len(container) else MISSING
    if isinstance(container, Mapping):
        return container.get(_dict_key(container, key), MISSING)
    if isinstance(container, (str, bytes, bytearray, list, tuple)):
        if key == "length":  # "abc".length, [1, 2].length, buf.length
            return len(container)
        index = _array_index(key)
        if index is not None and 0 <= index < len(container):
            return container[index]
    # Any other property of a primitive (or unknown object) is undefined in JS.
    return MISSING


def _is_container(value: Any) -> bool:
    """Whether a property may be created beneath ``value`` (a JS object, not a primitive)."""
    return isinstance(value, (MutableMapping, list))


def _assign(container: Any, key: Key, value: Any) -> bool:
    """``container[key] = value``; False when that is impossible."""
    if isinstance(container, MutableMapping):
        container[_dict_key(container, key)] = value
        return True
    if isinstance(container, list):
        index = _array_index(key)
        if index is None:
            return False  # a named property on an array: invisible in JSON, refuse
        if index >= len(container):
            # JS leaves holes up to the index; they serialise as null.
            container.extend([None] * (index + 1 - len(container)))
        container[index] = value
        return True
    return False


def _remove(container: Any, key: Key) -> bool:
    """Delete ``container[key]``; an array element is spliced out like Node-RED does."""
    if isinstance(container, MutableMapping):
        actual = _dict_key(container, key)
        if actual in container:
            del container[actual]
            return True
        return False
    if isinstance(container, list):
        index = _array_index(key)
        if index is not None and index < len(container):
            del container[index]
            return True
    return False


def _ref_key(value: Any) -> Key:
    """Turn the value of a nested ``[msg.x]`` reference into a property key (JS ToPropertyKey)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    return str(value)


# --------------------------------------------------------------------------- Path


class Path:
    """A compiled property expression.

    >>> msg = {"payload": {"items": [{"name": "a"}]}}
    >>> Path("payload.items[0].name").get(msg)
    'a'
    """

    __slots__ = ("_has_refs", "_key", "expr", "segments")

    def __init__(self, expr: str) -> None:
        self.expr: str = expr
        self.segments: tuple[Segment, ...] = parse_path(expr)
        # Hot path: a single plain key such as "payload" is just dict.get/dict[...]=.
        only = self.segments[0] if len(self.segments) == 1 else None
        self._key: str | None = (
            only if isinstance(only, str) and _array_index(only) is None else None
        )
        self._has_refs = any(isinstance(s, MsgRef) for s in self.segments)

    def __repr__(self) -> str:
        return f"Path({self.expr!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Path) and other.segments == self.segments

    def __hash__(self) -> int:
        return hash(self.segments)

    # -- public API

    def get(self, obj: Any, msg: Any = None, *, strict: bool = False) -> Any:
        """Return the value at this path in ``obj``, or :data:`MISSING` when absent.

        ``msg`` resolves nested ``[msg.x]`` references (defaults to ``obj``).  With
        ``strict=True`` reading beneath a missing or null parent, or an undefined nested
        reference, raises :class:`PathError` (Node-RED throws there); a missing leaf is
        still just :data:`MISSING`.
        """
        key = self._key
        if key is not None and type(obj) is dict:
            return obj.get(key, MISSING)
        keys = self._keys(obj if msg is None else msg, strict)
        if keys is None:
            return MISSING
        current = obj
        for part in keys:
            if current is MISSING or current is None:
                if strict:
                    what = "undefined" if current is MISSING else "null"
                    raise PathError(
                        f"Cannot read property {part!r} of {what} in expression {self.expr!r}"
                    )
                return MISSING
            current = _lookup(current, part)
        return current

    def set(self, obj: Any, value: Any, msg: Any = None) -> bool:
        """Set the value at this path, creating missing parents; return True on success.

        Missing intermediates become a dict when the following key is a string and a
        list when it is an int.  Returns False (and changes nothing) when a parent is a
        primitive or null, or a nested reference is undefined.  Setting :data:`MISSING`
        deletes the property, as ``setObjectProperty(..., undefined)`` does.
        """
        if value is MISSING:
            self.delete(obj, msg)
            return True
        key = self._key
        if key is not None and type(obj) is dict:
            obj[key] = value
            return True
        keys = self._keys(obj if msg is None else msg, strict=False)
        if keys is None:
            return False
        parent = obj
        for position, part in enumerate(keys[:-1]):
            child = _lookup(parent, part)
            if child is MISSING:
                child = {} if isinstance(keys[position + 1], str) else []
                if not _assign(parent, part, child):
                    return False
            elif not _is_container(child):
                return False  # cannot create a property beneath a primitive or null
            parent = child
        return _assign(parent, keys[-1], value)

    def delete(self, obj: Any, msg: Any = None) -> bool:
        """Delete the property at this path; return whether something was removed."""
        key = self._key
        if key is not None and type(obj) is dict:
            if key in obj:
                del obj[key]
                return True
            return False
        keys = self._keys(obj if msg is None else msg, strict=False)
        if keys is None:
            return False
        parent = obj
        for part in keys[:-1]:
            parent = _lookup(parent, part)
            if parent is MISSING:
                return False
        return _remove(parent, keys[-1])

    # -- internals

    def _keys(self, msg: Any, strict: bool) -> tuple[Key, ...] | None:
        """Concrete keys, with every MsgRef replaced by its value in ``msg``.

        None when a reference is undefined (Node-RED: "undefined reference"), or
        PathError in strict mode.
        """
        if not self._has_refs:
            return self.segments  # type: ignore[return-value]
        return _resolve_refs(self.segments, msg, self.expr, strict)


def _resolve_refs(
    segments: tuple[Segment, ...], msg: Any, expr: str, strict: bool
) -> tuple[Key, ...] | None:
    keys: list[Key] = []
    for segment in segments:
        if not isinstance(segment, MsgRef):
            keys.append(segment)
            continue
        inner = _resolve_refs(segment.segments, msg, expr, strict)
        value = MISSING if inner is None else _walk(msg, inner)
        if value is MISSING:
            if strict:
                raise PathError(
                    f"Invalid expression {expr!r}: undefined reference {segment.expr!r}"
                )
            return None
        keys.append(_ref_key(value))
    return tuple(keys)


def _walk(obj: Any, keys: tuple[Key, ...]) -> Any:
    current = obj
    for key in keys:
        if current is MISSING or current is None:
            return MISSING
        current = _lookup(current, key)
    return current


# --------------------------------------------------------------------------- convenience


@lru_cache(maxsize=4096)
def _compiled(expr: str) -> Path:
    return Path(expr)


def _path(expr: str) -> Path:
    if not isinstance(expr, str):
        raise PathError(f"Invalid property expression {expr!r}: not a string")
    return _compiled(expr)


def get_path(obj: Any, expr: str, default: Any = MISSING) -> Any:
    """Value of ``expr`` in ``obj`` (nested refs resolved against ``obj``), else ``default``."""
    value = _path(expr).get(obj)
    return default if value is MISSING else value


def set_path(obj: Any, expr: str, value: Any) -> bool:
    """Set ``expr`` in ``obj`` to ``value`` (see :meth:`Path.set`)."""
    return _path(expr).set(obj, value)


def delete_path(obj: Any, expr: str) -> bool:
    """Delete ``expr`` from ``obj``; return whether something was removed."""
    return _path(expr).delete(obj)
