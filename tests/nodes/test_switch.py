"""The switch node: Node-RED's cases SW-01..SW-24 and SW-31
(docs/reference/nodered-cases.md), in YAML form.

Sequence rules (head, tail, index; SW-25..SW-30) are not supported yet: see
``test_sequence_rules_are_rejected``.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import pytest

from flowengine import MISSING, FlowLoadError
from flowengine.testing import FlowHarness, NodeHarness


def _msg(payload: Any) -> dict[str, Any]:
    return {} if payload is MISSING else {"payload": payload}


async def route(config: dict[str, Any], payloads: list[Any]) -> list[list[Any]]:
    """Send each payload through a switch; the payloads seen on each output, in order."""
    async with NodeHarness("switch", config) as h:
        for payload in payloads:
            h.send(_msg(payload))
        await h.settle()
        outputs = len(config.get("rules", []))
        return [[m.get("payload", MISSING) for m in h.output_now(i)] for i in range(outputs)]


async def passes(rule: Any, payloads: list[Any]) -> list[Any]:
    """The payloads a single rule lets through."""
    [out] = await route({"rules": [rule]}, payloads)
    return out


# -- comparisons -------------------------------------------------------------------------------

async def test_sw_01_eq_string():
    assert await passes({"eq": "Hello"}, ["Hello", "Hello!", "hello"]) == ["Hello"]


async def test_sw_01_matching_outputs_get_the_same_message_object():
    async with NodeHarness("switch", {"rules": [{"cont": "ell"}, {"eq": "Hello"},
                                                {"eq": "x"}]}) as h:
        node = h.node("node")
        msg = {"payload": "Hello"}
        onward = node.on_input(msg)
        assert onward == [msg, msg, None]
        assert onward[0] is msg and onward[1] is msg  # the runtime clones for output 1
        # A single match on output 0 returns the message itself (the router's fast path).
        jello = {"payload": "Jello"}
        assert node.on_input(jello) is jello
        x = {"payload": "x"}
        assert node.on_input(x) == [None, None, x]
        assert node.on_input({"payload": "zzz"}) is None


async def test_sw_02_neq():
    assert await passes({"neq": "Hello"}, ["HEllO", "Hello"]) == ["HEllO"]


@pytest.mark.parametrize(("rule", "payloads", "expected"), [
    ({"eq": 3}, [3, 4], [3]),
    ({"eq": 2}, [4], []),
    ({"lt": 3}, [2, 4, 3], [2]),
    ({"lte": 3}, [3, 4, 2], [3, 2]),
    ({"gt": 3}, [6, -1, 3], [6]),
    ({"gte": 3}, [3, 2, 4], [3, 4]),
])
async def test_sw_03_numeric_compare(rule, payloads, expected):
    assert await passes(rule, payloads) == expected


async def test_sw_04_loose_equality_str_rule():
    got = await passes({"eq": "1"}, [1, "1", "01", True, "1.0"])
    assert got == [1, "1", True]
    assert type(got[2]) is bool


async def test_sw_05_loose_equality_num_rule():
    payloads = ["1", " 1 ", "1.0", True, 1]
    assert await passes({"eq": 1}, payloads) == payloads


@pytest.mark.parametrize(("bounds", "payload", "matches"), [
    ([3, 5], 4, True),
    ([5, 3], 4, True),
    (["c", "e"], "d", True),
    ([3, 5], 12, False),
])
async def test_sw_06_btwn(bounds, payload, matches):
    assert await passes({"btwn": bounds}, [payload]) == ([payload] if matches else [])


async def test_sw_07_btwn_inclusive_reversed_string_payload():
    assert await passes({"btwn": [10, 5]}, [4, 5, 7, 10, 11, "7"]) == [5, 7, 10, "7"]


async def test_sw_08_cont():
    assert await passes({"cont": "Hello"},
                        ["Hello World!", "This is not a greeting!"]) == ["Hello World!"]
    # The property is stringified (123 + "").
    assert await passes({"cont": "2"}, [123, 145]) == [123]


async def test_sw_09_regex_and_ignore_case():
    assert await passes({"regex": "[abc]+"}, ["abbabac", "xyz"]) == ["abbabac"]
    assert await passes({"regex": "\\d+"}, ["This is not a digit", "a1"]) == ["a1"]
    assert await passes({"regex": "onetwothree", "ignore_case": True},
                        ["oneTWOthree"]) == ["oneTWOthree"]
    assert await passes({"regex": "onetwothree"}, ["oneTWOthree"]) == []
    assert await passes({"regex": "onetwothree", "ignore_case": False}, ["oneTWOthree"]) == []


async def test_sw_09_regex_uses_javascript_syntax():
    # JS \d is ASCII only; Python's would also match the Arabic-Indic digit.
    assert await passes({"regex": "^\\d$"}, ["\u0663", "3"]) == ["3"]


# -- rules without a value -----------------------------------------------------------------------

@pytest.mark.parametrize("rule", [True, "true"])
async def test_sw_10_true(rule):
    assert await passes(rule, [True, "true", 1, False]) == [True]


@pytest.mark.parametrize("rule", [False, "false"])
async def test_sw_10_false(rule):
    assert await passes(rule, [False, "false", 0, None, True]) == [False]


@pytest.mark.parametrize("rule", [None, "null"])
async def test_sw_11_null(rule):
    assert await passes(rule, [None, MISSING, "null", 0, ""]) == [None, MISSING]


async def test_sw_11_nnull():
    assert await passes("nnull", ["Anything here", None, MISSING, 0]) == ["Anything here", 0]


async def test_sw_11_null_on_a_missing_nested_property():
    [out] = await route({"property": "payload.a.b", "rules": ["null"]}, [MISSING, {"a": None}])
    assert out == [MISSING, {"a": None}]


_EMPTY = ["", [], b"", {}]
_FULL = ["1", [1], b"\x00", {"a": 1}]
_NEITHER = [None, MISSING, 0]


async def test_sw_12_empty():
    assert await passes("empty", _EMPTY + _FULL + _NEITHER) == _EMPTY


async def test_sw_12_nempty():
    assert await passes("nempty", _EMPTY + _FULL + _NEITHER) == _FULL


@pytest.mark.parametrize(("type_name", "yes", "no"), [
    ("string", ["Hello"], [1, None]),
    ("number", [999, 0, math.inf, 2.5], [math.nan, "1", True]),
    ("boolean", [True, False], ["true", 0]),
    ("array", [[1, 2, 3, "a", "b"]], [{"a": 1}, "[]"]),
    ("buffer", [b"Hello", bytearray(b"x")], ["Hello", [72]]),
    ("object", [{"a": 1, "b": 2}], [[], None, b"x", "o"]),
    ("json", ['{"a":1,"b":2}', "1", "true"], ["Hello", "{bad"]),
    ("null", [None], [MISSING, 0]),
    ("undefined", [MISSING], [None, ""]),
])
async def test_sw_13_istype(type_name, yes, no):
    got = await passes({"istype": type_name}, yes + no)
    assert len(got) == len(yes)
    for value, expected in zip(got, yes, strict=True):
        assert value == expected and type(value) is type(expected)


async def test_sw_13_istype_null_written_as_yaml_null():
    assert await passes({"istype": None}, [None, MISSING]) == [None]


async def test_sw_14_hask():
    assert await passes({"hask": "a"}, [{"a": 1}, {"b": 1}, None, MISSING]) == [{"a": 1}]
    assert await passes({"hask": 1}, [{"a": 1}]) == []
    assert await passes({"hask": 1}, [{"1": "x"}, [5]]) == [{"1": "x"}]  # key = String(1)
    # A string owns its length and its indexes.
    assert await passes({"hask": "length"}, ["abc", 5, b"ab"]) == ["abc"]
    assert await passes({"hask": "0"}, ["abc", ""]) == ["abc"]
    # An object as the key never matches (typeof b === "object").
    assert await passes({"hask": {"literal": {"a": 1}}}, [{"a": 1}]) == []


# -- else and checkall ---------------------------------------------------------------------------

async def test_sw_15_else():
    assert await passes("else", [123456]) == [123456]


async def test_sw_16_checkall_true():
    rules = [{"eq": "Hello"}, {"cont": "ello"}, "else"]
    assert await route({"rules": rules}, ["Hello"]) == [["Hello"], ["Hello"], []]


async def test_sw_17_checkall_false():
    rules = [{"eq": "Hello"}, {"cont": "ello"}, "else"]
    assert await route({"rules": rules, "checkall": False}, ["Hello", "Jello", "x"]) == [
        ["Hello"], ["Jello"], ["x"]]


async def test_sw_18_else_resets_at_each_else():
    rules = [{"gt": 5}, "else", {"lt": 3}, "else"]
    assert await route({"rules": rules}, [10, 1, 4]) == [[10], [1, 4], [1], [10]]


async def test_sw_yaml_rule_forms_and_output_count():
    flow = textwrap.dedent("""\
        flow: routes
        nodes:
          route:
            type: switch
            property: payload.kind
            rules:
              - eq: start
              - true
              - null
              - "false"
              - else
            checkall: false
        """)
    async with FlowHarness.from_yaml(flow) as h:
        assert h.node("route").output_total == 5
        for port in range(5):
            h.watch_output("route", port)
        for kind in ["start", True, MISSING, False, "other"]:
            h.send("route", {"payload": {} if kind is MISSING else {"kind": kind}})
        await h.settle()
        got = [[m["payload"].get("kind", MISSING) for m in h.output_now("route", i)]
               for i in range(5)]
        assert got == [["start"], [True], [MISSING], [False], ["other"]]


# -- comparands: previous value, message, context, env, JSONata -----------------------------------

async def test_sw_19_previous_value():
    assert await passes({"gt": {"prev": True}}, [1, 0, -2, 2]) == [1, 2]


async def test_sw_20_btwn_with_previous_value():
    # 0 passes too: prev starts null and 0 <= 10 && 0 >= null in JS. Node-RED's own spec
    # ignores it only because its helper skips falsy payloads (`if (msg.payload)`).
    assert await passes({"btwn": [10, {"prev": True}]}, [0, 20, 30, 20, 30, 25]) == [0, 20, 25]


async def test_sw_21_missing_msg_comparand_is_undefined():
    assert await passes({"eq": {"msg": "this.does.not.exist"}}, ["", MISSING, None]) == [
        MISSING, None]  # undefined == undefined, null == undefined


async def test_sw_22_nested_property():
    config = {"property": "payload[msg.topic]", "rules": [{"eq": "bar"}]}
    async with NodeHarness("switch", config) as h:
        h.send({"topic": "foo", "payload": {"foo": "bar"}})
        h.send({"topic": "foo", "payload": {"foo": "none"}})
        await h.settle()
        assert [m["payload"] for m in h.output_now(0)] == [{"foo": "bar"}]


async def test_sw_22_nested_comparand():
    config = {"rules": [{"eq": {"msg": "lookup[msg.topic2]"}}]}
    async with NodeHarness("switch", config) as h:
        h.send({"payload": 2, "topic2": "b", "lookup": {"a": 1, "b": 2}})
        h.send({"payload": 1, "topic2": "b", "lookup": {"a": 1, "b": 2}})
        await h.settle()
        assert [m["payload"] for m in h.output_now(0)] == [2]


async def test_sw_23_flow_context_property_and_comparand():
    config = {"property": {"flow": "foo"}, "rules": [{"eq": {"flow": "bar"}}, {"eq": "x"}]}
    async with NodeHarness("switch", config) as h:
        h.node("node").flow_context.set("foo", "flowValue")
        h.node("node").flow_context.set("bar", "flowValue")
        h.send({"payload": "ignored"})
        await h.settle()
        assert [m["payload"] for m in h.output_now(0)] == ["ignored"]
        assert h.output_now(1) == []


async def test_sw_23_global_context_comparand():
    async with NodeHarness("switch", {"rules": [{"gte": {"global": "limit"}}]}) as h:
        h.node("node").global_context.set("limit", 5)
        for payload in [4, 5, 6]:
            h.send({"payload": payload})
        await h.settle()
        assert [m["payload"] for m in h.output_now(0)] == [5, 6]


async def test_sw_23_env_property_from_flow_env_block():
    flow = textwrap.dedent("""\
        flow: envs
        env:
          VAR: VAL
        nodes:
          route:
            type: switch
            property: {env: VAR}
            rules:
              - eq: VAL
              - eq: other
        """)
    async with FlowHarness.from_yaml(flow) as h:
        h.watch_output("route", 0)
        h.watch_output("route", 1)
        h.send("route", {"payload": 1})
        await h.settle()
        assert [m["payload"] for m in h.output_now("route", 0)] == [1]
        assert h.output_now("route", 1) == []


async def test_sw_23_env_from_process_environment(monkeypatch):
    monkeypatch.setenv("FLOWENGINE_TEST_SW", "VAL")
    config = {"rules": [{"eq": {"env": "FLOWENGINE_TEST_SW"}}]}
    assert await route(config, ["VAL", "other"]) == [["VAL"]]


async def test_sw_23_jsonata_property_and_bounds():
    config = {"property": {"jsonata": "$abs(payload)"},
              "rules": [{"btwn": [{"jsonata": "$sqrt(16)"}, {"jsonata": "$sqrt(36)"}]}]}
    assert await route(config, [-5, -7, 6]) == [[-5, 6]]


async def test_sw_23_jsonata_exp():
    assert await passes({"jsonata_exp": "payload % 2 = 1"}, [9, 8, "x"]) == [9]


async def test_sw_24_lt_with_strings():
    assert await passes({"lt": 10}, ["9", "10", "abc", None, ""]) == ["9", None, ""]


# -- errors ----------------------------------------------------------------------------------------

async def test_sw_31_jsonata_property_evaluation_error_warns_and_drops():
    config = {"property": {"jsonata": "$invalidExpression(payload)"}, "rules": [{"eq": 1}]}
    async with NodeHarness("switch", config) as h:
        h.send({"payload": 1})
        await h.settle()
        assert h.output_now(0) == []
        warnings = [d for kind, d in h.events if kind == "log" and d["node"] == "node"]
        assert len(warnings) == 1
        assert warnings[0]["level"] == "WARNING"
        assert "invalid property expression" in warnings[0]["message"]
        assert h.errors == []


async def test_sw_31_empty_rules_send_nothing():
    async with NodeHarness("switch", {"rules": []}) as h:
        assert h.node("node").output_total == 0
        h.send({"payload": 1})
        await h.settle()
        assert h.errors == []
        assert [kind for kind, _ in h.events if kind in ("error", "log")] == []


async def test_jsonata_comparand_evaluation_error_is_a_catchable_error():
    config = {"rules": [{"eq": {"jsonata": "$nope(payload)"}}, "else"]}
    async with NodeHarness("switch", config) as h:
        h.send({"payload": 1})
        await h.settle()
        assert h.output_now(0) == [] and h.output_now(1) == []
        assert len(h.errors) == 1
        assert h.errors[0]["message"] == ("Invalid JSONata expression: Attempted to invoke a "
                                          "non-function")


@pytest.mark.parametrize(("config", "field"), [
    ({"property": {"jsonata": "$abs("}, "rules": ["else"]}, "property.jsonata"),
    ({"rules": [{"eq": 1}, "else", {"regex": "\\+**+"}]}, "rules[2].regex"),
    ({"rules": [{"jsonata_exp": "payload ="}]}, "rules[0].jsonata_exp"),
    ({"rules": [{"btwn": [1, {"jsonata": "(("}]}]}, "rules[0].btwn[1].jsonata"),
    ({"rules": [{"eq": 1, "neq": 2}]}, "rules[0]"),
    ({"rules": [{"eq": 1, "ignore_case": True}]}, "rules[0].ignore_case"),
    ({"rules": [{"gt": {"prev": 1}}]}, "rules[0].gt.prev"),
])
async def test_invalid_configuration_is_a_load_error_naming_the_field(config, field):
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("switch", config)
    errors = [e for e in info.value.errors if not e.warning]
    assert [e.field for e in errors] == [field]


async def test_an_unknown_bare_rule_is_a_load_error() -> None:
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("switch", {"rules": ["maybe"]})
    assert any(e.field == "rules[0]" for e in info.value.errors)


# -- sequences (SW-25..SW-30: head, tail, index, $I/$N, recreate sequences) ----------------------

SEQUENCE = """\
    split: {type: split, wires: [route]}
    route:
      type: switch
      rules: RULES
      repair: REPAIR
"""


async def sequence(rules: list[Any], payload: list[Any], repair: bool = False
                   ) -> list[list[dict[str, Any]]]:
    """What each output sends when ``payload`` is split into a sequence and routed."""
    text = textwrap.dedent(SEQUENCE).replace("RULES", repr(rules)).replace(
        "REPAIR", "true" if repair else "false")
    async with FlowHarness.from_yaml(f"flow: f\nnodes:\n{textwrap.indent(text, '  ')}") as h:
        for port in range(len(rules)):
            h.watch_output("route", port)
        h.send("split", {"payload": payload})
        await h.settle()
        return [h.output_now("route", port) for port in range(len(rules))]


@pytest.mark.parametrize(("rule", "picked"), [
    ({"head": 2}, [1, 2]),
    ({"tail": 2}, [3, 4]),
    ({"index": [1, 2]}, [2, 3]),
    ({"jsonata_exp": "$I % 2 = 0 and $N = 4"}, [1, 3]),
])
async def test_sequence_rules_pick_parts_by_their_place(rule: Any, picked: list[int]) -> None:
    [out] = await sequence([rule], [1, 2, 3, 4])
    assert [m["payload"] for m in out] == picked
    # Without repair the parts keep their sequence: a join would wait for the missing ones.
    assert [m["parts"]["count"] for m in out] == [4] * len(picked)


async def test_recreated_sequences_have_new_parts_per_output() -> None:
    first, rest = await sequence([{"head": 1}, "else"], [1, 2, 3], repair=True)
    assert [(m["payload"], m["parts"]["index"], m["parts"]["count"]) for m in first] == [
        (1, 0, 1)]
    assert [(m["payload"], m["parts"]["index"], m["parts"]["count"]) for m in rest] == [
        (2, 0, 2), (3, 1, 2)]
    assert first[0]["parts"]["id"] != rest[0]["parts"]["id"]
    assert len({m["parts"]["id"] for m in rest}) == 1


async def test_a_sequence_rule_on_a_message_outside_a_sequence_is_an_error() -> None:
    async with NodeHarness("switch", {"rules": [{"head": 1}]}) as h:
        h.send({"payload": 1})
        await h.settle()
    assert [e["message"] for e in h.errors] == [
        "TypeError: Cannot read properties of undefined (reading 'index')"]


async def test_held_parts_are_bounded() -> None:
    config = {"rules": [{"tail": 1}], "max_queue": 2}
    async with NodeHarness("switch", config) as h:
        for index in range(3):
            h.send({"payload": index, "parts": {"id": "s", "index": index, "count": 9}})
        await h.settle()
        assert h.output_now(0) == []
    assert [e["message"] for e in h.errors] == ["Too many pending messages in switch node"]


