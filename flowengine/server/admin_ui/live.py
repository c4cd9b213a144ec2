"""The ``counters`` event of ``/admin/events?counters=1``: node counters, pushed to the clients
that ask for them (the flow view) while one is connected.

Counters change on every message, far too often to publish each change. Instead, while at
least one such client is connected, :class:`CounterFeed` looks at every running node once per
``interval`` and sends those clients one ``counters`` event with the nodes whose counters
changed since its last look::

    {"kind": "counters", "data": {"nodes": {"<id>": {"in": 3, "out": 2, "errors": 1,
                                                     "handler_seconds": 0.0012}}}}

The values are totals, not increments, so a client that missed an event loses nothing; the
first event after the feed starts holds every node (a client that comes later reads
``/admin/nodes`` first). It costs one pass over the nodes per interval, and nothing while no
client listens. Other clients of ``/admin/events`` never see these events.
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


Send = Callable[[str, dict[str, Any]], None]  # an events client's (kind, data) callback


class CounterFeed:
    """Sends ``counters`` events to the attached clients while there is one."""

    def __init__(self, runtime: Runtime, interval: float = INTERVAL):
        self.runtime = runtime
        self.interval = interval
        self._clients: list[Send] = []
        self._task: asyncio.Task[None] | None = None

    def attach(self, send: Send) -> Callable[[], None]:
        """Send the events to ``send`` too (starting the feed); returns the function that
        stops that."""
        self._clients.append(send)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

        def detach() -> None:
            if send in self._clients:
                self._clients.remove(send)
            if not self._clients and self._task is not None:
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
                    for send in list(self._clients):
                        send("counters", {"nodes": changed})
