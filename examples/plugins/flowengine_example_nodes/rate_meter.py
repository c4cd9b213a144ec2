"""``rate-meter``: count the messages of each time window and report the rate.

A complete custom node type: a schema with defaults (validation, defaults and the docs all come
from it), a load-time check that JSON Schema cannot express (``configure`` raising
``ConfigError``), a timer started in ``on_start`` and stopped in ``on_close``, a status, and
messages sent from the timer with ``send``. It imports only the public API, so this module also
works when loaded from a folder with ``flowrun --nodes DIR``.
"""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

from flowengine import ConfigError, Node
from flowengine import schema as s

#: The longest window: one day. Longer ones are almost certainly a unit mistake (``60h``).
MAX_WINDOW = 24 * 3600.0


class RateMeter(Node):
    """Counts incoming messages per window; sends ``{payload: {count, rate_per_s}}`` at the end
    of every window."""

    type = "rate-meter"
    category = "metrics"
    description = ("Counts the messages it receives in each `window` and, at the end of every "
                   "window, sends {payload: {count, rate_per_s}} (and `topic` if set). The "
                   "incoming messages go no further. Its status shows the last rate. With "
                   "`skip_idle: true` a window without messages sends nothing.")
    example = textwrap.dedent("""\
        requests-rate:
          type: rate-meter
          window: 10s
          topic: requests
          wires: [show-rate]
        """)
    schema = s.obj({
        "window": s.duration("1s", "Length of one counting window (at most 24h); a message "
                             "is sent at the end of each."),
        "topic": s.string(description="msg.topic of the messages sent (omitted if not set)."),
        "skip_idle": s.boolean(False, "Send nothing for a window without messages."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        # The schema already checked the form ("5s", 2.5); the range is checked here.
        self._window = config["window"]
        if not 0 < self._window <= MAX_WINDOW:
            raise ConfigError(f"window must be more than 0 and at most 24h, "
                              f"got {self._window:g}s", "window")
        self._count = 0
        self._timer: asyncio.Task[None] | None = None

    def on_start(self) -> None:
        self._timer = asyncio.get_running_loop().create_task(self._every_window())

    def on_input(self, msg: dict[str, Any]) -> None:
        self._count += 1  # returning None: nothing is sent for the message itself

    def on_close(self, removed: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _every_window(self) -> None:
        # Windows follow a fixed grid, so time spent sending does not make them drift.
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self._window
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += self._window
            self._report()

    def _report(self) -> None:
        count, self._count = self._count, 0
        rate = round(count / self._window, 3)
        self.status({"fill": "green" if count else "grey", "shape": "dot",
                     "text": f"{rate:g}/s"})
        if count == 0 and self.config["skip_idle"]:
            return
        msg: dict[str, Any] = {"payload": {"count": count, "rate_per_s": rate}}
        if "topic" in self.config:
            msg["topic"] = self.config["topic"]
        self.send(msg)
