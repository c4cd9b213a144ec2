"""The asyncio Kurento client (docs/design/kurento.md "The Python client";
docs/reference/kurento-protocol.md 9.1 and 10).

Works with any Kurento-protocol server: a Kurento Media Server 6.x/7.x or ours
(:mod:`flowengine.media`)::

    client = await KurentoClient.connect("ws://127.0.0.1:8888/kurento")
    pipeline = await client.create("MediaPipeline")
    ep = await pipeline.create("WebRtcEndpoint")
    await ep.on("IceCandidateFound", lambda data: send_to_browser(data["candidate"]))
    answer = await ep.process_offer(offer)
    await ep.gather_candidates()
    ...
    await pipeline.release()
    await client.close()

How it talks (one WebSocket, text frames):

* Requests get integer ids from 0 that are never reused for the life of the client,
  reconnections included (KMS answers a repeated ``(sessionId, id)`` from a 20 s cache without
  running it); a client resuming a session of an earlier client (``session_id=``) starts at a
  random id instead, since that client counted from 0 as well. Frames leave in call order
  through one writer task, so a listener added with ``on()`` is subscribed before any request
  made after it.
* One reader task routes frames: responses to the waiting request, ``onEvent`` notifications
  to the listeners of ``(object, event)``.
* The session id from the first response is kept and sent in every request.
* ``ping`` every ``ping_interval`` seconds. A ping without answer within ``timeout`` means a
  dead connection: the socket is dropped and the client reconnects.
* When the socket drops, requests waiting for an answer fail with
  :class:`KurentoConnectionError` (the server may or may not have run them); new requests wait
  for the reconnection (within their timeout). The client reconnects with backoff and sends
  ``connect {sessionId}``, which moves the session and its events to the new socket. If the
  server no longer knows the session (it restarted, or garbage-collected the session while the
  client was away) every proxy and listener of the old session fails with
  :class:`SessionLostError`, state listeners get a ``session_lost`` event, and the client goes
  on with a new session. After ``reconnect_timeout`` seconds without success the client closes.

Connection states (:class:`ClientState`) and their invariants:

* ``CONNECTING``: opening the first socket; no request from users is sent yet.
* ``OPEN``: ``self._conn`` is a live connection with a known session; ``self._open`` is set.
* ``RECONNECTING``: the socket dropped; ``self._open`` is clear, and exactly one reconnect
  task runs.
* ``CLOSED``: final; every request fails at once; no task of the client is left running.

Bounds: frames up to ``max_frame_size`` bytes (default 16 MiB; SDPs and stats are a few kB);
at most ``max_in_flight`` requests waiting for answers (more wait for a free slot, within their
timeout); at most ``max_callback_tasks`` coroutine callbacks running at once (events beyond
that are dropped for those callbacks, with a warning); every request is bounded by its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from flowengine.kurento.errors import (
    INVALID_SESSION,
    MEDIA_OBJECT_NOT_FOUND,
    METHOD_NOT_FOUND,
    KurentoConnectionError,
    KurentoError,
    KurentoTimeoutError,
    SessionLostError,
)
from flowengine.kurento.jsonrpc import (
    ClientSession,
    Notification,
    Response,
    parse_event,
    parse_incoming,
)
from flowengine.kurento.model import SERVER_MANAGER_ID
from flowengine.kurento.proxies import EventCallback, MediaObject, camel_name, to_wire

log = logging.getLogger("flowengine.kurento")

DEFAULT_TIMEOUT = 20.0  # seconds; kurento-client-js's request_timeout
DEFAULT_PING_INTERVAL = 30.0  # seconds; the reference asks for <= 60 s
DEFAULT_RECONNECT_TIMEOUT = 60.0  # seconds of reconnect attempts before the client closes
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
DEFAULT_MAX_IN_FLIGHT = 1000
DEFAULT_MAX_CALLBACK_TASKS = 1000
RESUMED_ID_RANGE = 2**31  # a resumed session's first request id is random below this
RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)  # then 5 s between attempts


class ClientState(enum.Enum):
    """The connection state of a :class:`KurentoClient` (see the module docstring)."""

    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True)
class ClientEvent:
    """A change of the client's connection, given to :meth:`KurentoClient.add_listener`.

    ``kind`` is one of ``"connected"`` (first connection), ``"disconnected"`` (the socket
    dropped; reconnecting), ``"reconnected"`` (the session and its objects survived),
    ``"session_lost"`` (reconnected, but the server no longer knew the session: every object
    of it is gone; a new session has started), ``"closed"`` (by :meth:`KurentoClient.close`, or
    after reconnecting failed; ``reason`` says which).
    """

    kind: str
    url: str
    session_id: str | None
    reason: str = ""


ClientListener = Callable[[ClientEvent], Any]


@dataclass
class _Pending:
    """A request sent on ``conn`` and waiting for its response."""

    method: str
    conn: _Connection
    future: asyncio.Future[Response]


@dataclass
class _EventSlot:
    """The listeners of one ``(object, event)``; one server subscription serves them all."""

    object_id: str
    event: str
    epoch: int
    callbacks: list[EventCallback] = field(default_factory=list)
    waiters: list[asyncio.Future[dict[str, Any]]] = field(default_factory=list)
    confirmed: asyncio.Future[str | None] | None = None  # result: the subscription id
    subscription: str | None = None

    @property
    def wanted(self) -> bool:
        return bool(self.callbacks or self.waiters)


class _Connection:
    """One WebSocket with its reader and writer tasks. ``send`` never blocks: the writer sends
    frames in the order they were queued. The outbox holds at most one frame per pending
    request, so the client's ``max_in_flight`` bounds it too."""

    def __init__(
        self,
        ws: ClientConnection,
        on_frame: Callable[[str | bytes], None],
        on_lost: Callable[[_Connection, str], None],
    ):
        self.ws = ws
        self.alive = True
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._writer = asyncio.create_task(self._write(), name="kurento-writer")
        self._reader = asyncio.create_task(self._read(), name="kurento-reader")

    def send(self, frame: str) -> None:
        self._outbox.put_nowait(frame)

    async def _write(self) -> None:
        while True:
            frame = await self._outbox.get()
            try:
                await self.ws.send(frame)
            except ConnectionClosed:
                return  # the reader sees the close and reports it
            except Exception:
                log.exception("kurento: cannot send to the media server; dropping the socket")
                self.abort()
                return

    async def _read(self) -> None:
        reason = "connection closed"
        try:
            async for frame in self.ws:
                self._on_frame(frame)
        except ConnectionClosed as exc:
            reason = _close_reason(exc)
        except Exception as exc:  # a bug in frame handling must not leave a zombie socket
            log.exception("kurento: error while reading from the media server")
            reason = f"reader failed: {exc}"
        else:
            if self.ws.close_code is not None:
                reason = f"closed by the server (code {self.ws.close_code})"
        finally:
            self.alive = False
            self._writer.cancel()
        self._on_lost(self, reason)

    def kill(self) -> None:
        """Drop the connection and stop its tasks without waiting (no close handshake)."""
        self.abort()
        self._reader.cancel()
        self._writer.cancel()

    def abort(self) -> None:
        """Drop the TCP connection at once (a dead peer would never finish a close handshake)."""
        self.alive = False
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        self.alive = False
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2.0)
        self.abort()
        for task in (self._reader, self._writer):
            task.cancel()
        await asyncio.gather(self._reader, self._writer, return_exceptions=True)


def _close_reason(exc: ConnectionClosed) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "connection lost"
    text = f"closed by the server (code {rcvd.code}"
    return text + (f": {rcvd.reason})" if rcvd.reason else ")")


class KurentoClient:
    """An asyncio client of a Kurento-protocol media server; see the module docstring.

    Create it with :meth:`connect`. Options (seconds): ``timeout`` bounds every request and the
    opening of a socket; ``ping_interval`` is the keepalive period (0 disables it);
    ``reconnect_timeout`` is how long to try reconnecting after the socket dropped (0: close at
    once). ``max_frame_size``, ``max_in_flight`` and ``max_callback_tasks`` are the bounds
    described in the module docstring.

    Its proxies use it only through :class:`~flowengine.kurento.proxies.ProxyHost`
    (``epoch``, :meth:`proxy`, :meth:`create`, :meth:`check_proxy`, :meth:`object_request`,
    :meth:`forget`, :meth:`listen`, :meth:`unlisten`, :meth:`next_event`).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_callback_tasks: int = DEFAULT_MAX_CALLBACK_TASKS,
    ):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.url = url
        self.timeout = timeout
        self.ping_interval = ping_interval
        self.reconnect_timeout = reconnect_timeout
        self.max_frame_size = max_frame_size
        self.max_in_flight = max_in_flight
        self.max_callback_tasks = max_callback_tasks
        #: The server's ``serverId`` (from ``connect``), when it sent one.
        self.server_id: str | None = None
        self._state = ClientState.CONNECTING
        self._session = ClientSession()
        self._conn: _Connection | None = None
        self._open = asyncio.Event()  # set while OPEN, and once CLOSED (to wake waiters)
        self._pending: dict[int, _Pending] = {}
        self._slot_free = asyncio.Event()  # set whenever fewer than max_in_flight are pending
        self._slot_free.set()
        #: Counts the sessions the client lost: proxies made in an older epoch are dead.
        self.epoch = 0
        self._lost_sessions: dict[int, str] = {}  # epoch -> the session id it had
        self._unreported_loss: str | None = None  # a lost session not yet told to listeners
        self._objects: dict[str, MediaObject] = {}
        self._slots: dict[tuple[str, str], _EventSlot] = {}
        self._listeners: list[ClientListener] = []
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._ping_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._close_reason = ""
        self._pings = 0

    # -- opening and closing --------------------------------------------------------------------

    @classmethod
    async def connect(
        cls, url: str, *, session_id: str | None = None, **options: Any
    ) -> KurentoClient:
        """Connect to ``url`` (``ws://host:8888/kurento``) and start a session, or resume
        ``session_id`` (raises :class:`SessionLostError` if the server does not know it).
        Raises :class:`KurentoConnectionError` naming the URL when the server cannot be
        reached. ``options`` are those of the class."""
        client = cls(url, **options)
        try:
            await client._open_first(session_id)
        except BaseException:
            await client._shutdown("connection failed", notify=False)
            raise
        return client

    async def _open_first(self, session_id: str | None) -> None:
        conn = self._conn = await self._open_socket()  # stored so that _shutdown closes it
        if session_id is not None:
            self._session.session_id = session_id
            # The server answers a repeated (sessionId, id) from its duplicate cache without
            # running it, and the session's earlier client numbered its requests from 0 too.
            self._session.next_id = secrets.randbelow(RESUMED_ID_RANGE)
            try:
                result = await self._call(conn, "connect", {"sessionId": session_id})
            except KurentoError as exc:
                if exc.code == INVALID_SESSION:
                    raise SessionLostError(
                        f"the media server at {self.url} does not know session {session_id}",
                        session_id,
                    ) from None
                raise
        else:
            result = await self._new_session(conn)
        self._server_id_from(result)
        self._become_open(conn)
        self._notify("connected")

    async def _new_session(self, conn: _Connection) -> Any:
        """Start a session: ``connect`` without a session id; servers without ``connect`` get
        ``describe manager_ServerManager`` instead (its result carries a session id too)."""
        try:
            return await self._call(conn, "connect", {})
        except KurentoError as exc:
            if exc.code != METHOD_NOT_FOUND:
                raise
        return await self._call(conn, "describe", {"object": SERVER_MANAGER_ID})

    async def _open_socket(self) -> _Connection:
        try:
            ws = await websockets.connect(
                self.url,
                open_timeout=self.timeout,
                max_size=self.max_frame_size,
                ping_interval=None,  # Kurento's keepalive is the application-level ping
                compression=None,
                close_timeout=2.0,
            )
        except InvalidURI as exc:
            raise KurentoConnectionError(
                f"invalid Kurento URL {self.url!r}: {exc}", self.url
            ) from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            text = str(exc) or type(exc).__name__
            raise KurentoConnectionError(
                f"cannot connect to the media server at {self.url}: {text}", self.url
            ) from exc
        return _Connection(ws, self._on_frame, self._on_lost)

    def _server_id_from(self, result: Any) -> None:
        if isinstance(result, dict) and isinstance(result.get("serverId"), str):
            self.server_id = result["serverId"]

    def _become_open(self, conn: _Connection) -> None:
        self._conn = conn
        self._state = ClientState.OPEN
        self._open.set()
        if self.ping_interval > 0 and self._ping_task is None:
            self._ping_task = asyncio.create_task(self._ping_loop(), name="kurento-ping")

    async def close(self) -> None:
        """Close the connection. Objects stay on the server until its session garbage
        collection (KMS: 4-8 minutes): release pipelines first. Idempotent."""
        await self._shutdown("closed by the application")

    async def __aenter__(self) -> KurentoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _shutdown(self, reason: str, notify: bool = True) -> None:
        if self._state is ClientState.CLOSED:
            return
        self._state = ClientState.CLOSED
        self._close_reason = reason
        self._open.set()  # wake requests waiting for a connection: they see CLOSED
        current = asyncio.current_task()
        for task in (self._ping_task, self._reconnect_task):
            if task is not None and task is not current:
                task.cancel()
        conn, self._conn = self._conn, None
        self._fail_pending(None, f"client for {self.url} closed: {reason}")
        error = KurentoConnectionError(f"client for {self.url} closed: {reason}", self.url)
        for slot in list(self._slots.values()):
            self._fail_waiters(slot, error)
        self._slots.clear()
        if conn is not None:
            await conn.close()
        if notify:
            self._notify("closed", reason)

    def __repr__(self) -> str:
        return f"<KurentoClient {self.url} {self._state.value} session={self.session_id}>"

    # -- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The connection state (:class:`ClientState`)."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while the socket is open and the session known."""
        return self._state is ClientState.OPEN

    @property
    def session_id(self) -> str | None:
        """The Kurento session id (keep it to resume with ``connect(url, session_id=...)``)."""
        return self._session.session_id

    def add_listener(self, listener: ClientListener) -> None:
        """Call ``listener(ClientEvent)`` on every connection change (see :class:`ClientEvent`).
        Coroutine listeners run as tasks."""
        self._listeners.append(listener)

    def remove_listener(self, listener: ClientListener) -> None:
        """Stop calling ``listener``."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _notify(self, kind: str, reason: str = "") -> None:
        event = ClientEvent(kind, self.url, self.session_id, reason)
        for listener in list(self._listeners):
            self._run_callback(listener, event, f"client listener for {kind!r}")

    # -- objects --------------------------------------------------------------------------------

    async def create(self, type_name: str, **params: Any) -> MediaObject:
        """Create a media object; ``params`` are its constructor parameters in snake_case or
        camelCase (``media_pipeline=pipeline`` for elements; :meth:`MediaObject.create` fills
        that in). Returns its proxy."""
        constructor = {camel_name(k): to_wire(v) for k, v in params.items() if v is not None}
        request: dict[str, Any] = {"type": type_name, "properties": {}}
        if constructor:  # the JS client leaves the key out when empty
            request["constructorParams"] = constructor
        result = await self.request("create", request)
        object_id = result.get("value") if isinstance(result, dict) else None
        if not isinstance(object_id, str):
            raise KurentoError(
                MEDIA_OBJECT_NOT_FOUND, f"create {type_name}: the server returned no object id"
            )
        proxy = self.proxy(object_id)
        proxy.type = type_name.rsplit(".", 1)[-1]
        return proxy

    def proxy(self, object_id: str) -> MediaObject:
        """The proxy of an existing object id (no request is made; use :meth:`get_object` to
        check that it exists)."""
        proxy = self._objects.get(object_id)
        if proxy is None:
            proxy = MediaObject(self, object_id, epoch=self.epoch)
            self._objects[object_id] = proxy
        return proxy

    async def get_object(self, object_id: str) -> MediaObject:
        """The proxy of an existing object, after asking the server (``describe``) that it
        exists; raises KurentoError 40101 otherwise."""
        result = await self.request("describe", {"object": object_id})
        proxy = self.proxy(object_id)
        if isinstance(result, dict) and isinstance(result.get("type"), str):
            proxy.type = result["type"]
        return proxy

    @property
    def server_manager(self) -> MediaObject:
        """The server's ``ServerManager`` (``await client.server_manager.get_info()``)."""
        return self.proxy(SERVER_MANAGER_ID)

    async def ping(self, timeout: float | None = None) -> None:
        """Send a ``ping``; raises if the server does not answer in time."""
        await self.request("ping", None, timeout=timeout)

    def check_proxy(self, proxy: MediaObject) -> None:
        """Raise :class:`KurentoConnectionError` when the client is closed,
        :class:`SessionLostError` when ``proxy``'s session was lost."""
        if self._state is ClientState.CLOSED:
            raise self._closed_error()
        if proxy.epoch != self.epoch:
            raise self._session_lost_error(proxy)

    def _closed_error(self) -> KurentoConnectionError:
        return KurentoConnectionError(
            f"client for {self.url} closed: {self._close_reason}", self.url
        )

    def _session_lost_error(self, proxy: MediaObject) -> SessionLostError:
        return SessionLostError(
            f"{proxy.type} {proxy.id} is gone: the media server at {self.url} lost the "
            f"session it belonged to (restarted, or garbage-collected it while the client "
            f"was disconnected)",
            self._lost_sessions.get(proxy.epoch),
        )

    def forget(self, object_id: str) -> None:
        """The object was released: drop its proxy and listeners, and its children's."""
        prefix = object_id + "/"
        for oid in [o for o in self._objects if o == object_id or o.startswith(prefix)]:
            del self._objects[oid]
        gone = KurentoError(MEDIA_OBJECT_NOT_FOUND, f"Object '{object_id}' was released")
        for key, slot in list(self._slots.items()):
            if slot.object_id == object_id or slot.object_id.startswith(prefix):
                del self._slots[key]
                self._fail_waiters(slot, gone)

    # -- requests -------------------------------------------------------------------------------

    async def request(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Send one JSON-RPC request and return its ``result`` (raises :class:`KurentoError`
        for an error response). The session id is added to ``params``. While reconnecting, the
        request waits for the connection (within ``timeout``)."""
        return await self.object_request(None, method, params, timeout)

    async def object_request(
        self,
        target: MediaObject | None,
        method: str,
        params: dict[str, Any] | None,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`request` about ``target`` (a proxy's call): fails with
        :class:`SessionLostError` if its session is lost before the request is sent."""
        timeout = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._open.wait()
                    if self._state is ClientState.CLOSED:
                        raise self._closed_error()
                    if target is not None and target.epoch != self.epoch:
                        raise self._session_lost_error(target)
                    if len(self._pending) >= self.max_in_flight:
                        self._slot_free.clear()
                        await self._slot_free.wait()
                        continue
                    conn = self._conn
                    if self._state is ClientState.OPEN and conn is not None and conn.alive:
                        break
                    # The socket just died and the reader is about to report it.
                    await asyncio.sleep(0.05)
                future = self._send(conn, method, params)
                response = await future
        except TimeoutError:
            raise KurentoTimeoutError(
                f"{method} got no answer from {self.url} within {timeout:g}s", method, timeout
            ) from None
        return self._result(response)

    async def _call(
        self,
        conn: _Connection,
        method: str,
        params: dict[str, Any] | None,
        timeout: float | None = None,
    ) -> Any:
        """A request on ``conn`` whatever the state (connect and ping while reconnecting)."""
        timeout = self.timeout if timeout is None else timeout
        future = self._send(conn, method, params)
        try:
            response = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise KurentoTimeoutError(
                f"{method} got no answer from {self.url} within {timeout:g}s", method, timeout
            ) from None
        return self._result(response)

    def _send(
        self, conn: _Connection, method: str, params: dict[str, Any] | None
    ) -> asyncio.Future[Response]:
        """Queue a request on ``conn`` now (synchronously: frames keep the call order)."""
        request = self._session.request(method, params)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        request_id = request.id
        assert isinstance(request_id, int)
        self._pending[request_id] = _Pending(method, conn, future)
        # Whoever stops waiting (answer, timeout, cancel) frees the slot.
        future.add_done_callback(lambda _f: self._release_slot(request_id))
        if not conn.alive:
            future.set_exception(self._lost_error(method, "connection lost"))
        else:
            conn.send(request.encode())
        return future

    def _release_slot(self, request_id: int) -> None:
        self._pending.pop(request_id, None)
        if len(self._pending) < self.max_in_flight:
            self._slot_free.set()

    @staticmethod
    def _result(response: Response) -> Any:
        if response.error is not None:
            raise response.error
        return response.result

    def _lost_error(self, method: str, reason: str) -> KurentoConnectionError:
        return KurentoConnectionError(
            f"{method}: the connection to {self.url} was lost before the answer arrived "
            f"({reason}); the server may or may not have run it",
            self.url,
        )

    def _fail_pending(self, conn: _Connection | None, reason: str) -> None:
        """Fail the requests sent on ``conn`` (all of them when None)."""
        for pending in list(self._pending.values()):
            if (conn is None or pending.conn is conn) and not pending.future.done():
                pending.future.set_exception(self._lost_error(pending.method, reason))

    # -- incoming frames ------------------------------------------------------------------------

    def _on_frame(self, frame: str | bytes) -> None:
        message = parse_incoming(frame)
        if isinstance(message, Response):
            self._session.observe(message)
            pending = self._pending.get(message.id) if isinstance(message.id, int) else None
            if pending is not None and not pending.future.done():
                pending.future.set_result(message)
            elif message.error is not None and message.id is None:
                log.warning("kurento: %s reported an error: %s", self.url, message.error)
        elif isinstance(message, Notification):
            event = parse_event(message)
            if event is None:
                log.debug("kurento: ignoring notification %s", message.method)
                return
            slot = self._slots.get((event.object, event.type))
            if slot is None:
                log.debug("kurento: no listener for %s on %s", event.type, event.object)
                return
            waiters, slot.waiters = slot.waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(event.data)
            for callback in list(slot.callbacks):
                self._run_callback(callback, event.data, f"{event.type} listener")
            if not slot.wanted:
                self._drop_slot(slot)
        elif message is None:
            log.debug("kurento: dropped an invalid frame from %s", self.url)

    def _run_callback(self, callback: Callable[[Any], Any], arg: Any, what: str) -> None:
        try:
            result = callback(arg)
        except Exception:
            log.exception("kurento: %s failed", what)
            return
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            if len(self._callback_tasks) >= self.max_callback_tasks:
                log.warning(
                    "kurento: %d callbacks still running; dropping %s",
                    len(self._callback_tasks),
                    what,
                )
                if asyncio.iscoroutine(result):
                    result.close()
                return
            task = asyncio.ensure_future(result)
            self._callback_tasks.add(task)
            task.add_done_callback(lambda t: self._callback_done(t, what))

    def _callback_done(self, task: asyncio.Task[Any], what: str) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("kurento: %s failed", what, exc_info=task.exception())

    # -- events ---------------------------------------------------------------------------------

    def _slot(self, target: MediaObject, event: str) -> _EventSlot:
        key = (target.id, event)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _EventSlot(target.id, event, self.epoch)
        if slot.confirmed is None:
            slot.confirmed = asyncio.ensure_future(self._subscribe(slot))
            slot.confirmed.add_done_callback(self._subscribe_done)
        return slot

    def _subscribe(self, slot: _EventSlot) -> asyncio.Future[str | None]:
        # Sent right now when connected, so the subscription precedes every later request.
        params = {"object": slot.object_id, "type": slot.event}
        conn = self._conn
        if (
            self._state is ClientState.OPEN
            and conn is not None
            and conn.alive
            and len(self._pending) < self.max_in_flight
        ):
            response = self._send(conn, "subscribe", params)
            return asyncio.ensure_future(self._subscribed(slot, self._wait(response, "subscribe")))
        return asyncio.ensure_future(self._subscribed(slot, self.request("subscribe", params)))

    async def _wait(self, future: asyncio.Future[Response], method: str) -> Any:
        try:
            response = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise KurentoTimeoutError(
                f"{method} got no answer from {self.url} within {self.timeout:g}s",
                method,
                self.timeout,
            ) from None
        return self._result(response)

    async def _subscribed(self, slot: _EventSlot, request: Any) -> str | None:
        try:
            result = await request
        except BaseException as exc:
            if self._slots.get((slot.object_id, slot.event)) is slot:
                del self._slots[(slot.object_id, slot.event)]
            if isinstance(exc, Exception):
                self._fail_waiters(slot, exc)
            raise
        value = result.get("value") if isinstance(result, dict) else None
        slot.subscription = value if isinstance(value, str) else None
        if self._slots.get((slot.object_id, slot.event)) is not slot:
            self._unsubscribe(slot)  # every listener went away while subscribing
        return slot.subscription

    @staticmethod
    def _subscribe_done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("kurento: subscribe failed: %s", future.exception())

    def listen(
        self, target: MediaObject, event: str, callback: EventCallback
    ) -> asyncio.Future[str | None]:
        """Call ``callback`` for every ``event`` of ``target`` (its proxy's ``on``); the first
        listener subscribes on the server. The future gives the subscription id."""
        slot = self._slot(target, event)
        slot.callbacks.append(callback)
        assert slot.confirmed is not None
        return slot.confirmed

    def unlisten(self, object_id: str, event: str, callback: EventCallback | None) -> None:
        """Remove ``callback`` (every listener of ``event`` when None); the last one removed
        unsubscribes."""
        slot = self._slots.get((object_id, event))
        if slot is None:
            return
        if callback is None:
            slot.callbacks.clear()
        else:
            with contextlib.suppress(ValueError):
                slot.callbacks.remove(callback)
        if not slot.wanted:
            self._drop_slot(slot)

    def next_event(
        self, target: MediaObject, event: str, timeout: float | None
    ) -> Awaitable[dict[str, Any]]:
        """The ``data`` of the next ``event`` of ``target`` (its proxy's ``once``); listening
        starts now."""
        slot = self._slot(target, event)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        slot.waiters.append(waiter)
        confirmed = slot.confirmed
        assert confirmed is not None

        async def wait() -> dict[str, Any]:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(confirmed)
                    return await waiter
            finally:
                if waiter in slot.waiters:
                    slot.waiters.remove(waiter)
                    if not slot.wanted:
                        self._drop_slot(slot)

        return wait()

    def _drop_slot(self, slot: _EventSlot) -> None:
        key = (slot.object_id, slot.event)
        if self._slots.get(key) is slot:
            del self._slots[key]
        if slot.subscription is not None:
            self._unsubscribe(slot)
        # else: still subscribing; _subscribed unsubscribes when the answer comes

    def _unsubscribe(self, slot: _EventSlot) -> None:
        subscription, slot.subscription = slot.subscription, None
        conn = self._conn
        if (
            subscription is None
            or self._state is not ClientState.OPEN
            or conn is None
            or slot.epoch != self.epoch
        ):
            return  # a subscription left on the server only sends events nobody listens to
        future = self._send(
            conn, "unsubscribe", {"object": slot.object_id, "subscription": subscription}
        )
        future.add_done_callback(_ignore_result)

    @staticmethod
    def _fail_waiters(slot: _EventSlot, error: BaseException) -> None:
        waiters, slot.waiters = slot.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    # -- keepalive and reconnection ---------------------------------------------------------------

    async def _ping_loop(self) -> None:
        while self._state is not ClientState.CLOSED:
            await asyncio.sleep(self.ping_interval)
            conn = self._conn
            if self._state is not ClientState.OPEN or conn is None:
                continue
            # The first ping announces the interval, as kurento-client-js does.
            params = {"interval": int(self.ping_interval * 1000)} if self._pings == 0 else None
            self._pings += 1
            try:
                await self._call(
                    conn, "ping", params, timeout=min(self.timeout, self.ping_interval)
                )
            except KurentoTimeoutError:
                log.warning("kurento: %s did not answer a ping; reconnecting", self.url)
                conn.abort()
            except (KurentoConnectionError, KurentoError):
                pass  # the reader reports a lost connection

    def _on_lost(self, conn: _Connection, reason: str) -> None:
        self._fail_pending(conn, reason)
        if conn is not self._conn or self._state is not ClientState.OPEN:
            return  # an old socket, a socket being opened, or closing: nothing to recover
        log.warning("kurento: connection to %s lost (%s); reconnecting", self.url, reason)
        self._state = ClientState.RECONNECTING
        self._open.clear()
        self._conn = None
        self._notify("disconnected", reason)
        if self.reconnect_timeout <= 0:
            self._reconnect_task = asyncio.create_task(
                self._shutdown(f"connection lost ({reason})")
            )
        else:
            self._reconnect_task = asyncio.create_task(
                self._reconnect(reason), name="kurento-reconnect"
            )

    async def _reconnect(self, reason: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        last_error = reason
        attempt = 0
        while self._state is ClientState.RECONNECTING:
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            attempt += 1
            if loop.time() + delay > deadline:
                break
            await asyncio.sleep(delay)
            try:
                conn = await self._open_socket()
            except KurentoConnectionError as exc:
                last_error = str(exc)
                continue
            try:
                await self._resume(conn)
            except (KurentoConnectionError, KurentoTimeoutError, KurentoError) as exc:
                last_error = str(exc)
                conn.kill()
                continue
            except BaseException:  # cancelled by close()
                conn.kill()
                raise
            if self._state is not ClientState.RECONNECTING:
                conn.kill()
                return
            self._become_open(conn)
            lost, self._unreported_loss = self._unreported_loss, None
            log.info(
                "kurento: reconnected to %s (%s)",
                self.url,
                "new session" if lost else "session kept",
            )
            self._notify(
                "session_lost" if lost else "reconnected",
                f"session {lost} no longer exists on the server" if lost else "",
            )
            return
        await self._shutdown(
            f"could not reconnect within {self.reconnect_timeout:g}s: {last_error}"
        )

    async def _resume(self, conn: _Connection) -> None:
        """Re-bind the session to the new socket; when the server lost it, fail its users
        (:meth:`_lose_session`) and start a new session."""
        old = self._session.session_id
        if old is not None:
            try:
                self._server_id_from(await self._call(conn, "connect", {"sessionId": old}))
                return
            except KurentoError as exc:
                if exc.code == METHOD_NOT_FOUND:
                    return  # a server without connect: the session id is all we can keep
                if exc.code != INVALID_SESSION:
                    raise
            self._lose_session(old)
        self._server_id_from(await self._new_session(conn))

    def _lose_session(self, session_id: str) -> None:
        """Every object and listener of ``session_id`` is gone: make their users fail."""
        log.warning(
            "kurento: %s no longer knows session %s; its objects are gone", self.url, session_id
        )
        self._lost_sessions[self.epoch] = session_id
        self._unreported_loss = session_id  # told to listeners once reconnected
        self.epoch += 1
        self._session.session_id = None
        error = SessionLostError(
            f"the media server at {self.url} lost session {session_id} "
            f"(restarted, or garbage-collected it while the client was "
            f"disconnected): its objects are gone",
            session_id,
        )
        slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            slot.subscription = None
            self._fail_waiters(slot, error)
        self._objects.clear()


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: an unsubscribe that failed is of no consequence
