"""Test helpers for flow and plugin authors, in the spirit of node-red-node-test-helper.

Run a whole flow, or one node, in a real runtime; send messages into nodes; await what a node
receives on its input or sends on an output::

    async with FlowHarness.from_yaml(flow_text) as flow:
        flow.send("parse", {"payload": '{"id": "start"}'})
        [msg] = await flow.received("start-pipeline")

    async with NodeHarness("switch", {"property": "payload", "rules": [{"eq": 1}]}) as node:
        node.send({"payload": 1})
        [msg] = await node.output(0)

Nothing is mocked: the harness is the real loader and runtime with observers attached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from flowengine.loader import FlowSet, Loader
from flowengine.messages import clone_message
from flowengine.node import RUNNING, Node
from flowengine.registry import NodeRegistry, default_registry
from flowengine.runtime import Runtime

_registry: NodeRegistry | None = None


def test_registry() -> NodeRegistry:
    """The installed node types (loaded once per process)."""
    global _registry
    if _registry is None:
        _registry = default_registry()
    return _registry


test_registry.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


class _Recorder:
    """Messages seen at one observation point, with a way to wait for more."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def add(self, msg: dict[str, Any]) -> None:
        self.messages.append(clone_message(msg))
        self._changed.set()

    async def wait(self, count: int, timeout: float) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"expected {count} message(s), got {len(self.messages)} "
                                   f"within {timeout}s: {self.messages!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.messages[:count]


class _Probe(Node):
    """An extra wire target that records what an output sends."""

    type = ""  # never registered

    def __init__(self, recorder: _Recorder):
        super().__init__("__probe__", {})
        self.recorder = recorder

    def on_input(self, msg: dict[str, Any]) -> None:
        self.recorder.add(msg)


class FlowHarness:
    """A running flow under test. Use as ``async with``."""

    def __init__(self, flowset: FlowSet, *, base_dir: str | Path | None = None):
        self.flowset = flowset
        self.runtime = Runtime(flowset, base_dir=base_dir)
        self._inputs: dict[str, _Recorder] = defaultdict(_Recorder)
        self._outputs: dict[tuple[str, int], _Recorder] = {}
        self.errors: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, text: str, *, registry: NodeRegistry | None = None,
                  filename: str = "<test>", environ: dict[str, str] | None = None
                  ) -> FlowHarness:
        """Load a flow from YAML text (raises FlowLoadError with every problem)."""
        loader = Loader(registry or test_registry(), environ)
        return cls(loader.load_text(text, filename))

    @classmethod
    def from_dict(cls, flow: dict[str, Any], **kwargs: Any) -> FlowHarness:
        """Load a flow given as the dict a flow file would hold."""
        return cls.from_yaml(yaml.safe_dump(flow, sort_keys=False), **kwargs)

    @classmethod
    def from_files(cls, paths: list[str | Path], *, registry: NodeRegistry | None = None,
                   environ: dict[str, str] | None = None) -> FlowHarness:
        """Load flow files as ``flowrun`` would."""
        return cls(Loader(registry or test_registry(), environ).load(paths))

    # -- running --------------------------------------------------------------------------------

    async def __aenter__(self) -> FlowHarness:
        self.runtime.events.subscribe(self._on_event)
        for spec in self.flowset.nodes.values():
            if spec.instance is not None and not spec.disabled:
                self._tap_input(spec.instance)
        await self.runtime.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.runtime.stop()

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))
        if kind == "error":
            self.errors.append(data)
        elif kind == "status":
            self.statuses.append(data)

    def _tap_input(self, node: Node) -> None:
        recorder = self._inputs[node.id]
        handler = node.on_input
        if asyncio.iscoroutinefunction(handler):
            async def tapped_async(msg: dict[str, Any]) -> Any:
                recorder.add(msg)
                return await handler(msg)
            node.on_input = tapped_async  # type: ignore[method-assign]
        else:
            def tapped(msg: dict[str, Any]) -> Any:
                recorder.add(msg)
                return handler(msg)
            node.on_input = tapped  # type: ignore[method-assign]

    def node(self, node_id: str) -> Node:
        """The running node with this id."""
        node = self.runtime.get_node(node_id)
        if node is None:
            raise KeyError(f"no running node '{node_id}'")
        return node

    def send(self, node_id: str, msg: dict[str, Any]) -> None:
        """Put ``msg`` on a node's input."""
        self.runtime.deliver(self.node(node_id), msg)

    async def received(self, node_id: str, count: int = 1,
                       timeout: float = 2.0) -> list[dict[str, Any]]:
        """The first ``count`` messages the node received (copies, in arrival order)."""
        return await self._inputs[node_id].wait(count, timeout)

    def received_now(self, node_id: str) -> list[dict[str, Any]]:
        """What the node has received so far."""
        return list(self._inputs[node_id].messages)

    async def output(self, node_id: str, port: int = 0, count: int = 1,
                     timeout: float = 2.0) -> list[dict[str, Any]]:
        """The first ``count`` messages the node sent on output ``port``."""
        return await self.watch_output(node_id, port).wait(count, timeout)

    def output_now(self, node_id: str, port: int = 0) -> list[dict[str, Any]]:
        """What the node has sent on ``port`` so far (since the output was first watched)."""
        return list(self.watch_output(node_id, port).messages)

    def watch_output(self, node_id: str, port: int = 0) -> _Recorder:
        """Start recording an output now (call before sending to catch everything)."""
        key = (node_id, port)
        if key not in self._outputs:
            recorder = self._outputs[key] = _Recorder()
            probe = _Probe(recorder)
            probe._runtime = self.runtime
            probe._sync_handler = probe.on_input
            probe._auto_complete = False
            probe.state = RUNNING
            for node, out in self._senders(node_id, port):
                wires = list(node._wires)
                if out >= len(wires):
                    raise ValueError(f"node '{node_id}' has {len(wires)} output(s)")
                wires[out] = (*wires[out], probe)
                node._wires = tuple(wires)
        return self._outputs[key]

    def _senders(self, node_id: str, port: int) -> list[tuple[Node, int]]:
        """The node outputs whose messages leave through ``port`` of ``node_id``: its own, or
        for a subflow instance those of the nodes inside it wired to that output."""
        spec = self.flowset.nodes.get(node_id)
        if spec is None or spec.outputs_from is None:
            return [(self.node(node_id), port)]
        if port >= len(spec.outputs_from):
            raise ValueError(f"node '{node_id}' has {len(spec.outputs_from)} output(s)")
        return [sender for inner, out in spec.outputs_from[port]
                for sender in self._senders(inner, out)]

    async def settle(self, timeout: float = 2.0) -> None:
        """Wait until no message is in flight."""
        await self.runtime.router.wait_idle(timeout)


class NodeHarness(FlowHarness):
    """One node of ``node_type`` with ``config``, alone in a flow, with every output watched.

    ``extra_nodes`` adds more nodes (e.g. a catch node) to the same flow.
    """

    NODE_ID = "node"

    def __init__(self, node_type: str, config: dict[str, Any] | None = None, *,
                 extra_nodes: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
                 config_nodes: dict[str, Any] | None = None,
                 registry: NodeRegistry | None = None, environ: dict[str, str] | None = None):
        flow: dict[str, Any] = {"flow": "test"}
        if settings:
            flow["settings"] = settings
        if config_nodes:
            flow["config"] = config_nodes
        flow["nodes"] = {self.NODE_ID: {"type": node_type, **(config or {})},
                         **(extra_nodes or {})}
        text = yaml.safe_dump(flow, sort_keys=False)
        super().__init__(Loader(registry or test_registry(), environ).load_text(text, "<test>"))

    async def __aenter__(self) -> NodeHarness:
        await super().__aenter__()
        for port in range(len(self.node(self.NODE_ID)._wires)):
            self.watch_output(self.NODE_ID, port)
        return self

    def send(self, msg: dict[str, Any], node_id: str | None = None) -> None:  # type: ignore[override]
        """Put ``msg`` on the node's input."""
        super().send(node_id or self.NODE_ID, msg)

    async def output(self, port: int = 0, count: int = 1,  # type: ignore[override]
                     timeout: float = 2.0, node_id: str | None = None) -> list[dict[str, Any]]:
        """The first ``count`` messages on output ``port``."""
        return await super().output(node_id or self.NODE_ID, port, count, timeout)

    def output_now(self, port: int = 0, node_id: str | None = None  # type: ignore[override]
                   ) -> list[dict[str, Any]]:
        return super().output_now(node_id or self.NODE_ID, port)


class _Records(list):  # a list that can be weakly referenced
    pass


class _CaptureHandler(logging.Handler):
    """Appends records to a list while the list is alive, then removes itself, so that tests
    calling :func:`capture_logs` do not pile handlers up on the ``flowengine`` logger."""

    def __init__(self, records: _Records, level: int):
        super().__init__(level)
        self._records = weakref.ref(records)

    def emit(self, record: logging.LogRecord) -> None:
        # A dead handler is removed by the next capture_logs() call, not here: removing it
        # while logging iterates the handler list would skip the next handler.
        records = self._records()
        if records is not None:
            records.append(record)

    @property
    def dead(self) -> bool:
        return self._records() is None


def capture_logs(level: int = logging.DEBUG) -> list[logging.LogRecord]:
    """Collect flowengine log records into a list (for asserting logged errors). Capture stops
    when the list is no longer referenced."""
    records = _Records()
    logger = logging.getLogger("flowengine")
    for handler in list(logger.handlers):
        if isinstance(handler, _CaptureHandler) and handler.dead:
            logger.removeHandler(handler)
    logger.addHandler(_CaptureHandler(records, level))
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return records
