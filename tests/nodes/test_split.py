"""The split node: Node-RED's cases SP-01..SP-09 (docs/reference/nodered-cases.md), in YAML form."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine import FlowLoadError
from flowengine.testing import FlowHarness, NodeHarness


async def split(config: dict[str, Any], *inputs: dict[str, Any],
                expect: int) -> list[dict[str, Any]]:
    """Send ``inputs`` through a split node; the first ``expect`` parts, then check no more."""
    async with NodeHarness("split", config) as h:
        for msg in inputs:
            h.send(msg)
        out = await h.output(0, expect)
        await h.settle()
        assert len(h.output_now()) == expect
        return out


def parts_of(out: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return [{k: m["parts"].get(k) for k in keys} for m in out]


async def test_sp_01_array():
    out = await split({}, {"payload": [1, 2, 3, 4]}, expect=4)
    assert [m["payload"] for m in out] == [1, 2, 3, 4]
    assert parts_of(out, "type", "count", "len", "index") == [
        {"type": "array", "count": 4, "len": 1, "index": i} for i in range(4)]
    ids = {m["parts"]["id"] for m in out}
    assert len(ids) == 1 and len(next(iter(ids))) == 16


async def test_sp_02_other_property():
    out = await split({"property": "foo"}, {"foo": [1, 2, 3, 4]}, expect=4)
    assert [m["foo"] for m in out] == [1, 2, 3, 4]
    assert all(m["parts"]["property"] == "foo" for m in out)
    assert all("payload" not in m for m in out)


async def test_sp_02_payload_parts_have_no_property_key():
    out = await split({}, {"payload": [1]}, expect=1)
    assert "property" not in out[0]["parts"]


async def test_sp_03_array_chunks():
    out = await split({"array_chunk": 3}, {"payload": [1, 2, 3, 4]}, expect=2)
    assert [m["payload"] for m in out] == [[1, 2, 3], [4]]
    assert parts_of(out, "count", "len", "index") == [{"count": 2, "len": 3, "index": 0},
                                                      {"count": 2, "len": 3, "index": 1}]


async def test_sp_04_object():
    out = await split({}, {"topic": "foo", "payload": {"a": 1, "b": "2", "c": True}}, expect=3)
    assert [m["payload"] for m in out] == [1, "2", True]
    assert parts_of(out, "type", "key", "index", "count") == [
        {"type": "object", "key": k, "index": i, "count": 3} for i, k in enumerate("abc")]
    assert [m["topic"] for m in out] == ["foo"] * 3


async def test_sp_04_object_key_copied_to_topic():
    out = await split({"add_key": "topic"},
                      {"topic": "foo", "payload": {"a": 1, "b": "2", "c": True}}, expect=3)
    assert [m["topic"] for m in out] == ["a", "b", "c"]


async def test_sp_05_string_default_newline():
    out = await split({}, {"payload": "Da\nve\n \nCJ"}, expect=4)
    assert [m["payload"] for m in out] == ["Da", "ve", " ", "CJ"]
    assert parts_of(out, "type", "ch", "count", "index") == [
        {"type": "string", "ch": "\n", "count": 4, "index": i} for i in range(4)]


async def test_sp_05_string_on_a_given_separator():
    out = await split({"separator": "-"}, {"payload": "a-b"}, expect=2)
    assert [m["payload"] for m in out] == ["a", "b"]
    assert out[0]["parts"]["ch"] == "-"


async def test_sp_05_string_on_bytes_separator():
    out = await split({"separator": {"bytes": [13, 10]}}, {"payload": "a\r\nb"}, expect=2)
    assert [m["payload"] for m in out] == ["a", "b"]
    assert out[0]["parts"]["ch"] == [13, 10]  # Node-RED passes the byte list on


async def test_sp_06_fixed_length_string():
    out = await split({"length": 2}, {"payload": "12345678"}, expect=4)
    assert [m["payload"] for m in out] == ["12", "34", "56", "78"]
    assert parts_of(out, "ch", "len", "count") == [{"ch": "", "len": 2, "count": 4}] * 4


async def test_sp_06_fixed_length_bytes():
    out = await split({"length": 2}, {"payload": b"12345678"}, expect=4)
    assert [m["payload"] for m in out] == [b"12", b"34", b"56", b"78"]
    assert parts_of(out, "type", "len", "count") == [{"type": "buffer", "len": 2,
                                                      "count": 4}] * 4


async def test_sp_06_bytes_on_separator():
    out = await split({"separator": "-"}, {"payload": bytearray(b"ab-c")}, expect=2)
    assert [m["payload"] for m in out] == [b"ab", b"c"]
    assert parts_of(out, "type", "ch", "count", "index") == [
        {"type": "buffer", "ch": "-", "count": 2, "index": 0},
        {"type": "buffer", "ch": "-", "count": 2, "index": 1}]


async def test_sp_07_stream_mode():
    out = await split({"separator": "\n", "stream": True},
                      {"payload": "1\n2\n3\n"}, {"payload": "4\n5\n6\n"}, expect=6)
    assert [m["payload"] for m in out] == ["1", "2", "3", "4", "5", "6"]
    assert [m["parts"]["index"] for m in out] == [0, 1, 2, 3, 4, 5]
    assert all("count" not in m["parts"] for m in out)


async def test_sp_07_stream_mode_holds_a_partial_piece():
    out = await split({"stream": True}, {"payload": "ab\ncd"}, {"payload": "ef\ng"}, expect=2)
    assert [m["payload"] for m in out] == ["ab", "cdef"]


async def test_sp_07_stream_mode_fixed_length_bytes():
    out = await split({"length": 3, "stream": True},
                      {"payload": b"abcd"}, {"payload": b"efgh"}, {"payload": b"i"}, expect=3)
    assert [m["payload"] for m in out] == [b"abc", b"def", b"ghi"]
    assert [m["parts"]["index"] for m in out] == [0, 1, 2]


async def test_sp_07_stream_input_completes_when_its_held_piece_is_sent():
    flow = {"flow": "t", "nodes": {
        "s": {"type": "split", "stream": True},
        "done": {"type": "complete", "scope": ["s"]},
    }}
    async with FlowHarness.from_dict(flow) as h:
        h.send("s", {"payload": "ab\ncd", "n": 1})
        await h.settle()
        assert h.output_now("done") == []  # "cd" is held back
        h.send("s", {"payload": "e\n", "n": 2})
        out = await h.output("done", 0, 2)
        assert [m["n"] for m in out] == [1, 2]


async def test_complete_nodes_see_the_input_as_node_red_leaves_it():
    flow = {"flow": "t", "nodes": {
        "s": {"type": "split"},
        "done": {"type": "complete", "scope": ["s"]},
    }}
    async with FlowHarness.from_dict(flow) as h:
        h.send("s", {"payload": [1, 2]})
        h.send("s", {"payload": "a\nb"})
        listed, text = await h.output("done", 0, 2)
    # A list is split from a copy: the input keeps its payload, its parts have no index.
    assert listed["payload"] == [1, 2]
    assert {k: v for k, v in listed["parts"].items() if k != "id"} == {
        "type": "array", "count": 2, "len": 1}
    # A string is split in place: the input ends as the last part.
    assert text["payload"] == "b" and text["parts"]["index"] == 1


@pytest.mark.parametrize(("config", "field"), [
    ({"length": 0}, "length"),
    ({"array_chunk": 0}, "array_chunk"),
    ({"separator": {"bytes": {"a": 1}}}, "separator"),
    ({"separator": "x", "length": 2}, "length"),
])
async def test_sp_08_bad_config_is_a_load_error(config, field):
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("split", config)
    assert any(e.field is not None and e.field.startswith(field) for e in info.value.errors), \
        info.value


async def test_sp_09_new_msgid_per_part():
    out = await split({}, {"_msgid": "abc", "payload": [1, 2, 3]}, expect=3)
    ids = [m["_msgid"] for m in out]
    assert "abc" not in ids and len(set(ids)) == 3


async def test_sp_09_existing_parts_are_stacked():
    old = {"id": "outer", "index": 1, "count": 2, "type": "array"}
    out = await split({}, {"payload": "a\nb", "parts": old}, expect=2)
    assert [m["parts"]["parts"] for m in out] == [old, old]
    assert out[0]["parts"]["id"] != "outer"


async def test_sp_09_numbers_and_booleans_are_dropped():
    async with NodeHarness("split", {}) as h:
        for payload in (5, True, None):
            h.send({"payload": payload})
        h.send({"topic": "no payload"})
        await h.settle()
        assert h.output_now() == []


async def test_bytes_trailing_separator_gives_an_empty_last_part():
    # Deliberate difference: Node-RED leaves the empty part out but counts it (count 3).
    out = await split({"separator": "-"}, {"payload": b"a-b-"}, expect=3)
    assert [m["payload"] for m in out] == [b"a", b"b", b""]
    assert [m["parts"]["count"] for m in out] == [3, 3, 3]
