"""``Upstream``: one WebSocket connection from the router to a backend media server.

The router opens one per client connection and backend (see :mod:`.router`): it carries that
client's Kurento session, so the backend binds the connection to the session and sends the
session's events on it, exactly as it would to the client itself. Requests get ids of their own
(the router keeps the client's ids and its duplicate-request cache); answers are matched by id;
notifications (``onEvent``) go to ``on_event``; when the socket closes, every pending request
fails with :class:`BackendGone` and ``on_close`` runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from flowengine.kurento.jsonrpc import Notification, Request, Response, parse_incoming

log = logging.getLogger("flowengine.media.cluster")

MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest answer accepted from a backend (a getStats of a busy pipeline, an SDP)."""


class BackendGone(ConnectionError):
    """The backend's connection closed (or never opened) before it answered."""


class Upstream:
    """See the module docstring. ``open()``, then ``call()`` any number of times, ``close()``."""

    _ids = itertools.count(1)

    def __init__(
        self,
        url: str,
        http: aiohttp.ClientSession,
        *,
        on_event: Callable[[Notification], None] | None = None,
        on_close: Callable[[Upstream], None] | None = None,
    ):
        self.url = url
        self._http = http
        self.on_event = on_event
        self.on_close = on_close
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = False

    async def open(self, timeout: float) -> None:
        try:
            self._ws = await asyncio.wait_for(
                self._http.ws_connect(self.url, max_msg_size=MAX_FRAME_BYTES, compress=0),
                timeout,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.closed = True
            raise BackendGone(f"cannot reach {self.url}: {exc or type(exc).__name__}") from None
        self._reader = asyncio.create_task(self._read(), name=f"upstream {self.url}")

    async def call(
        self, method: str, params: dict[str, Any] | None, timeout: float
    ) -> Response:
        """Send one request and wait for its answer (raises :class:`BackendGone` or
        ``TimeoutError``)."""
        if self.closed or self._ws is None:
            raise BackendGone(f"the connection to {self.url} is closed")
        request_id = next(self._ids)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._ws.send_str(Request(request_id, method, params).encode())
            return await asyncio.wait_for(future, timeout)
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise BackendGone(f"the connection to {self.url} broke: {exc}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    continue
                message = parse_incoming(msg.data)
                if isinstance(message, Response):
                    future = self._pending.get(message.id)  # type: ignore[arg-type]
                    if future is not None and not future.done():
                        future.set_result(message)
                elif isinstance(message, Notification) and self.on_event is not None:
                    try:
                        self.on_event(message)
                    except Exception:
                        log.exception("forwarding an event from %s failed", self.url)
        except (aiohttp.ClientError, ConnectionError) as exc:
            log.debug("upstream %s: %s", self.url, exc)
        finally:
            self._gone()

    def _gone(self) -> None:
        if self.closed:
            return
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BackendGone(f"{self.url} closed the connection"))
        if self.on_close is not None:
            self.on_close(self)

    async def close(self) -> None:
        """Close the socket (idempotent); pending calls fail, ``on_close`` does not run."""
        self.on_close = None
        self._gone()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 1.0)
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
