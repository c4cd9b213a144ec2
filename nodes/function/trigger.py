"""``trigger``: send a message, wait, then send a second one (Node-RED's trigger node, cases
TR-01..TR-13 of ``docs/reference/nodered-cases.md``).

A message arriving while the node is idle triggers it: ``op1`` is sent at once, and ``op2``
after ``duration``, as a copy of the triggering message with the new payload. Messages arriving
while it waits are ignored, or with ``extend: true`` restart the wait. ``duration: 0`` waits
until a reset; ``repeat: true`` resends ``op1`` every ``duration`` until a reset. Any message
with a ``reset`` property, or whose payload equals ``reset`` (compared as text, as Node-RED
does), stops the wait without sending. With ``by_topic: topic`` each value of
``msg[topic_property]`` has its own trigger.

``op1`` and ``op2`` take every value kind (literals, ``{msg: path}``, ``{flow: key}``,
``{env: NAME}``, ``{jsonata: ...}``...), a string with ``{{...}}`` is a mustache template over
the message, and three forms are special:

- ``{payload: original}``: the triggering message's payload (op1: the message unchanged);
- ``{payload: latest}`` (op2 only): the newest message received while waiting, sent as it is;
- ``{nothing: true}``: send nothing at that step.

(Write ``{literal: {payload: original}}`` to send that object itself.) ``op2`` is evaluated when
the node triggers, except flow and global references, read when the wait ends.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowengine import (
    MISSING,
    ConfigError,
    Node,
    Value,
    clone_message,
    compile_path,
    compile_value,
)
from flowengine import schema as s
from flowengine.durations import MAX_WAIT
from flowengine.js import parse_float, to_string
from flowengine.mustache import Mustache

_NONE = "_none"


class _Special:
    """A special op value: ``{payload: original}``, ``{payload: latest}``, ``{nothing: true}``."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


ORIGINAL = _Special("original payload")
LATEST = _Special("latest message")
NOTHING = _Special("nothing")

Op = Value | Mustache | _Special


def compile_op(spec: Any, field: str) -> Op:
    """Compile an ``op1``/``op2`` value (see the module docstring)."""
    if spec == {"payload": "original"}:
        return ORIGINAL
    if spec == {"payload": "latest"}:
        if field == "op1":
            raise ConfigError("{payload: latest} is only for op2", field)
        return LATEST
    if spec == {"nothing": True}:
        return NOTHING
    if isinstance(spec, str) and "{{" in spec:
        try:
            return Mustache(spec)
        except ValueError as exc:
            raise ConfigError(str(exc), field) from None
    return compile_value(spec, field)


@dataclass
class _Armed:
    """One trigger that fired and is waiting (per topic with ``by_topic: topic``)."""

    msg: dict[str, Any]  # what the second message is a copy of
    second: Any = None  # op2's value, when evaluated at trigger time
    latest: dict[str, Any] | None = None  # {payload: latest}: the newest message
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class TriggerNode(Node):
    type = "trigger"
    category = "function"
    description = (
        "Sends `op1` when a message arrives, then `op2` after `duration` (0: wait for a "
        "reset); messages meanwhile are ignored, or restart the wait with `extend: true`. "
        "`repeat: true` resends op1 every `duration` until a reset. A message with a `reset` "
        "property, or whose payload equals `reset`, stops it. op1/op2 are values "
        "(literals or references; a string with {{...}} is a mustache template), or "
        "{payload: original} (the triggering payload), {payload: latest} (op2: the newest "
        "message received while waiting) or {nothing: true}. `by_topic: topic` keeps one "
        "trigger per msg[topic_property]; `outputs: 2` sends op2 on a second output.")
    example = textwrap.dedent("""\
        watchdog:
          type: trigger
          op1: {nothing: true}
          op2: {alarm: "no heartbeat for 30s"}
          duration: 30s
          extend: true
          wires: [alert]
        """)
    schema = s.obj({
        "op1": s.value("1", "Sent at once (a value, or {payload: original} / "
                       "{nothing: true})."),
        "op2": s.value("0", "Sent after the wait (a value, or {payload: original} / "
                       "{payload: latest} / {nothing: true})."),
        "duration": s.duration("250ms", "The wait; 0 waits until a reset. With `repeat`, the "
                               "resend interval."),
        "repeat": s.boolean(False, "Resend op1 every `duration` until a reset (no op2)."),
        "extend": s.boolean(False, "A message arriving while waiting restarts the wait."),
        "override_delay": s.boolean(False, "msg.delay (milliseconds) replaces `duration` for "
                                    "the trigger it starts."),
        "reset": {"type": ["string", "number", "boolean"],
                  "description": "A payload equal to this (compared as text) resets the node, "
                                 "as a message with a `reset` property does."},
        "by_topic": s.enum(["all", "topic"], "all", "`topic`: one trigger per value of "
                           "msg[topic_property]; `all`: a single trigger."),
        "topic_property": s.path("topic", "The message property that tells topics apart."),
        "outputs": s.integer(1, "2 sends op2 on a second output.", minimum=1, maximum=2),
    })

    @classmethod
    def output_count(cls, config: Mapping[str, Any]) -> int:
        return int(config.get("outputs", 1))

    def configure(self, config: dict[str, Any]) -> None:
        self.op1 = compile_op(config["op1"], "op1")
        self.op2 = compile_op(config["op2"], "op2")
        #: The wait in seconds (TR-01: 250ms by default).
        self.duration = config["duration"]
        self.repeat = config["repeat"]
        if self.repeat and self.duration == 0:
            raise ConfigError("repeat needs a duration longer than 0", "duration")
        self.extend = config["extend"] and not self.repeat
        self._reset = to_string(config["reset"]) if "reset" in config else None
        self._topic = (compile_path(config["topic_property"], "topic_property")
                       if config["by_topic"] == "topic" else None)
        self._op2_port = config["outputs"] - 1
        self._armed: dict[str, _Armed] = {}

    def on_close(self, removed: bool) -> None:
        for armed in self._armed.values():
            armed.cancel()
        self._armed.clear()

    def on_input(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        key = self._key(msg)
        if self._is_reset(msg):
            armed = self._armed.pop(key, None)
            if armed is not None:
                armed.cancel()
            self._show_count()
            return None
        duration = self.duration
        if self.config["override_delay"]:
            delay = parse_float(msg.get("delay"))
            if delay is not None:
                duration = min(max(delay, 0) / 1000, MAX_WAIT)
        armed = self._armed.get(key)
        if armed is None or self.repeat:
            return self._fire(key, msg, duration)
        if self.op2 is LATEST:
            armed.latest = clone_message(msg)
        if self.extend and duration > 0:
            armed.cancel()
            armed.msg = msg  # Node-RED: the second message is a copy of the extending one
            armed.timer = self._later(duration, key)
        return None

    def _key(self, msg: dict[str, Any]) -> str:
        if self._topic is None:
            return _NONE
        value = self._topic.get(msg)
        if value in (None, MISSING, "", 0, False) or value != value:  # JavaScript falsy -> _none
            return _NONE
        return to_string(value)

    def _is_reset(self, msg: dict[str, Any]) -> bool:
        if "reset" in msg:
            return True
        if self._reset is None:
            return False
        payload = msg.get("payload", MISSING)
        return (payload is not None and payload is not MISSING
                and to_string(payload) == self._reset)

    def _fire(self, key: str, msg: dict[str, Any], duration: float) -> dict[str, Any] | None:
        """Trigger: evaluate the values, send op1, arm the second step."""
        second: Any = None
        if self.op2 is ORIGINAL:
            second = clone_message(msg.get("payload", MISSING))
        elif not (isinstance(self.op2, _Special) or _read_at_end(self.op2)):
            second = self._evaluate(self.op2, msg)
        latest = clone_message(msg) if self.op2 is LATEST else None
        if self.op1 is not NOTHING and self.op1 is not ORIGINAL:
            value = self._evaluate(self.op1, msg)
            if value is MISSING:
                msg.pop("payload", None)
            else:
                msg["payload"] = value
        previous = self._armed.pop(key, None)
        if previous is not None:
            previous.cancel()  # repeat: a new message replaces the one being repeated
        armed = _Armed(msg, second, latest)
        if self.repeat:
            if self.op1 is not NOTHING:
                armed.timer = self._later(duration, key, repeat=clone_message(msg))
        elif duration > 0:
            armed.timer = self._later(duration, key)
        self._armed[key] = armed  # duration 0: armed until a reset
        self._show_count()
        return None if self.op1 is NOTHING else clone_message(msg)

    def _show_count(self) -> None:
        """Node-RED's status: nothing when idle, a blue dot for one armed topic, the number of
        armed topics when there are several."""
        armed = len(self._armed)
        self.status({} if armed == 0 else {"fill": "blue", "shape": "dot"} if armed == 1
                    else {"fill": "blue", "shape": "dot", "text": str(armed)})

    def _evaluate(self, op: Op, msg: dict[str, Any]) -> Any:
        if isinstance(op, Mustache):
            return op.render(msg, self)
        return op.evaluate(self, msg)  # type: ignore[union-attr]

    def _later(self, delay: float, key: str, repeat: dict[str, Any] | None = None
               ) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        if repeat is not None:
            return loop.call_later(delay, self._resend, key, repeat, delay)
        return loop.call_later(delay, self._expire, key)

    def _resend(self, key: str, msg: dict[str, Any], interval: float) -> None:
        armed = self._armed.get(key)
        if armed is None:
            return
        armed.timer = self._later(interval, key, repeat=msg)
        self.send(clone_message(msg))  # a fresh copy each time (TR-12)

    def _expire(self, key: str) -> None:
        armed = self._armed.pop(key, None)
        if armed is None:
            return
        self._show_count()
        if self.op2 is NOTHING:
            return
        if self.op2 is LATEST:
            out = armed.latest
        else:
            out = clone_message(armed.msg)
            try:
                value = self._evaluate(self.op2, out) if _read_at_end(self.op2) else armed.second
            except Exception as exc:  # a failing reference is the message's error
                self.error(exc, out)
                return
            if value is MISSING:
                out.pop("payload", None)
            else:
                out["payload"] = value
        self.send(out if self._op2_port == 0 else [None, out])


def _read_at_end(op: Op) -> bool:
    """Flow and global values are read when the wait ends (Node-RED re-reads them then)."""
    return isinstance(op, Value) and op.kind in ("flow", "global")
