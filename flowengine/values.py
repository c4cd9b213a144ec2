"""Values in node configuration (docs/flow-format.md, "Values").

YAML scalars, lists and maps are literal values. A one-key map from the set below is a reference,
evaluated for each message, anywhere inside a value:

====================  ===========================================================
``{msg: path}``       a property of the message (``payload.items[0]``)
``{flow: key}``       flow context (``#:(file)::key`` picks a store)
``{global: key}``     global context
``{env: NAME}``       the env the node sees (docs/flow-format.md), ``""`` if unset
``{jsonata: expr}``   a JSONata expression over the message
``{date: now}``       the time in ms since the epoch (``{date: iso}``: an ISO 8601 string)
``{bytes: ...}``      bytes from a list of integers or from a string (UTF-8)
``{literal: ...}``    the value as written, even if it looks like a reference
====================  ===========================================================

Constants are folded at load time; a literal list or map is copied per use so that messages
never share configuration objects.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flowengine.errors import ConfigError
from flowengine.expressions import Expression, ExpressionError
from flowengine.messages import clone_message
from flowengine.paths import MISSING, Path, PathError

if TYPE_CHECKING:
    from flowengine.node import Node

REFERENCE_KINDS = ("msg", "flow", "global", "env", "jsonata", "date", "bytes", "literal")


class Value:
    """A compiled configuration value: ``value.evaluate(node, msg)``."""

    __slots__ = ("constant", "kind", "source")

    def __init__(self, kind: str, source: Any, constant: bool):
        self.kind = kind
        self.source = source
        self.constant = constant

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        """The value for this message (``MISSING`` for an absent ``{msg: ...}`` property)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Value {self.kind} {self.source!r}>"


class _Scalar(Value):
    __slots__ = ("value",)

    def __init__(self, value: Any, kind: str = "literal"):
        super().__init__(kind, value, True)
        self.value = value

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        return self.value


class _Container(Value):
    __slots__ = ("value",)

    def __init__(self, value: Any):
        super().__init__("literal", value, True)
        self.value = value

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        return clone_message(self.value)


class _Msg(Value):
    __slots__ = ("path",)

    def __init__(self, source: str, path: Path):
        super().__init__("msg", source, False)
        self.path = path

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        return self.path.get(msg)


class _Context(Value):
    """``{flow: key}`` / ``{global: key}``; ``[msg.x]`` inside the key is resolved per message
    (``lookup[msg.topic]``), as Node-RED's evaluateNodeProperty does."""

    __slots__ = ("dynamic",)

    def __init__(self, kind: str, source: str):
        super().__init__(kind, source, False)
        self.dynamic = "[msg." in source

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        if node is None:
            return MISSING
        ctx = node.flow_context if self.kind == "flow" else node.global_context
        key = resolve_key(self.source, msg) if self.dynamic else self.source
        return ctx.get(key, default=MISSING)


class _Env(Value):
    __slots__ = ()

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        import os

        value = node.env.get(self.source) if node is not None else os.environ.get(self.source)
        return "" if value is None else value


class _Jsonata(Value):
    __slots__ = ("expression",)

    def __init__(self, source: str, expression: Expression):
        super().__init__("jsonata", source, False)
        self.expression = expression

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        return self.expression.evaluate(msg, node)


class _Date(Value):
    __slots__ = ()

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        if self.source == "iso":
            return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return int(time.time() * 1000)


class _Composite(Value):
    """A list or map with references inside."""

    __slots__ = ("parts",)

    def __init__(self, source: Any, parts: Any):
        super().__init__("composite", source, False)
        self.parts = parts

    def evaluate(self, node: Node | None, msg: dict[str, Any]) -> Any:
        if isinstance(self.parts, dict):
            return {k: v.evaluate(node, msg) for k, v in self.parts.items()}
        return [v.evaluate(node, msg) for v in self.parts]


def is_reference(spec: Any) -> bool:
    """True for a one-key map naming a reference kind."""
    return isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in REFERENCE_KINDS


def compile_value(spec: Any, field: str | None = None) -> Value:
    """Compile a configuration value; raise ConfigError (naming ``field``) if it is invalid."""
    if is_reference(spec):
        kind, arg = next(iter(spec.items()))
        return _compile_reference(kind, arg, field)
    if isinstance(spec, dict):
        parts = {k: compile_value(v, _sub(field, k)) for k, v in spec.items()}
        if all(p.constant for p in parts.values()):
            return _Container({k: _constant(p) for k, p in parts.items()})
        return _Composite(spec, parts)
    if isinstance(spec, list):
        items = [compile_value(v, f"{field or ''}[{i}]") for i, v in enumerate(spec)]
        if all(p.constant for p in items):
            return _Container([_constant(p) for p in items])
        return _Composite(spec, items)
    return _Scalar(spec)


def _constant(value: Value) -> Any:
    return value.value if isinstance(value, _Scalar | _Container) else value.evaluate(None, {})


def _sub(field: str | None, key: Any) -> str:
    return f"{field}.{key}" if field else str(key)


def _compile_reference(kind: str, arg: Any, field: str | None) -> Value:
    where = _sub(field, kind)
    if kind == "literal":
        return _Container(arg) if isinstance(arg, dict | list) else _Scalar(arg)
    if kind == "bytes":
        try:
            data = arg.encode() if isinstance(arg, str) else bytes(arg)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bytes must be a string or a list of 0-255 integers: {exc}",
                              where) from None
        return _Scalar(data, "bytes")
    if kind == "date":
        if arg not in ("now", "iso", None):
            raise ConfigError(f"date must be 'now' or 'iso', got {arg!r}", where)
        return _Date("date", arg or "now", False)
    if not isinstance(arg, str) or not arg:
        raise ConfigError(f"'{kind}' needs a non-empty string, got {arg!r}", where)
    if kind == "msg":
        try:
            return _Msg(arg, Path(arg))
        except PathError as exc:
            raise ConfigError(str(exc), where) from None
    if kind in ("flow", "global"):
        return _Context(kind, arg)
    if kind == "env":
        return _Env("env", arg, False)
    try:
        return _Jsonata(arg, Expression(arg))
    except ExpressionError as exc:
        raise ConfigError(str(exc), where) from None


def resolve_key(key: str, msg: dict[str, Any]) -> str:
    """A context key with its ``[msg.x]`` parts replaced by their values in ``msg``:
    ``lookup[msg.topic]`` with topic ``"b"`` -> ``lookup["b"]``."""
    def value_of(match: re.Match[str]) -> str:
        value = Path(match.group(1)).get(msg)
        return "[" + json.dumps(value if value is not MISSING else "") + "]"

    return _MSG_REF.sub(value_of, key)


_MSG_REF = re.compile(r"\[(msg\.[^\[\]]+)\]")


def compile_path(expr: str, field: str | None = None) -> Path:
    """Compile a message property path, raising ConfigError naming ``field``."""
    try:
        return Path(expr)
    except PathError as exc:
        raise ConfigError(str(exc), field) from None


__all__ = ["MISSING", "Value", "compile_path", "compile_value", "is_reference"]
