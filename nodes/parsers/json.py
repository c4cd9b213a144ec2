"""``json``: convert a message property between a JSON string and an object (Node-RED's json).

A string (or bytes) is parsed; any other value is serialized, compactly or indented by 4 spaces,
with ``JSON.stringify``'s output: no spaces, non-ASCII kept, integral floats without ``.0``,
JavaScript's exponent forms, NaN and infinities as ``null``, bytes as a Buffer's
``{"type": "Buffer", "data": [...]}``. When the message carries ``msg.schema`` (a JSON Schema), the
data is validated too; on success ``msg.schema`` is removed.

This node sits on the hot path of most flows, so serialization takes the C encoder of the stdlib
``json`` module and only falls back to the JavaScript-exact writer below when the fast output shows
a float written the Python way (``5.0``, ``1e-05``) or the value holds NaN or an infinity.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import jsonschema
import orjson

from flowengine import MISSING, Node, NodeError, clone_message, compile_path
from flowengine import schema as s
from flowengine.jsonerrors import v8_message
from flowengine.jsvalues import to_string

AUTO, STRING, OBJECT = "auto", "string", "object"

# Node-RED's English texts (json.errors.*).
SCHEMA_ERROR = "JSON Schema error"
SCHEMA_COMPILE_ERROR = "JSON Schema error: failed to compile schema"
CONVERT_ERROR = "Failed to convert payload"


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
    if is_dict:
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
