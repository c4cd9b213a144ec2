"""The ``json`` node, with Node-RED's cases JS-01..JS-08
(docs/reference/nodered-cases.md, parsers)."""

from __future__ import annotations

import math
from typing import Any

from flowengine.js import json_dumps as dumps
from flowengine.js import json_loads as loads
from flowengine.testing import FlowHarness, NodeHarness

EMPLOYEES = '{"employees":[{"firstName":"John","lastName":"Smith"}]}'
EMPLOYEES_OBJ = {"employees": [{"firstName": "John", "lastName": "Smith"}]}
SCHEMA = {"type": "object",
          "properties": {"number": {"type": "number"}, "string": {"type": "string"}}}
CATCH = {"catcher": {"type": "catch", "scope": ["node"]}}


async def convert(payload: Any, **config: Any) -> Any:
    """Send one payload through a json node and return the converted payload."""
    async with NodeHarness("json", config) as h:
        h.send({"payload": payload})
        [out] = await h.output(0)
        return out["payload"]


async def fails(msg: dict[str, Any], **config: Any) -> tuple[dict[str, Any], list[Any]]:
    """Send ``msg`` into a json node watched by a catch node; return what the catch node sent
    and what the json node sent (expected: nothing)."""
    async with NodeHarness("json", config, extra_nodes=CATCH) as h:
        h.watch_output("catcher")
        h.send(msg)
        [caught] = await h.output(0, node_id="catcher")
        await h.settle()
        return caught, h.output_now(0)


# -- JS-01 string -> object --------------------------------------------------------------------

async def test_js_01_string_to_object_keeps_other_properties() -> None:
    text = ' {"employees":[{"firstName":"John", "lastName":"Smith"}]}\r\n '
    async with NodeHarness("json") as h:
        h.send({"payload": text, "topic": "bar"})
        [out] = await h.output(0)
    assert out["payload"] == EMPLOYEES_OBJ
    assert out["topic"] == "bar"


async def test_js_01_bytes_to_object() -> None:
    data = b' {"employees":[{"firstName":"John", "lastName":"Smith"}]}\r\n '
    assert await convert(data, action="object") == EMPLOYEES_OBJ
    assert await convert(bytearray(data)) == EMPLOYEES_OBJ


# -- JS-02 value -> string, and string -> scalar -------------------------------------------------

async def test_js_02_values_to_json_strings() -> None:
    assert await convert(EMPLOYEES_OBJ) == EMPLOYEES
    assert await convert([1, 2, 3]) == "[1,2,3]"
    assert await convert(True) == "true"
    assert await convert(2019) == "2019"


async def test_js_02_json_strings_to_scalars() -> None:
    assert await convert("true") is True
    assert await convert("1962") == 1962


# -- JS-03 invalid JSON --------------------------------------------------------------------------

async def test_js_03_invalid_string_is_an_error_without_output() -> None:
    async with NodeHarness("json") as h:
        h.send({"payload": "foo"})
        await h.settle()
        assert h.output_now(0) == []
    assert [e["message"] for e in h.errors] == [
        "Unexpected token 'o', \"foo\" is not valid JSON"]


async def test_js_03_invalid_bytes_is_an_error_without_output() -> None:
    caught, sent = await fails({"payload": b'{"name":foo}'})
    assert sent == []
    assert caught["error"]["message"] == ("Unexpected token 'o', \"{\"name\":foo}\" is not "
                                          "valid JSON")
    assert caught["payload"] == b'{"name":foo}'


async def test_js_03_catch_gets_json_parse_error_text_and_original_payload() -> None:
    caught, sent = await fails({"payload": "{bad"})
    assert sent == []
    assert caught["payload"] == "{bad"
    assert caught["error"]["message"] == ("Expected property name or '}' in JSON at position 1 "
                                          "(line 1 column 2)")
    assert caught["error"]["source"]["id"] == "node"
    caught, _ = await fails({"payload": ""})
    assert caught["error"]["message"] == "Unexpected end of JSON input"


async def test_js_03_nan_literal_is_rejected_like_json_parse() -> None:
    caught, sent = await fails({"payload": "NaN"})
    assert sent == []
    assert caught["error"]["message"] == '"NaN" is not valid JSON'


async def test_failed_message_does_not_reach_complete_nodes() -> None:
    flow = """\
flow: test
nodes:
  parse:
    type: json
  finished:
    type: complete
    scope: [parse]
    wires: [sink]
  sink:
    type: debug
    console: false
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("parse", {"payload": "foo"})
        h.send("parse", {"payload": "[1]"})
        [done] = await h.received("sink")
        await h.settle()
    assert done["payload"] == [1]
    assert len(h.received_now("sink")) == 1


# -- JS-04 no property ---------------------------------------------------------------------------

async def test_js_04_missing_property_passes_through_unchanged() -> None:
    async with NodeHarness("json") as h:
        h.send({"topic": "bar"})
        [out] = await h.output(0)
    assert out == {"topic": "bar", "_msgid": out["_msgid"]}


# -- JS-05 forced direction ----------------------------------------------------------------------

async def test_js_05_action_string_always_gives_a_string() -> None:
    assert await convert(EMPLOYEES_OBJ, action="string") == EMPLOYEES
    assert await convert(EMPLOYEES, action="string") == EMPLOYEES


async def test_js_05_action_object_always_gives_an_object() -> None:
    assert await convert(EMPLOYEES_OBJ, action="object") == EMPLOYEES_OBJ
    assert await convert(EMPLOYEES, action="object") == EMPLOYEES_OBJ


# -- JS-06 other property ------------------------------------------------------------------------

async def test_js_06_other_property() -> None:
    async with NodeHarness("json", {"property": "one.two"}) as h:
        h.send({"one": {"two": EMPLOYEES}, "payload": "x"})
        h.send({"one": {"two": EMPLOYEES_OBJ}})
        first, second = await h.output(0, count=2)
    assert first["one"]["two"] == EMPLOYEES_OBJ
    assert first["payload"] == "x"
    assert second["one"]["two"] == EMPLOYEES


# -- JS-07 schema --------------------------------------------------------------------------------

async def test_js_07_valid_string_with_schema_gives_object_and_removes_schema() -> None:
    async with NodeHarness("json") as h:
        h.send({"payload": '{"number": 3, "string": "allo"}', "schema": SCHEMA})
        [out] = await h.output(0)
    assert out["payload"] == {"number": 3, "string": "allo"}
    assert "schema" not in out


async def test_js_07_valid_object_with_schema_gives_string() -> None:
    async with NodeHarness("json") as h:
        h.send({"payload": {"number": 3, "string": "allo"}, "schema": SCHEMA})
        h.send({"payload": {"number": 4, "string": "b"}, "schema": SCHEMA})  # cached validator
        first, second = await h.output(0, count=2)
    assert first["payload"] == '{"number":3,"string":"allo"}'
    assert second["payload"] == '{"number":4,"string":"b"}'
    assert "schema" not in first and "schema" not in second


async def test_js_07_invalid_data_is_a_schema_error() -> None:
    caught, sent = await fails({"payload": {"number": "foo", "string": 3}, "schema": SCHEMA})
    assert sent == []
    assert caught["error"]["message"] == (
        "JSON Schema error: data/number: 'foo' is not of type 'number', "
        "data/string: 3 is not of type 'string'")
    assert [(e["keyword"], e["instancePath"], e["schemaPath"])
            for e in caught["schemaError"]] == [
        ("type", "/number", "#/properties/number/type"),
        ("type", "/string", "#/properties/string/type")]
    assert caught["payload"] == {"number": "foo", "string": 3}  # not stringified


async def test_js_07_invalid_string_data_in_string_mode() -> None:
    caught, sent = await fails({"payload": '{"number": "x"}', "schema": SCHEMA},
                               action="string")
    assert sent == []
    assert caught["error"]["message"].startswith("JSON Schema error: data/number:")
    async with NodeHarness("json", {"action": "string"}) as h:
        h.send({"payload": '{"number": 1}', "schema": SCHEMA})
        [out] = await h.output(0)
    assert out["payload"] == '{"number": 1}'  # left as it was, only checked
    assert "schema" not in out


async def test_js_07_invalid_schema_is_a_compile_error() -> None:
    caught, sent = await fails({"payload": {"number": 3}, "schema": "garbage"})
    assert sent == []
    assert caught["error"]["message"] == "JSON Schema error: failed to compile schema"
    caught, _ = await fails({"payload": "{}", "schema": {"type": "no-such-type"}})
    assert caught["error"]["message"] == "JSON Schema error: failed to compile schema"


# -- JS-08 pretty and scalars --------------------------------------------------------------------

async def test_js_08_pretty_uses_four_spaces() -> None:
    assert await convert({"a": [1, 2]}, pretty=True) == (
        '{\n    "a": [\n        1,\n        2\n    ]\n}')
    assert await convert({"a": {}, "b": []}, pretty=True) == '{\n    "a": {},\n    "b": []\n}'


async def test_js_08_scalars() -> None:
    assert await convert('"str"') == "str"
    assert await convert("null") is None
    assert await convert(None) == "null"
    assert await convert(12) == "12"


# -- output formatting as JSON.stringify -----------------------------------------------------------

def test_dumps_formats_numbers_as_javascript() -> None:
    value = {"a": 5.0, "b": -0.0, "c": 1e-5, "d": 1e16, "e": 1e21, "f": 1e-7, "g": 2.5,
             "h": math.nan, "i": math.inf}
    assert dumps(value) == ('{"a":5,"b":0,"c":0.00001,"d":10000000000000000,"e":1e+21,'
                            '"f":1e-7,"g":2.5,"h":null,"i":null}')
    assert dumps([1.0], pretty=True) == "[\n    1\n]"


def test_dumps_keeps_non_ascii_and_writes_buffers() -> None:
    assert dumps({"name": "Zoë ☃", "raw": b"\x00\xff"}) == (
        '{"name":"Zoë ☃","raw":{"type":"Buffer","data":[0,255]}}')
    assert dumps("a\nb") == '"a\\nb"'


def test_dumps_rejects_circular_structures() -> None:
    loop: list[Any] = []
    loop.append(loop)
    try:
        dumps(loop)
    except ValueError as exc:
        assert "Circular" in str(exc)
    else:
        raise AssertionError("no error for a circular list")


def test_loads_accepts_surrounding_whitespace() -> None:
    assert loads("\t [1, {\"a\": null}] \r\n") == [1, {"a": None}]


async def test_unserializable_value_is_a_conversion_error() -> None:
    caught, sent = await fails({"payload": {"when": object()}})
    assert sent == []
    assert caught["error"]["message"] == "Failed to convert payload"
