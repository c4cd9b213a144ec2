"""``json``: convert a message property between a JSON string and an object (Node-RED's json).

A string (or bytes) is parsed; any other value is serialized, compactly or indented by 4 spaces,
with ``JSON.stringify``'s output: no spaces, non-ASCII kept, integral floats without ``.0``,
JavaScript's exponent forms, NaN and infinities as ``null``, bytes as a Buffer's
``{"type": "Buffer", "data": [...]}``. When the message carries ``msg.schema`` (a JSON Schema), the
data is validated too; on success ``msg.schema`` is removed. The codec is
:func:`flowengine.js.json_loads` and :func:`flowengine.js.json_dumps`.
"""

from __future__ import annotations

import textwrap
from typing import Any

import jsonschema

from flowengine import MISSING, Node, NodeError, clone_message, compile_path
from flowengine import schema as s
from flowengine.js import LoneSurrogateError, v8_message
from flowengine.js import json_dumps as dumps
from flowengine.js import json_loads as loads

AUTO, STRING, OBJECT = "auto", "string", "object"

# Node-RED's English texts (json.errors.*).
SCHEMA_ERROR = "JSON Schema error"
SCHEMA_COMPILE_ERROR = "JSON Schema error: failed to compile schema"
CONVERT_ERROR = "Failed to convert payload"


def _js_truthy(value: Any) -> bool:
    """JavaScript truthiness, for ``if (msg.schema)``: {} and [] are true, "" and 0 false."""
    if value is MISSING or value is None or value is False:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, int | float):
        return value == value and value != 0
    return True


class JsonNode(Node):
    type = "json"
    category = "parsers"
    description = ("Converts a message property between a JSON string and an object. `action: "
                   "auto` parses strings and bytes and serializes everything else; `string` and "
                   "`object` force one direction. With `msg.schema` (a JSON Schema) the data is "
                   "validated: on success `msg.schema` is removed, on failure the node reports "
                   "a catchable error and sets `msg.schemaError`. Invalid JSON is a catchable "
                   "error; the message is then not sent.")
    example = textwrap.dedent("""\
        parse:
          type: json
          property: payload
          action: auto
          wires: [route]
        """)
    schema = s.obj({
        "property": s.path("payload", "The message property to convert."),
        "action": s.enum([AUTO, STRING, OBJECT], AUTO,
                         "auto: string to object and object to string; string or object: "
                         "always produce that form."),
        "pretty": s.boolean(False, "Indent the JSON string (4 spaces)."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._path = compile_path(config["property"], "property")
        self._action = config["action"]
        self._pretty = config["pretty"]
        # The last schema seen and its validator: flows usually send the same schema each time.
        self._schema: Any = None
        self._validator: Any = None

    def on_input(self, msg: dict[str, Any]) -> dict[str, Any]:
        schema = msg.get("schema")
        validator = None if schema is None else self._schema_validator(schema)
        path = self._path
        value = path.get(msg)
        if value is MISSING:
            return msg  # nothing to convert: pass the message on as it is
        action = self._action
        if type(value) is str or isinstance(value, str | bytes | bytearray):
            if action == STRING:
                # Already a string: only checked, when there is a schema to check against.
                if validator is not None:
                    self._validate(validator, self._parse(value), msg)
                return msg
            parsed = self._parse(value)
            path.set(msg, parsed)
            if validator is not None:
                self._validate(validator, parsed, msg)
            return msg
        if validator is not None:
            self._validate(validator, value, msg)
        if action != OBJECT:
            try:
                path.set(msg, dumps(value, self._pretty))
            except (TypeError, ValueError):
                raise NodeError(CONVERT_ERROR) from None
        return msg

    @staticmethod
    def _parse(text: str | bytes | bytearray) -> Any:
        try:
            return loads(text)
        except LoneSurrogateError as exc:  # valid for JSON.parse: refused here, said so
            raise NodeError(str(exc)) from None
        except ValueError:  # invalid JSON or a NaN literal: JSON.parse's (V8's) message
            if not isinstance(text, str):
                text = bytes(text).decode("utf-8", errors="replace")
            raise NodeError(v8_message(text)) from None

    def _schema_validator(self, schema: Any) -> Any:
        """The validator for ``msg.schema``, or None when it is not set (JS-falsy)."""
        if not _js_truthy(schema):
            return None
        if self._validator is not None and schema == self._schema:
            return self._validator
        self._schema = self._validator = None
        try:
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft7Validator)  # ajv's default draft
            cls.check_schema(schema)
            validator = cls(schema)
        except Exception:
            raise NodeError(SCHEMA_COMPILE_ERROR) from None
        self._schema, self._validator = clone_message(schema), validator
        return validator

    @staticmethod
    def _validate(validator: Any, data: Any, msg: dict[str, Any]) -> None:
        """Remove ``msg.schema`` when ``data`` is valid; else set ``msg.schemaError`` and fail."""
        errors = list(validator.iter_errors(data))
        if not errors:
            msg.pop("schema", None)
            return
        msg["schemaError"] = [_describe(e) for e in errors]
        details = ", ".join(f"data{e['instancePath']}: {e['message']}"
                            for e in msg["schemaError"])
        raise NodeError(f"{SCHEMA_ERROR}: {details}")


def _describe(error: jsonschema.ValidationError) -> dict[str, Any]:
    """One entry of ``msg.schemaError``, with ajv's field names."""
    def pointer(parts: Any) -> str:
        return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)

    return {"keyword": error.validator, "instancePath": pointer(error.absolute_path),
            "schemaPath": "#" + pointer(error.absolute_schema_path), "message": error.message}
