"""WebSocket endpoints shared by websocket-in and websocket-out nodes.

A :class:`WebSocketListener` owns one path of the shared server and the browser sessions
connected to it; a :class:`WebSocketClient` owns one outgoing connection (reconnecting with
backoff). Both give the nodes the same interface: ``subscribe`` to incoming frames and connection
events, ``send`` to one session or to all.

Limits, each a constructor parameter: ``max_size`` (largest frame accepted, 1 MiB; a larger
frame closes that session with code 1009), ``max_queue`` (frames waiting to be written to one
session, 1024; a session whose queue overflows is closed with 1008 rather than buffering
without bound). A failure of one session never affects the listener or other sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

log = logging.getLogger("flowengine.websocket")

DEFAULT_MAX_SIZE = 1024 * 1024
DEFAULT_MAX_QUEUE = 1024

# on_message(session_id, data: str | bytes); on_event(session_id, event, details)
MessageCallback = Callable[[str, Any], None]
EventCallback = Callable[[str, str, dict[str, Any]], None]

_ids = itertools.count(1)


class _Session:
    """One connection; frames to send wait in ``queue`` for the writer task."""

    __slots__ = ("id", "queue", "remote", "wake", "writer", "ws")

    def __init__(self, session_id: str, ws: Any, remote: str):
        self.id = session_id
        self.ws = ws
        self.remote = remote
        self.queue: deque[str | bytes] = deque()
        self.wake = asyncio.Event()
        self.writer: asyncio.Task[None] | None = None


class _Endpoint:
    """What listeners and clients share: subscribers, sessions, queued sending."""

    def __init__(self, max_size: int, max_queue: int):
        self.max_size = max_size
        self.max_queue = max_queue
        self.sessions: dict[str, _Session] = {}
        self._messages: dict[object, MessageCallback] = {}
        self._events: dict[object, EventCallback] = {}

    def subscribe(self, owner: object, on_message: MessageCallback | None = None,
                  on_event: EventCallback | None = None) -> None:
        """Receive frames and connect/disconnect events (``owner`` identifies the subscriber)."""
        if on_message is not None:
            self._messages[owner] = on_message
        if on_event is not None:
            self._events[owner] = on_event

    def unsubscribe(self, owner: object) -> None:
        self._messages.pop(owner, None)
        self._events.pop(owner, None)

    @property
    def users(self) -> int:
        return len(self._messages) + len(self._events)

    def send(self, data: str | bytes, session_id: str | None = None) -> int:
        """Queue a frame for one session (or every session); returns how many got it."""
        if session_id is not None:
            session = self.sessions.get(session_id)
            if session is None:
                return 0
            self._queue(session, data)
            return 1
        for session in list(self.sessions.values()):
            self._queue(session, data)
        return len(self.sessions)

    def _queue(self, session: _Session, data: str | bytes) -> None:
        if len(session.queue) >= self.max_queue:
            log.warning("closing websocket session %s (%s): %d frames waiting to be sent",
                        session.id, session.remote, len(session.queue))
            session.queue.clear()
            asyncio.get_running_loop().create_task(
                session.ws.close(code=1008, message=b"send queue full"))
            return
        session.queue.append(data)
        session.wake.set()

    async def _write(self, session: _Session) -> None:
        ws, queue, wake = session.ws, session.queue, session.wake
        try:
            while True:
                while not queue:
                    wake.clear()
                    await wake.wait()
                data = queue.popleft()
                if type(data) is str:
                    await ws.send_str(data)
                else:
                    await ws.send_bytes(data)
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            pass  # the reader side notices the close and cleans up

    def _dispatch(self, session: _Session, data: str | bytes) -> None:
        for callback in list(self._messages.values()):
            try:
                callback(session.id, data)
            except Exception:
                log.exception("websocket subscriber failed on a message from %s",
                              session.remote)

    def _event(self, session: _Session, event: str, details: dict[str, Any]) -> None:
        for callback in list(self._events.values()):
            try:
                callback(session.id, event, details)
            except Exception:
                log.exception("websocket subscriber failed on %s of %s", event, session.remote)

    async def _serve(self, session: _Session) -> tuple[int | None, str]:
        """Read frames until the connection ends; returns (close code, reason)."""
        ws = session.ws
        self.sessions[session.id] = session
        session.writer = asyncio.get_running_loop().create_task(self._write(session))
        self._event(session, "connect", {"remote": session.remote})
        code: int | None = None
        reason = ""
        try:
            while True:
                msg = await ws.receive()
                kind = msg.type
                if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                    self._dispatch(session, msg.data)
                elif kind is WSMsgType.ERROR:
                    reason = str(ws.exception() or msg.data)
                    log.warning("websocket session %s (%s) closed: %s", session.id,
                                session.remote, reason)
                    break
                elif kind in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
        finally:
            self.sessions.pop(session.id, None)
            if session.writer is not None:
                session.writer.cancel()
            code = ws.close_code
            with contextlib.suppress(Exception):
                await ws.close()
            self._event(session, "disconnect", {"remote": session.remote, "code": code,
                                                "reason": reason})
        return code, reason


class WebSocketListener(_Endpoint):
    """Browser sessions on one path of the shared server."""

    def __init__(self, server: Any, path: str, *, max_size: int = DEFAULT_MAX_SIZE,
                 max_queue: int = DEFAULT_MAX_QUEUE, heartbeat: float | None = 30.0):
        super().__init__(max_size, max_queue)
        self.server = server
        self.path = path
        self.heartbeat = heartbeat
        server.add_websocket(path, self.handle, self)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.max_size, heartbeat=self.heartbeat)
        await ws.prepare(request)
        remote = f"{request.remote}"
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            remote = f"{peer[0]}:{peer[1]}"
        session = _Session(f"{next(_ids):x}", ws, remote)
        await self._serve(session)
        return ws

    async def close(self) -> None:
        """Stop serving the path and close every session (code 1001, going away)."""
        self.server.remove(self)
        for session in list(self.sessions.values()):
            with contextlib.suppress(Exception):
                await session.ws.close(code=1001, message=b"server stopping")


class WebSocketClient(_Endpoint):
    """One outgoing connection to ``url``, re-established with exponential backoff."""

    def __init__(self, url: str, *, max_size: int = DEFAULT_MAX_SIZE,
                 max_queue: int = DEFAULT_MAX_QUEUE, min_backoff: float = 0.5,
                 max_backoff: float = 30.0, on_state: Callable[[str], None] | None = None):
        super().__init__(max_size, max_queue)
        self.url = url
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.on_state = on_state
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        backoff = self.min_backoff
        self._http = aiohttp.ClientSession()
        while True:
            try:
                ws = await self._http.ws_connect(self.url, max_msg_size=self.max_size,
                                                 heartbeat=30)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self._state(f"error: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = self.min_backoff
            self.connected.set()
            self._state("connected")
            await self._serve(_Session(f"{next(_ids):x}", ws, self.url))
            self.connected.clear()
            self._state("disconnected")
            await asyncio.sleep(backoff)

    def _state(self, text: str) -> None:
        if self.on_state is not None:
            self.on_state(text)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for session in list(self.sessions.values()):
            with contextlib.suppress(Exception):
                await session.ws.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
