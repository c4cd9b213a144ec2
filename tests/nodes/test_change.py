"""The change node: Node-RED's cases CH-01..CH-22 (docs/reference/nodered-cases.md), in YAML form.

CH-07 (Node-RED's typed strings: "abc" as num, "TRUE" as bool, bad JSON text) has no
counterpart: YAML values carry their own type.
"""

from __future__ import annotations

import textwrap
import time
from typing import Any

import pytest

from flowengine import FlowLoadError
from flowengine.testing import FlowHarness, NodeHarness


async def change(rules: list[dict[str, Any]], msg: dict[str, Any]) -> dict[str, Any]:
    """Run one message through a change node; the message it sends (without ``_msgid``)."""
    async with NodeHarness("change", {"rules": rules}) as h:
        h.send(msg)
        [out] = await h.output(0)
        out.pop("_msgid")
        return out


async def dropped(rules: list[dict[str, Any]], msg: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a message that must not come out; the error events it caused."""
    async with NodeHarness("change", {"rules": rules}) as h:
        h.send(msg)
        await h.settle()
        assert h.output_now(0) == []
        return h.errors


# -- set -----------------------------------------------------------------------------------------

async def test_ch_01_no_rules_pass_the_message_unchanged():
    assert await change([], {"payload": "x", "topic": "t"}) == {"payload": "x", "topic": "t"}
    async with NodeHarness("change", {}) as h:
        h.send({"payload": 1})
        [out] = await h.output(0)
        assert out["payload"] == 1


async def test_ch_02_set_string_and_number():
    assert await change([{"set": "payload", "to": "changed"}], {"payload": "x"}) == {
        "payload": "changed"}
    out = await change([{"set": "payload", "to": 12345}], {"payload": "x"})
    assert out["payload"] == 12345 and type(out["payload"]) is int


async def test_ch_03_set_nested_creates_parents():
    rule = [{"set": "foo.bar", "to": "bar"}]
    assert await change(rule, {"foo": {"bar": "foo"}}) == {"foo": {"bar": "bar"}}
    assert await change(rule, {}) == {"foo": {"bar": "bar"}}
    assert await change([{"set": "pay.load", "to": "10"}], {}) == {"pay": {"load": "10"}}


async def test_ch_04_set_from_message_property():
    assert await change([{"set": "foo", "to": {"msg": "fred"}}], {"fred": "bar"}) == {
        "fred": "bar", "foo": "bar"}
    out = await change([{"set": "foo.bar", "to": {"msg": "msg.fred.red"}}],
                       {"fred": {"red": "bar"}})
    assert out["foo"] == {"bar": "bar"}


async def test_ch_05_set_from_missing_property():
    # Parent missing: reading throws in Node-RED, the rule is skipped.
    assert await change([{"set": "foo.bar", "to": {"msg": "fred.red"}}], {}) == {}
    assert await change([{"set": "payload", "to": {"msg": "fred.red"}}], {"payload": "Hello"}) == {
        "payload": "Hello"}
    # Property missing (undefined): the target is deleted.
    assert await change([{"set": "payload", "to": {"msg": "foo"}}], {"payload": "Hello"}) == {}
    assert await change([{"set": "payload", "to": {"msg": "foo"}}],
                        {"payload": "Hello", "foo": None}) == {"payload": None, "foo": None}
    assert await change([{"set": "payload", "to": {"msg": "otherProp=10"}}],
                        {"payload": "Hello"}) == {}


async def test_ch_06_set_other_types():
    assert (await change([{"set": "payload", "to": True}], {}))["payload"] is True
    assert (await change([{"set": "payload", "to": {"a": 123}}], {}))["payload"] == {"a": 123}
    hello = [72, 101, 108, 108, 111, 32, 87, 111, 114, 108, 100]
    assert (await change([{"set": "payload", "to": {"bytes": hello}}], {}))["payload"] == \
        b"Hello World"
    before = time.time() * 1000
    stamp = (await change([{"set": "ts", "to": {"date": "now"}}], {}))["ts"]
    assert isinstance(stamp, int) and before - 1 <= stamp <= time.time() * 1000 + 1


async def test_ch_06_literal_values_are_not_shared_between_messages():
    async with NodeHarness("change", {"rules": [{"set": "payload", "to": {"a": [1]}}]}) as h:
        node = h.node("node")
        first = node.on_input({})
        second = node.on_input({})
        assert first["payload"] == second["payload"] == {"a": [1]}
        assert first["payload"] is not second["payload"]


async def test_ch_08_env_from_process(monkeypatch):
    monkeypatch.setenv("NR_TEST_A", "foo")
    out = await change([{"set": "payload", "to": {"env": "NR_TEST_A"}}], {})
    assert out["payload"] == "foo"


async def test_ch_08_env_from_flow_env_block(monkeypatch):
    monkeypatch.setenv("NR_TEST_A", "process")
    flow = textwrap.dedent("""\
        flow: envs
        env:
          NR_TEST_A: bar
        nodes:
          tidy:
            type: change
            rules:
              - set: payload
                to: {env: NR_TEST_A}
        """)
    async with FlowHarness.from_yaml(flow) as h:
        h.watch_output("tidy")
        h.send("tidy", {"payload": 1})
        [out] = await h.output("tidy")
        assert out["payload"] == "bar"


async def test_ch_09_jsonata():
    out = await change([{"set": "payload", "to": {"jsonata": "$length(payload)"}}],
                       {"payload": "Hello World!"})
    assert out["payload"] == 12


async def test_ch_09_jsonata_evaluation_error_is_caught_and_drops_the_message():
    rules = [{"set": "payload", "to": {"jsonata": "$invalid(payload)"}}]
    extra = {"on-error": {"type": "catch"}}
    async with NodeHarness("change", {"rules": rules}, extra_nodes=extra) as h:
        h.send({"payload": "x", "_msgid": "m1"})
        [caught] = await h.output(0, node_id="on-error")
        await h.settle()
        assert h.output_now(0) == []
        assert caught["error"]["source"]["id"] == "node"
        # As Node-RED words it, with JSONata's message.
        assert caught["error"]["message"] == ("Invalid JSONata expression: Attempted to invoke "
                                              "a non-function")
        assert caught["_msgid"] == "m1"


async def test_ch_09_jsonata_reads_context():
    rules = [{"set": "payload", "to": {"jsonata": '$flowContext("foo") & $globalContext("foo")'}}]
    async with NodeHarness("change", {"rules": rules}) as h:
        h.node("node").flow_context.set("foo", "flow")
        h.node("node").global_context.set("foo", "global")
        h.send({"payload": ""})
        [out] = await h.output(0)
        assert out["payload"] == "flowglobal"


async def test_ch_10_nested_references():
    out = await change([{"set": "payload", "to": {"msg": "lookup[msg.topic]"}}],
                       {"lookup": {"a": 1, "b": 2}, "topic": "b"})
    assert out["payload"] == 2
    out = await change([{"set": "lookup[msg.topic]", "to": {"msg": "payload"}}],
                       {"lookup": {"a": 1, "b": 2}, "topic": "b", "payload": "newValue"})
    assert out["lookup"] == {"a": 1, "b": "newValue"}


async def test_ch_10_nested_reference_in_flow_context_target():
    rules = [{"set": {"flow": "lookup[msg.topic]"}, "to": {"msg": "payload"}}]
    async with NodeHarness("change", {"rules": rules}) as h:
        h.node("node").flow_context.set("lookup", {"a": 1, "b": 2})
        h.send({"payload": "newValue", "topic": "b"})
        [out] = await h.output(0)
        assert out["payload"] == "newValue"
        assert h.node("node").flow_context.get("lookup") == {"a": 1, "b": "newValue"}
        # An undefined reference skips the rule, as Node-RED's throw inside the rule does.
        h.send({"payload": "other"})
        [_, out] = await h.output(0, count=2)
        assert h.node("node").flow_context.get("lookup") == {"a": 1, "b": "newValue"}


async def test_ch_11_deep_copy():
    source = {"a": {"b": 2}}
    async with NodeHarness("change", {"rules": [
            {"set": "payload", "to": {"msg": "source"}, "deep_copy": True},
            {"set": "ref", "to": {"msg": "source"}}]}) as h:
        out = h.node("node").on_input({"source": source})
        assert out["payload"] == {"a": {"b": 2}}
        assert out["payload"] is not source and out["payload"]["a"] is not source["a"]
        assert out["ref"] is source  # without deep_copy the value is referenced


# -- change ------------------------------------------------------------------------------------

async def test_ch_12_change_substring():
    rule = {"change": "payload", "from": "Hello", "to": "Goodbye"}
    assert (await change([rule], {"payload": "Hello World!"}))["payload"] == "Goodbye World!"
    nested = {**rule, "change": "foo.bar"}
    assert await change([nested], {"foo": {"bar": "Hello World!"}}) == {
        "foo": {"bar": "Goodbye World!"}}
    assert await change([{**rule, "change": "foo"}], {"payload": "Hello World!"}) == {
        "payload": "Hello World!"}
    assert await change([nested], {"payload": "Hello World!"}) == {"payload": "Hello World!"}


async def test_ch_13_partial_match_keeps_string_whole_match_takes_value_type():
    rule = {"change": "payload", "from": "123", "to": 456}
    assert (await change([rule], {"payload": "Change123Me"}))["payload"] == "Change456Me"
    whole = (await change([rule], {"payload": "123"}))["payload"]
    assert whole == 456 and type(whole) is int
    rules = [{"change": "payload.a", "from": "123", "to": True},
             {"change": "payload.b", "from": "456", "to": False}]
    assert (await change(rules, {"payload": {"a": "123", "b": "456"}}))["payload"] == {
        "a": True, "b": False}


async def test_ch_13_change_in_flow_context():
    rules = [{"change": {"flow": "payload"}, "from": "123", "to": 456},
             {"change": {"flow": "other"}, "from": "123", "to": 456}]
    async with NodeHarness("change", {"rules": rules}) as h:
        flow = h.node("node").flow_context
        flow.set("payload", "123")
        flow.set("other", "Change123Me")
        h.send({"payload": ""})
        await h.output(0)
        assert flow.get("payload") == 456
        assert flow.get("other") == "Change456Me"


@pytest.mark.parametrize(("pattern", "to", "payload", "expected"), [
    ("\\d+", "NUMBER", "Replace all numbers 12 and 14", "Replace all numbers NUMBER and NUMBER"),
    # JS String.replace stringifies a non-string replacement: the result is the string "true".
    ("on", True, "on", "true"),
    ("off", False, "off", "false"),
    ("(Hello)", "$1-$1-$1", "Hello World", "Hello-Hello-Hello World"),
    ("(\\w)(\\d)", "$2$1", "a1 b2 c3", "1a 2b 3c"),
])
async def test_ch_14_regex(pattern, to, payload, expected):
    rule = {"change": "payload", "from": {"regex": pattern}, "to": to}
    assert (await change([rule], {"payload": payload}))["payload"] == expected


async def test_ch_14_invalid_regex_is_a_load_error():
    rules = [{"change": "payload", "from": {"regex": "\\+**+"}, "to": "NUMBER"}]
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("change", {"rules": rules})
    [error] = [e for e in info.value.errors if not e.warning]
    assert error.field == "rules[0].from.regex"
    assert "Nothing to repeat" in error.message


async def test_ch_15_string_match_is_literal_and_case_sensitive(monkeypatch):
    rule = {"change": "payload", "from": "ABC", "to": "123"}
    assert (await change([rule], {"payload": "abcABCabc"}))["payload"] == "abc123abc"
    assert (await change([{**rule, "from": "a.c"}], {"payload": "abcA.C a.c"}))["payload"] == \
        "abcA.C 123"
    by_msg = {**rule, "from": {"msg": "topic"}}
    assert (await change([by_msg], {"payload": "abcABCabc", "topic": "ABC"}))["payload"] == \
        "abc123abc"
    monkeypatch.setenv("NR_TEST_A", "foo")
    by_env = {**rule, "to": {"env": "NR_TEST_A"}}
    assert (await change([by_env], {"payload": "abcABCabc"}))["payload"] == "abcfooabc"


async def test_ch_15_from_context():
    rules = [{"change": "payload", "from": {"flow": "topic"}, "to": "123"},
             {"change": "count", "from": {"global": "n"}, "to": "ABC"}]
    async with NodeHarness("change", {"rules": rules}) as h:
        h.node("node").flow_context.set("topic", "ABC")
        h.node("node").global_context.set("n", 123)
        h.send({"payload": "abcABCabc", "count": 123})
        [out] = await h.output(0)
        assert out["payload"] == "abc123abc"
        assert out["count"] == "ABC"


@pytest.mark.parametrize(("from_", "to", "payload", "expected"), [
    (123, "456", "123", "456"),
    (123, "abc", 123, "abc"),
    (123, "abc", 124, 124),
    (123, "X", "a123b", "aXb"),
    (True, "xxx", "true", "xxx"),
    (True, "xxx", True, "xxx"),
    (True, "xxx", False, False),
    ("1", "X", 123, 123),  # a string never matches a number
    ("1", "X", "a1b1", "aXbX"),
])
async def test_ch_16_change_number_and_boolean(from_, to, payload, expected):
    rule = {"change": "payload", "from": from_, "to": to}
    result = (await change([rule], {"payload": payload}))["payload"]
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("msg", [{"payload": "x", "null": None}, {"payload": "x"}])
async def test_ch_17_invalid_from_value(msg):
    rules = [{"change": "payload", "from": {"msg": "null"}, "to": "y"}]
    [error] = await dropped(rules, msg)
    assert "invalid 'from' value" in error["message"]


# -- delete, move, several rules -----------------------------------------------------------------

async def test_ch_18_delete():
    assert await change([{"delete": "payload"}], {"payload": "x", "t": 1}) == {"t": 1}
    assert await change([{"delete": "foo.bar"}], {"foo": {"bar": 1, "baz": 2}}) == {
        "foo": {"baz": 2}}
    assert await change([{"delete": "foo"}], {"payload": 1}) == {"payload": 1}
    assert await change([{"delete": "foo.bar"}], {"payload": 1}) == {"payload": 1}


async def test_ch_18_delete_context():
    async with NodeHarness("change", {"rules": [{"delete": {"global": "k"}}]}) as h:
        h.node("node").global_context.set("k", 1)
        h.node("node").global_context.set("j", 2)
        h.send({"payload": 1})
        await h.output(0)
        assert h.node("node").global_context.keys() == ["j"]


async def test_ch_19_move():
    assert await change([{"move": "topic", "to": "payload"}], {"topic": "A", "payload": "B"}) == {
        "payload": "A"}
    assert await change([{"move": "payload", "to": "payload"}], {"payload": "bar"}) == {
        "payload": "bar"}


async def test_ch_19_move_object_by_reference():
    obj = {"a": [1]}
    async with NodeHarness("change", {"rules": [{"move": "topic", "to": "payload"}]}) as h:
        out = h.node("node").on_input({"topic": obj})
        assert out["payload"] is obj and "topic" not in out


@pytest.mark.parametrize(("source", "target", "msg", "expected"), [
    ("payload", "payload.foo", {"payload": "bar"}, {"payload": {"foo": "bar"}}),
    ("payload", "payload.foo", {"payload": {"a": 1}}, {"payload": {"foo": {"a": 1}}}),
    ("payload.foo", "payload", {"payload": {"foo": "bar", "x": 1}}, {"payload": "bar"}),
    ("topic", "a.b.c", {"topic": "T"}, {"a": {"b": {"c": "T"}}}),
    ("topic", "a.b.c", {"payload": 1}, {"payload": 1}),
])
async def test_ch_20_move_to_and_from_nested(source, target, msg, expected):
    assert await change([{"move": source, "to": target}], msg) == expected


async def test_move_between_message_and_context():
    rules = [{"move": "topic", "to": {"flow": "last"}}, {"move": {"global": "g"}, "to": "g"}]
    async with NodeHarness("change", {"rules": rules}) as h:
        h.node("node").global_context.set("g", [1, 2])
        h.send({"topic": "T", "payload": 1})
        [out] = await h.output(0)
        assert "topic" not in out and out["g"] == [1, 2]
        assert h.node("node").flow_context.get("last") == "T"
        assert h.node("node").global_context.keys() == []


async def test_ch_21_rules_apply_in_order():
    rules = [{"set": "payload", "to": "a this (hi)"},
             {"change": "payload", "from": "this", "to": "that"},
             {"change": "payload", "from": {"regex": "\\(.*\\)"}, "to": "[new]"}]
    assert (await change(rules, {"payload": 1}))["payload"] == "a that [new]"


async def test_ch_22_path_edges():
    assert await change([{"set": "foo.0", "to": "x"}], {}) == {"foo": {"0": "x"}}
    assert await change([{"set": "foo[0]", "to": "x"}], {}) == {"foo": ["x"]}


async def test_ch_22_set_beneath_a_primitive_warns_and_skips():
    async with NodeHarness("change", {"rules": [{"set": "payload.a", "to": 1}]}) as h:
        h.send({"payload": "str"})
        [out] = await h.output(0)
        assert out["payload"] == "str"
        [warning] = [d for kind, d in h.events if kind == "log"]
        assert warning["level"] == "WARNING" and "payload.a" in warning["message"]


# -- configuration errors ------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "field"), [
    ({"set": "payload", "to": {"jsonata": "$length("}}, "rules[0].to.jsonata"),
    ({"set": "payload", "delete": "x", "to": 1}, "rules[0]"),
    ({"set": "payload"}, "rules[0]"),
    ({"set": "payload", "to": 1, "from": "a"}, "rules[0].from"),
    ({"delete": "payload", "deep_copy": True}, "rules[0].deep_copy"),
    ({"move": "payload", "to": 5}, "rules[0].to"),
    ({"change": "payload", "from": [1], "to": 1}, "rules[0].from"),
    ({"set": "pay..load", "to": 1}, "rules[0].set"),
    ({"set": {"flow": "a[b]"}, "to": 1}, "rules[0].set.flow"),
])
async def test_invalid_rule_is_a_load_error_naming_the_field(rule, field):
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("change", {"rules": [rule]})
    errors = [e for e in info.value.errors if not e.warning]
    assert [e.field for e in errors] == [field]
