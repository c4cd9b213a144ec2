"""``Router``: one Kurento endpoint in front of several media servers (workers, remote servers).

It speaks the Kurento protocol to clients exactly as one server does (sessions, request cache,
events) and forwards each request to the backend that holds its object:

* **Placement.** ``create MediaPipeline`` goes to the least loaded live backend
  (:meth:`Backend.load`); every other object goes where its pipeline is (the ``mediaPipeline``
  constructor parameter, a hub port's ``hub``), so a viewer's endpoint joins its source's
  pipeline wherever that is. Object ids are the backends' own (KMS's ``pipeline/element`` form),
  so the router finds an object's backend from its id and what it created.
* **Spreading viewers** (workers only): a ``WebRtcEndpoint`` for a pipeline whose worker holds
  ``viewers_per_worker`` endpoints or more goes to the least loaded other worker, into a shadow
  of the pipeline there (same id). Connecting a source to it makes the source's worker relay
  the source's encoded media to that worker (:mod:`.relay`); the connection is made there, from
  the source's shadow (same id) to the viewer. ``getChildren`` and ``getSinkConnections``
  include what lives on other workers.
* **Sessions.** A client session keeps its id on every backend it reaches: each client
  connection has one upstream connection per backend (:class:`~.upstream.Upstream`), bound to
  the session there, so each backend sends the session's events on it and the router passes
  them on untouched. When the client's connection closes, so do its upstreams: the backends
  count the session towards their garbage collection, as KMS does for a dropped client.
* **The ServerManager** is the union of the backends': ``getPipelines`` and ``getSessions``
  merged, ``getUsedMemory`` summed, ``getUsedCpu`` averaged, ``ObjectCreated`` and
  ``ObjectDestroyed`` from every backend (not those of shadows).
* **A backend that goes away** (a worker killed or hung, a remote server that vanished): its
  objects are gone. Sessions subscribed to ``Error`` on one of them get an ``Error`` event
  (``type`` ``MEDIA_SERVER_GONE``), subscribers of the ServerManager an ``ObjectDestroyed`` per
  object; requests under way fail with 40003 naming the server, later ones with 40101. Shadows
  of its pipelines on other workers, and the viewers in them, are released (no pipeline stays
  on a surviving worker for a session that lost its own). Other backends and their sessions go
  on. A worker is started again (:mod:`.backends`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from flowengine.kurento import errors
from flowengine.kurento.errors import KurentoError
from flowengine.kurento.jsonrpc import (
    Notification,
    Response,
    event_notification,
    parse_event,
)
from flowengine.media.cluster.backends import MANAGER, Backend
from flowengine.media.cluster.upstream import BackendGone, Upstream
from flowengine.media.dispatch import (
    FrameHandler,
    RequestCache,
    method_failed,
    run_transaction,
    string_param,
    transaction_operations,
    unknown_method,
)
from flowengine.media.sessions import FrameSink

log = logging.getLogger("flowengine.media.cluster")

GONE_ERROR_TYPE = "MEDIA_SERVER_GONE"
"""The ``type`` of the ``Error`` event sent for the objects of a backend that went away."""


class BackendDown(KurentoError):
    """A request could not reach its backend, or got no answer (40003 naming the server)."""

    def __init__(self, backend: Backend, what: str):
        super().__init__(errors.UNEXPECTED_ERROR, f"Media server {backend.name} {what}")
        self.backend = backend


@dataclass
class RouterSession:
    """A client session as the router knows it."""

    id: str
    connection: FrameSink | None = None
    detached_since: float | None = None
    backends: set[Backend] = field(default_factory=set)
    subscriptions: dict[str, tuple[str, str, dict[Backend, str]]] = field(default_factory=dict)
    """Subscription id -> (object, event type, the backends' own subscription ids)."""


@dataclass(eq=False)
class ConnectionState:
    """One client connection: its session and its upstream connections."""

    connection: FrameSink
    session: str | None = None
    upstreams: dict[Backend, Upstream] = field(default_factory=dict)
    opening: dict[Backend, asyncio.Future[Upstream]] = field(default_factory=dict)


@dataclass
class Relay:
    """A source relayed from its backend to another (see :mod:`.relay`)."""

    source: str
    origin: Backend
    target: Backend


class Router(FrameHandler):
    """See the module docstring. It stands in for a server's dispatcher (``handle_frame``) and
    registry (``connection_closed``, ``run_gc``, ``release_all``)."""

    def __init__(
        self,
        backends: list[Backend],
        *,
        gc_time: float = 240.0,
        viewers_per_worker: int = 200,
        request_cache_ttl: float = 20.0,
        request_cache_size: int = 10_000,
        call_timeout: float = 20.0,
    ):
        self.backends = backends
        self.gc_time = gc_time
        self.viewers_per_worker = viewers_per_worker
        self.call_timeout = call_timeout
        self.server_id = str(uuid.uuid4())
        self.cache = RequestCache(request_cache_ttl, request_cache_size)
        self.sessions: dict[str, RouterSession] = {}
        self.objects: dict[str, Backend] = {}
        """Every object the router created, by id: the backend holding it."""
        self.kinds: dict[str, str] = {}
        self.shadows: dict[Backend, set[str]] = {b: set() for b in backends}
        """Pipelines and sources of other backends mirrored on each backend (relays)."""
        self.relays: dict[tuple[str, Backend], Relay] = {}
        self._relay_locks: dict[tuple[str, Backend], asyncio.Lock] = {}
        self._connections: dict[int, ConnectionState] = {}
        self._http: aiohttp.ClientSession | None = None
        for backend in backends:
            backend.on_down = self._backend_down
            backend.on_destroyed = self._destroyed_on

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        await asyncio.gather(*(b.start(self._http) for b in self.backends))
        if not any(b.alive for b in self.backends):
            log.warning("no media server behind the router is up yet")

    async def release_all(self) -> None:
        """The server stops (its clients are gone): no client's connection goes on upstream.
        The backends are stopped by :meth:`stop`, once the port is closed."""
        for state in list(self._connections.values()):
            await self._close_upstreams(state)

    async def stop(self) -> None:
        """Release what was created on remote servers, stop the workers (each finishes its
        recordings and releases its objects)."""
        remote = [
            (oid, b) for oid, b in self.objects.items()
            if b.kind == "remote" and b.alive and "/" not in oid
        ]  # fmt: skip
        await asyncio.gather(
            *(b.call("release", {"object": oid}, timeout=2.0) for oid, b in remote),
            return_exceptions=True,
        )
        await asyncio.gather(*(b.stop() for b in self.backends), return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def run_gc(self, interval: float) -> None:
        """Forget sessions detached for ``gc_time`` (the backends collect their own)."""
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for sid in [
                s.id for s in self.sessions.values()
                if s.connection is None and s.detached_since is not None
                and now - s.detached_since >= self.gc_time
            ]:  # fmt: skip
                self._forget_session(sid)

    # --- FrameHandler (the session rules, as a server's) --------------------------------------

    def bound_session(self, connection: FrameSink) -> str | None:
        return self._state(connection).session

    def bind(self, sid: str, connection: FrameSink) -> None:
        self._bind(sid, self._state(connection))

    async def run(
        self, method: str, params: dict[str, Any] | None, request_id: Any, connection: Any
    ) -> Response:
        return await self.execute(method, params, request_id, self._state(connection))

    def connection_closed(self, connection: FrameSink) -> None:
        state = self._connections.pop(id(connection), None)
        if state is None:
            return
        session = self.sessions.get(state.session or "")
        if session is not None and session.connection is connection:
            session.connection = None
            session.detached_since = time.monotonic()
        asyncio.get_running_loop().create_task(self._close_upstreams(state))

    # --- sessions and connections ---------------------------------------------------------------

    def _state(self, connection: FrameSink) -> ConnectionState:
        state = self._connections.get(id(connection))
        if state is None:
            state = self._connections[id(connection)] = ConnectionState(connection)
        return state

    def _session(self, sid: str) -> RouterSession:
        session = self.sessions.get(sid)
        if session is None:
            session = self.sessions[sid] = RouterSession(sid, detached_since=time.monotonic())
        return session

    def _bind(self, sid: str, state: ConnectionState) -> None:
        session = self._session(sid)
        if state.session is not None and state.session != sid:
            previous = self.sessions.get(state.session)
            if previous is not None and previous.connection is state.connection:
                previous.connection = None
                previous.detached_since = time.monotonic()
        state.session = sid
        session.connection = state.connection
        session.detached_since = None

    def _forget_session(self, sid: str) -> None:
        self.sessions.pop(sid, None)
        self.cache.drop_session(sid)

    async def _close_upstreams(self, state: ConnectionState) -> None:
        upstreams = list(state.upstreams.values())
        state.upstreams.clear()
        await asyncio.gather(*(u.close() for u in upstreams), return_exceptions=True)

    async def _upstream(self, state: ConnectionState, backend: Backend) -> Upstream:
        """The client connection's connection to ``backend`` (opened on first use)."""
        upstream = state.upstreams.get(backend)
        if upstream is not None and not upstream.closed:
            return upstream
        pending = state.opening.get(backend)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Upstream] = asyncio.get_running_loop().create_future()
        state.opening[backend] = future
        try:
            assert self._http is not None
            upstream = Upstream(
                backend.url, self._http,
                on_event=lambda n, s=state, b=backend: self._forward_event(s, b, n),
            )  # fmt: skip
            await upstream.open(self.call_timeout)
            state.upstreams[backend] = upstream
            future.set_result(upstream)
            return upstream
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it through the shield
            raise
        finally:
            state.opening.pop(backend, None)

    async def _forward(
        self,
        state: ConnectionState,
        backend: Backend,
        method: str,
        params: dict[str, Any] | None,
    ) -> Response:
        """Send a client's request to ``backend`` on the client's upstream."""
        if not backend.alive:
            raise BackendDown(backend, "is down")
        sid = params.get("sessionId") if params else None
        try:
            upstream = await self._upstream(state, backend)
            answer = await upstream.call(method, params, self.call_timeout)
        except BackendGone:
            raise BackendDown(backend, "went away") from None
        except TimeoutError:
            raise BackendDown(backend, "did not answer") from None
        if isinstance(sid, str) and not answer.is_error:
            self._session(sid).backends.add(backend)
        return answer

    # --- events ---------------------------------------------------------------------------------

    def _forward_event(self, state: ConnectionState, backend: Backend, event: Notification) -> None:
        parsed = parse_event(event)
        if parsed is not None and parsed.object == MANAGER:
            subject = parsed.data.get("object") or parsed.data.get("objectId")
            if isinstance(subject, str) and subject in self.shadows.get(backend, ()):
                return  # a shadow, not an object of the client's
        state.connection.send_frame(event.encode())

    def _emit(self, sid: str, object_id: str, event_type: str, fields: dict[str, Any]) -> None:
        """An event of the router's own to a session (when it subscribed to it)."""
        session = self.sessions.get(sid)
        if session is None or session.connection is None:
            return
        wanted = ((o, t) for o, t, _ in session.subscriptions.values())
        if (object_id, event_type) not in wanted:
            return
        frame = event_notification(
            object_id, event_type, fields, timestamp_millis=int(time.time() * 1000)
        ).encode()
        session.connection.send_frame(frame)

    # --- methods --------------------------------------------------------------------------------

    async def execute(
        self,
        method: str,
        params: dict[str, Any] | None,
        request_id: Any,
        state: ConnectionState,
    ) -> Response:
        handler: Callable[..., Awaitable[Response]] | None = {
            "ping": self._ping,
            "connect": self._connect,
            "keepAlive": self._keep_alive,
            "closeSession": self._close_session,
            "create": self._create,
            "invoke": self._invoke,
            "describe": self._by_object,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "release": self._release,
            "ref": self._by_object,
            "unref": self._by_object,
            "transaction": self._transaction,
        }.get(method)
        if handler is None:
            return unknown_method(request_id)
        try:
            response = await handler(method, params, state)
            return Response(request_id, response.result, response.error)
        except Exception as exc:
            return method_failed(method, request_id, exc)

    def _sid(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """``params`` with a sessionId (a new one when absent, as KMS's getOrCreateSessionId)."""
        params = dict(params or {})
        sid = params.get("sessionId")
        if sid is None:
            params["sessionId"] = str(uuid.uuid4())
        elif not isinstance(sid, str):
            raise errors.param_type("sessionId", "a string")
        self._session(params["sessionId"])
        return params

    async def _ping(self, method: str, params: Any, state: ConnectionState) -> Response:
        result: dict[str, Any] = {"value": "pong"}
        sid = params.get("sessionId") if isinstance(params, dict) else None
        if isinstance(sid, str):
            result["sessionId"] = sid
        return Response(None, result)

    async def _connect(self, method: str, params: Any, state: ConnectionState) -> Response:
        sid = params.get("sessionId") if isinstance(params, dict) else None
        if sid is None:
            sid = str(uuid.uuid4())
            self._session(sid)
        elif not isinstance(sid, str):
            raise errors.param_type("sessionId", "a string")
        elif sid not in self.sessions:
            raise errors.invalid_session()
        else:
            # A reconnection: bind the session again on every backend that holds some of it,
            # so that its events come back on this connection.
            for backend in [b for b in self.sessions[sid].backends if b.alive]:
                with contextlib.suppress(KurentoError):
                    await self._forward(state, backend, "connect", {"sessionId": sid})
        return Response(None, {"serverId": self.server_id, "sessionId": sid})

    async def _keep_alive(self, method: str, params: Any, state: ConnectionState) -> Response:
        sid = params.get("sessionId") if isinstance(params, dict) else None
        if not isinstance(sid, str):
            raise errors.param_required("sessionId")
        if sid not in self.sessions:
            raise errors.invalid_session()
        return Response(None, {"sessionId": sid})

    async def _close_session(self, method: str, params: Any, state: ConnectionState) -> Response:
        sid = params.get("sessionId") if isinstance(params, dict) else None
        if not isinstance(sid, str):
            raise errors.param_required("sessionId")
        session = self.sessions.get(sid)
        if session is not None:
            for backend in [b for b in session.backends if b.alive]:
                with contextlib.suppress(KurentoError):
                    await self._forward(state, backend, "closeSession", params)
            self._forget_session(sid)
        return Response(None, None)

    def locate(self, object_id: str) -> Backend:
        """The backend holding ``object_id`` (40101 when none does)."""
        backend = self.objects.get(object_id) or self.objects.get(object_id.split("/", 1)[0])
        if backend is None or not backend.alive:
            raise errors.object_not_found(object_id)
        return backend

    async def _by_object(self, method: str, params: Any, state: ConnectionState) -> Response:
        if params is None:
            raise errors.params_required()
        params = self._sid(params)
        oid = string_param(params, "object")
        if oid == MANAGER:
            return await self._forward(state, self._any_backend(), method, params)
        return await self._forward(state, self.locate(oid), method, params)

    def _any_backend(self) -> Backend:
        for backend in self.backends:
            if backend.alive:
                return backend
        raise KurentoError(errors.NOT_ENOUGH_RESOURCES, "No media server is available")

    async def _some_backend_alive(self) -> None:
        """Wait a little (``call_timeout`` at most) while every backend is down: a worker
        being started again takes a few seconds."""
        deadline = time.monotonic() + self.call_timeout
        while not any(b.alive for b in self.backends) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    def _least_loaded(self, candidates: list[Backend]) -> Backend:
        alive = [b for b in candidates if b.alive]
        if not alive:
            raise KurentoError(errors.NOT_ENOUGH_RESOURCES, "No media server is available")
        return min(alive, key=lambda b: (b.load(self.viewers_per_worker), b.pipelines))

    async def _create(self, method: str, params: Any, state: ConnectionState) -> Response:
        if params is None:
            raise errors.params_required()
        params = self._sid(params)
        type_name = params.get("type")
        ctor = params.get("constructorParams")
        ctor = ctor if isinstance(ctor, dict) else {}
        short = type_name.rsplit(".", 1)[-1] if isinstance(type_name, str) else ""
        if short == "MediaPipeline":
            # Nothing exists yet: a server that turns out to be gone is tried no more.
            tried: set[Backend] = set()
            while True:
                await self._some_backend_alive()
                backend = self._least_loaded([b for b in self.backends if b not in tried])
                try:
                    return await self._create_on(backend, short, method, params, state)
                except BackendDown as exc:
                    tried.add(backend)
                    if not [b for b in self.backends if b.alive and b not in tried]:
                        raise
                    log.info("%s; the pipeline goes elsewhere", exc.message)
        else:
            parent = ctor.get("mediaPipeline") or ctor.get("hub")
            if not isinstance(parent, str):
                backend = self._any_backend()  # the backend answers the missing parameter
            else:
                backend = self.locate(parent)
                if short == "WebRtcEndpoint" and backend.kind == "worker":
                    backend = await self._viewer_backend(backend, parent)
        return await self._create_on(backend, short, method, params, state)

    async def _create_on(
        self,
        backend: Backend,
        short: str,
        method: str,
        params: dict[str, Any],
        state: ConnectionState,
    ) -> Response:
        # Counted at once: concurrent creates see each other's placement.
        counter = {"MediaPipeline": "pipelines", "WebRtcEndpoint": "endpoints"}.get(short)
        if counter is not None:
            setattr(backend, counter, getattr(backend, counter) + 1)
        answer: Response | None = None
        try:
            answer = await self._forward(state, backend, method, params)
        finally:
            created = answer is not None and not answer.is_error and isinstance(answer.value, str)
            if counter is not None and not created:
                setattr(backend, counter, max(0, getattr(backend, counter) - 1))
        if created:
            self.objects[answer.value] = backend
            self.kinds[answer.value] = short
        return answer

    async def _viewer_backend(self, home: Backend, parent: str) -> Backend:
        """Where a new WebRtcEndpoint of ``parent``'s pipeline goes: its pipeline's worker
        until that holds ``viewers_per_worker`` endpoints, then the least loaded other one
        (which gets a shadow of the pipeline)."""
        if home.endpoints < self.viewers_per_worker:
            return home
        others = [b for b in self.backends if b.kind == "worker" and b is not home and b.alive]
        if not others:
            return home
        target = self._least_loaded(others)
        if target.endpoints >= home.endpoints:
            return home
        pipeline = parent.split("/", 1)[0]
        if pipeline not in self.shadows[target]:
            # An empty shadow pipeline; sources join it when they are connected (relays).
            self.shadows[target].add(pipeline)  # before: its ObjectCreated is not passed on
            try:
                await target.call("flowengine.relayIn", {"pipeline": pipeline})
            except BaseException:
                self.shadows[target].discard(pipeline)
                raise
        return target

    async def _invoke(self, method: str, params: Any, state: ConnectionState) -> Response:
        if params is None:
            raise errors.params_required()
        params = self._sid(params)
        oid = string_param(params, "object")
        operation = params.get("operation")
        if oid == MANAGER:
            return await self._invoke_manager(params, state)
        backend = self.locate(oid)
        op_params = params.get("operationParams")
        sink = op_params.get("sink") if isinstance(op_params, dict) else None
        if operation in ("connect", "disconnect") and isinstance(sink, str):
            sink_backend = self.locate(sink)
            if sink_backend is not backend:
                if operation == "connect":
                    await self._ensure_relay(oid, backend, sink_backend)
                return await self._forward(state, sink_backend, method, params)
        answer = await self._forward(state, backend, method, params)
        if answer.is_error or not isinstance(answer.value, list):
            return answer
        if operation == "getChildren":
            extra = [o for o, b in self.objects.items() if b is not backend
                     and o.split("/", 1)[0] == oid and o != oid]  # fmt: skip
            answer.result["value"] = answer.value + [o for o in extra if o not in answer.value]
        elif operation == "getSinkConnections":
            for (source, target), _ in list(self.relays.items()):
                if source == oid and target.alive:
                    with contextlib.suppress(KurentoError):
                        more = await self._forward(state, target, method, params)
                        answer.result["value"] = answer.value + (more.value or [])
        return answer

    async def _ensure_relay(self, source: str, origin: Backend, target: Backend) -> None:
        """``source``'s media relayed from ``origin`` to ``target`` (see :mod:`.relay`)."""
        key = (source, target)
        lock = self._relay_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self.relays:
                return
            out = await origin.call("flowengine.relayOut", {"object": source})
            pipeline = source.split("/", 1)[0]
            added = {source} | ({pipeline} if self.objects.get(pipeline) is not target else set())
            added -= self.shadows[target]
            self.shadows[target] |= added  # before: their ObjectCreated is not passed on
            try:
                await target.call(
                    "flowengine.relayIn",
                    {"pipeline": pipeline, "object": source, "port": out["port"],
                     "formats": out["formats"]},
                )  # fmt: skip
            except BaseException:
                self.shadows[target] -= added
                raise
            self.relays[key] = Relay(source, origin, target)

    async def _invoke_manager(self, params: dict[str, Any], state: ConnectionState) -> Response:
        operation = params.get("operation")
        merge = {"getPipelines", "getSessions", "getUsedMemory", "getUsedCpu"}
        if operation not in merge:
            return await self._forward(state, self._any_backend(), "invoke", params)
        answers = await asyncio.gather(
            *(self._forward(state, b, "invoke", params) for b in self.backends if b.alive),
            return_exceptions=True,
        )
        values = [a.value for a in answers if isinstance(a, Response) and not a.is_error]
        if not values:
            good = [a for a in answers if isinstance(a, Response)]
            return good[0] if good else Response(None, {"sessionId": params["sessionId"]})
        if operation in ("getPipelines", "getSessions"):
            own_sessions = {b.session_id for b in self.backends}
            merged: list[str] = []
            for value in values:
                merged += [v for v in value if v not in merged and v not in own_sessions]
            value: Any = merged
        elif operation == "getUsedMemory":
            value = sum(int(v) for v in values)
        else:
            value = round(sum(float(v) for v in values) / len(values), 2)
        return Response(None, {"sessionId": params["sessionId"], "value": value})

    async def _subscribe(self, method: str, params: Any, state: ConnectionState) -> Response:
        if params is None:
            raise errors.params_required()
        params = self._sid(params)
        oid = string_param(params, "object")
        sid = params["sessionId"]
        targets = [b for b in self.backends if b.alive] if oid == MANAGER else [self.locate(oid)]
        own: dict[Backend, str] = {}
        answer: Response | None = None
        for backend in targets:
            answer = await self._forward(state, backend, method, params)
            if answer.is_error:
                return answer
            own[backend] = answer.value
        if answer is None:
            raise KurentoError(errors.NOT_ENOUGH_RESOURCES, "No media server is available")
        sub_id = answer.value if len(own) == 1 else str(uuid.uuid4())
        self._session(sid).subscriptions[sub_id] = (oid, str(params.get("type")), own)
        return Response(None, {"sessionId": sid, "value": sub_id})

    async def _unsubscribe(self, method: str, params: Any, state: ConnectionState) -> Response:
        if params is None:
            raise errors.params_required()
        params = self._sid(params)
        sid = params["sessionId"]
        sub_id = params.get("subscription")
        entry = self._session(sid).subscriptions.pop(sub_id, None) if isinstance(sub_id, str) \
            else None  # fmt: skip
        if entry is None:
            return Response(None, {"sessionId": sid})  # unknown: not an error (as KMS)
        for backend, own in entry[2].items():
            if backend.alive:
                with contextlib.suppress(KurentoError):
                    await self._forward(state, backend, method, {**params, "subscription": own})
        return Response(None, {"sessionId": sid})

    async def _release(self, method: str, params: Any, state: ConnectionState) -> Response:
        if params is None:
            raise errors.params_required()
        params = self._sid(params)
        oid = string_param(params, "object")
        backend = self.objects.get(oid) or self.objects.get(oid.split("/", 1)[0])
        if backend is None or not backend.alive:
            return Response(None, {"sessionId": params["sessionId"]})  # as KMS: not an error
        answer = await self._forward(state, backend, method, params)
        if not answer.is_error:
            await self._released(oid)
        return answer

    async def _released(self, oid: str) -> None:
        """Forget ``oid`` (a pipeline: with its elements, and its shadows elsewhere)."""
        gone = [o for o in self.objects if o == oid or o.startswith(oid + "/")]
        for o in gone:
            self._forget_object(o)
        if "/" in oid:
            return
        for backend, shadows in self.shadows.items():
            if oid in shadows:
                shadows.difference_update({s for s in shadows if s.split("/", 1)[0] == oid})
                if backend.alive:
                    with contextlib.suppress(Exception):
                        await backend.call("release", {"object": oid})
        for key in [k for k in self.relays if k[0] == oid or k[0].startswith(oid + "/")]:
            del self.relays[key]

    def _destroyed_on(self, backend: Backend, oid: str) -> None:
        """``backend`` destroyed ``oid`` (a release through the router, or its own session
        collection): an object of the router's that lived there is forgotten, a pipeline with
        its shadows elsewhere."""
        if self.objects.get(oid) is backend:
            self._forget_object(oid)
            if "/" not in oid:
                asyncio.get_running_loop().create_task(self._released(oid))

    def _forget_object(self, oid: str) -> None:
        backend = self.objects.pop(oid, None)
        kind = self.kinds.pop(oid, "")
        if backend is None:
            return
        if kind == "MediaPipeline":
            backend.pipelines = max(0, backend.pipelines - 1)
        elif kind == "WebRtcEndpoint":
            backend.endpoints = max(0, backend.endpoints - 1)
        for key in [k for k in self.relays if k[0] == oid]:
            del self.relays[key]

    async def _transaction(self, method: str, params: Any, state: ConnectionState) -> Response:
        """Each operation routed on its own (dispatch.run_transaction)."""
        if params is None:
            raise errors.params_required()
        operations = transaction_operations(params)
        params = self._sid(params)
        sid = params["sessionId"]

        async def step(index: int, op_method: str, op_params: dict[str, Any]) -> Response:
            return await self.execute(op_method, op_params, index, state)

        responses = await run_transaction(operations, sid, step)
        return Response(None, {"sessionId": sid, "value": [r.to_dict() for r in responses]})

    # --- a backend went away ----------------------------------------------------------------------

    async def _backend_down(self, backend: Backend, reason: str) -> None:
        """See the module docstring."""
        gone = [oid for oid, b in self.objects.items() if b is backend]
        gone_pipelines = {oid for oid in gone if "/" not in oid}
        # Objects elsewhere whose pipeline went with it (viewers spread to other workers).
        gone += [oid for oid, b in self.objects.items()
                 if b is not backend and oid.split("/", 1)[0] in gone_pipelines]  # fmt: skip
        self.shadows[backend] = set()
        for key in [k for k, r in self.relays.items() if backend in (r.origin, r.target)]:
            del self.relays[key]
        # Shadows of its pipelines on the other workers, with the viewers in them: released
        # before the clients are told, so a client that looks finds nothing of them.
        for other, shadows in self.shadows.items():
            for pipeline in [p for p in gone_pipelines if p in shadows]:
                shadows.difference_update({s for s in shadows if s.split("/", 1)[0] == pipeline})
                if other.alive:
                    with contextlib.suppress(Exception):
                        await other.call("release", {"object": pipeline})
        description = f"Media server {backend.name} went away ({reason})"
        for oid in gone:
            self._forget_object(oid)
            for sid in list(self.sessions):
                self._emit(sid, oid, "Error",
                           {"description": description, "errorCode": errors.UNEXPECTED_ERROR,
                            "type": GONE_ERROR_TYPE})  # fmt: skip
                self._emit(sid, MANAGER, "ObjectDestroyed", {"objectId": oid})
        for session in self.sessions.values():
            session.backends.discard(backend)
            for sub_id in [k for k, v in session.subscriptions.items()
                           if v[0] in gone]:  # fmt: skip
                del session.subscriptions[sub_id]
        for state in self._connections.values():
            upstream = state.upstreams.pop(backend, None)
            if upstream is not None:
                await upstream.close()
