"""The flowengine side: ``flowrun import`` the plan's export (Node-RED ids kept), run it in one
runtime with the same timeline as the Node-RED driver, and record the same observations.

A file whose import does not load is left out of the run (its result is "import failed"), so
one unconvertible flow does not hide the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from flowengine.importer import import_nodered
from flowengine.importer.report import ImportReport
from flowengine.loader import Loader
from flowengine.node import RUNNING, Node
from flowengine.registry import NodeRegistry, default_registry
from flowengine.runtime import Runtime
from tools.nodered_diff.observe import Observations, encode
from tools.nodered_diff.plan import FlowFile, Plan

OBSERVED_TYPES = ("debug", "complete")


class _Recorder:
    def __init__(self, plan: Plan, files: list[FlowFile]):
        self.plan = plan
        self.observed: dict[str, Observations] = {f.name: Observations() for f in files}
        self.last_event = time.monotonic()
        self.closed = False

    def record(self, kind: str, node_id: str, value: Any) -> None:
        flow_file = self.plan.file_of(node_id)
        if self.closed or flow_file is None or flow_file.name not in self.observed:
            return
        self.last_event = time.monotonic()
        local = node_id[len(flow_file.prefix):]
        if kind == "receive":
            self.observed[flow_file.name].receive(local, encode(value))
        else:
            self.observed[flow_file.name].status(local, encode(value))


class _Probe(Node):
    """Wired after a complete node: records what it sends, i.e. what it received."""

    type = ""

    def __init__(self, recorder: _Recorder, node_id: str):
        super().__init__(f"__probe__{node_id}", {})
        self._recorder = recorder
        self._watched = node_id

    def on_input(self, msg: dict[str, Any]) -> None:
        self._recorder.record("receive", self._watched, msg)


def import_plan(plan: Plan, out_dir: Path, registry: NodeRegistry
                ) -> tuple[ImportReport | None, dict[str, str]]:
    """Import the plan's files; returns the report of what runs and, per file left out, why."""
    failed: dict[str, str] = {}
    files = list(plan.files)
    while files:
        export = out_dir / "export.json"
        export.write_text(json.dumps([n for f in files for n in f.nodes]), encoding="utf-8")
        target = out_dir / f"flows{len(failed)}"
        report = import_nodered(export, target, registry=registry, readable_ids=False)
        if report.valid:
            return report, failed
        # Find the files that do not import on their own and run without them.
        bad = []
        for flow_file in files:
            single = out_dir / "single.json"
            single.write_text(json.dumps(flow_file.nodes), encoding="utf-8")
            alone = import_nodered(single, out_dir / f"single-{flow_file.prefix[:-1]}",
                                   registry=registry, readable_ids=False)
            if not alone.valid:
                bad.append(flow_file)
                failed[flow_file.name] = "; ".join(alone.problems) or "import failed"
        if not bad:  # each imports alone, not together: give up on the batch
            for flow_file in files:
                failed[flow_file.name] = "; ".join(report.problems)
            return None, failed
        files = [f for f in files if f not in bad]
    return None, failed


async def run(plan: Plan, registry: NodeRegistry | None = None
              ) -> tuple[dict[str, Observations], dict[str, str], ImportReport | None]:
    """Run the plan on flowengine: observations per file, files that failed to import (with
    the reason), and the import report."""
    registry = registry or default_registry()
    with tempfile.TemporaryDirectory(prefix="nodered-diff-fe-") as tmp:
        report, failed = import_plan(plan, Path(tmp), registry)
        if report is None:
            return {}, failed, None
        running = [f for f in plan.files if f.name not in failed]
        flowset = Loader(registry).load(report.files)
        flowset.settings.setdefault("http", {}).update({"port": plan.port, "host": "127.0.0.1"})
        runtime = Runtime(flowset, registry=registry, serve_http=True)  # as flowrun
        recorder = _Recorder(plan, running)
        runtime.events.subscribe(
            lambda kind, data: recorder.record("status", data["node"], data["status"])
            if kind == "status" else None)
        nr_types = {n["id"]: n["type"] for f in running for n in f.nodes}
        # Nodes inside subflow instances are observed too (as Node-RED's driver does): they
        # are copies of the subflow's nodes (``alias``), with the ids Node-RED gives them.
        def nr_type(spec: Any) -> str | None:
            return nr_types.get(spec.alias or spec.id) or nr_types.get(spec.id)

        for spec in flowset.nodes.values():
            node = spec.instance
            if node is not None and not spec.disabled and nr_type(spec) == "debug":
                _tap(node, recorder)
        logging.getLogger("flowengine").setLevel(logging.CRITICAL)
        await runtime.start()
        try:
            for spec in flowset.nodes.values():
                if nr_type(spec) == "complete" and spec.id in runtime.nodes:
                    _probe(runtime, runtime.nodes[spec.id], recorder)
            begin = time.monotonic()
            await asyncio.gather(*(_drive(runtime, plan, f) for f in running))
            while (time.monotonic() - recorder.last_event < plan.quiet
                   and time.monotonic() - begin < plan.max_time):
                await asyncio.sleep(0.05)
        finally:
            recorder.closed = True  # what nodes show while stopping is not compared
            await runtime.stop()
    return recorder.observed, failed, report


def _tap(node: Node, recorder: _Recorder) -> None:
    handler = node.on_input

    def tapped(msg: dict[str, Any]) -> Any:
        recorder.record("receive", node.id, msg)
        return handler(msg)
    node.on_input = tapped  # type: ignore[method-assign]


def _probe(runtime: Runtime, node: Node, recorder: _Recorder) -> None:
    probe = _Probe(recorder, node.id)
    probe._runtime = runtime
    probe._sync_handler = probe.on_input  # type: ignore[attr-defined]
    probe._auto_complete = False  # type: ignore[attr-defined]
    probe.state = RUNNING
    wires = list(node._wires) or [()]
    wires[0] = (*wires[0], probe)
    node._wires = tuple(wires)


async def _drive(runtime: Runtime, plan: Plan, flow_file: FlowFile) -> None:
    await asyncio.sleep(plan.start_delay)
    for node_id in flow_file.triggers:
        node = runtime.get_node(node_id)
        if node is not None and hasattr(node, "inject"):
            node.inject()
        await asyncio.sleep(plan.gap)
