"""JSON Schema building blocks for node configuration (docs/plugins.md).

A node type's schema is the single source for validation, error messages, defaults,
``flowrun nodes`` and ``docs/nodes.md``. These helpers give the shared shapes a name::

    schema = obj({
        "property": path("payload"),
        "to": value(description="The new value"),
        "timeout": duration("5s"),
        "server": config_ref("postgres-server"),
    }, required=["to"])

Two annotations extend JSON Schema and are checked on the wired graph by the loader:
``x-node-ref`` (the string or list of strings are node ids, optionally of one type) and
``x-config-ref`` (a config node id of the given type).

A third, ``x-kind``, marks a field the loader converts once, after validation, so that the node
finds a typed value in ``self.config`` (:func:`convert`): a ``duration`` becomes seconds
(float), a ``size`` bytes (int), a ``folder`` an absolute path (str).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from flowengine.durations import DURATION_PATTERN, parse_duration
from flowengine.sizes import SIZE_PATTERN, parse_size

Schema = dict[str, Any]


def _with(schema: Schema, default: Any, description: str | None, **extra: Any) -> Schema:
    if default is not _NO_DEFAULT:
        schema["default"] = default
    if description:
        schema["description"] = description
    schema.update(extra)
    return schema


_NO_DEFAULT: Any = object()


def obj(properties: dict[str, Schema], required: Iterable[str] = (),
        additional: bool = False, description: str | None = None) -> Schema:
    """An object with the given properties; unknown fields are errors unless ``additional``."""
    schema: Schema = {"type": "object", "properties": properties,
                      "additionalProperties": additional}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def value(default: Any = _NO_DEFAULT, description: str | None = None, **extra: Any) -> Schema:
    """Any value: a literal, or a one-key reference map (``{msg: path}``, ``{flow: key}``,
    ``{global: key}``, ``{env: NAME}``, ``{jsonata: expr}``, ``{date: now}``,
    ``{literal: ...}``, ``{bytes: ...}``)."""
    return _with({"x-value": True}, default, description, **extra)


def path(default: Any = _NO_DEFAULT, description: str | None = None) -> Schema:
    """A message property path such as ``payload.items[0].name`` (``msg.`` optional)."""
    return _with({"type": "string", "minLength": 1, "x-path": True}, default, description)


def duration(default: Any = _NO_DEFAULT, description: str | None = None,
             minimum: float = 0) -> Schema:
    """Seconds as a number, or a string with a unit: ``250ms``, ``5s``, ``2m``, ``1h``.
    The node receives seconds (float)."""
    return _with({"anyOf": [{"type": "number", "minimum": minimum},
                            {"type": "string", "pattern": DURATION_PATTERN}],
                  "x-kind": "duration"}, default, description)


def size(default: Any = _NO_DEFAULT, description: str | None = None,
         minimum: int = 1) -> Schema:
    """Bytes as an integer, or a string with a unit: ``500kB``, ``64KiB``, ``1MiB``, ``2GB``.
    The node receives bytes (int), at least ``minimum``."""
    return _with({"anyOf": [{"type": "integer", "minimum": minimum},
                            {"type": "string", "pattern": SIZE_PATTERN}],
                  "x-kind": "size", "x-minimum": minimum}, default, description)


def folder(under: str, description: str | None = None) -> Schema:
    """A folder, relative to the flow file's folder. Unset: ``under`` in the ``data_dir``
    setting, else in ``.flowengine/`` beside the flow file. The node receives an absolute
    path (str)."""
    where = (f"Relative to the flow file's folder. Default: `{under}` in the `data_dir` "
             f"setting, else `.flowengine/{under}` beside the flow file.")
    return _with({"type": "string", "x-kind": "folder", "x-under": under}, _NO_DEFAULT,
                 f"{description} {where}" if description else where)


def string(default: Any = _NO_DEFAULT, description: str | None = None, **extra: Any) -> Schema:
    """A string."""
    return _with({"type": "string"}, default, description, **extra)


def boolean(default: Any = _NO_DEFAULT, description: str | None = None) -> Schema:
    """A boolean."""
    return _with({"type": "boolean"}, default, description)


def integer(default: Any = _NO_DEFAULT, description: str | None = None, **extra: Any) -> Schema:
    """An integer."""
    return _with({"type": "integer"}, default, description, **extra)


def number(default: Any = _NO_DEFAULT, description: str | None = None, **extra: Any) -> Schema:
    """A number."""
    return _with({"type": "number"}, default, description, **extra)


def enum(options: Iterable[Any], default: Any = _NO_DEFAULT,
         description: str | None = None) -> Schema:
    """One of the given values."""
    return _with({"enum": list(options)}, default, description)


def node_ref(node_type: str | None = None, many: bool = False, default: Any = _NO_DEFAULT,
             description: str | None = None) -> Schema:
    """The id of a flow node (of ``node_type`` if given), or a list of ids with ``many``."""
    item: Schema = {"type": "string", "x-node-ref": node_type or True}
    if many:
        return _with({"type": "array", "items": item, "x-node-ref": node_type or True},
                     default, description)
    return _with(item, default, description)


def config_ref(config_type: str, default: Any = _NO_DEFAULT,
               description: str | None = None) -> Schema:
    """The id of a config node of type ``config_type``."""
    return _with({"type": "string", "x-config-ref": config_type}, default, description)


# -- conversion ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Folders:
    """What a ``folder`` field is resolved against: the flow file's folder and the
    ``data_dir`` setting (absolute, or None)."""

    flow_dir: Path
    data_dir: str | None = None

    def resolve(self, value: str | None, under: str) -> str:
        """The absolute folder for ``value`` (None: the default folder ``under``)."""
        if value:
            return str((self.flow_dir / Path(value).expanduser()).absolute())
        if self.data_dir:
            return str(Path(self.data_dir) / under)
        return str((self.flow_dir / ".flowengine" / under).absolute())


def convert(schema: Schema, instance: Any, folders: Folders,
            path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Replace, in place, every ``x-kind`` field of a valid ``instance`` by
    its typed value (an unset folder gets its default); the (path, message) of each value that
    cannot be converted."""
    errors: list[tuple[tuple[Any, ...], str]] = []
    if not isinstance(instance, dict):
        return errors
    for name, sub in schema.get("properties", {}).items():
        kind = sub.get("x-kind")
        if kind == "folder":
            instance[name] = folders.resolve(instance.get(name), sub["x-under"])
        elif kind is not None and instance.get(name) is not None:
            try:
                instance[name] = _CONVERTERS[kind](instance[name], sub)
            except ValueError as exc:
                errors.append(((*path, name), str(exc)))
        elif name in instance:
            errors += convert(sub, instance[name], folders, (*path, name))
            items = sub.get("items")
            if isinstance(items, dict) and isinstance(instance[name], list):
                for i, element in enumerate(instance[name]):
                    errors += convert(items, element, folders, (*path, name, i))
    return errors


def _to_size(value: Any, schema: Schema) -> int:
    size_ = parse_size(value)
    minimum = schema.get("x-minimum", 0)
    if size_ < minimum:
        raise ValueError(f"must be at least {minimum} byte{'s' if minimum != 1 else ''}")
    return size_


_CONVERTERS = {"duration": lambda value, _schema: parse_duration(value), "size": _to_size}


# -- validation ------------------------------------------------------------------------------

def env_block(description: str | None = None) -> Schema:
    """An ``env`` block: variable names to YAML scalars (a flow's, a group's, a subflow's)."""
    return _with({"type": ["object", "null"],
                  "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
                 _NO_DEFAULT, description)


def apply_defaults(schema: Schema, instance: Any) -> None:
    """Fill in the ``default`` of every missing property, recursively, in place."""
    if not isinstance(instance, dict):
        return
    for name, sub in schema.get("properties", {}).items():
        if name not in instance and "default" in sub:
            default = sub["default"]
            instance[name] = _copy(default)
        if name in instance:
            apply_defaults(sub, instance[name])
            items = sub.get("items")
            if isinstance(items, dict) and isinstance(instance[name], list):
                for element in instance[name]:
                    apply_defaults(items, element)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


_validators: dict[int, jsonschema.protocols.Validator] = {}


def validator_for(schema: Schema) -> jsonschema.protocols.Validator:
    """A cached Draft 2020-12 validator for ``schema``."""
    key = id(schema)
    v = _validators.get(key)
    if v is None:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        v = _validators[key] = cls(schema)
    return v


def describe_error(error: jsonschema.ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    """Readable (path, message) pairs for one JSON Schema error."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in error.schema.get("properties", {})]
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return [((*path, k), f"unknown field '{k}'{hint}") for k in extra]
    if error.validator == "required":
        return [(path, error.message.replace("is a required property", "is required"))]
    if error.validator == "anyOf" and error.schema.get("x-kind") == "duration":
        return [(path, f"expected a duration (seconds, or '250ms', '5s', '2m', '1h'), "
                       f"got {error.instance!r}")]
    if error.validator == "anyOf" and error.schema.get("x-kind") == "size":
        try:
            _to_size(error.instance, error.schema)
        except ValueError as exc:
            return [(path, str(exc))]
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return describe_error(best)
    return [(path, error.message)]
