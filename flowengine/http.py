"""Public API: the HTTP pieces that http-in, http-request and http-response share.

- :class:`HttpResponseHandle` is ``msg["res"]`` of an http-in message: the request's one answer;
- :func:`headers_dict` gives received headers (a request's or an answer's) as Node.js does;
- Node-RED marks the headers of an http-request answer (:data:`REQUEST_NODE_HEADER`,
  :func:`mark_response_headers`) so that, copied unchanged into a later request or an
  http-response (:func:`unmodified_response_headers`), they are not sent back out
  (content-length, content-encoding...).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from aiohttp import web
from multidict import MultiMapping

REQUEST_NODE_HEADER = "x-node-red-request-node"


def headers_dict(headers: MultiMapping[str]) -> dict[str, Any]:
    """Headers as Node.js's ``req.headers``: lower-case names, repeats joined with ``, ``
    except ``set-cookie``, which is always a list."""
    result: dict[str, Any] = {}
    for name, value in headers.items():
        key = name.lower()
        if key == "set-cookie":
            result.setdefault(key, []).append(value)
        elif key in result:
            result[key] = f"{result[key]}, {value}"
        else:
            result[key] = value
    return result


def mark_response_headers(headers: dict[str, Any]) -> None:
    """Mark an http-request answer's ``msg.headers`` (Node-RED's ``x-node-red-request-node``)."""
    headers[REQUEST_NODE_HEADER] = _headers_hash(headers)


def unmodified_response_headers(headers: dict[str, Any]) -> bool:
    """True when ``headers`` are an http-request answer's ``msg.headers``, unchanged (HR-09 in
    docs/reference/nodered-cases.md)."""
    mark = headers.get(REQUEST_NODE_HEADER)
    if mark is None:
        return False
    return mark == _headers_hash(headers)


def _headers_hash(headers: dict[str, Any]) -> str:
    rest = {k: v for k, v in headers.items() if k != REQUEST_NODE_HEADER}
    text = json.dumps(rest, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class HttpResponseHandle:
    """``msg["res"]``: the answer an http-response node gives, once.

    ``outcome`` is None while the client waits, then ``"answered"``, ``"timeout"`` (the server
    sent 504) or ``"closed"`` (the server stopped). Shared by every copy of the message.
    """

    __slots__ = ("_future", "node_id", "outcome", "request")

    def __init__(self, request: web.Request, future: asyncio.Future[web.StreamResponse | None],
                 node_id: str):
        self.request = request
        self.node_id = node_id
        self.outcome: str | None = None
        self._future = future

    @property
    def answered(self) -> bool:
        """True once the request was answered, timed out or abandoned."""
        return self.outcome is not None

    @property
    def connected(self) -> bool:
        """Whether the client is still there to receive the answer."""
        transport = self.request.transport
        return transport is not None and not transport.is_closing()

    def send(self, response: web.StreamResponse) -> bool:
        """Answer the request; False when it was already answered (or timed out)."""
        if self.outcome is not None or self._future.done():
            return False
        self.outcome = "answered"
        self._future.set_result(response)
        return True

    def fail(self, detail: str | None = None) -> bool:
        """Answer 500 now: the message failed and no catch node handled it. ``detail`` is the
        body when the server allows error texts; False when already answered."""
        return self.send(web.Response(status=500, text=detail or "Internal Server Error"))

    def expire(self, outcome: str) -> None:
        """Mark the request as finished without an answer from the flow."""
        if self.outcome is None:
            self.outcome = outcome

    def time_out(self) -> None:
        """No answer in time: wake the waiting route handler with None (it sends 504)."""
        if self.outcome is None:
            self.outcome = "timeout"
            if not self._future.done():
                self._future.set_result(None)

    def __repr__(self) -> str:
        return f"<HttpResponseHandle {self.request.method} {self.request.path_qs}>"
