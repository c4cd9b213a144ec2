"""``inject``: start a flow once, on a repeat interval or on a cron schedule (Node-RED's inject).

``payload``, ``topic`` and ``props`` take every value kind (literals and references, see
docs/flow-format.md), evaluated in order for each message, so a JSONata value sees the message being
built. ``props`` given as a list of one-key maps is the whole message, in Node-RED's ``props``
order (``payload`` and ``topic`` only where the list names them). The admin API (and tests)
trigger the node with :meth:`InjectNode.inject`. As Node-RED's inject does ``send(msg);
done()``, complete nodes watching an inject receive each message it sends.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from datetime import datetime
from typing import Any

from croniter import croniter

from flowengine import (
    MISSING,
    ConfigError,
    Node,
    compile_path,
    compile_value,
    new_msgid,
)
from flowengine import schema as s

MAX_REPEAT = 2147483  # seconds; Node-RED refuses longer intervals (inject.errors.toolong)


class InjectNode(Node):
    type = "inject"
    category = "common"
    inputs = 0
    is_source = True
    description = ("Sends a message when the flow starts (once), every `repeat` interval, on a "
                   "`cron` schedule, or when triggered from the admin API. The message gets "
                   "`payload` (default: the time in ms), `topic` and any `props`; each may be "
                   "a literal or a value reference such as {env: NAME} or {jsonata: ...}.")
    example = textwrap.dedent("""\
        every-5s:
          type: inject
          payload: {date: now}
          topic: stats
          props: {round: {flow: round}}
          repeat: 5s
          once: true
          wires: [collect]
        """)
    schema = s.obj({
        "payload": s.value({"date": "now"}, "Value of msg.payload."),
        "topic": s.value(description="Value of msg.topic (omitted when not given)."),
        "props": {"anyOf": [
            {"type": "object", "additionalProperties": True},
            {"type": "array", "items": {"type": "object", "minProperties": 1,
                                        "maxProperties": 1}}],
                  "description": "More message properties: path -> value, evaluated in order "
                  "after payload and topic. As a list of one-key maps ([{topic: a}, {payload: "
                  "{jsonata: topic}}]) it is the whole message in that order: `payload` and "
                  "`topic` are then not used, so a list without payload sends no payload."},
        "once": s.boolean(False, "Send once after the flow starts."),
        "once_delay": s.duration(0.1, "Delay of the first message when `once` is set."),
        "repeat": s.duration(description="Send every interval (e.g. 5s)."),
        "cron": s.string(description="Cron schedule: 5 fields, or 6 with seconds first "
                         "(Node-RED's form)."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        # (path, value, field name for errors), evaluated in this order for each message.
        listed = config.get("props")
        props: list[tuple[str, Any, str]] = []
        if isinstance(listed, list):
            props.extend((path, value, f"props[{i}].{path}")
                         for i, entry in enumerate(listed) for path, value in entry.items())
        else:
            props.append(("payload", config["payload"], "payload"))
            if "topic" in config:
                props.append(("topic", config["topic"], "topic"))
            props.extend((path, value, f"props.{path}")
                         for path, value in (listed or {}).items())
        self._props = [(compile_path(path, field), compile_value(value, field))
                       for path, value, field in props]
        self._repeat = config.get("repeat") or None
        if self._repeat is not None and (self._repeat <= 0 or self._repeat > MAX_REPEAT):
            raise ConfigError(f"repeat must be between 0 and {MAX_REPEAT} seconds", "repeat")
        self._cron = config.get("cron")
        if self._cron:
            fields = self._cron.split()
            if len(fields) not in (5, 6) or not croniter.is_valid(
                    self._cron, second_at_beginning=len(fields) == 6):
                raise ConfigError(f"invalid cron schedule {self._cron!r}", "cron")
        self._tasks: list[asyncio.Task[None]] = []

    def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.config["once"]:
            self._tasks.append(loop.create_task(self._once()))
        elif self._repeat:
            self._tasks.append(loop.create_task(self._every(self._repeat)))
        if self._cron:
            self._tasks.append(loop.create_task(self._on_schedule()))

    def on_close(self, removed: bool) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def inject(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one message now; ``overrides`` (path -> value reference) replaces the configured
        properties entirely, as Node-RED's ``__user_inject_props__`` does."""
        msg: dict[str, Any] = {"_msgid": new_msgid()}
        props = self._props
        if overrides is not None:
            props = [(compile_path(p), compile_value(v)) for p, v in overrides.items()]
        try:
            for path, value in props:
                result = value.evaluate(self, msg)
                if result is not MISSING:
                    path.set(msg, result)
        except Exception as exc:
            self.done(msg, exc)
            return msg
        self.send(msg)
        self.done(msg)
        return msg

    async def _once(self) -> None:
        await asyncio.sleep(self.config["once_delay"])
        self.inject()
        if self._repeat:
            await self._every(self._repeat)

    async def _every(self, interval: float) -> None:
        # Fire on a fixed grid, so a slow consumer does not make the schedule drift.
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            self.inject()
            next_at += interval

    async def _on_schedule(self) -> None:
        six = len(self._cron.split()) == 6
        schedule = croniter(self._cron, datetime.now().astimezone(), second_at_beginning=six)
        while True:
            await asyncio.sleep(max(0.0, schedule.get_next(float) - time.time()))
            self.inject()
