"""``debug``: show a message property, or the whole message, on the console and the admin API.

The admin stream gets Node-RED's debug shape (``{id, name, topic, msg, format, property}``, with
long values truncated to ``max_length``); the console gets one readable line per message.
"""

from __future__ import annotations

import json
import logging
import math
import textwrap
from typing import Any

from flowengine import Node, compile_path
from flowengine import schema as s
from flowengine.paths import MISSING

console = logging.getLogger("flowengine.debug")


class DebugNode(Node):
    type = "debug"
    category = "common"
    outputs = 0
    description = ("Shows msg.payload, another property, or the whole message (`complete: "
                   "true`) on the console and in the admin API's debug stream.")
    example = textwrap.dedent("""\
        show:
          type: debug
          property: payload.stats
        """)
    schema = s.obj({
        "property": s.path("payload", "The message property to show."),
        "complete": s.boolean(False, "Show the whole message instead of one property."),
        "active": s.boolean(True, "When false, show nothing."),
        "console": s.boolean(True, "Print to the console (stderr log)."),
        "max_length": s.integer(1000, "Truncate shown values to this many characters/items.",
                                minimum=1),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._path = None if config["complete"] else compile_path(config["property"], "property")

    def on_input(self, msg: dict[str, Any]) -> None:
        if not self.config["active"]:
            return
        value = msg if self._path is None else self._path.get(msg)
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
