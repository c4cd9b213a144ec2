"""Node-RED typed values (``v``/``vt``, ``payload``/``payloadType``...) as flow-file values.

================  ================================================================
Node-RED type     flow file
================  ================================================================
``str``           the string (``"${NAME}"`` alone: ``{env: NAME}``, as Node-RED
                  substitutes whole-value references)
``num``           a number (``Number(v)``: ``""`` is 0)
``bool``          ``true`` only for ``"true"`` (any case), else ``false``
``json``          the parsed value (``{literal: ...}`` when it holds a one-key map
                  that would read as a reference)
``bin``           ``{bytes: [...]}``
``date``          ``{date: now}`` (ms), ``{date: iso}``
``env``           ``{env: NAME}``
``msg``           ``{msg: path}``
``flow``          ``{flow: key}`` (``#:(store)::key`` kept)
``global``        ``{global: key}``
``jsonata``       ``{jsonata: expr}``
================  ================================================================

Strings are also protected from the loader's ``${NAME}`` substitution, which Node-RED only
does for whole values: ``a ${X} b`` is written ``a $${X} b``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from flowengine.loader.envsubst import ENV_REFERENCE
from flowengine.values import REFERENCE_KINDS

# Node-RED's whole-value environment reference (flows/util.js EnvVarPropertyRE).
WHOLE_ENV = re.compile(r"^\$\{(\S+)\}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvText(str):
    """A string whose ``${NAME}`` references are meant for the loader: not escaped."""

    __slots__ = ()


class Unconvertible(ValueError):
    """A typed value with no flow-file form (e.g. a credential)."""


def escape_text(text: str) -> str:
    """``text`` as the loader will read it back unchanged: every ``${NAME}`` gets one more
    ``$`` (``$${NAME}`` is the loader's escape for a literal ``${NAME}``)."""
    if isinstance(text, EnvText) or "${" not in text:
        return str(text)
    return ENV_REFERENCE.sub(lambda m: "$" + m.group(0), text)


def protect(value: Any) -> Any:
    """Escape every string inside ``value`` (keys too), see :func:`escape_text`."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, dict):
        return {protect(k): protect(v) for k, v in value.items()}
    if isinstance(value, list):
        return [protect(v) for v in value]
    return value


def literal(value: Any) -> Any:
    """A plain value written so that the loader reads it as that value, never as a reference:
    bytes become ``{bytes: [...]}``, and a value holding a one-key map named like a reference
    (``{"msg": "x"}``) is wrapped in ``{literal: ...}``."""
    if isinstance(value, bytes | bytearray):
        return {"bytes": list(value)}
    if _has_reference_shape(value):
        return {"literal": value}
    return value


def _has_reference_shape(value: Any) -> bool:
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in REFERENCE_KINDS:
            return True
        return any(_has_reference_shape(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_reference_shape(v) for v in value)
    return False


def js_number(value: Any) -> int | float:
    """JavaScript's ``Number(value)`` for the strings Node-RED stores numbers as; integral
    results are ints. NaN for text that is not a number."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return _tidy(float(value)) if isinstance(value, float) else value
    text = str(value).strip() if value is not None else ""
    if text == "":
        return 0
    try:
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", text):
            return int(text, 16)
        number = float(text)
    except ValueError:
        return math.nan
    return _tidy(number)


def _tidy(number: float) -> int | float:
    if math.isfinite(number) and number == int(number) and abs(number) < 2 ** 53:
        return int(number)
    return number


def typed_value(value: Any, kind: str | None, env: Callable[[str], Any] | None = None) -> Any:
    """A Node-RED typed value as a flow-file value (see the module table).

    ``env`` resolves environment names that the import knows a value for (subflow instance
    and group variables): it returns the value or raises KeyError. Raises
    :class:`Unconvertible` for a type with no equivalent.
    """
    kind = kind or "str"
    if kind in ("str", "val"):
        text = "" if value is None else str(value)
        whole = WHOLE_ENV.match(text)
        if whole:
            return env_value(whole.group(1), env)
        return text
    if kind == "num":
        if isinstance(value, str) and WHOLE_ENV.match(value):
            return env_value(WHOLE_ENV.match(value).group(1), env)  # type: ignore[union-attr]
        return js_number(value)
    if kind == "bool":
        return value is True or (isinstance(value, str) and value.lower() == "true")
    if kind == "json":
        if not isinstance(value, str):
            return literal(value)
        try:
            return literal(json.loads(value))
        except ValueError as exc:
            raise Unconvertible(f"invalid JSON {value!r}: {exc}") from None
    if kind == "bin":
        try:
            data = json.loads(value) if isinstance(value, str) else value
        except ValueError as exc:
            raise Unconvertible(f"invalid buffer {value!r}: {exc}") from None
        if isinstance(data, str):
            return {"bytes": list(data.encode())}
        if isinstance(data, list) and all(isinstance(b, int) for b in data):
            return {"bytes": [b & 0xFF for b in data]}
        raise Unconvertible(f"invalid buffer {value!r}: not a string or a list of bytes")
    if kind == "date":
        if value in (None, ""):
            return {"date": "now"}
        if value == "iso":
            return {"date": "iso"}
        raise Unconvertible(f"date format {value!r} (only the timestamp and ISO forms exist)")
    if kind == "env":
        return env_value(str(value), env)
    if kind in ("msg", "flow", "global", "jsonata"):
        if not isinstance(value, str) or value == "":
            raise Unconvertible(f"an empty {kind} reference")
        return {kind: value}
    raise Unconvertible(f"value type '{kind}'")


def env_value(name: str, env: Callable[[str], Any] | None = None) -> Any:
    """``{env: NAME}``, or the value the import already knows for ``NAME``."""
    if env is not None:
        try:
            return env(name)  # already a flow-file value
        except KeyError:
            pass
    if "${" in name:
        # Node-RED also accepts "${A}-${B}" as an env value: a text built from variables,
        # which the loader fills in (unset ones as empty).
        return EnvText(ENV_REFERENCE.sub(lambda m: env_reference(m.group(2)), name))
    return {"env": name}


def env_text(name: str, known: bool) -> EnvText:
    """``${NAME}`` for a field that is not a value (a URL, a path): the loader substitutes it.
    Unless an env the node sees defines it (``known``), an unset variable reads as empty."""
    if not _NAME.match(name):
        return EnvText("")
    return env_reference(name, empty_default=not known)


def env_reference(name: str, empty_default: bool = True) -> EnvText:
    """``${NAME:-}`` (unset reads as empty), or ``${NAME}`` (unset is a load error)."""
    return EnvText("${" + name + (":-" if empty_default else "") + "}")
