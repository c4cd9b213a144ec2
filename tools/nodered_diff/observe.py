"""What the differential test compares, and how.

Both sides record two kinds of observation, keyed by node id: ``receive`` (a message a debug or
complete node received) and ``status`` (a status a node showed). Values are encoded the same way
on both sides (``nodered_driver.js`` does it in JavaScript, :func:`encode` here): bytes as
``{"__buffer__": hex}``, NaN and infinities as ``{"__number__": ...}``, an error object as
``{"__error__": {name, message}}``, ``msg.req`` as ``{"__request__": {...Express fields}}``,
``msg.res`` as ``{"__response__": true}``.

:func:`normalise` then removes what legitimately differs from run to run: message ids (and the
sequence ids derived from them) become labels in order of first appearance, times become
``"<time>"``, websocket session ids become labels, error stacks go. What remains must be equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

#: Keys of ``msg.error`` that only one side has by design (docs/nodered-differences.md).
ERROR_EXTRAS = ("stack", "type")
#: Response headers an http request node reports that come from the HTTP server itself
#: (Express or aiohttp), not from the flow: left out of the comparison.
SERVER_HEADERS = ("connection", "date", "etag", "keep-alive", "server", "x-powered-by",
                  "x-content-type-options", "content-security-policy",
                  "x-node-red-request-node")
_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?$")
_NOW_MS = datetime.now().timestamp() * 1000
_DAY_MS = 86_400_000


@dataclass
class Observations:
    """What one runtime showed for one flow file: per node id, messages and statuses."""

    received: dict[str, list[Any]] = field(default_factory=dict)
    statuses: dict[str, list[Any]] = field(default_factory=dict)

    def receive(self, node_id: str, msg: Any) -> None:
        self.received.setdefault(node_id, []).append(msg)

    def status(self, node_id: str, status: Any) -> None:
        self.statuses.setdefault(node_id, []).append(status)


# -- encoding (flowengine's side) ---------------------------------------------------------------

def encode(value: Any, key: str | None = None, depth: int = 0) -> Any:
    """A flowengine message value as JSON, encoded as nodered_driver.js encodes Node-RED's."""
    if depth > 64:
        return {"__circular__": True}
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value
        return {"__number__": "NaN" if value != value else
                ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__buffer__": bytes(value).hex()}
    if isinstance(value, datetime | date):
        return {"__date__": value.isoformat()}
    if isinstance(value, BaseException):
        return {"__error__": {"name": type(value).__name__, "message": str(value)}}
    if key == "req" and hasattr(value, "raw"):
        return _encode_request(value)
    if key == "res" and hasattr(value, "send"):
        return {"__response__": True}
    if isinstance(value, Mapping):
        return {str(k): encode(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v, None, depth + 1) for v in value]
    if callable(value):
        return {"__function__": True}
    return repr(value)


def _encode_request(req: Any) -> dict[str, Any]:
    headers = {k: v for k, v in req.headers.items() if k == "content-type" or k.startswith("x-")}
    fields = {name: encode(req.get(name)) for name in (
        "method", "url", "originalUrl", "baseUrl", "path", "hostname", "ip", "protocol",
        "params", "query", "body", "cookies")}
    route = req.get("route")
    fields["route"] = route.get("path") if isinstance(route, Mapping) else None
    return {"__request__": {**fields, "headers": headers}}


# -- normalising and comparing ------------------------------------------------------------------

class _Labels:
    """Stable names for values that differ per run (message ids, session ids)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.known: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value not in self.known:
            self.known[value] = f"<{self.prefix}{len(self.known) + 1}>"
        return self.known[value]


def normalise(obs: Observations) -> Observations:
    """``obs`` with run-specific values replaced (see the module docstring)."""
    msgids = _Labels("msg")
    sessions = _Labels("session")
    for node_id in sorted(obs.received):  # ids get labels in a stable order
        for msg in obs.received[node_id]:
            if isinstance(msg, dict):
                msgids(msg.get("_msgid"))
    out = Observations()
    for messages in obs.received.values():
        for msg in messages:
            if isinstance(msg, dict) and "statusCode" in msg and isinstance(msg.get("headers"),
                                                                            dict):
                msg["headers"] = {k: v for k, v in msg["headers"].items()
                                  if k not in SERVER_HEADERS}
    for node_id in sorted(obs.received):
        out.received[node_id] = [_clean(m, msgids, sessions) for m in obs.received[node_id]]
    for node_id in sorted(obs.statuses):
        shown = [_status(s) for s in obs.statuses[node_id]]
        collapsed: list[Any] = []
        for status in shown:
            if (collapsed and collapsed[-1] == status) or (not collapsed and status == {}):
                continue
            collapsed.append(status)
        if collapsed:
            out.statuses[node_id] = collapsed
    return out


def _status(status: Any) -> Any:
    if not isinstance(status, dict):
        return {"text": str(status)}
    # Node-RED clears a status with {} or with empty fill/shape/text: both show nothing.
    return {k: (str(v) if k == "text" else v) for k, v in status.items()
            if k in ("fill", "shape", "text") and v not in ("", None)}


def _clean(value: Any, msgids: _Labels, sessions: _Labels, key: str | None = None) -> Any:
    if isinstance(value, dict):
        result = {}
        for k, v in value.items():
            if key == "error" and k in ERROR_EXTRAS:
                continue
            if k in ("_msgid",) or (key == "parts" and k == "id"):
                result[k] = msgids(v)
            elif key == "_session" and k == "id":
                result[k] = sessions(v)
            elif key == "source" and k == "type" and isinstance(v, str):
                result[k] = v.replace("-", " ")  # flowengine's type names: "http-in"
            elif key == "source" and k == "name" and v == "":
                continue  # Node-RED's debug and template name themselves "" when unnamed
            else:
                result[k] = _clean(v, msgids, sessions, k)
        return result
    if isinstance(value, list):
        return [_clean(v, msgids, sessions) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool) \
            and abs(value - _NOW_MS) < _DAY_MS:
        return "<time>"
    if isinstance(value, str):
        if value in msgids.known:
            return msgids.known[value]
        if _ISO_TIME.match(value):
            return "<time>"
    return value


@dataclass
class Difference:
    """One observation point where the two runtimes disagree."""

    what: str  # "receive" or "status"
    node: str
    nodered: list[Any]
    flowengine: list[Any]

    def describe(self, width: int = 400) -> str:
        first = next((i for i, (a, b) in enumerate(zip(self.nodered, self.flowengine,
                                                        strict=False)) if a != b),
                     min(len(self.nodered), len(self.flowengine)))
        nr = self.nodered[first] if first < len(self.nodered) else "(nothing)"
        fe = self.flowengine[first] if first < len(self.flowengine) else "(nothing)"
        return (f"{self.what} at {self.node}: {len(self.nodered)} vs {len(self.flowengine)} "
                f"entries; #{first + 1} Node-RED: {_short(nr, width)}\n"
                f"{' ' * 8}flowengine: {_short(fe, width)}")


def compare(nodered: Observations, flowengine: Observations) -> list[Difference]:
    """The observation points where the normalised observations differ."""
    a, b = normalise(nodered), normalise(flowengine)
    found: list[Difference] = []
    for what, left, right in (("receive", a.received, b.received),
                              ("status", a.statuses, b.statuses)):
        for node_id in sorted(set(left) | set(right)):
            if left.get(node_id, []) != right.get(node_id, []):
                found.append(Difference(what, node_id, left.get(node_id, []),
                                        right.get(node_id, [])))
    return found


def _short(value: Any, width: int) -> str:
    import json

    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[:width] + "..."
