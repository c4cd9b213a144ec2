"""The ``counters`` event of ``/admin/events``: node counters, pushed while someone watches.

Counters change on every message, far too often to publish each change. Instead, while at
least one ``/admin/events`` client is connected, :class:`CounterFeed` looks at every running
node once per ``interval`` and publishes one ``counters`` event on the runtime's event bus with
the nodes whose counters changed since its last look::

    {"kind": "counters", "data": {"nodes": {"<id>": {"in": 3, "out": 2, "errors": 1,
                                                     "handler_seconds": 0.0012}}}}

The values are totals, not increments, so a client that missed an event loses nothing; the
first event after the feed starts holds every node. It costs one pass over the nodes per
interval, and nothing while no client listens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowengine.runtime import Runtime

INTERVAL = 1.0  # seconds between two looks at the counters


def counters(node: Any) -> dict[str, Any]:
    """A node's counters as the admin API shows them."""
    return {"in": node.msgs_in, "out": node.msgs_out, "errors": node.error_count,
            "handler_seconds": round(node.handler_seconds, 6)}


class CounterFeed:
    """Publishes ``counters`` events while at least one client is attached."""

    def __init__(self, runtime: Runtime, interval: float = INTERVAL):
        self.runtime = runtime
        self.interval = interval
        self._clients = 0
        self._task: asyncio.Task[None] | None = None

    def attach(self) -> Callable[[], None]:
        """Count a client in (starting the feed); returns the function that counts it out."""
        self._clients += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        detached = False

        def detach() -> None:
            nonlocal detached
            if detached:
                return
            detached = True
            self._clients -= 1
            if self._clients == 0 and self._task is not None:
                self._task.cancel()
                self._task = None
        return detach

    async def _run(self) -> None:
        seen: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(self.interval)
                changed: dict[str, dict[str, Any]] = {}
                for node_id, node in list(self.runtime.nodes.items()):
                    now = counters(node)
                    if seen.get(node_id) != now:
                        seen[node_id] = changed[node_id] = now
                if changed:
                    self.runtime.events.publish("counters", {"nodes": changed})
