"""``delay``: delay each message, or limit the message rate (Node-RED's delay node, cases
DL-01..DL-13 of ``docs/reference/nodered-cases.md``).

``pause_type`` picks the mode:

- ``delay``: each message waits ``timeout``; ``delayv``: ``msg.delay`` (milliseconds, as in
  Node-RED) overrides ``timeout``; ``random``: a wait between ``random_first`` and
  ``random_last``. ``msg.reset`` drops every waiting message; ``msg.flush`` sends them now
  (``true``: all, a number: that many, oldest first). A message holding only ``flush`` is a
  command and is not itself delayed.
- ``rate``: at most ``rate`` messages per ``per``. The first message goes at once; the others
  wait in a FIFO queue released one per interval (``toFront: true`` jumps the queue), or with
  ``drop: true`` are dropped (or sent on output 2 with ``outputs: 2``). ``allow_rate`` lets
  ``msg.rate`` (milliseconds between messages) change the interval until a reset.
- ``queue``: one message per interval, taking topics in turn, the newest message of a topic
  replacing an older one still waiting (messages without a topic get ``topic: "_none_"``);
  ``timed``: every interval, the newest message of each topic.
- ``burst``: up to ``rate`` messages per ``per`` pass, the rest are dropped (or go to output 2).

The node finishes (``done``) a message when it sends it, drops it, or a reset clears it, so a
complete node sees the message when it actually leaves (DL-13). Every queue is bounded by
``max_queue``: a message that would exceed it is dropped with a catchable error.
"""

from __future__ import annotations

import asyncio
import math
import random
import textwrap
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from flowengine import ConfigError, Node, NodeError
from flowengine import schema as s
from flowengine.durations import MAX_WAIT
from flowengine.js import parse_float

MODES = ("delay", "delayv", "random", "rate", "queue", "timed", "burst")
DEFAULT_MAX_QUEUE = 10_000
_NO_FLUSH = object()
_STATUS_EVERY = 0.5  # seconds between queue-depth status updates (Node-RED's reportDepth)


def flush_count(flush: Any, available: int) -> int:
    """How many queued messages ``msg.flush`` releases: a number that many (rounded down), any
    other value all of them (Node-RED tests only that ``flush`` is present)."""
    if isinstance(flush, int | float) and not isinstance(flush, bool):
        if math.isnan(flush):
            return 0
        return max(0, min(math.floor(flush), available))
    return available


def has_content(msg: Mapping[str, Any], ignored: tuple[str, ...] = ("_msgid",)) -> bool:
    """True when the message holds more than its id (and the ``ignored`` keys)."""
    return any(key not in ignored for key in msg)


class _Ticker:
    """A repeating timer, as JavaScript's ``setInterval``: each tick is scheduled one interval
    after the previous one ran, so a stalled loop delays ticks but never bunches them up
    (a rate limit stays a limit)."""

    def __init__(self, callback: Callable[[], None]):
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self.interval = 0.0

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(self, interval: float) -> None:
        """(Re)start: the first tick comes one ``interval`` from now."""
        self.stop()
        self.interval = interval
        self._handle = asyncio.get_running_loop().call_later(interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)
        self._callback()  # may stop() the ticker, cancelling the tick just scheduled


class DelayNode(Node):
    type = "delay"
    category = "function"
    auto_done = False
    description = (
        "Delays each message (`pause_type: delay` by `timeout`, `delayv` by msg.delay in ms, "
        "`random` between `random_first` and `random_last`), or limits the rate to `rate` "
        "messages per `per`: `rate` queues (or with `drop: true` drops) the extra messages, "
        "`queue` sends one message per interval taking topics in turn, `timed` sends the "
        "newest message of every topic each interval, `burst` lets `rate` messages per `per` "
        "through. msg.reset clears what waits, msg.flush (true or a count) sends it now, "
        "msg.toFront puts a message at the head of a rate queue. With `outputs: 2` dropped or "
        "replaced messages go to output 2. Queues hold at most `max_queue` messages.")
    example = textwrap.dedent("""\
        throttle:
          type: delay
          pause_type: rate
          rate: 5
          per: 1s
          wires: [api-call]
        """)
    schema = s.obj({
        "pause_type": s.enum(MODES, "delay", "delay | delayv | random | rate | queue | timed "
                             "| burst."),
        "timeout": s.duration("5s", "delay: how long each message waits; delayv: the wait "
                              "when msg.delay (ms) is absent."),
        "random_first": s.duration("1s", "random: the shortest wait."),
        "random_last": s.duration("5s", "random: the longest wait."),
        "rate": s.number(1, "rate, queue, timed, burst: messages per `per`.",
                         exclusiveMinimum=0),
        "per": s.duration("1s", "rate, queue, timed, burst: the period of `rate`."),
        "drop": s.boolean(False, "rate: drop messages that come too fast instead of queueing "
                          "them."),
        "allow_rate": s.boolean(False, "rate, queue, timed: msg.rate (ms between messages) "
                                "overrides the rate until a reset."),
        "outputs": s.integer(1, "2 sends dropped messages (rate with drop, burst) and replaced "
                             "ones (queue, timed) to a second output.", minimum=1, maximum=2),
        "max_queue": s.integer(DEFAULT_MAX_QUEUE, "Most messages waiting at once (0: no "
                               "limit); one more is dropped with a catchable error.", minimum=0),
    })

    @classmethod
    def output_count(cls, config: Mapping[str, Any]) -> int:
        return int(config.get("outputs", 1))

    def configure(self, config: dict[str, Any]) -> None:
        mode = config["pause_type"]
        self.mode = mode
        self.timeout = config["timeout"]
        first = config["random_first"]
        last = config["random_last"]
        if mode == "random" and last < first:
            raise ConfigError("random_last must not be shorter than random_first", "random_last")
        per = config["per"]
        if per <= 0 and mode in ("rate", "queue", "timed", "burst"):
            raise ConfigError("per must be longer than 0", "per")
        #: Seconds between two messages in the rate modes (DL-01: rate 1 per 1h -> 3600).
        self.interval = per / config["rate"]
        self.per = per
        self.burst = config["rate"]
        self.max_queue = config["max_queue"]
        self.allow_rate = config["allow_rate"]
        self.outputs = config["outputs"]
        if self.outputs == 2 and (mode in ("delay", "delayv", "random")
                                  or (mode == "rate" and not config["drop"])):
            raise ConfigError("outputs: 2 is for dropped or replaced messages: pause_type "
                              "burst, queue, timed, or rate with drop: true", "outputs")
        self._status_handle: asyncio.TimerHandle | None = None
        self._policy: _Policy
        if mode == "delay":
            self._policy = _Waits(self, lambda msg: self.timeout)
        elif mode == "delayv":
            self._policy = _Waits(self, self._variable_wait)
        elif mode == "random":
            self._policy = _Waits(self, lambda msg: first + (last - first) * random.random())
        elif mode == "rate":
            self._policy = _Dropper(self) if config["drop"] else _RateQueue(self)
        elif mode == "burst":
            self._policy = _Burst(self)
        else:
            self._policy = _TopicQueue(self, send_all=mode == "timed")

    def _variable_wait(self, msg: dict[str, Any]) -> float:
        delay = parse_float(msg.get("delay"))
        wait = self.timeout if delay is None else delay / 1000
        return min(max(wait, 0.0), MAX_WAIT)

    def on_start(self) -> None:
        self._policy.start()

    def on_input(self, msg: dict[str, Any]) -> None:
        self._policy.on_input(msg)

    def on_close(self, removed: bool) -> None:
        # Waiting messages are dropped without being finished: the flow is going away.
        self._policy.close()
        if self._status_handle is not None:
            self._status_handle.cancel()
            self._status_handle = None

    # -- helpers shared by the modes --------------------------------------------------------

    def emit(self, msg: dict[str, Any], port: int = 0) -> None:
        """Send ``msg`` on ``port`` and finish it."""
        self.send(msg if port == 0 else [None, msg])
        self.done(msg)

    def discard(self, msg: dict[str, Any]) -> None:
        """Drop ``msg`` (to output 2 when there is one) and finish it."""
        if self.outputs == 2:
            self.emit(msg, 1)
        else:
            self.done(msg)

    def full(self, size: int, msg: dict[str, Any]) -> bool:
        """True (after reporting a catchable error on ``msg``) when a queue of ``size`` is
        full."""
        if self.max_queue and size >= self.max_queue:
            self.error(NodeError(f"too many pending messages (max_queue {self.max_queue}): "
                                 "message dropped"), msg)
            return True
        return False

    def msg_rate(self, msg: dict[str, Any]) -> float | None:
        """The interval msg.rate asks for (seconds), when ``allow_rate`` is set."""
        if not self.allow_rate or "rate" not in msg:
            return None
        rate = parse_float(msg["rate"])
        return None if rate is None or rate <= 0 else rate / 1000

    def report_depth(self, depth: Callable[[], int]) -> None:
        """Show the number of waiting messages, at most every half second."""
        if self._status_handle is None:
            def show() -> None:
                self._status_handle = None
                self.status({"fill": "blue", "shape": "dot", "text": str(depth())})
            self._status_handle = asyncio.get_running_loop().call_later(_STATUS_EVERY, show)


class _Policy:
    """One way of holding messages back."""

    def __init__(self, node: DelayNode):
        self.node = node

    def start(self) -> None:
        """The node started."""

    def on_input(self, msg: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Cancel every timer."""


class _Waits(_Policy):
    """delay, delayv, random: each message waits on its own timer."""

    def __init__(self, node: DelayNode, wait: Callable[[dict[str, Any]], float]):
        super().__init__(node)
        self.wait = wait
        # Waiting messages in arrival order (flush releases the oldest first).
        self.pending: dict[int, tuple[asyncio.TimerHandle, dict[str, Any]]] = {}
        self._seq = 0

    def on_input(self, msg: dict[str, Any]) -> None:
        node = self.node
        if "reset" in msg:
            self.clear()
            node.done(msg)
            node.status({"fill": "blue", "shape": "ring", "text": "0"})
            return
        command = set(msg) - {"_msgid"} == {"flush"}
        if not command:
            if node.full(len(self.pending), msg):
                return
            self._seq += 1
            key = self._seq
            handle = asyncio.get_running_loop().call_later(self.wait(msg), self._release, key)
            self.pending[key] = (handle, msg)
        if "flush" in msg:
            for key in list(self.pending)[:flush_count(msg["flush"], len(self.pending))]:
                self.pending[key][0].cancel()
                self._release(key)
            if command:
                node.done(msg)
            self._show_count()
        elif self._counts():
            self._show_count()

    def _counts(self) -> bool:
        # Node-RED shows the number of waiting messages for fixed delays over 1 s (and
        # random ones, when the fixed delay field is 1 s or more) and for variable delays.
        node = self.node
        return node.mode == "delayv" or node.timeout > 1 or (
            node.mode == "random" and node.timeout >= 1)

    def _show_count(self) -> None:
        self.node.status({"fill": "blue", "shape": "dot", "text": str(len(self.pending))})

    def _release(self, key: int) -> None:
        _, msg = self.pending.pop(key)
        if self.node.mode == "delayv" and not self.pending:
            self.node.status({})
        self.node.send(msg)
        if self._counts():
            self._show_count()  # updated on release too, as Node-RED does
        self.node.done(msg)

    def clear(self) -> None:
        pending, self.pending = self.pending, {}
        for handle, msg in pending.values():
            handle.cancel()
            self.node.done(msg)

    def close(self) -> None:
        for handle, _ in self.pending.values():
            handle.cancel()
        self.pending.clear()


class _RateQueue(_Policy):
    """rate without drop: the first message goes at once, the others wait in a FIFO queue
    released one per interval; the interval timer stops when a tick finds the queue empty."""

    def __init__(self, node: DelayNode):
        super().__init__(node)
        self.queue: deque[dict[str, Any]] = deque()
        self.interval = node.interval
        self.ticker = _Ticker(self._tick)

    def on_input(self, msg: dict[str, Any]) -> None:
        node = self.node
        flush = msg.pop("flush", _NO_FLUSH)
        reset = "reset" in msg
        self._apply_rate(msg)
        handled = False  # sent, queued or failed: finished elsewhere
        if has_content(msg):
            if self.ticker.running:
                handled = True
                if node.full(len(self.queue), msg):
                    pass
                elif msg.get("toFront") is True:
                    self.queue.appendleft(msg)
                else:
                    self.queue.append(msg)
            else:
                if not reset:
                    node.emit(msg)
                    handled = True
                elif flush is not _NO_FLUSH:
                    self.queue.append(msg)  # released by the flush below
                    handled = True
                self.ticker.start(self.interval)
        if flush is not _NO_FLUSH:
            count = flush_count(flush, len(self.queue))
            if count == 0:
                self.ticker.stop()
            else:
                for _ in range(count):
                    self._send(self.queue.popleft())
                self.ticker.start(self.interval)
            node.status({"fill": "blue", "shape": "dot", "text": str(len(self.queue))})
        if reset:
            if flush is _NO_FLUSH:
                self.ticker.stop()
            self.clear()
            self.interval = node.interval
            node.status({"fill": "blue", "shape": "ring", "text": "0"})
        if not handled:
            node.done(msg)
        node.report_depth(lambda: len(self.queue))

    def _apply_rate(self, msg: dict[str, Any]) -> None:
        interval = self.node.msg_rate(msg)
        if interval is None or interval == self.interval:
            return
        self.interval = interval
        if self.ticker.running:
            self.ticker.start(interval)

    def _send(self, msg: dict[str, Any]) -> None:
        msg.pop("flush", None)
        msg.pop("reset", None)
        if has_content(msg):
            self.node.emit(msg)
        else:
            self.node.done(msg)

    def _tick(self) -> None:
        if not self.queue:
            self.ticker.stop()
        else:
            self._send(self.queue.popleft())
        self.node.report_depth(lambda: len(self.queue))

    def clear(self) -> None:
        queue, self.queue = self.queue, deque()
        for msg in queue:
            self.node.done(msg)

    def close(self) -> None:
        self.ticker.stop()
        self.queue.clear()


class _Dropper(_Policy):
    """rate with drop: a message passes when the interval since the last one sent is over."""

    def __init__(self, node: DelayNode):
        super().__init__(node)
        self.interval = node.interval
        self.last_sent: float | None = None

    def on_input(self, msg: dict[str, Any]) -> None:
        node = self.node
        if "reset" in msg:
            self.last_sent = None
            self.interval = node.interval
            node.status({"fill": "blue", "shape": "ring", "text": "0"})
            node.done(msg)
            return
        interval = node.msg_rate(msg)
        if interval is not None:
            self.interval = interval
        now = asyncio.get_running_loop().time()
        if self.last_sent is None or now - self.last_sent > self.interval:
            self.last_sent = now
            node.emit(msg)
        else:
            node.discard(msg)


class _Burst(_Policy):
    """burst: each message passed holds one of ``rate`` slots for ``per``."""

    def __init__(self, node: DelayNode):
        super().__init__(node)
        self.timers: set[asyncio.TimerHandle] = set()

    def start(self) -> None:
        self.node.status({"fill": "green", "shape": "ring", "text": ""})

    def on_input(self, msg: dict[str, Any]) -> None:
        node = self.node
        if "reset" in msg:
            self.close()
            node.status({"fill": "green", "shape": "ring", "text": ""})
            node.done(msg)
            return
        if len(self.timers) < node.burst:
            handle: asyncio.TimerHandle | None = None

            def release() -> None:
                self.timers.discard(handle)  # type: ignore[arg-type]
                if len(self.timers) == node.burst - 1:
                    node.status({"fill": "green", "shape": "ring", "text": ""})

            handle = asyncio.get_running_loop().call_later(node.per, release)
            self.timers.add(handle)
            node.emit(msg)
        else:
            node.status({"fill": "red", "shape": "dot", "text": ""})
            node.discard(msg)

    def close(self) -> None:
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()


class _TopicQueue(_Policy):
    """queue / timed: one slot per topic, the newest message of a topic replacing the one that
    waits; each tick sends the oldest slot (queue) or all of them (timed)."""

    def __init__(self, node: DelayNode, send_all: bool):
        super().__init__(node)
        self.send_all = send_all
        self.queue: list[dict[str, Any]] = []
        self.interval = node.interval
        self.ticker = _Ticker(self._tick)

    def start(self) -> None:
        self.ticker.start(self.interval)

    def on_input(self, msg: dict[str, Any]) -> None:
        node = self.node
        interval = node.msg_rate(msg)
        if interval is not None and interval != self.interval:
            self.interval = interval
            self.ticker.start(interval)
        # A message holding only flush/reset is a command, not a message for the "_none_" slot
        # (Node-RED queues it there, dropping a waiting message without a topic).
        command = not has_content(msg, ("_msgid", "flush", "reset"))
        if not command:
            msg.setdefault("topic", "_none_")
            if not self._replace(msg):
                if node.full(len(self.queue), msg):
                    return
                self.queue.append(msg)
            node.report_depth(lambda: len(self.queue))
        if "flush" in msg:
            for _ in range(flush_count(msg["flush"], len(self.queue))):
                queued = self.queue.pop(0)
                queued.pop("flush", None)
                queued.pop("reset", None)
                if has_content(queued, ("_msgid", "topic")):
                    node.emit(queued)
                else:
                    node.done(queued)
            node.status({})
        if "reset" in msg:
            queue, self.queue = self.queue, []
            for queued in queue:
                node.done(queued)
            self.interval = node.interval
            node.status({"text": "reset"})
        if command:
            node.done(msg)

    def _replace(self, msg: dict[str, Any]) -> bool:
        topic = msg["topic"]
        for index, queued in enumerate(self.queue):
            other = queued.get("topic")
            if type(other) is type(topic) and other == topic:  # JavaScript's ===
                self.queue[index] = msg
                self.node.discard(queued)
                return True
        return False

    def _tick(self) -> None:
        if self.send_all:
            queue, self.queue = self.queue, []
            for msg in queue:
                self.node.emit(msg)
        elif self.queue:
            self.node.emit(self.queue.pop(0))
        self.node.report_depth(lambda: len(self.queue))

    def close(self) -> None:
        self.ticker.stop()
        self.queue.clear()
