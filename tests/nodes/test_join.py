"""The join node: Node-RED's cases JN-01..JN-18 (docs/reference/nodered-cases.md), in YAML form."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from flowengine import FlowLoadError
from flowengine.testing import FlowHarness, NodeHarness, capture_logs

CATCH = {"catch": {"type": "catch", "scope": ["node"]}}


def seq(payloads: list[Any], indexes: list[int] | None = None, group: Any = 1,
        **parts: Any) -> list[dict[str, Any]]:
    """Messages of one sequence: payload i with parts {id, index, **parts}."""
    indexes = indexes if indexes is not None else list(range(len(payloads)))
    return [{"payload": p, "parts": {"id": group, "index": i, **parts}}
            for p, i in zip(payloads, indexes, strict=True)]


async def join(config: dict[str, Any], msgs: list[dict[str, Any]], expect: int = 1,
               timeout: float = 2.0) -> list[dict[str, Any]]:
    """Send ``msgs`` to a join node; the first ``expect`` outputs, checking there are no more."""
    async with NodeHarness("join", config) as h:
        for msg in msgs:
            h.send(msg)
        out = await h.output(0, expect, timeout=timeout)
        await h.settle()
        assert len(h.output_now()) == expect, h.output_now()
        return out


# -- auto -------------------------------------------------------------------------------------

async def test_jn_01_auto_string():
    msgs = seq(list("ABCD"), type="string", ch=",", count=4)
    [out] = await join({"mode": "auto", "joiner": "-"}, msgs)
    assert out["payload"] == "A,B,C,D"  # the node's joiner is not used in auto mode
    assert "parts" not in out


async def test_jn_01_auto_buffer_with_joiner():
    msgs = seq([b"A", b"B", b"C", b"D"], type="buffer", ch=b"-", count=4)
    [out] = await join({}, msgs)
    assert out["payload"] == b"A-B-C-D"


async def test_jn_01_auto_buffer_with_byte_list_joiner():
    msgs = seq([b"A", b"B"], type="buffer", ch=[45], count=2)
    [out] = await join({}, msgs)
    assert out["payload"] == b"A-B"


async def test_jn_02_auto_array_out_of_order():
    msgs = seq([3, 2, 4, 1], [2, 1, 3, 0], type="array", count=4)
    [out] = await join({}, msgs)
    assert out["payload"] == [1, 2, 3, 4]


async def test_jn_02_auto_object():
    msgs = seq([3, 2, 4, 1], [2, 1, 3, 0], type="object", count=4)
    for msg, key in zip(msgs, "cbda", strict=True):
        msg["parts"]["key"] = key
    [out] = await join({}, msgs)
    assert out["payload"] == {"a": 1, "b": 2, "c": 3, "d": 4}


async def test_jn_02_auto_string_into_a_word():
    msgs = seq(list("adcb"), [0, 3, 2, 1], type="string", ch="", count=4)
    [out] = await join({}, msgs)
    assert out["payload"] == "abcd"


async def test_jn_03_auto_complete_early():
    msgs = seq([3, 2], [2, 1], type="array", count=4)
    msgs.append({"payload": 4, "complete": True,
                 "parts": {"id": 1, "index": 3, "type": "array", "count": 4}})
    [out] = await join({"timeout": 0.25}, msgs)
    assert out["payload"] == [None, 2, 3, 4]  # JavaScript's hole is None here
    assert "complete" not in out


async def test_jn_04_auto_sub_property():
    msgs = [{"foo": {"bar": v}, "parts": {"id": 1, "index": i, "count": 4, "type": "array",
                                         "property": "foo.bar"}}
            for i, v in enumerate("ABCD")]
    [out] = await join({}, msgs)
    assert out["foo"]["bar"] == ["A", "B", "C", "D"]


async def test_jn_05_auto_without_parts_warns():
    records = capture_logs()
    async with NodeHarness("join", {}) as h:
        h.send({"payload": "A", "parts": {"index": 0, "count": 1}})
        h.send({"payload": "B"})
        await h.settle()
        assert h.output_now() == []
    warnings = [r.getMessage() for r in records if r.levelname == "WARNING"]
    assert warnings.count("Message missing msg.parts property - cannot join in 'auto' mode") == 2


async def test_jn_05_auto_duplicate_index():
    msgs = seq(list("ABC"), [0, 0, 0], type="array", count=2) + \
        seq(["D"], [1], type="array", count=2)
    [out] = await join({}, msgs)
    assert out["payload"] == ["C", "D"]


async def test_jn_05_auto_reset_without_parts_clears_every_group():
    msgs = seq(["A", "B"], [0, 0], type="array", count=2)
    msgs.append({"reset": True})
    msgs += seq(["C", "D"], [1, 0], type="array", count=2)
    [out] = await join({}, msgs)
    assert out["payload"] == ["D", "C"]


async def test_jn_05_auto_count_on_one_part_only():
    msgs = [{"payload": i, "parts": {"id": 1, "index": i, "type": "array"}}
            for i in (4, 3, 1, 0)]
    msgs.insert(2, {"payload": 2, "parts": {"id": 1, "index": 2, "type": "array", "count": 5}})
    [out] = await join({}, msgs)
    assert out["payload"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("value", ["a\nb\nc", {"x": 1, "y": 2}, [1, 2, 3], b"a\nb"])
async def test_jn_06_split_join_round_trip(value):
    flow = {"flow": "t", "nodes": {"s": {"type": "split", "wires": ["j"]},
                                   "j": {"type": "join"}}}
    async with FlowHarness.from_dict(flow) as h:
        h.send("s", {"payload": value, "topic": "x"})
        [out] = await h.output("j")
        assert out["payload"] == value and out["topic"] == "x"
        assert "parts" not in out


async def test_jn_06_chained_split_split_join_join():
    flow = {"flow": "t", "nodes": {"s1": {"type": "split", "wires": ["s2"]},
                                   "s2": {"type": "split", "wires": ["j1"]},
                                   "j1": {"type": "join", "wires": ["j2"]},
                                   "j2": {"type": "join"}}}
    value = [[1, 2, 3], "a\nb\nc", [7, 8, 9]]
    async with FlowHarness.from_dict(flow) as h:
        h.send("s1", {"payload": value})
        [out] = await h.output("j2")
        assert out["payload"] == value
        assert "parts" not in out


async def test_jn_06_array_chunks_are_flattened():
    flow = {"flow": "t", "nodes": {"s": {"type": "split", "array_chunk": 2, "wires": ["j"]},
                                   "j": {"type": "join"}}}
    async with FlowHarness.from_dict(flow) as h:
        h.send("s", {"payload": [1, 2, 3, 4, 5]})
        [out] = await h.output("j")
        assert out["payload"] == [1, 2, 3, 4, 5]


# -- manual -----------------------------------------------------------------------------------

async def test_jn_07_manual_array_after_count():
    msgs = [{"payload": 1}, {"payload": True}, {"payload": {"a": 1}}]
    [out] = await join({"mode": "manual", "count": 3}, msgs)
    assert out["payload"] == [1, True, {"a": 1}]


async def test_jn_07_manual_ignores_parts_index():
    msgs = [{"payload": p, "parts": {"id": 9, "index": 2 - i, "count": 3}}
            for i, p in enumerate("abc")]
    [out] = await join({"mode": "manual", "count": 3}, msgs)
    assert out["payload"] == ["a", "b", "c"]
    assert "parts" not in out


async def test_jn_08_manual_output_takes_later_properties():
    msgs = [{"payload": 1, "topic": "A", "x": 1}, {"payload": 2, "topic": "B"}]
    [out] = await join({"mode": "manual", "count": 2}, msgs)
    assert {k: out[k] for k in ("payload", "topic", "x")} == {"payload": [1, 2], "topic": "B",
                                                             "x": 1}
    assert out["_msgid"] == msgs[1]["_msgid"]  # given by the runtime when it was delivered


async def test_jn_09_manual_string():
    msgs = [{"payload": "a"}, {"payload": 2}, {"payload": {"b": 1}}]
    [out] = await join({"mode": "manual", "build": "string", "joiner": "\n", "count": 3}, msgs)
    assert out["payload"] == "a\n2\n[object Object]"


async def test_jn_09_manual_buffer():
    msgs = [{"payload": "hello"}, {"payload": "world"}]
    [out] = await join({"mode": "manual", "build": "buffer", "joiner": {"bytes": []},
                        "count": 2}, msgs)
    assert out["payload"] == b"helloworld"


async def test_jn_09_manual_buffer_rejects_numbers():
    async with NodeHarness("join", {"mode": "manual", "build": "buffer", "count": 2},
                           extra_nodes=CATCH) as h:
        h.send({"payload": 5})
        [caught] = await h.output(0, node_id="catch")
        assert caught["error"]["message"] == "Cannot join number to buffer"


async def test_jn_10_manual_object_after_count():
    msgs = [{"topic": t, "payload": p} for t, p in
            [("a", 1), ("b", "2"), ("c", True), ("d", {"e": 5}), ("d", {"e": 7}), ("g", {"f": 6})]]
    [out] = await join({"mode": "manual", "build": "object", "count": 5}, msgs)
    assert out["payload"] == {"a": 1, "b": "2", "c": True, "d": {"e": 7}, "g": {"f": 6}}


async def test_jn_10_manual_object_missing_key_warns():
    records = capture_logs()
    async with NodeHarness("join", {"mode": "manual", "build": "object", "count": 1}) as h:
        h.send({"payload": 1})
        await h.settle()
        assert h.output_now() == []
    assert "Message missing key property 'msg.topic' - cannot add to object" in [
        r.getMessage() for r in records]


async def test_jn_11_merged():
    msgs = [{"payload": p} for p in
            [{"a": 9}, {"a": 1}, {"b": 9}, {"b": 2}, {"c": 3}, {"d": 4}, {"e": 5}]]
    [out] = await join({"mode": "manual", "build": "merged", "count": 5}, msgs)
    assert out["payload"] == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}


async def test_jn_11_merged_sub_property():
    msgs = [{"foo": {"bar": p}} for p in [{"a": 1}, {"b": 2}, {"c": 3}]]
    [out] = await join({"mode": "manual", "build": "merged", "property": "foo.bar",
                        "count": 3}, msgs)
    assert out["foo"]["bar"] == {"a": 1, "b": 2, "c": 3}


async def test_jn_11_merged_whole_messages():
    msgs = [{"payload": 1, "topic": "a"}, {"foo": "d", "payload": 3}, {"bar": "b"},
            {"aha": "c"}, {"bingo": "e", "payload": 7}]
    [out] = await join({"mode": "manual", "build": "merged", "whole_message": True,
                        "count": 6}, msgs)
    assert out["payload"] == {"payload": 7, "topic": "a", "foo": "d", "bar": "b", "aha": "c",
                              "bingo": "e"}


async def test_jn_12_accumulate_merged():
    msgs = [{"payload": {k: v}} for k, v in [("a", 1), ("b", 2), ("c", 3), ("a", 3), ("c", 1)]]
    out = await join({"mode": "manual", "build": "merged", "accumulate": True, "count": 3},
                     msgs, expect=3)
    assert [m["payload"] for m in out] == [{"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 2, "c": 3},
                                           {"a": 3, "b": 2, "c": 1}]


async def test_jn_12_accumulate_complete_starts_a_new_group():
    msgs = [{"payload": {"a": 1}}, {"payload": {"b": 2}, "complete": True},
            {"payload": {"c": 3}}, {"payload": {"d": 4}}]
    out = await join({"mode": "manual", "build": "merged", "accumulate": True, "count": 2},
                     msgs, expect=2)
    assert [m["payload"] for m in out] == [{"a": 1, "b": 2}, {"c": 3, "d": 4}]


async def test_jn_12_accumulate_key_value_with_reset():
    msgs = [{"foo": "b", "payload": 2}, {"foo": "c", "payload": 3}, {"reset": True}] + [
        {"foo": k, "payload": v} for k, v in [("a", 1), ("b", 2), ("c", 3), ("d", 4)]]
    [out] = await join({"mode": "manual", "build": "object", "key": "foo", "accumulate": True,
                        "count": 4}, msgs)
    assert out["payload"] == {"a": 1, "b": 2, "c": 3, "d": 4}


async def test_jn_13_timeout():
    msgs = [{"payload": p} for p in "abc"]
    started = time.monotonic()
    [out] = await join({"mode": "manual", "build": "string", "joiner": ",",
                        "timeout": "50ms"}, msgs)
    assert out["payload"] == "a,b,c"
    assert 0.04 <= time.monotonic() - started < 1.0


async def test_jn_13_timeout_restarted_by_msg_restart_timeout():
    async with NodeHarness("join", {"mode": "manual", "build": "string", "joiner": ",",
                                    "timeout": 0.3}) as h:
        started = time.monotonic()
        h.send({"payload": "a"})
        await asyncio.sleep(0.2)
        h.send({"payload": "b", "restartTimeout": True})
        [out] = await h.output(0, timeout=2)
        elapsed = time.monotonic() - started
        assert out["payload"] == "a,b"
        assert 0.45 <= elapsed < 1.5


async def test_jn_14_complete_appends_its_payload():
    msgs = [{"payload": p} for p in ("Hello", "NodeRED", "World")]
    msgs.append({"payload": "", "complete": True})
    [out] = await join({"mode": "manual", "build": "string", "timeout": 5, "count": 0,
                        "joiner": "\n"}, msgs)
    assert out["payload"] == "Hello\nNodeRED\nWorld\n"
    assert "complete" not in out


async def test_jn_14_complete_without_payload():
    msgs = [{"payload": p} for p in (1, 2, 3)] + [{"complete": True}]
    [out] = await join({"mode": "manual"}, msgs)
    assert out["payload"] == [1, 2, 3]


async def test_jn_14_complete_object_without_key():
    msgs = [{"topic": t, "payload": p} for t, p in [("A", 1), ("B", 2), ("C", 3)]]
    msgs.append({"complete": True})
    [out] = await join({"mode": "manual", "build": "object"}, msgs)
    assert out["payload"] == {"A": 1, "B": 2, "C": 3}


async def test_jn_15_whole_messages_into_an_array():
    msgs = [{"payload": p, "topic": "t"} for p in "abc"]
    [out] = await join({"mode": "manual", "count": 3, "whole_message": True}, msgs)
    assert [m["payload"] for m in out["payload"]] == ["a", "b", "c"]
    assert all(m["topic"] == "t" and "_msgid" in m for m in out["payload"])


async def test_manual_use_parts_groups_by_parts_id():
    msgs = seq(["a", "b"], type="string", count=2, group="g1") + \
        seq(["c", "d"], type="string", count=2, group="g2")
    msgs = [msgs[0], msgs[2], msgs[1], msgs[3]]
    out = await join({"mode": "manual", "build": "string", "joiner": "+", "use_parts": True},
                     msgs, expect=2)
    assert [m["payload"] for m in out] == ["a+b", "c+d"]


async def test_max_queue_drops_every_group():
    async with NodeHarness("join", {"mode": "manual", "count": 10, "max_queue": 2},
                           extra_nodes={**CATCH, "finished": {"type": "complete",
                                                              "scope": ["node"]}}) as h:
        h.watch_output("finished")
        for n in range(3):
            h.send({"payload": n})
        [caught] = await h.output(0, node_id="catch")
        assert caught["error"]["message"] == "too many pending messages in join node"
        assert caught["payload"] == 2
        finished = await h.output(0, 2, node_id="finished")
        assert [m["payload"] for m in finished] == [0, 1]
        h.send({"payload": 3, "complete": True})
        [out] = await h.output(0)
        assert out["payload"] == [3]  # the dropped messages are gone


async def test_messages_complete_when_their_group_is_sent():
    flow = {"flow": "t", "nodes": {"j": {"type": "join", "mode": "manual", "count": 2},
                                   "finished": {"type": "complete", "scope": ["j"]}}}
    async with FlowHarness.from_dict(flow) as h:
        h.send("j", {"payload": 1})
        await h.settle()
        assert h.output_now("finished") == []
        h.send("j", {"payload": 2})
        finished = await h.output("finished", 0, 2)
        assert [m["payload"] for m in finished] == [1, 2]


# -- reduce -----------------------------------------------------------------------------------

def reduce_config(expression: str, init: Any = 0, **more: Any) -> dict[str, Any]:
    return {"mode": "reduce", "reduce": {"expression": expression, "init": init, **more}}


async def test_jn_16_reduce():
    msgs = seq([3, 2, 4, 1], [2, 1, 3, 0], count=4)
    [out] = await join(reduce_config("$A+payload"), msgs)
    assert out["payload"] == 10
    assert out["parts"]["index"] == 3  # the last message processed, parts kept


async def test_jn_16_reduce_count_only_in_last_part():
    msgs = seq([3, 2, 4, 1], [2, 1, 3, 0])
    msgs[-1]["parts"]["count"] = 4
    [out] = await join(reduce_config("$A+payload"), msgs)
    assert out["payload"] == 10


async def test_jn_16_reduce_with_index():
    [out] = await join(reduce_config("$A+$I"), seq([3, 2, 4, 1], [2, 1, 3, 0], count=4))
    assert out["payload"] == 6


async def test_jn_16_reduce_with_fixup():
    [out] = await join(reduce_config("$A+payload", fixup="$A/$N"),
                       seq([1, 2, 3, 4, 0], count=5))
    assert out["payload"] == 2


async def test_jn_17_reduce_left_and_right():
    expression = "'(' & $A & '+' & payload & ')'"
    msgs = seq([1, 2, 3, 4], count=4)
    [left] = await join(reduce_config(expression, "0"), msgs)
    assert left["payload"] == "((((0+1)+2)+3)+4)"
    [right] = await join(reduce_config(expression, "0", right=True), seq([1, 2, 3, 4], count=4))
    assert right["payload"] == "((((0+4)+3)+2)+1)"


@pytest.mark.parametrize(("init", "expected"), [
    ("xyz", "xyz"),
    (10, 10),
    (True, True),
    ({"literal": {"a": 1}}, {"a": 1}),
    ({"bytes": [1, 2, 3]}, b"\x01\x02\x03"),
    ({"jsonata": "1+2+3"}, 6),
    ({"env": "NR_XYZ"}, "nr_xyz"),
])
async def test_jn_17_reduce_init_types(init, expected, monkeypatch):
    monkeypatch.setenv("NR_XYZ", "nr_xyz")
    [out] = await join(reduce_config("$A", init), seq([1, 2], count=2))
    assert out["payload"] == expected


@pytest.mark.parametrize("scope", ["flow", "global"])
async def test_jn_17_reduce_init_from_context(scope):
    async with NodeHarness("join", reduce_config("$A", {scope: "foo"})) as h:
        node = h.node("node")
        (node.flow_context if scope == "flow" else node.global_context).set("foo", "bar")
        for msg in seq([1, 2], count=2):
            h.send(msg)
        [out] = await h.output(0)
        assert out["payload"] == "bar"


async def test_jn_17_reduce_array_result_per_group():
    msgs = seq([1, 2], count=2, group=222) + seq([3, 4], count=2, group=333)
    out = await join(reduce_config("$append($A,[payload])", {"literal": []}), msgs, expect=2)
    assert [m["payload"] for m in out] == [[1, 2], [3, 4]]


@pytest.mark.parametrize("more", [{"expression": "$A+"}, {"expression": "$A",
                                                          "fixup": "$A+("}])
async def test_jn_18_reduce_syntax_error_is_a_load_error(more):
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("join", {"mode": "reduce", "reduce": more})
    assert "invalid JSONata expression" in str(info.value)


async def test_jn_18_reduce_runtime_error():
    async with NodeHarness("join", reduce_config("$A + $error('boom')"),
                           extra_nodes=CATCH) as h:
        for msg in seq([1, 2], count=2):
            h.send(msg)
        [caught] = await h.output(0, node_id="catch")
        assert "boom" in caught["error"]["message"]
        await h.settle()
        assert h.output_now() == []


async def test_jn_18_reduce_too_many_pending():
    async with NodeHarness("join", {**reduce_config("$A+payload"), "max_queue": 2},
                           extra_nodes=CATCH) as h:
        for msg in seq([1, 2, 3], count=4):
            h.send(msg)
        [caught] = await h.output(0, node_id="catch")
        assert caught["error"]["message"] == "too many pending messages in join node"
        assert caught["payload"] == 3


async def test_reduce_passes_messages_without_parts():
    [out] = await join(reduce_config("$A+payload"), [{"payload": 5}])
    assert out["payload"] == 5


async def test_reduce_mode_needs_an_expression():
    with pytest.raises(FlowLoadError, match=r"reduce mode needs reduce\.expression"):
        NodeHarness("join", {"mode": "reduce"})
