"""Runtime semantics (docs/design/runtime.md, docs/reference/nodered-runtime.md §1-§3, §9):
ordering, cloning, message ids, async handlers, errors, status, completion, lifecycle,
context persistence and reload.

The node types below exist only for these tests; they are written with the public Node API and
registered next to the built-in types.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from flowengine import Node
from flowengine import schema as s
from flowengine.loader import FlowSet, Loader
from flowengine.registry import NodeRegistry, default_registry
from flowengine.testing import FlowHarness, capture_logs

EVENTS: list[str] = []  # what the test nodes did, in order ("keep:a", "close:b", ...)


class Keep(Node):
    """Keeps every message object it receives (no copy), optionally mutates it, passes it on."""

    type = "test-keep"
    schema = s.obj({"mutate": s.boolean(False)})

    def configure(self, config: dict[str, Any]) -> None:
        self.kept: list[dict[str, Any]] = []

    def on_input(self, msg: dict[str, Any]) -> Any:
        EVENTS.append(f"keep:{self.id}")
        self.kept.append(msg)
        if self.config["mutate"]:
            msg["payload"]["x"] = "mutated"
            msg["topic"] = "mutated"
        return msg


class Fresh(Node):
    """Answers each message with new messages that carry no ``_msgid``."""

    type = "test-fresh"
    schema = s.obj({"many": s.boolean(False)})

    def on_input(self, msg: dict[str, Any]) -> Any:
        if self.config["many"]:
            return [[{"payload": 1}, {"payload": 2}]]
        return {"payload": "new"}


class Sleepy(Node):
    """Waits ``delay`` seconds when the payload is "slow", then passes the message on."""

    type = "test-sleepy"
    schema = s.obj({"delay": s.number(2.0)})

    async def on_input(self, msg: dict[str, Any]) -> Any:
        if msg.get("payload") == "slow":
            await asyncio.sleep(self.config["delay"])
        return msg


class Fail(Node):
    """Raises on every message."""

    type = "test-fail"

    def on_input(self, msg: dict[str, Any]) -> Any:
        raise ValueError("bad input")


class Later(Node):
    """Finishes its messages itself, a little later (``auto_done = False``)."""

    type = "test-later"
    auto_done = False

    async def on_input(self, msg: dict[str, Any]) -> Any:
        await asyncio.sleep(0.05)
        self.done(msg)
        return msg


class Closer(Node):
    """Records start and close; ``hang: true`` makes its close never finish."""

    type = "test-closer"
    schema = s.obj({"hang": s.boolean(False), "stubborn": s.boolean(False)})

    def on_start(self) -> None:
        EVENTS.append(f"start:{self.id}")

    async def on_close(self, removed: bool) -> None:
        EVENTS.append(f"close:{self.id}")
        if self.config["stubborn"]:
            # Ignores the first cancellation and goes on for a while: the stop must not wait.
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(8)
        if self.config["hang"]:
            await asyncio.sleep(3600)


class CloserSource(Closer):
    type = "test-closer-source"
    inputs = 0
    is_source = True


class CloserConfig(Closer):
    type = "test-closer-config"
    is_config = True
    inputs = 0
    outputs = 0


TEST_TYPES: tuple[type[Node], ...] = (Keep, Fresh, Sleepy, Fail, Later, Closer, CloserSource,
                                      CloserConfig)
_registry: NodeRegistry | None = None


def registry() -> NodeRegistry:
    global _registry
    if _registry is None:
        _registry = default_registry()
        for cls in TEST_TYPES:
            _registry.register(cls)
    return _registry


def load(text: str, filename: str = "f.yaml") -> FlowSet:
    return Loader(registry()).load_text(textwrap.dedent(text), filename)


def flow(text: str) -> FlowHarness:
    return FlowHarness(load(text))


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


class Marker:
    """An object that is not a container: messages share it, never copy it."""

    Instances: ClassVar[int] = 0


# -- delivery -------------------------------------------------------------------------------------


async def test_p2_delivery_is_breadth_first() -> None:
    text = """\
        flow: f
        nodes:
          a: {type: test-keep, wires: [b, c]}
          b: {type: test-keep, wires: [d]}
          c: {type: test-keep}
          d: {type: test-keep}
        """
    async with flow(text) as h:
        h.send("a", {"payload": {}})
        await h.received("d")
        await h.settle()
    # Depth-first (Node-RED's runtimeSyncDelivery) would give a, b, d, c.
    assert EVENTS == ["keep:a", "keep:b", "keep:c", "keep:d"]


async def test_fan_out_first_recipient_gets_the_object_others_deep_copies() -> None:
    text = """\
        flow: f
        nodes:
          a: {type: test-keep, wires: [b, c, d]}
          b: {type: test-keep}
          c: {type: test-keep}
          d: {type: test-keep}
        """
    marker = Marker()
    sent = {"payload": {"x": [1, 2]}, "obj": marker, "pair": (1, [2])}
    async with flow(text) as h:
        h.send("a", sent)
        for node_id in "bcd":
            await h.received(node_id)
        [b], [c], [d] = (h.node(i).kept for i in "bcd")  # type: ignore[attr-defined]
    assert b is sent
    for copy in (c, d):
        assert copy == sent and copy is not sent
        assert copy["payload"] is not sent["payload"]
        assert copy["payload"]["x"] is not sent["payload"]["x"]
        assert copy["pair"][1] is not sent["pair"][1]
        assert copy["obj"] is marker  # shared by reference, never copied
    assert c is not d


async def test_finding_5_copies_are_taken_before_any_delivery() -> None:
    # b runs first and mutates its message in place; c must still see what a sent.
    text = """\
        flow: f
        nodes:
          a: {type: test-keep, wires: [b, c]}
          b: {type: test-keep, mutate: true}
          c: {type: test-keep}
        """
    async with flow(text) as h:
        h.send("a", {"payload": {"x": "orig"}, "topic": "t"})
        await h.received("c")
        [b], [c] = h.node("b").kept, h.node("c").kept  # type: ignore[attr-defined]
    assert EVENTS == ["keep:a", "keep:b", "keep:c"]
    assert b["payload"]["x"] == "mutated"
    assert c["payload"] == {"x": "orig"} and c["topic"] == "t"


async def test_msgid_is_stamped_on_new_messages_and_kept_through_copies() -> None:
    text = """\
        flow: f
        nodes:
          a: {type: test-keep, wires: [b, c]}
          b: {type: test-keep}
          c: {type: test-keep}
          one: {type: test-fresh, wires: [d]}
          many: {type: test-fresh, many: true, wires: [e]}
          d: {type: test-keep}
          e: {type: test-keep}
        """
    async with flow(text) as h:
        h.send("a", {"payload": {}})  # no _msgid: the runtime gives it one
        h.send("one", {"payload": 0, "_msgid": "IN"})
        h.send("many", {"payload": 0, "_msgid": "IN"})
        [b] = await h.received("b")
        [c] = await h.received("c")
        [d] = await h.received("d")
        e = await h.received("e", 2)
    msgid = b["_msgid"]
    assert isinstance(msgid, str) and len(msgid) == 16 and int(msgid, 16) >= 0
    assert c["_msgid"] == msgid
    # A new message gets a fresh id; several new messages of one send share one fresh id.
    assert d["payload"] == "new" and len(d["_msgid"]) == 16 and d["_msgid"] != "IN"
    assert e[0]["_msgid"] == e[1]["_msgid"] != "IN"
    assert [m["payload"] for m in e] == [1, 2]


async def test_a_slow_async_node_does_not_stall_other_messages() -> None:
    text = """\
        flow: f
        nodes:
          slow: {type: test-sleepy, delay: 3, wires: [out]}
          other: {type: test-keep, wires: [out]}
          out: {type: test-keep}
        """
    async with flow(text) as h:
        h.send("slow", {"payload": "slow"})
        h.send("slow", {"payload": "fast"})  # the same async node, a second message
        h.send("other", {"payload": "other"})
        arrived = await h.received("out", 2, timeout=2.5)
        assert sorted(m["payload"] for m in arrived) == ["fast", "other"]
        [*_, last] = await h.received("out", 3, timeout=10)
    assert last["payload"] == "slow"


# -- errors ---------------------------------------------------------------------------------------


ERRORS = """\
    flow: f
    nodes:
      broken: {type: test-fail, name: Broken}
      on-error: {type: catch, wires: [seen]}
      seen: {type: test-keep}
    """


async def test_error_reaches_catch_with_the_node_red_shape() -> None:
    records = capture_logs()
    async with flow(ERRORS) as h:
        h.send("broken", {"payload": 1, "error": "existing", "_msgid": "M"})
        [msg] = await h.received("seen")
    error = msg["error"]
    assert set(error) == {"message", "source", "type", "stack"}
    assert error["message"] == "ValueError: bad input"
    assert error["source"] == {"id": "broken", "type": "test-fail", "name": "Broken", "count": 1}
    assert error["type"] == "ValueError"
    assert error["stack"].startswith("Traceback (most recent call last):")
    assert error["stack"].endswith("ValueError: bad input")
    assert msg["_error"] == "existing"  # an existing msg.error moves aside
    assert (msg["payload"], msg["_msgid"]) == (1, "M")
    assert not [r for r in records if r.levelno >= logging.ERROR]  # caught: not logged
    assert h.errors == [{"node": "broken", "flow": "f", "type": "test-fail",
                         "message": "ValueError: bad input", "msgid": "M"}]


async def test_uncaught_error_is_logged_once_with_flow_and_node() -> None:
    records = capture_logs()
    text = """\
        flow: signaling
        nodes:
          broken: {type: test-fail, wires: [after]}
          fine: {type: test-keep}
          after: {type: test-keep}
        """
    async with flow(text) as h:
        h.send("broken", {"payload": 1, "_msgid": "M1"})
        h.send("fine", {"payload": 2})
        await h.received("fine")  # the runtime carries on
        await h.settle()
        assert h.received_now("after") == []
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    [record] = errors
    assert record.getMessage() == "ValueError: bad input"
    assert (record.flow, record.file, record.node, record.msgid) == (
        "signaling", "f.yaml", "broken", "M1")


async def test_catch_nodes_only_see_errors_of_their_own_flow(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(textwrap.dedent("""\
        flow: one
        nodes:
          broken: {type: test-fail}
          catch-one: {type: catch, wires: [seen-one]}
          seen-one: {type: test-keep}
        """))
    (tmp_path / "two.yaml").write_text(textwrap.dedent("""\
        flow: two
        nodes:
          catch-two: {type: catch, wires: [seen-two]}
          seen-two: {type: test-keep}
        """))
    harness = FlowHarness.from_files([tmp_path / "one.yaml", tmp_path / "two.yaml"],
                                     registry=registry())
    async with harness as h:
        h.send("broken", {"payload": 1})
        [msg] = await h.received("seen-one")
        await h.settle()
        assert h.received_now("seen-two") == []
    assert msg["error"]["source"]["id"] == "broken"


async def test_ca_07_error_loop_guard_stops_at_count_9() -> None:
    # The catch node feeds the failing node again: Node-RED delivers counts 1..9, then stops.
    text = """\
        flow: f
        nodes:
          broken: {type: test-fail}
          on-error: {type: catch, wires: [broken, seen]}
          seen: {type: test-keep}
        """
    records = capture_logs()
    async with flow(text) as h:
        h.send("broken", {"payload": 1})
        seen = await h.received("seen", 9, timeout=5)
        await h.settle()
        assert len(h.received_now("seen")) == 9
    assert [m["error"]["source"]["count"] for m in seen] == list(range(1, 10))
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert warnings == ["message stopped: it looped through a catch node 9 times"]
    [error] = [r for r in records if r.levelno == logging.ERROR]
    assert error.getMessage() == "ValueError: bad input" and error.node == "broken"


# -- status and completion ------------------------------------------------------------------------


async def test_status_reaches_status_nodes_and_subscribers() -> None:
    text = """\
        flow: f
        nodes:
          worker: {type: test-keep, name: Worker}
          watch: {type: status, scope: [worker], wires: [seen]}
          seen: {type: test-keep}
        """
    async with flow(text) as h:
        h.node("worker").status({"fill": "green", "shape": "dot", "text": 3})
        [msg] = await h.received("seen")
    assert msg["status"] == {"fill": "green", "shape": "dot", "text": "3",
                             "source": {"id": "worker", "type": "test-keep", "name": "Worker"}}
    assert "payload" not in msg
    assert h.statuses == [{"node": "worker", "flow": "f",
                           "status": {"fill": "green", "shape": "dot", "text": "3"}}]
    assert h.node("worker").last_status == {"fill": "green", "shape": "dot", "text": "3"}


async def test_complete_after_sync_async_and_self_finishing_nodes() -> None:
    text = """\
        flow: f
        nodes:
          sync: {type: test-keep}
          async: {type: test-sleepy}
          later: {type: test-later}
          broken: {type: test-fail}
          finished: {type: complete, scope: [sync, async, later, broken], wires: [seen]}
          seen: {type: test-keep}
        """
    async with flow(text) as h:
        h.send("sync", {"payload": {"n": 1}})
        h.send("async", {"payload": "fast"})
        h.send("later", {"payload": "later"})
        h.send("broken", {"payload": "broken"})  # an error is not a completion
        seen = await h.received("seen", 3)
        await h.settle()
        assert len(h.received_now("seen")) == 3
    assert sorted(m["complete"]["source"]["id"] for m in seen) == ["async", "later", "sync"]
    by_source = {m["complete"]["source"]["id"]: m for m in seen}
    assert by_source["sync"]["payload"] == {"n": 1}
    assert by_source["later"]["complete"] == {
        "source": {"id": "later", "type": "test-later"}}


# -- lifecycle ------------------------------------------------------------------------------------


LIFECYCLE = """\
    flow: f
    config:
      conn: {type: test-closer-config}
    nodes:
      src: {type: test-closer-source, wires: [first]}
      first: {type: test-closer, wires: [second]}
      second: {type: test-closer, hang: {hang}}
    """


async def test_start_and_close_order() -> None:
    async with flow(LIFECYCLE.replace("{hang}", "false")):
        assert EVENTS == ["start:conn", "start:first", "start:second", "start:src"]
    # Sources first, flow nodes in reverse order, config nodes last.
    assert EVENTS[4:] == ["close:src", "close:second", "close:first", "close:conn"]


@pytest.mark.parametrize("how", ["hang", "stubborn"])
async def test_a_hung_close_hits_the_close_timeout(how: str) -> None:
    text = LIFECYCLE.replace("hang: {hang}", f"{how}: true") + "settings: {close_timeout: 0.2}\n"
    records = capture_logs()
    h = flow(text)
    await h.__aenter__()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(h.__aexit__(None, None, None), 10)
    assert loop.time() - started < 5  # generous: the point is that it does not wait for ever
    assert EVENTS[4:] == ["close:src", "close:second", "close:first", "close:conn"]
    [record] = [r for r in records if r.levelno >= logging.ERROR]
    assert record.getMessage() == "node 'second' close timed out after 0.2s; continuing without it"
    assert record.node == "second"


async def test_stop_drains_messages_in_flight() -> None:
    text = """\
        flow: f
        nodes:
          slow: {type: test-sleepy, delay: 0.3, wires: [out]}
          out: {type: test-keep}
        """
    h = flow(text)
    await h.__aenter__()
    h.send("slow", {"payload": "slow"})
    await asyncio.sleep(0.05)  # the message is now inside the async handler
    await h.__aexit__(None, None, None)
    assert [m["payload"] for m in h.received_now("out")] == ["slow"]


async def test_file_context_survives_a_restart(tmp_path: Path) -> None:
    text = f"""\
        flow: f
        settings:
          context:
            stores:
              file: {{module: file, dir: "{tmp_path}", flush_interval: 60}}
        nodes:
          count:
            type: function
            code: |
              n = (flow.get("#:(file)::n") or 0) + 1
              flow.set("#:(file)::n", n)
              flow.set("m", n)
              msg["payload"] = n
              return msg
            wires: [out]
          out: {{type: test-keep}}
        """
    async with flow(text) as h:
        for _ in range(2):
            h.send("count", {})
        await h.received("out", 2)
    # A new runtime on the same flow: the file store has the value, memory context does not.
    async with flow(text) as h:
        h.send("count", {})
        [out] = await h.received("out")
        assert h.node("count").flow_context.get("m") == 3
        assert h.node("count").flow_context.get("n") is None  # "n" lives in the file store
    assert out["payload"] == 3


RELOAD = """\
    flow: f
    nodes:
      same:
        type: function
        code: |
          context.set("n", (context.get("n") or 0) + 1)
          flow.set("seen", (flow.get("seen") or 0) + 1)
          return msg
      edited:
        type: function
        code: |
          context.set("n", (context.get("n") or 0) + {step})
          return msg
    """


async def test_reload_restarts_only_changed_nodes() -> None:
    async with flow(RELOAD.format(step=1)) as h:
        for node_id in ("same", "edited", "same", "edited"):
            h.send(node_id, {"payload": 1})
        await h.settle()
        same, edited = h.node("same"), h.node("edited")
        assert same.context.get("n") == 2 and edited.context.get("n") == 2

        summary = await h.runtime.reload(load(RELOAD.format(step=10)))

        assert summary == {"added": [], "changed": ["edited"], "removed": []}
        assert h.node("same") is same  # untouched: same instance, same node context
        assert h.node("edited") is not edited and edited.state == "closed"
        h.send("same", {"payload": 1})
        h.send("edited", {"payload": 1})
        await h.settle()
        assert same.context.get("n") == 3
        # As in Node-RED without a persistent store, a restarted node's context starts over,
        # while flow context survives the reload.
        assert h.node("edited").context.get("n") == 10
        assert same.flow_context.get("seen") == 3


async def test_reload_adds_and_removes_nodes() -> None:
    before = """\
        flow: f
        nodes:
          keep: {type: test-keep, wires: [gone]}
          gone: {type: test-closer}
        """
    after = """\
        flow: f
        nodes:
          keep: {type: test-keep, wires: [new]}
          new: {type: test-keep}
        """
    async with flow(before) as h:
        keep = h.node("keep")
        summary = await h.runtime.reload(load(after))
        assert summary == {"added": ["new"], "changed": [], "removed": ["gone"]}
        assert "close:gone" in EVENTS
        assert h.runtime.get_node("gone") is None
        assert h.node("keep") is keep
        h.send("keep", {"payload": {}})  # the kept node is rewired to the new one
        await h.settle()
        assert len(h.node("new").kept) == 1  # type: ignore[attr-defined]


async def test_a_message_the_node_reported_an_error_on_does_not_complete() -> None:
    """Node-RED's done(err): an error reported with the message means no complete event."""
    text = """
flow: t
nodes:
  check:
    type: function
    code: |
      if msg["payload"] < 0:
          node.error("negative", msg)
          return None
      return msg
  finished:
    type: complete
    scope: [check]
    wires: [sink]
  sink:
    type: debug
    console: false
"""
    async with FlowHarness.from_yaml(text) as h:
        for value in (1, -1, 2):
            h.send("check", {"payload": value})
        done = await h.received("sink", 2)
        await h.settle()
        assert [m["payload"] for m in h.received_now("sink")] == [1, 2]
        assert [m["complete"]["source"]["id"] for m in done] == ["check", "check"]


async def test_a_message_too_deep_to_copy_does_not_stop_delivery() -> None:
    """Copying for fan-out or for a catch node can fail (RecursionError on absurd nesting):
    that message is logged and dropped, and every other message still flows."""
    text = """
flow: t
nodes:
  make:
    type: function
    code: |
      if msg["payload"] == "deep":
          value = []
          for _ in range(5000):
              value = [value]
          msg["payload"] = value
      return msg
    wires: [a, b]
  a:
    type: function
    code: return msg
  b:
    type: function
    code: return msg
"""
    async with FlowHarness.from_yaml(text) as h:
        h.send("make", {"payload": "deep"})
        h.send("make", {"payload": "plain"})
        # b's copy of the deep message cannot be made; the plain message reaches both.
        [only] = await h.received("b", 1)
        assert only["payload"] == "plain"
        await h.settle()
        assert [m["payload"] for m in h.received_now("a")][-1] == "plain"
