"""``MediaPipeline``: the container of elements; runs the flow-state monitor of its elements."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.media.elements.media_element import MediaElementImpl
from flowengine.media.elements.media_object import MediaObjectImpl

log = logging.getLogger("flowengine.media")

FLOW_CHECK_INTERVAL = 0.5
"""Seconds between two checks of the elements' media flow states."""


class MediaPipelineImpl(MediaObjectImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["MediaPipeline"]
    property_defaults: ClassVar[dict[str, Any]] = {"latencyStats": False}

    _monitor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._monitor = asyncio.create_task(self._watch_flows(), name=f"flows {self.id}")

    def elements(self) -> list[MediaElementImpl]:
        """The pipeline's elements, a hub's ports (children of the hub) included."""
        objects = self.ctx.media_set.objects
        found: list[MediaElementImpl] = []
        pending = list(self.children)
        while pending:
            obj = objects.get(pending.pop(0))
            if isinstance(obj, MediaElementImpl):
                found.append(obj)
            elif obj is not None:
                pending.extend(obj.children)
        return found

    async def _watch_flows(self) -> None:
        while True:
            await asyncio.sleep(FLOW_CHECK_INTERVAL)
            for element in self.elements():
                try:
                    element.check_flow()
                except Exception:  # one element's bug must not stop the others' events
                    log.exception("flow check failed for %s", element.id)

    def set_latency_stats(self, enabled: bool) -> None:
        """KMS's ``setLatencyStats``: every element, now and later, measures latencies."""
        if enabled == bool(self.get_property("latencyStats")):
            return
        self._props["latencyStats"] = enabled
        for element in self.elements():
            element.latency_stats_changed(enabled)

    def get_gstreamer_dot(self, details: str | None = None) -> str:
        lines = [f'digraph "{self.id}" {{']
        for element in self.elements():
            lines.append(f'  "{element.id}" [label="{element.remote_class.name}"];')
            for conn in element.sink_connections:
                lines.append(f'  "{element.id}" -> "{conn.sink.id}" [label="{conn.media_type}"];')
        lines.append("}")
        return "\n".join(lines)

    def dump_gstreamer_dot(self, details: str | None = None) -> None:
        """KMS writes a .dot file on the server; nothing to write here."""

    async def release(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        await super().release()
