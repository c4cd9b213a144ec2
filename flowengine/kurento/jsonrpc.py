"""Sans-I/O JSON-RPC 2.0 layer of the Kurento protocol
(docs/reference/kurento-protocol.md sections 2, 3, 5, 6.1).

Shared by the client (:mod:`flowengine.kurento.client`) and the media server
(:mod:`flowengine.media`). Nothing here touches a socket: functions take and return frames
(``str``; incoming ``bytes`` are accepted because the npm client stack sends binary frames) and
plain Python objects.

Messages
    :class:`Request` (has an ``id``), :class:`Notification` (no ``id``: the server's ``onEvent``),
    :class:`Response` (``result`` or ``error``). ``encode()`` on each gives one text frame with the
    keys sorted, as KMS (jsoncpp) writes them.

Server side
    :func:`parse_request` validates an incoming frame as KMS does and returns a Request or a
    Notification, or raises :class:`InvalidFrame` carrying the error response to send back.

Client side
    :class:`ClientSession` allocates request ids (integers from 0, never reused, across
    reconnections: section 3's request cache), remembers the ``sessionId`` from results (not from
    ``pong``) and adds it to outgoing params. :func:`parse_incoming` validates a server frame as
    kurento-jsonrpc does and returns a Response or a Notification (``None`` for frames a client
    must drop). :func:`parse_event` turns an ``onEvent`` notification into an :class:`Event`.

Values
    :func:`complex_value` tags a complex type with ``__module__``/``__type__``;
    :func:`strip_type_tags` removes them from incoming values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flowengine.kurento.errors import (
    INVALID_REQUEST,
    JSONRPC_MESSAGES,
    PARSE_ERROR,
    SERVER_ERROR,
    KurentoError,
)

JSONRPC_VERSION = "2.0"
RequestId = int | str | float | bool | None
"""A request id as found on the wire: KMS echoes numbers and strings unchanged."""

ONEVENT = "onEvent"
"""The only notification a Kurento server sends."""

PONG = "pong"


def _dumps(obj: Any) -> str:
    # sort_keys: KMS (jsoncpp) writes keys in alphabetical order; clients must not depend on it,
    # but matching it makes captured frames comparable.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- message types --------------------------------------------------------------------------------


@dataclass
class Request:
    """A JSON-RPC request. ``params`` is ``None`` when absent (or ``null``) on the wire."""

    id: RequestId
    method: str
    params: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "id": self.id, "method": self.method}
        if self.params is not None:  # the JS client omits null params; so do we
            obj["params"] = self.params
        return obj

    def encode(self) -> str:
        """One text frame."""
        return _dumps(self.to_dict())


@dataclass
class Notification:
    """A JSON-RPC notification (no id). From a server: ``onEvent``."""

    method: str
    params: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "method": self.method}
        if self.params is not None:
            obj["params"] = self.params
        return obj

    def encode(self) -> str:
        return _dumps(self.to_dict())


@dataclass
class Response:
    """A JSON-RPC response: exactly one of ``result`` (any JSON, ``null`` included) or ``error``.

    ``error`` is a :class:`KurentoError`; ``is_error`` tells the two cases apart (``result`` may
    legitimately be ``None``, as for ``closeSession``).
    """

    id: RequestId
    result: Any = None
    error: KurentoError | None = None

    @property
    def is_error(self) -> bool:
        return self.error is not None

    @property
    def session_id(self) -> str | None:
        """``result.sessionId`` when the result is an object that has one."""
        if isinstance(self.result, dict):
            sid = self.result.get("sessionId")
            return sid if isinstance(sid, str) else None
        return None

    @property
    def value(self) -> Any:
        """``result.value`` (``None`` when absent: void methods)."""
        return self.result.get("value") if isinstance(self.result, dict) else None

    def to_dict(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "id": self.id}
        if self.error is not None:
            obj["error"] = self.error.to_error_object()
        else:
            obj["result"] = self.result
        return obj

    def encode(self) -> str:
        return _dumps(self.to_dict())


def error_response(request_id: RequestId, error: KurentoError) -> Response:
    """An error response (never carries a sessionId: section 2)."""
    return Response(request_id, error=error)


# --- server side: validating incoming requests ----------------------------------------------------


class InvalidFrame(Exception):
    """An incoming frame that cannot be executed. ``response`` is the error frame to send back."""

    def __init__(self, response: Response):
        super().__init__(response.error.message if response.error else "invalid frame")
        self.response = response


MAX_DEPTH = 100
"""Deepest nesting of arrays and objects accepted in a frame (Kurento's messages nest a few
levels); deeper JSON is refused as a parse error, as KMS's parser (jsoncpp) refuses what is
deeper than its stack limit."""


def _decode_json(frame: str | bytes) -> Any:
    """Parse a frame; ValueError for bad JSON, bad UTF-8 or JSON nested deeper than
    :data:`MAX_DEPTH` (the parser's own recursion limit included)."""
    if isinstance(frame, bytes | bytearray | memoryview):
        frame = bytes(frame).decode("utf-8")
    try:
        value = json.loads(frame)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if nesting_depth(value) > MAX_DEPTH:
        raise ValueError("JSON nested too deeply")
    return value


def nesting_depth(value: Any) -> int:
    """How deep arrays and objects nest in a parsed JSON value (a scalar is 0), found without
    recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return deepest


def parse_request(frame: str | bytes) -> Request | Notification:
    """Validate one client frame the way KMS's ``JsonRpcHandler`` does.

    Returns a :class:`Request` (``id`` present, possibly ``null`` or ``0``) or a
    :class:`Notification` (no ``id`` member). ``params: null`` becomes ``None``.

    Raises :class:`InvalidFrame` with the response to send (always with ``"id": null``):
    -32700 ``Parse error.`` for bad JSON (or bad UTF-8, or nesting deeper than
    :data:`MAX_DEPTH`); -32600 ``Invalid JSON-RPC request.`` for
    a non-object (a batch array included: Kurento has no batches), a ``jsonrpc`` other than
    ``"2.0"``, an array or object id, a missing or non-string method, or params that are
    neither an object nor ``null``.
    """
    try:
        obj = _decode_json(frame)
    except (ValueError, UnicodeDecodeError):
        raise _invalid(PARSE_ERROR) from None
    if not isinstance(obj, dict) or obj.get("jsonrpc") != JSONRPC_VERSION:
        raise _invalid(INVALID_REQUEST)
    if "id" in obj and isinstance(obj["id"], list | dict):
        raise _invalid(INVALID_REQUEST)
    method = obj.get("method")
    if not isinstance(method, str):
        raise _invalid(INVALID_REQUEST)
    params = obj.get("params")
    if params is not None and not isinstance(params, dict):
        raise _invalid(INVALID_REQUEST)
    if "id" not in obj:
        return Notification(method, params)
    return Request(obj["id"], method, params)


def _invalid(code: int) -> InvalidFrame:
    return InvalidFrame(error_response(None, KurentoError(code, JSONRPC_MESSAGES[code])))


def notification_not_allowed() -> Response:
    """What KMS answers to a request without id (it runs it, then cannot reply): -32000, id null."""
    return error_response(
        None, KurentoError(SERVER_ERROR, "Ignoring response because of a notification request")
    )


# --- client side: validating incoming frames ------------------------------------------------------


def parse_incoming(frame: str | bytes) -> Response | Notification | Request | None:
    """Parse one server frame the way kurento-jsonrpc does.

    Returns a :class:`Response` (``id`` plus exactly one of ``result``/``error``), a
    :class:`Notification` (``method`` and no ``id``: ``onEvent``), a :class:`Request` (a server
    request with an ``id``: Kurento servers send none, callers may ignore it), or ``None`` for
    frames kurento-jsonrpc drops silently: invalid JSON, not an object, no ``"jsonrpc":"2.0"``,
    both or neither of ``result`` and ``error``.
    """
    try:
        obj = _decode_json(frame)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("jsonrpc") != JSONRPC_VERSION:
        return None
    method = obj.get("method")
    if isinstance(method, str):
        params = obj.get("params")
        params = params if isinstance(params, dict) else None
        if "id" in obj:
            return Request(obj["id"], method, params)
        return Notification(method, params)
    has_result, has_error = "result" in obj, "error" in obj
    if has_result == has_error:
        return None
    if has_error:
        return Response(obj.get("id"), error=KurentoError.from_error_object(obj["error"]))
    return Response(obj.get("id"), result=obj["result"])


@dataclass
class ClientSession:
    """Client-side protocol state: request ids and the Kurento session id. No I/O.

    Invariants: ``next_id`` only grows (ids are never reused within the lifetime of this object,
    reconnections included, because KMS answers a repeated ``(sessionId, id)`` from its 20 s
    cache without executing it); ``session_id`` is the last ``result.sessionId`` seen on a
    non-``pong`` result (the JS client's rule), and is kept when a ``connect`` fails with 40007.
    """

    next_id: int = 0
    session_id: str | None = None

    def request(self, method: str, params: dict[str, Any] | None = None) -> Request:
        """Build the next request. ``sessionId`` is added to params when known and not given,
        except for ``ping`` without params (as the JS client sends it)."""
        request_id = self.next_id
        self.next_id += 1
        if params is not None:
            params = dict(params)
            if self.session_id is not None and method != "ping":
                params.setdefault("sessionId", self.session_id)
        return Request(request_id, method, params)

    def observe(self, response: Response) -> None:
        """Update ``session_id`` from a successful response (call on every response)."""
        if response.is_error:
            return
        if isinstance(response.result, dict) and response.result.get("value") == PONG:
            return
        sid = response.session_id
        if sid is not None:
            self.session_id = sid


# --- events ---------------------------------------------------------------------------------------


@dataclass
class Event:
    """One ``onEvent``: the object it fired on, the event name and its data (tags stripped of
    nothing: ``data`` is what the server sent, with ``source``, ``timestampMillis``, ``tags``,
    ``type`` and the event's own fields)."""

    object: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_notification(self) -> Notification:
        return Notification(
            ONEVENT, {"value": {"data": self.data, "object": self.object, "type": self.type}}
        )


def parse_event(notification: Notification) -> Event | None:
    """The :class:`Event` in an ``onEvent`` notification, or ``None`` if it is not one (or lacks
    ``params.value.object``/``type``, which kurento-client needs to dispatch)."""
    if notification.method != ONEVENT or not isinstance(notification.params, dict):
        return None
    value = notification.params.get("value")
    if not isinstance(value, dict):
        return None
    obj, kind, data = value.get("object"), value.get("type"), value.get("data")
    if not isinstance(obj, str) or not isinstance(kind, str):
        return None
    return Event(obj, kind, data if isinstance(data, dict) else {})


def event_notification(
    object_id: str,
    event_type: str,
    fields: dict[str, Any] | None = None,
    *,
    source: str | None = None,
    timestamp_millis: int,
    tags: list[dict[str, str]] | None = None,
) -> Notification:
    """Build the ``onEvent`` KMS sends (section 4.6): ``data`` has ``source``,
    ``timestampMillis`` as a **string**, ``tags`` (``[]`` unless sendTagsInEvents), ``type``
    (the event name, overridden by the ``Error`` event's own ``type`` field) and the fields."""
    data: dict[str, Any] = {
        "source": source if source is not None else object_id,
        "tags": list(tags or []),
        "timestampMillis": str(timestamp_millis),
        "type": event_type,
    }
    data.update(fields or {})
    return Event(object_id, event_type, data).to_notification()


# --- complex values -------------------------------------------------------------------------------

TYPE_TAGS = ("__module__", "__type__")


def complex_value(type_name: str, fields: dict[str, Any], module: str = "kurento") -> dict:
    """A complex type as KMS sends it: the fields plus ``__module__`` and ``__type__``."""
    return {"__module__": module, "__type__": type_name, **fields}


def strip_type_tags(value: Any) -> Any:
    """``value`` with every ``__module__``/``__type__`` key removed, recursively."""
    if isinstance(value, dict):
        return {k: strip_type_tags(v) for k, v in value.items() if k not in TYPE_TAGS}
    if isinstance(value, list):
        return [strip_type_tags(v) for v in value]
    return value
