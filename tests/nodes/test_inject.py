"""The inject node: Node-RED's cases IN-01..IN-11 (docs/reference/nodered-cases.md), in the YAML
shape of nodes/common/inject.py (``payload``, ``topic``, ``props`` with value references; ``once``,
``once_delay``, ``repeat``, ``cron``). Triggering by hand (Node-RED's button and ``POST
/inject/:id``) is ``node.inject()``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from flowengine.errors import FlowLoadError
from flowengine.loader import Loader
from flowengine.testing import NodeHarness, test_registry


def inject(config: dict[str, Any], **kwargs: Any) -> NodeHarness:
    return NodeHarness("inject", config, **kwargs)


async def trigger(h: NodeHarness, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Trigger the node by hand and return the message it sent."""
    count = len(h.output_now(0))
    h.node("node").inject(overrides)  # type: ignore[attr-defined]
    return (await h.output(0, count + 1))[count]


async def test_in_01_number_payload_and_topic() -> None:
    async with inject({"payload": 10, "topic": "t1"}) as h:
        out = await trigger(h)
    assert set(out) == {"_msgid", "payload", "topic"}
    assert (out["topic"], out["payload"]) == ("t1", 10)
    assert len(out["_msgid"]) == 16


@pytest.mark.parametrize(("payload", "expected"), [
    ("10", "10"),                                         # str
    (True, True),                                         # bool
    ({"x": "vx", "y": "vy", "z": "vz"}, {"x": "vx", "y": "vy", "z": "vz"}),  # json
    ({"bytes": [1, 2, 3, 4, 5]}, b"\x01\x02\x03\x04\x05"),  # bin
    ({"literal": {"env": "HOME"}}, {"env": "HOME"}),      # a map that looks like a reference
])
async def test_in_02_value_types(payload: Any, expected: Any) -> None:
    async with inject({"payload": payload}) as h:
        out = await trigger(h)
    assert out["payload"] == expected
    assert type(out["payload"]) is type(expected)


async def test_in_02_literal_containers_are_not_shared_between_messages() -> None:
    async with inject({"payload": {"list": [1]}}) as h:
        first = await trigger(h)
        second = await trigger(h)
        node = h.node("node")
    first["payload"]["list"].append(2)
    assert second["payload"] == {"list": [1]}
    assert node.config["payload"] == {"list": [1]}


async def test_in_03_env_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NR_TEST", "foo")
    config = {"payload": {"env": "NR_TEST"}, "name": "NAME",
              "props": {"id": {"env": "NR_NODE_ID"}, "name": {"env": "NR_NODE_NAME"},
                        "flow": {"env": "NR_FLOW_NAME"}, "unset": {"env": "NR_UNSET_VAR"}}}
    monkeypatch.delenv("NR_UNSET_VAR", raising=False)
    async with inject(config) as h:
        out = await trigger(h)
    assert out["payload"] == "foo"
    assert (out["id"], out["name"], out["flow"], out["unset"]) == ("node", "NAME", "test", "")


async def test_in_04_substitution_at_load_time() -> None:
    # ${NAME} reads the process environment when the file is loaded (Node-RED's ${NR_NODE_NAME}
    # has no counterpart: use {env: NR_NODE_NAME}). A whole-value reference keeps its type.
    environ = {"GREETING": "hello", "COUNT": "42"}
    config = {"payload": "${GREETING} world", "props": {"n": "${COUNT}"}}
    async with inject(config, environ=environ) as h:
        out = await trigger(h)
    assert out["payload"] == "hello world"
    assert out["n"] == 42


async def test_in_05_props_are_evaluated_in_order_and_jsonata_sees_the_message() -> None:
    config = {"topic": "t1", "payload": "foo",
              "props": {"x": 10, "y": {"jsonata": "x + 2"}, "z.deep[0]": {"msg": "topic"}}}
    async with inject(config) as h:
        out = await trigger(h)
    assert {k: v for k, v in out.items() if k != "_msgid"} == {
        "topic": "t1", "payload": "foo", "x": 10, "y": 12, "z": {"deep": ["t1"]}}


async def test_in_05_context_references() -> None:
    config = {"payload": {"flow": "f"}, "props": {"g": {"global": "g"}}}
    async with inject(config) as h:
        node = h.node("node")
        node.flow_context.set("f", "from flow")
        node.global_context.set("g", "from global")
        out = await trigger(h)
    assert (out["payload"], out["g"]) == ("from flow", "from global")


async def test_in_07_overrides_replace_the_configured_properties() -> None:
    config = {"payload": "static", "topic": "static", "props": {"bool1": True, "str1": "1"}}
    overrides = {"topic": "t_override", "str1": 1, "num1": 1, "bool1": False}
    async with inject(config) as h:
        out = await trigger(h, overrides)
        plain = await trigger(h)
    assert "payload" not in out
    assert (out["topic"], out["str1"], out["num1"], out["bool1"]) == ("t_override", 1, 1, False)
    assert (plain["payload"], plain["str1"]) == ("static", "1")  # the configuration is intact


async def test_in_08_overrides_take_value_references() -> None:
    async with inject({"payload": "hello", "topic": "t4"}) as h:
        out = await trigger(h, {"jsonata1": {"jsonata": '"A" & "B"'}})
    assert out["jsonata1"] == "AB"


async def test_in_09_once_uses_the_default_delay() -> None:
    started = time.monotonic()
    async with inject({"once": True, "payload": "once"}) as h:
        [out] = await h.output(0, timeout=5)
        elapsed = time.monotonic() - started
        await h.settle()
        assert len(h.output_now(0)) == 1  # once, and no repeat
    assert out["payload"] == "once"
    assert elapsed >= 0.09  # default once_delay: 100 ms


async def test_in_09_once_delay() -> None:
    started = time.monotonic()
    async with inject({"once": True, "once_delay": "500ms"}) as h:
        [out] = await h.output(0, timeout=5)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.49
    assert isinstance(out["payload"], int)  # the default payload: {date: now}


async def test_in_09_repeat() -> None:
    async with inject({"repeat": "200ms", "payload": "tick"}) as h:
        outs = await h.output(0, 3, timeout=10)
    assert [m["payload"] for m in outs] == ["tick"] * 3
    assert len({m["_msgid"] for m in outs}) == 3


async def test_in_09_once_then_repeat() -> None:
    async with inject({"once": True, "once_delay": 0, "repeat": "300ms"}) as h:
        outs = await h.output(0, 2, timeout=10)
    assert all(isinstance(m["payload"], int) for m in outs)


async def test_in_09_cron_with_seconds() -> None:
    async with inject({"cron": "* * * * * *"}) as h:
        [out] = await h.output(0, timeout=5)
    now_ms = time.time() * 1000
    assert isinstance(out["payload"], int)
    assert now_ms - 5000 < out["payload"] <= now_ms


def test_in_09_repeat_too_long_is_a_load_error() -> None:
    # Node-RED reports "inject.errors.toolong" at run time and does not repeat; here the file
    # does not load.
    text = "flow: f\nnodes:\n  tick:\n    type: inject\n    repeat: 2147484\n"
    with pytest.raises(FlowLoadError) as info:
        Loader(test_registry()).load_text(text, "f.yaml")
    [error] = info.value.errors
    assert str(error) == ("f.yaml:5:13: node 'tick', field 'repeat': repeat must be between "
                          "0 and 2147483 seconds")


def test_in_09_invalid_cron_is_a_load_error() -> None:
    text = "flow: f\nnodes:\n  tick:\n    type: inject\n    cron: \"61 * * * *\"\n"
    with pytest.raises(FlowLoadError) as info:
        Loader(test_registry()).load_text(text, "f.yaml")
    [error] = info.value.errors
    assert str(error) == ("f.yaml:5:11: node 'tick', field 'cron': "
                          "invalid cron schedule '61 * * * *'")


async def test_in_10_date_payload_is_ms_since_epoch() -> None:
    async with inject({"payload": {"date": "now"}, "props": {"iso": {"date": "iso"}}}) as h:
        out = await trigger(h)
    now_ms = time.time() * 1000
    assert isinstance(out["payload"], int) and now_ms - 5000 < out["payload"] <= now_ms
    assert out["iso"].endswith("Z") and out["iso"][4] == "-"


def test_in_11_invalid_jsonata_is_a_load_error() -> None:
    # Node-RED reports "inject.errors.invalid-expr" on each trigger; here the file does not load.
    text = "flow: f\nnodes:\n  tick:\n    type: inject\n    props:\n      x: {jsonata: '@'}\n"
    with pytest.raises(FlowLoadError) as info:
        Loader(test_registry()).load_text(text, "f.yaml")
    [error] = info.value.errors
    assert error.node == "tick" and error.field == "props.x.jsonata"
    assert (error.file, error.line) == ("f.yaml", 6)


async def test_in_11_failing_value_is_an_error_and_nothing_is_sent() -> None:
    config = {"payload": {"jsonata": "$error('no luck')"}}
    async with inject(config, extra_nodes={"catch": {"type": "catch"}}) as h:
        h.watch_output("catch")
        h.node("node").inject()  # type: ignore[attr-defined]
        [err] = await h.output(0, node_id="catch")
        await h.settle()
        assert h.output_now(0) == []
    assert "no luck" in err["error"]["message"]
    assert err["error"]["source"]["id"] == "node"


async def test_repeat_stops_when_the_flow_stops() -> None:
    async with inject({"repeat": "100ms"}) as h:
        await h.output(0, 1, timeout=5)
        node = h.node("node")
    sent = node.msgs_out
    await asyncio.sleep(0.3)
    assert node.msgs_out == sent


async def test_props_list_is_the_message_in_node_reds_order() -> None:
    config = {"props": [{"topic": "T"}, {"payload": {"jsonata": "topic & '!'"}}]}
    async with inject(config) as h:
        msg = await trigger(h)
    assert msg["payload"] == "T!" and list(msg) == ["_msgid", "topic", "payload"]


async def test_props_list_without_payload_sends_no_payload_and_empty_topic_is_kept() -> None:
    async with inject({"props": [{"topic": ""}, {"n": 3}]}) as h:
        msg = await trigger(h)
    assert "payload" not in msg and msg["topic"] == "" and msg["n"] == 3


async def test_inject_completes_what_it_sends_as_node_red_does() -> None:
    extra = {"done": {"type": "complete", "scope": ["node"]}}
    async with inject({"payload": "x"}, extra_nodes=extra) as h:
        h.watch_output("done")
        await trigger(h)
        [completed] = await h.output(0, node_id="done")
    assert completed["payload"] == "x"
    assert completed["complete"] == {"source": {"id": "node", "type": "inject"}}
