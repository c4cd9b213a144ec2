"""Helpers for node authors, after Node-RED's ``RED.util`` (docs/plugins.md, "Coming from Node-RED's
node API").

Each function does what its ``RED.util`` namesake does, in Python terms: JavaScript's
``undefined`` is :data:`flowengine.MISSING`, a Buffer is ``bytes``, a typed value
(``value``/``type`` as Node-RED stores them) is evaluated as flowengine evaluates the value
references it becomes. ``RED.util.encodeObject`` (the editor's debug encoding) and
``normaliseNodeTypeName`` (editor names) have no counterpart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowengine.expressions import Expression
from flowengine.messages import clone_message, new_msgid
from flowengine.paths import MISSING, MsgRef, Path, _lookup, parse_path
from flowengine.values import compile_value

if TYPE_CHECKING:
    from flowengine.node import Node

__all__ = [
    "clone_message", "compare_objects", "ensure_buffer", "ensure_string",
    "evaluate_jsonata_expression", "evaluate_node_property", "generate_id", "get_message_property",
    "get_object_property", "get_setting", "normalise_property_expression", "parse_context_store",
    "prepare_jsonata_expression", "set_message_property", "set_object_property",
]

#: ``RED.util.generateId``: 16 hex digits, as message ids are.
generate_id = new_msgid

_STORE_KEY = re.compile(r"^#:\((\S+?)\)::(.*)$")


def get_message_property(msg: Mapping[str, Any], expression: str) -> Any:
    """``RED.util.getMessageProperty``: the value at a property expression (``msg.`` prefix
    optional), :data:`MISSING` when absent. Raises :class:`flowengine.PathError` for an invalid
    expression and, as Node-RED throws there, for reading beneath a missing or null parent."""
    return Path(expression).get(msg, strict=True)


def get_object_property(obj: Any, expression: str) -> Any:
    """``RED.util.getObjectProperty``: as :func:`get_message_property`, for any object."""
    return get_message_property(obj, expression)


def set_message_property(msg: Any, expression: str, value: Any,
                         create_missing: bool = True) -> bool:
    """``RED.util.setMessageProperty``: set the value at a property expression; missing
    parents are created unless ``create_missing`` is false. Returns False when nothing was set
    (a parent is missing and not created, or is not an object). Setting :data:`MISSING`
    deletes the property."""
    path = Path(expression)
    if not create_missing and value is not MISSING and not _parents_exist(path, msg):
        return False
    return path.set(msg, value)


def set_object_property(obj: Any, expression: str, value: Any,
                        create_missing: bool = True) -> bool:
    """``RED.util.setObjectProperty``: as :func:`set_message_property`, for any object."""
    return set_message_property(obj, expression, value, create_missing)


def _parents_exist(path: Path, msg: Any) -> bool:
    keys = path._keys(msg, strict=False)
    if keys is None:
        return False
    parent = msg
    for key in keys[:-1]:
        parent = _lookup(parent, key)
        if parent is MISSING or parent is None:
            return False
    return True


def normalise_property_expression(expression: str) -> list[Any]:
    """``RED.util.normalisePropertyExpression``: the parts of a property expression, with a
    nested ``[msg.x]`` as ``["msg", "x"]``: ``a.b[0][msg.c]`` gives
    ``["a", "b", 0, ["msg", "c"]]``. Raises :class:`flowengine.PathError` for an invalid
    expression."""
    def part(segment: Any) -> Any:
        if isinstance(segment, MsgRef):
            return ["msg", *(part(s) for s in segment.segments)]
        return segment
    return [part(segment) for segment in parse_path(expression)]


def evaluate_node_property(value: Any, kind: str, node: Node | None,
                           msg: dict[str, Any] | None) -> Any:
    """``RED.util.evaluateNodeProperty``: a Node-RED typed value (``str``, ``num``, ``bool``,
    ``json``, ``bin``, ``date``, ``msg``, ``flow``, ``global``, ``env``, ``jsonata``) for this
    message; :data:`MISSING` for an absent ``msg`` property. Raises ``ValueError`` for a type
    or value with no meaning (an unknown type, invalid JSON)."""
    from flowengine.importer.values import Unconvertible, typed_value

    try:
        reference = typed_value(value, kind)
    except Unconvertible as exc:
        raise ValueError(f"cannot evaluate a '{kind}' value {value!r}: {exc}") from None
    return compile_value(reference, "value").evaluate(node, msg if msg is not None else {})


def prepare_jsonata_expression(text: str, node: Node | None = None) -> Expression:
    """``RED.util.prepareJSONataExpression``: the compiled expression (``$flowContext``,
    ``$globalContext`` and ``$env`` read the node given when evaluating). Raises
    :class:`flowengine.expressions.ExpressionError` for invalid JSONata."""
    return Expression(text)


def evaluate_jsonata_expression(expression: Expression, msg: Any, node: Node | None = None,
                                bindings: dict[str, Any] | None = None) -> Any:
    """``RED.util.evaluateJSONataExpression``: the expression's value for ``msg`` (``None`` for
    JSONata's undefined). Raises :class:`flowengine.expressions.ExpressionError`."""
    return expression.evaluate(msg, node, bindings)


def parse_context_store(key: str) -> dict[str, Any]:
    """``RED.util.parseContextStore``: ``"#:(file)::counter"`` gives
    ``{"store": "file", "key": "counter"}``; a key without a store name has ``store`` None."""
    match = _STORE_KEY.match(key)
    if match:
        return {"store": match.group(1), "key": match.group(2)}
    return {"store": None, "key": key}


def get_setting(node: Node, name: str) -> Any:
    """``RED.util.getSetting``: an environment variable as the node sees it (its groups,
    subflow instances and flow, then the process environment; docs/flow-format.md)."""
    return node.env.get(name)


def compare_objects(a: Any, b: Any) -> bool:
    """``RED.util.compareObjects``: deep equality as Node-RED defines it: values of different
    types differ (``1`` is not ``True``), lists and bytes compare item by item, mappings by
    their keys and values."""
    if a is b:
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, bytes | bytearray) and isinstance(b, bytes | bytearray):
        return bytes(a) == bytes(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(compare_objects(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(compare_objects(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def ensure_string(value: Any) -> str:
    """``RED.util.ensureString``: text as is, bytes decoded (UTF-8), objects and lists as
    compact JSON, anything else as JavaScript's ``String(value)``."""
    from flowengine.jsvalues import to_string

    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if value is None or isinstance(value, dict | list | tuple):
        return json.dumps(_json_numbers(value), separators=(",", ":"), ensure_ascii=False,
                          default=_json_default)
    return to_string(value)


def ensure_buffer(value: Any) -> bytes:
    """``RED.util.ensureBuffer``: bytes as is, anything else :func:`ensure_string` encoded as
    UTF-8."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return ensure_string(value).encode("utf-8", errors="surrogatepass")


def _json_numbers(value: Any) -> Any:
    """Integral floats as ints, as JSON.stringify writes them (``1``, not ``1.0``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_numbers(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"type": "Buffer", "data": list(value)}  # Buffer.prototype.toJSON
    if value is MISSING:
        return None
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

