"""The client side: a :class:`WebSocketClient` keeps one connection to a ws:// or wss:// URL,
re-established with exponential backoff. The opening handshake (§4.1) is websockets' sans-I/O
:class:`~websockets.client.ClientProtocol` (request built, response validated); the frames
that follow are ours, as on the server side (:class:`.connection.Connection`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.protocol import State as ProtocolState
from websockets.uri import parse_uri

from .codec import NORMAL
from .connection import OPEN, Connection, HandshakeError
from .endpoints import WebSocketEndpoint, log

DEFAULT_OPEN_TIMEOUT = 10.0
MAX_HANDSHAKE = 64 * 1024  # bytes of a server's handshake response we read at most
WS_OPEN = ProtocolState.OPEN  # the handshake protocol's state once the server upgraded


class ClientConnection(Connection):
    """A connection that starts by sending the opening handshake request and reading the
    response; its ``opened`` future ends the handshake (a :class:`HandshakeError` if refused)."""

    __slots__ = ("_handshake", "_head", "_head_read", "_received")

    def __init__(self, endpoint: WebSocketEndpoint, url: str):
        super().__init__(endpoint, url, client=True)
        self.opened = asyncio.get_running_loop().create_future()
        self._handshake = ClientProtocol(parse_uri(url), max_size=None)
        self._handshake.send_request(self._handshake.connect())
        self._head = bytearray()  # the response's head so far
        self._head_read = False  # the head is complete (a refusal's body may follow)
        self._received = 0  # bytes of the response, bounded by MAX_HANDSHAKE

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        for data in self._handshake.data_to_send():
            transport.write(data)

    def _handshake_data(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > MAX_HANDSHAKE:
            self._refused("handshake response too long")
            return
        handshake = self._handshake
        rest = b""
        if not self._head_read:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            # The protocol gets the head only: what follows a 101 is frames, ours to parse.
            self._head_read = True
            data, rest = bytes(self._head[:end + 4]), bytes(self._head[end + 4:])
            self._head.clear()
        handshake.receive_data(data)
        if rest and handshake.state is not WS_OPEN and handshake.handshake_exc is None:
            handshake.receive_data(rest)  # not a 101: the body of a refusal
            rest = b""
        if handshake.handshake_exc is not None:
            self._refused(str(handshake.handshake_exc))
        elif handshake.state is WS_OPEN:
            self.state = OPEN
            self.endpoint._add(self)
            assert self.opened is not None
            if not self.opened.done():
                self.opened.set_result(None)
            if rest:
                self.data_received(rest)

    def _refused(self, reason: str) -> None:
        assert self.opened is not None
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(reason))
        self._discard = True
        self.transport.close()


class WebSocketClient(WebSocketEndpoint):
    """One outgoing connection to ``url`` (ws:// or wss://), re-established after a failure
    or a close with exponential backoff (``min_backoff`` doubling up to ``max_backoff``).

    State changes go to subscribers' ``on_state``: ``connecting``, ``connected``,
    ``disconnected`` (with the close code and reason), ``error`` (why connecting failed). The
    first failure of a series is reported once; retries stay quiet until a connection succeeds.
    """

    masked = True

    def __init__(self, url: str, *, min_backoff: float = 0.5, max_backoff: float = 30.0,
                 open_timeout: float = DEFAULT_OPEN_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None,
                 on_state: Callable[[str], None] | None = None, **limits: Any):
        super().__init__(**limits)
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
        self.url = url
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.open_timeout = open_timeout
        self.ssl_context = ssl_context
        self.on_state = on_state
        self.state = "disconnected"
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: ClientConnection | None = None

    @property
    def where(self) -> str:
        return self.url

    def start(self) -> None:
        """Start connecting (again, after a close). Idempotent."""
        self.closed = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        backoff = self.min_backoff
        failing = False
        while True:
            self._state("connecting", "")
            try:
                conn = await self._open()
            except (OSError, TimeoutError, HandshakeError, ssl.SSLError) as exc:
                detail = str(exc) or type(exc).__name__
                self._state("error", detail)
                if not failing:
                    self._report(logging.WARNING, f"cannot connect: {detail}; retrying")
                    failing = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if failing:
                self._report(logging.INFO, "connected again")
                failing = False
            backoff = self.min_backoff
            self._conn = conn
            self.connected.set()
            self._start_heartbeat()
            self._state("connected", "")
            try:
                await asyncio.shield(conn.done)
            finally:
                self._conn = None
                self.connected.clear()
                self._stop_heartbeat()
            self._state("disconnected", f"{conn.close_code} {conn.close_reason}".strip())
            await asyncio.sleep(backoff)

    async def _open(self) -> ClientConnection:
        parts = urlsplit(self.url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        conn = ClientConnection(self, self.url)
        context = (self.ssl_context or ssl.create_default_context()) if secure else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.open_timeout):
                await loop.create_connection(lambda: conn, parts.hostname, port, ssl=context)
                assert conn.opened is not None
                await conn.opened
        except BaseException:
            conn.abort()
            opened = conn.opened
            if opened is not None and opened.done() and not opened.cancelled():
                opened.exception()  # retrieved: the caller gets the exception raised here
            raise
        return conn

    def _state(self, state: str, detail: str) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(f"{state}: {detail}" if detail else state)
        for callback in self._on_state:
            try:
                callback(state, detail)
            except Exception:
                log.exception("websocket %s: a subscriber failed on state %s", self.url, state)

    async def close(self) -> None:
        """Close the connection (1000) and stop reconnecting."""
        self.closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._stop_heartbeat()
        await self.close_sessions(NORMAL, "")
        self.state = "disconnected"
