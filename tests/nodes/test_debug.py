"""The debug node: Node-RED's cases DB-01..DB-06 in docs/reference/nodered-cases.md. Node-RED
publishes on the comms topic "debug"; here the node publishes a "debug" event on ``runtime.events``
(which the admin API streams) and prints a line to the console log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from flowengine.testing import NodeHarness, capture_logs


def debug_events(h: NodeHarness) -> list[dict[str, Any]]:
    return [data for kind, data in h.events if kind == "debug"]


async def publish(value: Any, config: dict[str, Any] | None = None,
                  msg: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send one message with ``payload = value`` (or ``msg``) and return the debug event."""
    async with NodeHarness("debug", config or {}) as h:
        h.send(msg if msg is not None else {"payload": value, "_msgid": "M"})
        await h.settle()
        [event] = debug_events(h)
    return event


async def test_db_01_publishes_the_payload() -> None:
    event = await publish("test", {"name": "Debug"})
    assert event == {"id": "node", "name": "Debug", "flow": "test", "property": "payload",
                     "format": "string[4]", "msg": "test", "msgid": "M"}


async def test_db_01_prints_a_console_line() -> None:
    records = capture_logs()
    await publish("test", {"name": "Debug"})
    [line] = [r for r in records if r.name == "flowengine.debug"]
    assert line.getMessage() == "Debug : payload : test"
    assert (line.levelno, line.node, line.flow, line.msgid) == (logging.INFO, "node", "test", "M")


async def test_db_01_console_false_prints_nothing_but_still_publishes() -> None:
    records = capture_logs()
    event = await publish("test", {"console": False})
    assert event["msg"] == "test"
    assert [r for r in records if r.name == "flowengine.debug"] == []


async def test_db_02_other_property() -> None:
    event = await publish(None, {"property": "foo"}, {"payload": "test", "foo": "bar"})
    assert (event["msg"], event["property"], event["format"]) == ("bar", "foo", "string[3]")


async def test_db_02_nested_property_and_missing_parent() -> None:
    nested = await publish(None, {"property": "foo.bar"}, {"foo": {"bar": "bar"}})
    assert (nested["msg"], nested["property"], nested["format"]) == ("bar", "foo.bar",
                                                                    "string[3]")
    missing = await publish(None, {"property": "foo.bar"}, {"payload": 1})
    assert (missing["msg"], missing["format"]) == ("(undefined)", "undefined")


async def test_db_02_complete_message() -> None:
    event = await publish(None, {"complete": True}, {"payload": 1, "_msgid": "M"})
    assert event["property"] == "msg" and event["format"] == "Object"
    assert event["msg"] == '{"payload":1,"_msgid":"M"}'


@pytest.mark.parametrize(("value", "text", "fmt"), [
    (True, "true", "boolean"),
    (7, "7", "number"),
    (2.5, "2.5", "number"),
    (3.0, "3", "number"),
    (float("nan"), "NaN", "number"),
    (float("-inf"), "-Infinity", "number"),
    (None, "(undefined)", "null"),
])
async def test_db_03_scalars(value: Any, text: str, fmt: str) -> None:
    event = await publish(value)
    assert (event["msg"], event["format"]) == (text, fmt)


async def test_db_03_no_payload() -> None:
    event = await publish(None, msg={"topic": "x"})
    assert (event["msg"], event["format"]) == ("(undefined)", "undefined")


@pytest.mark.parametrize(("value", "text", "fmt"), [
    ({"type": "foo"}, '{"type":"foo"}', "Object"),
    ([0, 1, 2, 3], "[0,1,2,3]", "array[4]"),
    ((0, 1), "[0,1]", "array[2]"),
    (b"HELLO", "48454c4c4f", "buffer[5]"),
    (bytearray(b"HI"), "4849", "buffer[2]"),
    (ValueError("oops"),
     '{"__enc__":true,"type":"error","data":{"name":"ValueError","message":"oops"}}', "error"),
])
async def test_db_04_objects(value: Any, text: str, fmt: str) -> None:
    event = await publish(value)
    assert (event["msg"], event["format"]) == (text, fmt)


async def test_db_05_long_string_is_truncated() -> None:
    event = await publish("X" * 1001)
    assert event["msg"] == "X" * 1000 + "..."
    assert event["format"] == "string[1001]"


async def test_db_05_large_array_is_truncated() -> None:
    event = await publish(list(range(1001)))
    assert event["format"] == "array[1001]"
    expected = '{"__enc__":true,"type":"array","data":[' + ",".join(map(str, range(1000)))
    assert event["msg"] == expected + '],"length":1001}'


async def test_db_05_max_length_setting() -> None:
    event = await publish("abcdef", {"max_length": 3})
    assert (event["msg"], event["format"]) == ("abc...", "string[6]")


async def test_db_06_inactive_publishes_nothing_but_finishes_the_message() -> None:
    extra = {"finished": {"type": "complete", "scope": ["node"]}}
    async with NodeHarness("debug", {"active": False}, extra_nodes=extra) as h:
        h.watch_output("finished")
        h.send({"payload": "quiet"})
        [done] = await h.output(0, node_id="finished")
        await h.settle()
        assert debug_events(h) == []
    assert done["payload"] == "quiet"
    assert done["complete"]["source"] == {"id": "node", "type": "debug"}


async def test_db_06_debug_has_no_outputs() -> None:
    async with NodeHarness("debug", {}) as h:
        assert h.node("node").wired_ids == []


# -- "show in node status" (Node-RED's tostatus/statusType/statusVal) ------------------------------

def shown(h: NodeHarness) -> list[dict[str, Any]]:
    return [e["status"] for e in h.statuses if e["node"] == "node"]


async def status_after(config: dict[str, Any], *msgs: dict[str, Any]) -> list[dict[str, Any]]:
    async with NodeHarness("debug", {"console": False, **config}) as h:
        for msg in msgs:
            h.send(msg)
            await h.settle()
        return shown(h)


async def test_status_auto_shows_the_value_as_node_inspects_it_cut_to_32_characters() -> None:
    statuses = await status_after({"status": "auto"}, {"payload": "text"},
                                  {"payload": {"a": 1, "b": "x"}}, {"payload": "y" * 40})
    assert statuses == [{"fill": "grey", "shape": "ring"}, {"fill": "", "shape": "", "text": ""},
                        {"fill": "grey", "shape": "dot", "text": "text"},
                        {"fill": "grey", "shape": "dot", "text": "{ a: 1, b: 'x' }"},
                        {"fill": "grey", "shape": "dot", "text": "y" * 32 + "..."}]


async def test_status_auto_shows_an_error_in_red_and_a_status_message_as_it_is() -> None:
    statuses = await status_after(
        {"status": "auto"}, {"payload": 1, "error": {"message": "boom"}},
        {"status": {"fill": "green", "shape": "dot", "text": "up", "source": {"id": "x"}}})
    assert statuses[2:] == [{"fill": "red", "shape": "dot", "text": "boom"},
                            {"fill": "green", "shape": "dot", "text": "up"}]


async def test_status_counter_counts_messages_shown_at_most_every_tenth_of_a_second() -> None:
    async with NodeHarness("debug", {"console": False, "status": "counter"}) as h:
        for n in range(3):
            h.send({"payload": n})
        await h.settle()
        await asyncio.sleep(0.3)  # a burst is shown once, 0.2 s after its last message
        statuses = shown(h)
    assert statuses[0] == {"fill": "grey", "shape": "ring"}
    assert statuses[1] == {"fill": "blue", "shape": "ring", "text": "0"}
    assert statuses[-1] == {"fill": "blue", "shape": "ring", "text": "3"}


async def test_status_of_a_property_or_a_jsonata_expression() -> None:
    topic = await status_after({"status": {"msg": "topic"}}, {"payload": 1, "topic": "t1"})
    computed = await status_after({"status": {"jsonata": "payload * 2 & ' units'"}},
                                  {"payload": 5})
    assert topic[-1]["text"] == "t1" and computed[-1]["text"] == "10 units"


async def test_debug_ignores_its_own_status_coming_back_through_a_status_node() -> None:
    statuses = await status_after({"status": "auto"}, {"payload": "a"}, {
        "status": {"text": "a", "source": {"id": "node"}}})
    assert statuses[-1]["text"] == "a" and len(statuses) == 3


async def test_expression_is_what_the_debug_node_shows() -> None:
    event = await publish(None, {"expression": "payload.a & '!'"}, {"payload": {"a": "x"}})
    assert event["msg"] == "x!"
