"""The trigger node: Node-RED's cases TR-01..TR-13 (docs/reference/nodered-cases.md), in YAML form.

Node-RED's op types map to values: ``str``/``num``/``bool``/``json``/``val`` are YAML literals,
``bin`` is ``{bytes: ...}``, ``env``/``date``/``flow``/``global`` the matching references, ``pay``
is ``{payload: original}``, ``payl`` is ``{payload: latest}`` and ``nul`` is ``{nothing: true}``.
Timings are scaled to 100-600 ms steps; assertions check order and lower bounds.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from datetime import datetime
from typing import Any

import pytest

from flowengine import FlowLoadError
from flowengine.testing import FlowHarness, NodeHarness

EARLY = 0.02


def now() -> float:
    return asyncio.get_running_loop().time()


def payloads(msgs: list[dict[str, Any]]) -> list[Any]:
    return [m.get("payload") for m in msgs]


def flow(nodes: str) -> FlowHarness:
    return FlowHarness.from_yaml("flow: f\nnodes:\n" + textwrap.indent(textwrap.dedent(nodes),
                                                                       "  "))


async def send_at(h: NodeHarness, schedule: list[tuple[float, dict[str, Any]]]) -> None:
    """Send each message at its offset (seconds) from now."""
    start = now()
    for offset, msg in schedule:
        await asyncio.sleep(max(0.0, start + offset - now()))
        h.send(msg)


# -- TR-01 defaults and durations ------------------------------------------------------------------

async def test_tr_01_defaults_send_1_then_0_after_250ms() -> None:
    async with NodeHarness("trigger", {}) as h:
        assert h.node("node").duration == 0.25
        start = now()
        h.send({"payload": None})
        [first] = await h.output(0)
        assert first["payload"] == "1"
        await h.output(0, 2)
        assert now() - start >= 0.25 - EARLY
        assert payloads(h.output_now(0)) == ["1", "0"]


@pytest.mark.parametrize(("duration", "seconds"), [("1s", 1.0), ("1m", 60.0), ("1h", 3600.0),
                                                   (2, 2.0), ("100ms", 0.1)])
async def test_tr_01_durations(duration: Any, seconds: float) -> None:
    async with NodeHarness("trigger", {"duration": duration}) as h:
        assert h.node("node").duration == seconds


# -- TR-02 value kinds -----------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "expected"), [
    (10, 10),
    ("10", "10"),
    (True, True),
    ({"a": 1}, {"a": 1}),
    ({"bytes": [1, 2, 3, 4, 5]}, b"\x01\x02\x03\x04\x05"),
    ({"env": "NR_TEST"}, "env-value"),
])
@pytest.mark.parametrize("op", ["op1", "op2"])
async def test_tr_02_op_values(op: str, spec: Any, expected: Any,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NR_TEST", "env-value")
    config = {op: spec, "duration": "50ms"}
    async with NodeHarness("trigger", config) as h:
        h.send({"payload": "x"})
        first, second = await h.output(0, 2)
        value = first["payload"] if op == "op1" else second["payload"]
        assert value == expected
        assert type(value) is type(expected)


async def test_tr_02_date_values() -> None:
    config = {"op1": {"date": "now"}, "op2": {"date": "iso"}, "duration": "50ms"}
    async with NodeHarness("trigger", config) as h:
        before = int(time.time() * 1000)
        h.send({"payload": "x"})
        first, second = await h.output(0, 2)
        assert isinstance(first["payload"], int)
        assert before <= first["payload"] <= int(time.time() * 1000)
        parsed = datetime.fromisoformat(second["payload"].replace("Z", "+00:00"))
        assert abs(parsed.timestamp() * 1000 - first["payload"]) < 5000


# -- TR-03 blocked while waiting -------------------------------------------------------------------

async def test_tr_03_inputs_while_waiting_are_ignored_second_is_a_copy_of_the_first() -> None:
    async with NodeHarness("trigger", {"duration": "300ms"}) as h:
        await send_at(h, [(0, {"payload": 1, "topic": "a"}), (0.06, {"payload": 2, "topic": "b"}),
                          (0.18, {"payload": 3, "topic": "c"})])
        await h.output(0, 2)
        await asyncio.sleep(0.4)
        out = h.output_now(0)
        assert [(m["payload"], m["topic"]) for m in out] == [("1", "a"), ("0", "a")]


# -- TR-04 msg.delay -------------------------------------------------------------------------------

@pytest.mark.parametrize("override", [False, True])
async def test_tr_04_msg_delay_only_with_override_delay(override: bool) -> None:
    config = {"duration": "200ms", "override_delay": override}
    async with NodeHarness("trigger", config) as h:
        start = now()
        h.send({"payload": 1, "delay": 600})
        await h.output(0, 2, timeout=3)
        elapsed = now() - start
        if override:
            assert elapsed >= 0.6 - EARLY
        else:
            assert 0.2 - EARLY <= elapsed < 0.6


# -- TR-05 booleans and null -----------------------------------------------------------------------

@pytest.mark.parametrize(("op1", "op2"), [(True, False), (None, None)])
async def test_tr_05_booleans_and_null(op1: Any, op2: Any) -> None:
    async with NodeHarness("trigger", {"op1": op1, "op2": op2, "duration": "50ms"}) as h:
        h.send({"payload": "null"})
        first, second = await h.output(0, 2)
        assert (first["payload"], second["payload"]) == (op1, op2)
        assert "payload" in first and "payload" in second


# -- TR-06 per topic -------------------------------------------------------------------------------

async def test_tr_06_all_topics_as_one() -> None:
    async with NodeHarness("trigger", {"op1": 1, "op2": 0, "duration": "200ms"}) as h:
        for topic in "ABC":
            h.send({"payload": 1, "topic": topic})
        await h.output(0, 2)
        await asyncio.sleep(0.3)
        assert [(m["payload"], m["topic"]) for m in h.output_now(0)] == [(1, "A"), (0, "A")]


async def test_tr_06_topics_individually() -> None:
    config = {"op1": 1, "op2": 0, "duration": "200ms", "by_topic": "topic"}
    async with NodeHarness("trigger", config) as h:
        for topic in "ABC":
            h.send({"payload": 1, "topic": topic})
        out = await h.output(0, 6)
        assert [(m["payload"], m["topic"]) for m in out] == [
            (1, "A"), (1, "B"), (1, "C"), (0, "A"), (0, "B"), (0, "C")]


async def test_tr_06_topics_individually_with_extend() -> None:
    config = {"op1": 1, "op2": 0, "duration": "300ms", "by_topic": "topic", "extend": True}
    async with NodeHarness("trigger", config) as h:
        await send_at(h, [(0, {"payload": 1, "topic": "A"}), (0, {"payload": 1, "topic": "B"}),
                          (0, {"payload": 1, "topic": "C"}), (0.15, {"payload": 1, "topic": "B"})])
        out = await h.output(0, 6)
        assert [(m["payload"], m["topic"]) for m in out] == [
            (1, "A"), (1, "B"), (1, "C"), (0, "A"), (0, "C"), (0, "B")]


async def test_tr_06_other_property_tells_topics_apart() -> None:
    config = {"op1": 1, "op2": 0, "duration": "200ms", "by_topic": "topic",
              "topic_property": "foo"}
    async with NodeHarness("trigger", config) as h:
        for foo in ("A", "B", "A"):
            h.send({"payload": 1, "foo": foo})
        out = await h.output(0, 4)
        await asyncio.sleep(0.3)
        assert [(m["payload"], m["foo"]) for m in h.output_now(0)] == [
            (1, "A"), (1, "B"), (0, "A"), (0, "B")]
        assert len(out) == 4


# -- TR-07 sending nothing -------------------------------------------------------------------------

async def test_tr_07_nothing_first() -> None:
    config = {"op1": {"nothing": True}, "op2": False, "duration": "50ms"}
    async with NodeHarness("trigger", config) as h:
        h.send({"payload": "x"})
        [out] = await h.output(0)
        await asyncio.sleep(0.2)
        assert payloads(h.output_now(0)) == [False]
        assert out["payload"] is False


async def test_tr_07_nothing_second_and_rearm_after_the_wait() -> None:
    config = {"op1": {"payload": "original"}, "op2": {"nothing": True}, "duration": "250ms"}
    async with NodeHarness("trigger", config) as h:
        await send_at(h, [(0, {"payload": 1, "topic": "pass"}),
                          (0.1, {"payload": 2, "topic": "fail"}),
                          (0.45, {"payload": 3, "topic": "pass"}),
                          (0.55, {"payload": 2, "topic": "fail"})])
        await asyncio.sleep(0.4)
        assert [(m["payload"], m["topic"]) for m in h.output_now(0)] == [(1, "pass"),
                                                                         (3, "pass")]


# -- TR-08 extend ----------------------------------------------------------------------------------

async def test_tr_08_extend_without_second_output() -> None:
    config = {"op1": {"payload": "original"}, "op2": {"nothing": True}, "duration": "300ms",
              "extend": True}
    async with NodeHarness("trigger", config) as h:
        start = now()
        await send_at(h, [(0, {"payload": "Hello"}), (0.1, {"payload": "Error"}),
                          (0.2, {"payload": "Error"}), (0.75, {"payload": "World"})])
        await h.output(0, 2)
        assert now() - start >= 0.75 - EARLY
        await asyncio.sleep(0.45)
        assert payloads(h.output_now(0)) == ["Hello", "World"]


async def test_tr_08_extend_and_send_the_latest_message() -> None:
    config = {"op1": {"nothing": True}, "op2": {"payload": "latest"}, "duration": "200ms",
              "extend": True}
    async with NodeHarness("trigger", config) as h:
        start = now()
        await send_at(h, [(0, {"payload": "Hello"}), (0.1, {"payload": "Goodbye"}),
                          (0.2, {"payload": "World"})])
        [out] = await h.output(0)
        assert now() - start >= 0.4 - EARLY
        assert out["payload"] == "World"
        await asyncio.sleep(0.3)
        assert len(h.output_now(0)) == 1


# -- TR-09 latest message --------------------------------------------------------------------------

async def test_tr_09_latest_message_as_the_second_output() -> None:
    config = {"op1": {"nothing": True}, "op2": {"payload": "latest"}, "duration": "250ms"}
    async with NodeHarness("trigger", config) as h:
        await send_at(h, [(0, {"payload": "Hello", "topic": "test1"}),
                          (0.1, {"payload": "Goodbye", "topic": "test2"}),
                          (0.4, {"payload": "World", "topic": "test3"})])
        out = await h.output(0, 2)
        assert [(m["payload"], m["topic"]) for m in out] == [("Goodbye", "test2"),
                                                             ("World", "test3")]


# -- TR-10 mustache and the second output ----------------------------------------------------------

async def test_tr_10_mustache_templates() -> None:
    config = {"op1": "{{payload}}", "op2": "{{topic}}", "duration": "50ms"}
    async with NodeHarness("trigger", config) as h:
        h.send({"payload": "Hello", "topic": "World"})
        assert payloads(await h.output(0, 2)) == ["Hello", "World"]


async def test_tr_10_second_message_on_a_second_output() -> None:
    config = {"op1": "hello", "op2": "world", "duration": "50ms", "outputs": 2}
    async with NodeHarness("trigger", config) as h:
        h.send({"payload": "x", "topic": "test"})
        [first] = await h.output(0)
        [second] = await h.output(1)
        assert (first["payload"], first["topic"]) == ("hello", "test")
        assert (second["payload"], second["topic"]) == ("world", "test")
        assert len(h.output_now(0)) == 1


async def test_tr_10_original_payload_as_second() -> None:
    config = {"op1": None, "op2": {"payload": "original"}, "duration": "50ms"}
    async with NodeHarness("trigger", config) as h:
        h.send({"payload": "World"})
        assert payloads(await h.output(0, 2)) == [None, "World"]


# -- TR-11 infinite wait and reset -----------------------------------------------------------------

async def test_tr_11_infinite_wait_until_reset() -> None:
    async with NodeHarness("trigger", {"duration": 0}) as h:
        for msg in ({"payload": None}, {"payload": None}, {"payload": None}, {"reset": True},
                    {"payload": None}):
            h.send(msg)
        await asyncio.sleep(0.3)
        assert payloads(h.output_now(0)) == ["1", "1"]


@pytest.mark.parametrize(("reset", "other", "match"), [
    ("boo", "foo", "boo"), (True, False, True), ("false", "foo", False), (False, True, False),
    (5, 6, "5")])
async def test_tr_11_reset_by_payload(reset: Any, other: Any, match: Any) -> None:
    async with NodeHarness("trigger", {"duration": 0, "reset": reset}) as h:
        for payload in (None, None, other):
            h.send({"payload": payload})
        await h.settle()
        assert payloads(h.output_now(0)) == ["1"]  # `other` did not reset
        h.send({"payload": match})
        h.send({"payload": None})
        await h.settle()
        assert payloads(h.output_now(0)) == ["1", "1"]


# -- TR-12 repeat ----------------------------------------------------------------------------------

async def test_tr_12_repeat_until_reset_with_fresh_copies() -> None:
    nodes = """\
        t: {type: trigger, op1: {payload: original}, duration: 100ms, repeat: true,
            wires: [mutate]}
        mutate: {type: function, code: 'msg["payload"] += "!"; return msg'}
        """
    async with flow(nodes) as h:
        h.watch_output("mutate")
        h.send("t", {"payload": "foo"})
        await asyncio.sleep(0.45)
        h.send("t", {"reset": True})
        await h.settle()
        count = len(h.output_now("mutate"))
        assert 3 <= count <= 6
        assert set(payloads(h.output_now("mutate"))) == {"foo!"}  # never "foo!!"
        await asyncio.sleep(0.3)
        assert len(h.output_now("mutate")) == count  # the reset stopped it


async def test_tr_12_a_new_message_replaces_the_repeated_one() -> None:
    config = {"op1": {"payload": "original"}, "duration": "150ms", "repeat": True}
    async with NodeHarness("trigger", config) as h:
        h.send({"payload": "a"})
        h.send({"payload": "b"})
        await asyncio.sleep(0.4)
        h.send({"reset": True})
        await h.settle()
        sent = payloads(h.output_now(0))
        assert sent[:2] == ["a", "b"]
        assert len(sent) >= 3 and set(sent[2:]) == {"b"}


# -- TR-13 done ------------------------------------------------------------------------------------

async def test_tr_13_complete_fires_when_the_first_message_is_handled_and_on_reset() -> None:
    nodes = """\
        t: {type: trigger, duration: 5s}
        c: {type: complete, scope: [t]}
        """
    async with flow(nodes) as h:
        h.watch_output("c")
        h.watch_output("t")
        h.send("t", {"payload": "go"})
        [done] = await h.output("c", timeout=1.0)  # long before the 5 s wait ends
        assert done["complete"]["source"]["id"] == "t"
        assert h.output_now("t")[0]["payload"] == "1"
        h.send("t", {"reset": True})
        await h.output("c", count=2, timeout=1.0)
        assert h.output_now("c")[1]["reset"] is True


# -- other behaviour -------------------------------------------------------------------------------

async def test_op2_flow_value_is_read_when_the_wait_ends() -> None:
    async with NodeHarness("trigger", {"op2": {"flow": "state"}, "duration": "200ms"}) as h:
        h.node("node").flow_context.set("state", "before")
        h.send({"payload": 1})
        await h.output(0)
        h.node("node").flow_context.set("state", "after")
        assert payloads(await h.output(0, 2)) == ["1", "after"]


async def test_op1_jsonata_error_is_catchable() -> None:
    nodes = """\
        t: {type: trigger, op1: {jsonata: '$error("bad")'}}
        catcher: {type: catch, scope: [t]}
        """
    async with flow(nodes) as h:
        h.watch_output("catcher")
        h.watch_output("t")
        h.send("t", {"payload": 1})
        [caught] = await h.output("catcher")
        assert "bad" in caught["error"]["message"]
        await asyncio.sleep(0.4)
        assert h.output_now("t") == []


@pytest.mark.parametrize(("config", "message"), [
    ({"op1": {"payload": "latest"}}, "{payload: latest} is only for op2"),
    ({"repeat": True, "duration": 0}, "repeat needs a duration"),
    ({"op1": "{{payload"}, "Unclosed tag at 9"),
    ({"by_topic": "each"}, "by_topic"),
])
def test_bad_configuration_is_a_load_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("trigger", config)
    assert message in str(info.value)


async def test_literal_escapes_a_special_form() -> None:
    config = {"op1": {"literal": {"payload": "original"}}, "duration": "50ms"}
    async with NodeHarness("trigger", config) as h:
        h.send({"payload": "x"})
        [first] = await h.output(0)
        assert first["payload"] == {"payload": "original"}


async def test_close_cancels_the_timers() -> None:
    h = NodeHarness("trigger", {"duration": "200ms"})
    async with h:
        h.send({"payload": 1})
        await h.output(0)
    await asyncio.sleep(0.4)
    assert payloads(h.output_now(0)) == ["1"]
