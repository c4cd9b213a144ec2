"""The Node-RED node API as a plugin author meets it here (docs/plugins.md, "Coming from
Node-RED's node API"), one behaviour per row of that table, through a plugin node type defined
in the test; and ``flowengine.util``, the counterpart of ``RED.util``."""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest

from flowengine import MISSING, Node, NodeError, PathError, util
from flowengine.expressions import ExpressionError
from flowengine.registry import NodeRegistry, default_registry
from flowengine.testing import FlowHarness


class Relay(Node):
    """Sends what it gets by ``self.send`` (``clone`` as configured), changes the message
    afterwards, and finishes it itself once a timer fired."""

    type = "relay"
    auto_done = False
    schema = {"type": "object", "properties": {"clone": {"type": "boolean"}}}

    def on_input(self, msg: dict[str, Any]) -> None:
        self.status({"fill": "green", "shape": "dot", "text": f"got {msg['payload']}"})
        self.context.set("count", (self.context.get("count") or 0) + 1)
        self.send(msg, clone=self.config.get("clone", False))
        msg["payload"] = "changed after sending"
        asyncio.get_running_loop().call_later(0.05, self._finish, msg)

    def _finish(self, msg: dict[str, Any]) -> None:
        if msg.get("fail"):
            self.done(msg, NodeError("failed later"))
        else:
            self.done(msg)


@pytest.fixture(scope="module")
def registry() -> NodeRegistry:
    registry = default_registry()
    registry.register(Relay)
    return registry


FLOW = """\
    flow: api
    nodes:
      copying: {type: relay, clone: true, wires: [seen]}
      sharing: {type: relay, clone: false, wires: [seen]}
      seen: {type: debug, active: false}
      done: {type: complete, scope: [copying], wires: [finished]}
      finished: {type: debug, active: false}
      caught: {type: catch, scope: [copying], wires: [errors]}
      errors: {type: debug, active: false}
      watch: {type: status, scope: [copying], wires: [statuses]}
      statuses: {type: debug, active: false}
    """


def harness(registry: NodeRegistry) -> FlowHarness:
    return FlowHarness.from_yaml(textwrap.dedent(FLOW), registry=registry)


async def test_send_with_clone_gives_the_first_recipient_a_copy(registry: NodeRegistry) -> None:
    async with harness(registry) as h:
        h.send("copying", {"payload": 1})
        h.send("sharing", {"payload": 2})
        first, second = await h.received("seen", 2)
    # Delivery comes after the handler returns: with clone=True the recipient does not see the
    # sender's later change; without, it gets the sender's object itself (Node-RED's
    # node.send(msg, false)).
    assert first["payload"] == 1
    assert second["payload"] == "changed after sending"


async def test_done_later_finishes_or_fails_the_message(registry: NodeRegistry) -> None:
    async with harness(registry) as h:
        h.send("copying", {"payload": 1})
        h.send("copying", {"payload": 2, "fail": True})
        [finished] = await h.received("finished")
        [caught] = await h.received("errors")
        await h.settle()
        assert len(h.received_now("finished")) == 1  # a failed message does not complete
    assert finished["complete"] == {"source": {"id": "copying", "type": "relay"}}
    assert caught["error"]["message"] == "failed later"
    assert caught["payload"] == "changed after sending"  # the message as done() got it


async def test_status_reaches_status_nodes_and_context_is_the_node_s(
        registry: NodeRegistry) -> None:
    async with harness(registry) as h:
        h.send("copying", {"payload": 7})
        h.send("copying", {"payload": 8})
        statuses = await h.received("statuses", 2)
        assert h.node("copying").context.get("count") == 2
        assert h.node("sharing").context.get("count") is None
    assert [s["status"]["text"] for s in statuses] == ["got 7", "got 8"]


# -- flowengine.util (RED.util) -------------------------------------------------------------------

def test_message_properties_as_red_util_reads_and_writes_them() -> None:
    msg = {"payload": {"items": [1, {"name": "x"}]}, "topic": "items"}
    assert util.get_message_property(msg, "msg.payload.items[1].name") == "x"
    assert util.get_message_property(msg, "payload[msg.topic][0]") == 1
    assert util.get_message_property(msg, "payload.missing") is MISSING
    with pytest.raises(PathError):  # Node-RED throws reading beneath undefined
        util.get_message_property(msg, "payload.missing.deeper")
    assert util.set_message_property(msg, "a.b", 1, create_missing=False) is False
    assert "a" not in msg
    assert util.set_message_property(msg, "a.b[0]", 1) is True
    assert msg["a"] == {"b": [1]}
    assert util.set_message_property(msg, "topic.sub", 1) is False  # beneath a string
    assert util.set_object_property(msg, "a", MISSING) is True and "a" not in msg
    assert util.normalise_property_expression("a.b[0][msg.topic]") == ["a", "b", 0,
                                                                       ["msg", "topic"]]
    with pytest.raises(PathError):
        util.normalise_property_expression("a..b")


async def test_typed_values_and_jsonata_as_red_util_evaluates_them() -> None:
    flow = """\
        flow: f
        env: {GREETING: hello}
        nodes:
          n: {type: debug, active: false}
        """
    async with FlowHarness.from_yaml(textwrap.dedent(flow)) as h:
        node = h.node("n")
        node.flow_context.set("k", 5)
        msg = {"payload": {"n": 2}}
        assert util.evaluate_node_property("3.5", "num", node, msg) == 3.5
        assert util.evaluate_node_property("payload.n", "msg", node, msg) == 2
        assert util.evaluate_node_property("payload.x", "msg", node, msg) is MISSING
        assert util.evaluate_node_property("k", "flow", node, msg) == 5
        assert util.evaluate_node_property("GREETING", "env", node, msg) == "hello"
        assert util.evaluate_node_property('{"a":[1]}', "json", node, msg) == {"a": [1]}
        assert util.evaluate_node_property("true", "bool", node, msg) is True
        with pytest.raises(ValueError):
            util.evaluate_node_property("{bad", "json", node, msg)
        expression = util.prepare_jsonata_expression("payload.n * $flowContext('k')")
        assert util.evaluate_jsonata_expression(expression, msg, node) == 10
        assert util.get_setting(node, "GREETING") == "hello"
        assert util.get_setting(node, "NR_NODE_ID") == "n"
    with pytest.raises(ExpressionError):
        util.prepare_jsonata_expression("payload +")


def test_the_other_red_util_helpers() -> None:
    assert len(util.generate_id()) == 16 and util.generate_id() != util.generate_id()
    original = {"a": [1, {"b": bytearray(b"x")}]}
    copy = util.clone_message(original)
    assert copy == original and copy["a"][1] is not original["a"][1]
    assert util.parse_context_store("#:(file)::counter") == {"store": "file", "key": "counter"}
    assert util.parse_context_store("counter") == {"store": None, "key": "counter"}
    assert util.compare_objects({"a": [1, b"x"]}, {"a": [1.0, bytearray(b"x")]})
    assert not util.compare_objects(1, True) and not util.compare_objects({"a": 1}, {"b": 1})
    assert util.ensure_string({"n": 1.0, "b": b"hi"}) == '{"n":1,"b":{"type":"Buffer",' \
                                                         '"data":[104,105]}}'
    assert util.ensure_string(b"\xc3\xa9") == "é" and util.ensure_string(2.0) == "2"
    assert util.ensure_string(None) == "null" and util.ensure_string(True) == "true"
    assert util.ensure_buffer("é") == b"\xc3\xa9" and util.ensure_buffer(b"x") == b"x"
