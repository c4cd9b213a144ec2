"""Where a message goes next: sending, fan-out cloning and ordered asynchronous delivery.

Node-RED semantics (docs/reference/nodered-runtime.md §1): a node's sends are delivered after its
handler returns, FIFO and breadth-first (A->[B, C], B->D delivers C before D). One FIFO queue holds
every pending delivery; a drain pass runs the deliveries that were queued when it began and
schedules another pass for the rest, so the event loop (sockets, timers, async handlers) gets a turn
between passes exactly as Node.js's ``setImmediate`` gives I/O a turn.

Sync handlers are called inline: one function call per hop, no task. Async handlers run each
message in its own task, so a node that awaits I/O lets other messages flow.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any

from flowengine.errors import NodeError
from flowengine.messages import clone_message, new_msgid
from flowengine.node import RUNNING, STARTING, Node

if TYPE_CHECKING:
    from flowengine.runtime import Runtime

log = logging.getLogger("flowengine.routing")

Delivery = tuple[Node, dict[str, Any]]

# Deliveries per drain pass before the event loop gets a turn (a few milliseconds of work).
DRAIN_BUDGET = 1000


class Router:
    """The delivery queue of one runtime. Unbounded by design, like Node-RED's (no
    back-pressure): its length is the number of messages in flight, readable as ``pending``."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.queue: deque[Delivery] = deque()
        self.tasks: set[asyncio.Task[Any]] = set()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        """Deliveries queued plus async handlers still running."""
        return len(self.queue) + len(self.tasks)

    # -- sending --------------------------------------------------------------------------------

    def deliver(self, node: Node, msg: dict[str, Any]) -> None:
        """Queue ``msg`` for ``node``'s input (used by link nodes, tests and the admin API)."""
        if "_msgid" not in msg:
            msg["_msgid"] = new_msgid()
        self.queue.append((node, msg))
        self._schedule()

    def emit(self, node: Node, result: Any, source_msg: dict[str, Any] | None = None,
             clone_first: bool = False) -> None:
        """Send ``result`` from ``node``: a dict to output 0, a list with one entry per output
        (an entry may be a list of messages), ``None`` for nothing.

        Every recipient after the first gets a deep copy, made now, before anything is delivered,
        so later changes by one recipient are never seen by another. ``source_msg`` is the input
        being handled; a wrong return type is then reported as a catchable error on it.
        """
        if type(result) is dict:
            # Fast path: one message on output 0.
            wires = node._wires
            if not wires or not wires[0]:
                return
            if "_msgid" not in result:
                result["_msgid"] = new_msgid()
            targets = wires[0]
            queue = self.queue
            queue.append((targets[0], clone_message(result) if clone_first else result))
            for target in targets[1:]:
                queue.append((target, clone_message(result)))
            node.msgs_out += 1
            if not self._scheduled:
                self._schedule()
            return
        if result is None:
            return
        if type(result) is list or type(result) is tuple:
            self._emit_many(node, result, source_msg, clone_first)
            return
        if inspect.isawaitable(result):
            self._spawn(self._finish_awaitable(node, result, source_msg))
            return
        self._non_message(node, result, source_msg)

    def _emit_many(self, node: Node, outputs: list[Any] | tuple[Any, ...],
                   source_msg: dict[str, Any] | None, clone_first: bool) -> None:
        wires = node._wires
        single = _single_message(outputs)
        if single is not None:
            index, msg = single
            if index < len(wires) and wires[index]:
                targets = wires[index]
                if "_msgid" not in msg:
                    msg["_msgid"] = new_msgid()
                queue = self.queue
                queue.append((targets[0], clone_message(msg) if clone_first else msg))
                for target in targets[1:]:
                    queue.append((target, clone_message(msg)))
                node.msgs_out += len(targets)
                self._schedule()
            return
        events: list[tuple[Node, dict[str, Any]]] = []
        msgid = None
        for index, out in enumerate(outputs):
            if out is None:
                continue
            if index >= len(wires):
                # Messages past the last output are ignored, as in Node-RED; values that are
                # not messages are still reported, as Node-RED does.
                if type(out) is not dict and type(out) is not list:
                    self._non_message(node, out, source_msg)
                continue
            msgs = out if type(out) is list else (out,)
            valid: list[dict[str, Any]] = []
            for m in msgs:
                if m is None:
                    continue
                if type(m) is not dict and not isinstance(m, dict):
                    self._non_message(node, m, source_msg)
                    continue
                if msgid is None:
                    msgid = m.get("_msgid")
                valid.append(m)
            for target in wires[index]:
                for m in valid:
                    events.append((target, m))
        if not events:
            return
        if msgid is None:
            msgid = new_msgid()
        seen: set[int] = set()
        queue = self.queue
        for target, m in events:
            if "_msgid" not in m:
                m["_msgid"] = msgid
            key = id(m)
            if key in seen or clone_first:
                queue.append((target, clone_message(m)))
            else:
                queue.append((target, m))
            seen.add(key)
        node.msgs_out += len(events)
        self._schedule()

    def _non_message(self, node: Node, value: Any, source_msg: dict[str, Any] | None) -> None:
        err = NodeError(f"node '{node.id}' returned a {type(value).__name__}, not a message "
                        "(dict), list or None")
        node.error(err, source_msg)

    # -- delivering -----------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._scheduled:
            return
        self._scheduled = True
        self._idle.clear()
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        loop.call_soon(self._drain)

    def _drain(self) -> None:
        """Deliver queued messages in FIFO order, including those sent during this pass, up to
        a budget of deliveries; then yield to the event loop (sockets, timers, tasks) and
        continue in the next pass. The order of deliveries is FIFO either way; the budget only
        bounds how long other work waits, and running a whole short chain in one pass saves an
        event-loop turn per hop."""
        self._scheduled = True  # sends made during the pass join this pass
        queue = self.queue
        pop = queue.popleft
        append = queue.append
        emit = self.emit
        finish = self.runtime.finish
        # Everything queued now (as Node.js's setImmediate pass would), and what those
        # deliveries send, up to the budget.
        budget = max(len(queue), DRAIN_BUDGET)
        try:
            while queue and budget:
                budget -= 1
                node, msg = pop()
                if node.state is not RUNNING:
                    self._not_running(node, msg)
                    continue
                node.msgs_in += 1
                handler = node._sync_handler
                if handler is None:
                    self._spawn(self._run_async(node, msg))
                    continue
                started = perf_counter()
                try:
                    result = handler(msg)
                except Exception as exc:  # a failing node never stops the runtime
                    node.handler_seconds += perf_counter() - started
                    self._report(node, exc, msg)
                    continue
                node.handler_seconds += perf_counter() - started
                try:
                    if type(result) is dict:
                        # emit()'s fast path, inlined: one message on output 0.
                        wires = node._wires
                        if wires and wires[0]:
                            targets = wires[0]
                            if "_msgid" not in result:
                                result["_msgid"] = new_msgid()
                            append((targets[0], result))
                            for target in targets[1:]:
                                append((target, clone_message(result)))
                            node.msgs_out += 1
                    elif result is not None:
                        emit(node, result, msg)
                    if node._complete_nodes and node._auto_complete:
                        finish(node, msg)
                except Exception:  # e.g. a message nested too deep to copy: log, go on
                    log.exception("could not forward a message from node '%s'", node.id)
        finally:
            self._scheduled = False
        if queue:
            self._schedule()
        elif not self.tasks:
            self._idle.set()

    @staticmethod
    def _report(node: Node, exc: Exception, msg: dict[str, Any]) -> None:
        """node.error, guarded: reporting must not fail the delivery loop either."""
        try:
            node.error(exc, msg)
        except Exception:
            log.exception("could not report an error of node '%s': %s", node.id, exc)

    def _not_running(self, node: Node, msg: dict[str, Any]) -> None:
        if node.state is STARTING:
            node._backlog.append(msg)
        # Closed or never started: the message is dropped, as Node-RED drops sends to a node
        # that no longer exists.

    async def _run_async(self, node: Node, msg: dict[str, Any]) -> None:
        handler = node._async_handler
        assert handler is not None  # routed here only when on_input is async
        started = perf_counter()
        try:
            result = await handler(msg)
        except Exception as exc:
            node.error(exc, msg)
            return
        finally:
            node.handler_seconds += perf_counter() - started
        if result is not None:
            self.emit(node, result, msg)
        if node._complete_nodes and node._auto_complete:
            self.runtime.finish(node, msg)

    async def _finish_awaitable(self, node: Node, awaitable: Any,
                                source_msg: dict[str, Any] | None) -> None:
        try:
            result = await awaitable
        except Exception as exc:
            node.error(exc, source_msg)
            return
        if result is not None:
            self.emit(node, result, source_msg)

    def _spawn(self, coro: Any) -> None:
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("internal error in a message task", exc_info=task.exception())
        if not self.tasks and not self.queue and not self._scheduled:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no delivery is queued and no async handler runs; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


def _single_message(outputs: list[Any] | tuple[Any, ...]) -> tuple[int, dict[str, Any]] | None:
    """(index, message) when exactly one output carries exactly one message dict."""
    found: tuple[int, dict[str, Any]] | None = None
    for index, out in enumerate(outputs):
        if out is None:
            continue
        if found is not None or type(out) is not dict:
            return None
        found = (index, out)
    return found
