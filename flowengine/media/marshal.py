"""Checking and converting incoming parameter values
(docs/reference/kurento-protocol.md sections 4.5 and 5).

KMS's generated code reads each param with ``JsonSerializer``; a missing required param or one of
the wrong type gives 40001 MARSHALL_ERROR ``'<name>' parameter should be a <type>``, a bad enum
value 40001 ``Invalid value for '<Enum>'``. Integers also accept numeric strings. Complex types
may carry ``__module__``/``__type__`` (kurento-client sends them); they are checked field by
field and returned without those tags. Object references are ids, resolved through a callback
(which gives 40101 for unknown ids and refs the object into the caller's session).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowengine.kurento import model
from flowengine.kurento.errors import MALFORMED_TRANSACTION, KurentoError, marshall_error
from flowengine.kurento.jsonrpc import TYPE_TAGS

Resolver = Callable[[str], Any]
"""Turns an object id into the object (raising 40101); used for remote-class params."""

_KIND = {
    "String": "a string",
    "int": "an integer",
    "int64": "an integer",
    "float": "a float",
    "double": "a double",
    "boolean": "a boolean",
}


def _should_be(name: str, type_name: str) -> KurentoError:
    kind = _KIND.get(type_name)
    if kind is None:
        kind = "an array" if type_name.endswith("[]") else f"a {type_name}"
        if type_name in model.COMPLEX_TYPES or type_name.endswith("<>"):
            kind = "an object"
    return marshall_error(f"'{name}' parameter should be {kind}")


def unmarshal(value: Any, type_name: str, name: str, resolve: Resolver) -> Any:
    """Check ``value`` against kmd type ``type_name``; return it converted (ids resolved)."""
    if type_name == "String":
        if not isinstance(value, str):
            raise _should_be(name, type_name)
        return value
    if type_name in ("int", "int64"):
        if isinstance(value, bool):
            raise _should_be(name, type_name)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _should_be(name, type_name)
    if type_name in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _should_be(name, type_name)
        return float(value)
    if type_name == "boolean":
        if not isinstance(value, bool):
            raise _should_be(name, type_name)
        return value
    if type_name.endswith("[]"):
        if not isinstance(value, list):
            raise _should_be(name, type_name)
        return [unmarshal(v, type_name[:-2], name, resolve) for v in value]
    if type_name.endswith("<>"):
        if not isinstance(value, dict):
            raise _should_be(name, type_name)
        return {k: unmarshal(v, type_name[:-2], name, resolve) for k, v in value.items()}
    if type_name in model.ENUMS:
        if not isinstance(value, str) or value not in model.ENUMS[type_name]:
            raise marshall_error(f"Invalid value for '{type_name}'")
        return value
    if type_name in model.COMPLEX_TYPES:
        if not isinstance(value, dict):
            raise _should_be(name, type_name)
        ctype = model.COMPLEX_TYPES[type_name]
        declared = value.get("__type__")
        if declared is not None and declared != type_name:
            raise KurentoError(40003, f"Unknown type '{declared}'")
        fields = {k: v for k, v in value.items() if k not in TYPE_TAGS}
        return bind(ctype.fields, fields, resolve)
    if type_name in model.CLASSES:
        if not isinstance(value, str):
            raise _should_be(name, "String")
        if value.startswith("newref:"):
            raise KurentoError(
                40109,
                f"Object '{value}' not found. Possibly using a transactional object "
                "without committing the transaction.",
            )
        obj = resolve(value)
        if not model.is_subclass(obj.remote_class, type_name):
            raise _should_be(name, type_name)
        return obj
    # A type the model mentions but does not declare (Stats, ServerInfo...): accept as is.
    return value


def bind(
    params: tuple[model.Param, ...], given: dict[str, Any] | None, resolve: Resolver
) -> dict[str, Any]:
    """Values for every declared param, by Kurento name: given ones checked, absent optional ones
    set to their default, absent required ones a 40001. Undeclared extra keys are ignored, as
    KMS ignores them."""
    given = given or {}
    out: dict[str, Any] = {}
    for p in params:
        value = given.get(p.name)
        if value is None:
            if not p.optional:
                raise _should_be(p.name, p.type)
            out[p.name] = p.default
            continue
        out[p.name] = unmarshal(value, p.type, p.name, resolve)
    return out


def method_not_found(operation: str, given: dict[str, Any] | None) -> KurentoError:
    """40008 ``Method '<op>' with <n> parameters not found`` (KMS's answer to unknown ops)."""
    count = len(given or {})
    return KurentoError(
        MALFORMED_TRANSACTION, f"Method '{operation}' with {count} parameters not found"
    )
