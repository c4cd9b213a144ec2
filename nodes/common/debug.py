"""``debug``: show a message property, or the whole message, on the console and the admin API,
and optionally in the node's status.

The admin stream gets Node-RED's debug shape (``{id, name, topic, msg, format, property}``,
with long values truncated to ``max_length``); the console gets one readable line per message.
The status follows Node-RED's "show in node status" (``statusType``/``statusVal``): ``auto``
shows what the node shows (an error's message in red, a status message's own status),
``counter`` counts messages, a ``{msg: path}`` or ``{jsonata: ...}`` reference shows that value;
text is cut to 32 characters and values that are not strings are shown as Node.js's
``util.inspect`` shows them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import textwrap
import time
from typing import Any

from flowengine import MISSING, Node, compile_path, compile_value
from flowengine import schema as s
from flowengine.js import inspect
from flowengine.jsonata import Expression

console = logging.getLogger("flowengine.debug")
STATUS_LENGTH = 32  # Node-RED's debugStatusLength
COUNTER_QUIET = 0.1  # seconds: a counter updated faster than this is shown 0.2 s later


class DebugNode(Node):
    type = "debug"
    category = "common"
    outputs = 0
    description = ("Shows msg.payload, another property, or the whole message (`complete: "
                   "true`) on the console and in the admin API's debug stream, and with "
                   "`status` in the node's status.")
    example = textwrap.dedent("""\
        show:
          type: debug
          property: payload.stats
        """)
    schema = s.obj({
        "property": s.path("payload", "The message property to show."),
        "expression": s.string(description="A JSONata expression over the message to show "
                               "instead of `property`."),
        "status": {"anyOf": [{"enum": ["auto", "counter"]},
                             {"type": "object", "minProperties": 1, "maxProperties": 1}],
                   "description": "Show in the node's status: `auto` (what is shown, an "
                   "error's message, a status message's status), `counter` (the number of "
                   "messages), or a value reference such as {msg: topic} or {jsonata: ...}."},
        "complete": s.boolean(False, "Show the whole message instead of one property."),
        "active": s.boolean(True, "When false, show nothing."),
        "console": s.boolean(True, "Print to the console (stderr log)."),
        "max_length": s.integer(1000, "Truncate shown values to this many characters/items.",
                                minimum=1),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._path = None if config["complete"] else compile_path(config["property"], "property")
        self._expression = (Expression(config["expression"]) if config.get("expression")
                            else None)
        status = config.get("status")
        self._status_value = (compile_value(status, "status") if isinstance(status, dict)
                              else None)
        self._shown: dict[str, Any] | None = None
        self._count = 0
        self._counted_at = 0.0
        self._counter_timer: asyncio.TimerHandle | None = None

    def on_start(self) -> None:
        status = self.config.get("status")
        if status is not None:
            self.status({"fill": "grey", "shape": "ring"})
        if status == "counter":
            self.status({"fill": "blue", "shape": "ring", "text": "0"})
        elif status is not None:
            self.status({"fill": "", "shape": "", "text": ""})

    def on_close(self, removed: bool) -> None:
        if self._counter_timer is not None:
            self._counter_timer.cancel()
        if self.config.get("status") is not None:
            self.status({})

    def shown_value(self, msg: dict[str, Any]) -> Any:
        """What the node shows for ``msg``: the whole message, the property or the expression."""
        if self._expression is not None:
            result = self._expression.evaluate(msg, self)
            return MISSING if result is None else result
        return msg if self._path is None else self._path.get(msg)

    def on_input(self, msg: dict[str, Any]) -> None:
        status = msg.get("status")
        if isinstance(status, dict) and isinstance(status.get("source"), dict) \
                and status["source"].get("id") == self.id:
            return  # its own status, come back through a status node
        if self.config.get("status") is not None:
            self._show_status(msg)
        if not self.config["active"]:
            return
        value = self.shown_value(msg)
        text, fmt = describe(value, self.config["max_length"])
        prop = "msg" if self._path is None else self.config["property"]
        event = {"id": self.id, "name": self.name, "flow": self.flow.name, "property": prop,
                 "format": fmt, "msg": text, "msgid": msg.get("_msgid")}
        if "topic" in msg:  # as Node-RED's sidebar shows it
            event["topic"] = describe(msg["topic"], self.config["max_length"])[0]
        self.runtime.events.publish("debug", event)
        if self.config["console"]:
            console.info("%s : %s : %s", self.name, prop, text,
                         extra={"flow": self.flow.name, "node": self.id,
                                "msgid": msg.get("_msgid")})

    def _show_status(self, msg: dict[str, Any]) -> None:
        mode = self.config["status"]
        if mode == "counter":
            self._count += 1
            now = time.monotonic()
            quiet, self._counted_at = now - self._counted_at, now
            if quiet > COUNTER_QUIET:
                self._show_count()
            else:
                if self._counter_timer is not None:
                    self._counter_timer.cancel()
                self._counter_timer = asyncio.get_running_loop().call_later(0.2,
                                                                            self._show_count)
            return
        if mode == "auto":
            value = msg.get("payload", MISSING) if self._path is None and \
                self._expression is None else self.shown_value(msg)
        else:
            value = self._status_value.evaluate(self, msg)  # type: ignore[union-attr]
        text = value if isinstance(value, str) else inspect(value)
        fill, shape = "grey", "dot"
        if isinstance(value, dict) and value.get("fill") and value.get("shape") \
                and value.get("text"):
            fill, shape, text = value["fill"], value["shape"], value["text"]
        if mode == "auto":
            error = msg.get("error", MISSING)
            if error is not MISSING:
                fill = "red"
                text = error.get("message") if isinstance(error, dict) else MISSING
            status = msg.get("status", MISSING)
            if status is not MISSING:
                status = status if isinstance(status, dict) else {}
                fill = status.get("fill") or "grey"
                shape = status.get("shape") or "ring"
                text = status.get("text") or ""
        text = inspect(text) if not isinstance(text, str) else text
        if len(text) > STATUS_LENGTH:
            text = text[:STATUS_LENGTH] + "..."
        shown = {"fill": fill, "shape": shape, "text": text}
        if shown != self._shown:  # only when it changes, as Node-RED does
            self._shown = shown
            self.status(shown)

    def _show_count(self) -> None:
        self._counter_timer = None
        self.status({"fill": "blue", "shape": "ring", "text": str(self._count)})


def describe(value: Any, max_length: int = 1000) -> tuple[str, str]:
    """(text, format) as Node-RED's debug sidebar shows them: ``("test", "string[4]")``."""
    if value is MISSING:
        return "(undefined)", "undefined"
    if value is None:
        return "(undefined)", "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "boolean"
    if isinstance(value, int | float):
        return _number(value), "number"
    if isinstance(value, str):
        text = value if len(value) <= max_length else value[:max_length] + "..."
        return text, f"string[{len(value)}]"
    if isinstance(value, bytes | bytearray):
        return bytes(value[:max_length]).hex(), f"buffer[{len(value)}]"
    if isinstance(value, BaseException):
        data = {"name": type(value).__name__, "message": str(value)}
        return _json({"__enc__": True, "type": "error", "data": data}), "error"
    if isinstance(value, list | tuple):
        if len(value) > max_length:
            data = {"__enc__": True, "type": "array", "data": list(value[:max_length]),
                    "length": len(value)}
            return _json(data), f"array[{len(value)}]"
        return _json(value), f"array[{len(value)}]"
    if isinstance(value, dict):
        return _json(value), "Object"
    return repr(value), type(value).__name__


def _number(value: float) -> str:
    """A number as JavaScript prints it: ``7``, ``1.5``, ``NaN``, ``Infinity``."""
    if value != value:
        return "NaN"
    if isinstance(value, float):
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer():
            return str(int(value))
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=repr, ensure_ascii=False)
