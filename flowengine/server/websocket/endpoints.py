"""What websocket-in and websocket-out nodes hold: an endpoint (subscribers, sessions, sending,
heartbeat) and its server side, a :class:`WebSocketListener` answering upgrade requests (§4.2)
on one path of the shared HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .codec import ABNORMAL, GOING_AWAY, accept_key, encode, valid_key
from .connection import OPEN, Connection
from .origin import normalize_origin, origin_allowed

log = logging.getLogger("flowengine.websocket")

DEFAULT_MAX_SIZE = 1024 * 1024
DEFAULT_MAX_QUEUE = 1024
DEFAULT_WRITE_LIMIT = 256 * 1024
DEFAULT_HEARTBEAT = 30.0
DEFAULT_CLOSE_TIMEOUT = 2.0

# on_message(session_id, data: str | bytes)
MessageCallback = Callable[[str, Any], None]
# on_event(session_id, "connect" | "disconnect", {"remote", "code", "reason", "count"})
EventCallback = Callable[[str, str, dict[str, Any]], None]
# on_state(state, detail): a client's "connecting", "connected", "disconnected", "error"
StateCallback = Callable[[str, str], None]
# report(logging level, text): a failure worth logging, once
ReportCallback = Callable[[int, str], None]

class WebSocketEndpoint:
    """What listeners and clients share: subscribers, sessions, sending, heartbeat."""

    #: Frames this endpoint sends are masked (a client's).
    masked = False

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE, max_queue: int = DEFAULT_MAX_QUEUE,
                 write_limit: int = DEFAULT_WRITE_LIMIT,
                 heartbeat: float | None = DEFAULT_HEARTBEAT,
                 close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
                 origins: tuple[str, ...] | list[str] = ()):
        self.default_origins = frozenset(normalize_origin(o) for o in origins)
        self.origins = self.default_origins
        self._origin_lists: dict[object, frozenset[str]] = {}
        self.default_max_size = max_size
        self.max_size = max_size
        self.max_queue = max_queue
        self.write_limit = write_limit
        self.heartbeat = heartbeat
        self.close_timeout = close_timeout
        self.sessions: dict[str, Connection] = {}
        self._owners: dict[object, tuple[Any, ...]] = {}
        self._sizes: dict[object, int] = {}
        self._on_message: tuple[MessageCallback, ...] = ()
        self._on_event: tuple[EventCallback, ...] = ()
        self._on_state: tuple[StateCallback, ...] = ()
        self._reporters: tuple[ReportCallback, ...] = ()
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self.closed = True

    @property
    def where(self) -> str:
        """The path or URL, for log lines."""
        raise NotImplementedError

    def start(self) -> None:
        """Open (again, after :meth:`close`): serve the path, or start connecting."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close every session and stop serving or connecting; :meth:`start` reopens."""
        raise NotImplementedError

    # -- subscribers ----------------------------------------------------------------------------

    def subscribe(self, owner: object, on_message: MessageCallback | None = None,
                  on_event: EventCallback | None = None, *,
                  on_state: StateCallback | None = None, report: ReportCallback | None = None,
                  max_size: int | None = None, origins: list[str] | None = None) -> None:
        """Register ``owner`` as a user of the endpoint (a sender needs no callback) and route
        incoming messages, connect/disconnect events, client states and failures to it.
        ``max_size`` raises the endpoint's message limit to at least this; ``origins`` adds
        browser origins allowed to connect (listeners)."""
        self._owners[owner] = (on_message, on_event, on_state, report)
        if max_size is not None:
            self._sizes[owner] = max_size
        if origins:
            self._origin_lists[owner] = frozenset(normalize_origin(o) for o in origins)
        self._rebuild()

    def unsubscribe(self, owner: object) -> None:
        """Stop routing to ``owner``; the endpoint stays open (see :meth:`release`)."""
        self._owners.pop(owner, None)
        self._sizes.pop(owner, None)
        self._origin_lists.pop(owner, None)
        self._rebuild()

    async def release(self, owner: object) -> None:
        """Unsubscribe ``owner`` and close the endpoint if nobody uses it any more."""
        self.unsubscribe(owner)
        if not self._owners:
            await self.close()

    def _rebuild(self) -> None:
        entries = list(self._owners.values())
        self._on_message = tuple(e[0] for e in entries if e[0] is not None)
        self._on_event = tuple(e[1] for e in entries if e[1] is not None)
        self._on_state = tuple(e[2] for e in entries if e[2] is not None)
        # Failures are mostly about what peers sent: receivers report them first.
        self._reporters = tuple(e[3] for e in sorted(entries, key=lambda e: e[0] is None)
                                if e[3] is not None)
        self.max_size = max(self._sizes.values(), default=self.default_max_size)
        self.origins = self.default_origins.union(*self._origin_lists.values())

    @property
    def users(self) -> int:
        """How many owners are subscribed."""
        return len(self._owners)

    # -- sending --------------------------------------------------------------------------------

    def send_to(self, session_id: Any, data: str | bytes) -> bool:
        """Send to one session; False if it is not (or no longer) connected here."""
        conn = self.sessions.get(session_id)
        if conn is None:
            return False
        return conn.send_frame(encode(data, self.masked))

    def broadcast(self, data: str | bytes) -> int:
        """Send to every session (the frame is encoded once); returns how many got it."""
        if not self.sessions:
            return 0
        if self.masked:  # a client's frames each carry their own mask
            return sum(conn.send_frame(encode(data, True)) for conn in list(self.sessions.values()))
        frame = encode(data)
        count = 0
        for conn in list(self.sessions.values()):
            try:
                if conn.send_frame(frame):
                    count += 1
            except Exception:  # one session's failure never stops the others' messages
                log.exception("websocket %s: sending to %s failed", self.where, conn.remote)
        return count

    def send(self, data: str | bytes, session_id: str | None = None) -> int:
        """Send to one session, or to every session when ``session_id`` is None."""
        if session_id is None:
            return self.broadcast(data)
        return 1 if self.send_to(session_id, data) else 0

    # -- what connections call ------------------------------------------------------------------

    def _dispatch(self, session_id: str, data: str | bytes) -> None:
        for callback in self._on_message:
            try:
                callback(session_id, data)
            except Exception:
                log.exception("websocket %s: a subscriber failed on a message", self.where)

    def _add(self, conn: Connection) -> None:
        self.sessions[conn.id] = conn
        self._event(conn, "connect", {"remote": conn.remote})

    def _remove(self, conn: Connection) -> None:
        if self.sessions.pop(conn.id, None) is None:
            return
        if conn.close_code == ABNORMAL:
            self._report(logging.INFO, f"session {conn.id} ({conn.remote}) lost: "
                         f"{conn.close_reason}")
        self._event(conn, "disconnect", {"remote": conn.remote, "code": conn.close_code,
                                         "reason": conn.close_reason})

    def _event(self, conn: Connection, event: str, details: dict[str, Any]) -> None:
        details["count"] = len(self.sessions)
        for callback in self._on_event:
            try:
                callback(conn.id, event, details)
            except Exception:
                log.exception("websocket %s: a subscriber failed on %s of %s", self.where,
                              event, conn.remote)

    def _report(self, level: int, text: str) -> None:
        """Log a failure once: through the first receiving subscriber's reporter (a node logs it
        with its id), or this module's logger."""
        text = f"websocket {self.where}: {text}"
        if self._reporters:
            try:
                self._reporters[0](level, text)
                return
            except Exception:
                log.exception("websocket %s: reporter failed", self.where)
        log.log(level, text)

    # -- heartbeat ------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self.heartbeat and self._heartbeat_handle is None:
            self._heartbeat_handle = asyncio.get_running_loop().call_later(self.heartbeat,
                                                                           self._sweep)

    def _stop_heartbeat(self) -> None:
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None

    def _sweep(self) -> None:
        """Ping every session; drop those that stayed silent since the previous ping."""
        self._heartbeat_handle = None
        for conn in list(self.sessions.values()):
            if conn.state is not OPEN:
                continue
            if not conn.seen:
                conn.close_code = ABNORMAL
                conn.close_reason = f"no answer to a ping within {self.heartbeat:g}s"
                conn.abort()
            else:
                conn.seen = False
                conn.ping()
        self._start_heartbeat()

    async def close_sessions(self, code: int, reason: str) -> None:
        """Close every session (``code``, ``reason``) and wait until they are gone."""
        conns = list(self.sessions.values())
        for conn in conns:
            conn.close(code, reason)
        if conns:
            # Each connection aborts itself after close_timeout; this only waits for that.
            await asyncio.wait([c.done for c in conns], timeout=self.close_timeout + 1)


class WebSocketListener(WebSocketEndpoint):
    """The sessions of one path of the shared server (``server.add_websocket``)."""

    def __init__(self, server: Any, path: str, **limits: Any):
        super().__init__(**limits)
        self.server = server
        self.path = path
        self.start()

    @property
    def where(self) -> str:
        return self.path

    def start(self) -> None:
        """Serve the path (again, after a close). Idempotent."""
        if self.closed:
            self.server.add_websocket(self.path, self.handle, self)
            self.closed = False
        with contextlib.suppress(RuntimeError):  # no running loop: at the first session
            self._start_heartbeat()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer an upgrade request (§4.2) and serve the connection until it ends."""
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        remote = f"{peer[0]}:{peer[1]}" if peer else str(request.remote)
        headers = request.headers
        key = headers.get("Sec-WebSocket-Key", "")
        problem = None
        if request.method != "GET":
            problem = f"method {request.method}"
        elif "upgrade" not in [t.strip().lower() for t in headers.get("Connection", "")
                               .split(",")]:
            problem = "no 'Connection: upgrade'"
        elif not valid_key(key):
            problem = "missing or invalid Sec-WebSocket-Key"
        elif headers.get("Sec-WebSocket-Version") != "13":
            self._report(logging.INFO, f"refused upgrade from {remote}: unsupported version")
            raise web.HTTPUpgradeRequired(headers={"Sec-WebSocket-Version": "13"},
                                          text="WebSocket version 13 required")
        if problem is not None:
            self._report(logging.INFO, f"refused upgrade from {remote}: {problem}")
            raise web.HTTPBadRequest(text=f"bad websocket upgrade: {problem}")
        if self.closed or transport is None or transport.is_closing():
            raise web.HTTPNotFound()
        origin = headers.get("Origin")
        if not origin_allowed(origin, request.host, self.origins | self.server.origins):
            self._report(logging.WARNING, f"refused upgrade from {remote}: origin {origin!r} "
                         "is not allowed")
            raise web.HTTPForbidden(text="origin not allowed")
        self._start_heartbeat()
        response = web.StreamResponse(status=101, headers={
            "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Accept": accept_key(key)})
        await response.prepare(request)
        conn = Connection(self, remote, client=False)
        conn.transport = transport
        conn.state = OPEN
        self._add(conn)
        # From here on aiohttp feeds the connection's bytes to ``conn`` (any that came with
        # the request right away).
        request.protocol.set_parser(conn)  # type: ignore[arg-type]
        try:
            await asyncio.shield(conn.done)
        except asyncio.CancelledError:  # the server is shutting down
            conn.abort()
            raise
        return response

    async def close(self) -> None:
        """Stop serving the path and close every session (1001, going away)."""
        if not self.closed:
            self.closed = True
            self.server.remove(self)
        self._stop_heartbeat()
        await self.close_sessions(GOING_AWAY, "server closing")

