"""The admin API under ``/admin`` and the Prometheus metrics at ``/metrics``.

=========================== =========================================================
``GET /admin/flows``        loaded flows: name, file, description, node ids and types
``GET /admin/types``        node types: type, category, description, schema
``GET /admin/nodes``        running nodes: status and counters (in, out, errors, time)
``GET /admin/nodes/{id}``   one node
``POST /admin/inject/{id}`` trigger an inject node (body: optional ``{"props": {...}}``)
``POST /admin/reload``      re-read the flow files and apply the changes
``GET /admin/events``       websocket: debug output, status changes, errors, warnings
``GET /metrics``            per-node counters in Prometheus text format
``GET /admin/``             the flow view, a page for browsers (``admin_ui``); other
                            clients get the list of endpoints
``GET /admin/view``         what the flow view draws: flows, nodes, wires, links, groups
``GET /admin/source/{id}``  a node's configuration as YAML, with file and line; secrets
                            masked
=========================== =========================================================

Access. Reading (``GET``, ``/admin/events``, ``/metrics``) is open to clients on a loopback
address. Other hosts read only with the token (``FLOWENGINE_ADMIN_TOKEN`` or
``settings.http.admin_token``; node statuses name internal addresses and ports), and without a
configured token they get 403. Changing (``POST``) always needs the token (403 when none is
configured). The token goes in ``Authorization: Bearer <token>``; ``/admin/events`` also takes
it as ``?access_token=`` or in the first frame, ``{"token": ...}`` (a browser cannot set
headers on a websocket; without a valid token within :data:`TOKEN_FRAME_TIMEOUT` seconds the
socket is closed with 4401). The flow view's page and files (``/admin/``, ``/admin/ui/...``)
hold no data and need no token: the page asks for it. A missing or wrong token is 401, and a
client with :data:`MAX_FAILURES` wrong tokens within :data:`FAILURE_WINDOW` seconds gets 429
until the window has passed. ``/admin/events`` refuses (403) browser pages of other origins
than the serving host and ``settings.http.origins``. Behind a reverse proxy every client looks
local: let the proxy keep ``/admin`` and ``/metrics`` to itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from flowengine.errors import FlowLoadError
from flowengine.server import admin_ui
from flowengine.server.websocket import origin_allowed

if TYPE_CHECKING:
    from flowengine.loader import FlowSet
    from flowengine.runtime import Runtime
    from flowengine.server.app import HttpServer

log = logging.getLogger("flowengine.admin")

#: Events buffered per ``/admin/events`` client. When a client reads slower than the runtime
#: produces, the oldest buffered events are dropped (and counted, see :meth:`AdminApi.events`):
#: the runtime never waits for a client, and a client costs at most this many encoded events.
EVENT_QUEUE_LIMIT = 1000
EVENT_FRAME_LIMIT = 64 * 1024  # bytes a client may send us (it has nothing to say)
MAX_FAILURES = 10  # wrong tokens from one address within FAILURE_WINDOW before 429
FAILURE_WINDOW = 60.0  # seconds
TOKEN_FRAME_TIMEOUT = 10.0  # seconds an /admin/events socket may take to send its token
FAILURE_ADDRESSES = 4096  # addresses whose failures are remembered (the oldest are forgotten)

# Which methods each endpoint (the path after /admin, split at "/"; "*" is an id) answers.
_ENDPOINTS: dict[tuple[str, ...], str] = {
    (): "GET", ("flows",): "GET", ("types",): "GET", ("nodes",): "GET", ("nodes", "*"): "GET",
    ("events",): "GET", ("inject", "*"): "POST", ("reload",): "POST",
    ("view",): "GET", ("source", "*"): "GET",
}


def _endpoint_method(parts: tuple[str, ...]) -> str | None:
    """The method the endpoint at ``/admin/<parts>`` answers; None if there is no such one."""
    if parts in _ENDPOINTS:
        return _ENDPOINTS[parts]
    if len(parts) > 1 and parts[0] == "ui":
        return "GET"  # the flow view's files: /admin/ui/<path under admin_ui/static>
    if len(parts) == 2 and parts[1]:
        return _ENDPOINTS.get((parts[0], "*"))
    return None


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers,
                             dumps=lambda d: json.dumps(d, default=str))


class FailedTokens:
    """Wrong tokens per client address in the last ``window`` seconds (bounded memory)."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW,
                 addresses: int = FAILURE_ADDRESSES):
        self.limit = limit
        self.window = window
        self.addresses = addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float]:
        stamps = self._failures.get(address)
        if stamps is None:
            return deque()
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()
        if not stamps:
            del self._failures[address]
        return stamps

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: now)."""
        now = time.monotonic()
        stamps = self._recent(address, now)
        if len(stamps) < self.limit:
            return 0.0
        return max(0.0, self.window - (now - stamps[0]))

    def add(self, address: str) -> None:
        now = time.monotonic()
        stamps = self._recent(address, now)
        if not stamps:
            self._failures[address] = stamps
            while len(self._failures) > self.addresses:
                self._failures.popitem(last=False)
        stamps.append(now)


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class NotReloadable(Exception):
    """The runtime cannot re-read its flows (no node registry, or not loaded from files)."""


class AdminApi:
    """Handles ``/admin/*`` and ``/metrics`` for one server."""

    def __init__(self, server: HttpServer):
        self.server = server
        self.runtime = server.runtime
        self._reloading = asyncio.Lock()  # one reload at a time
        self._event_sockets: set[web.WebSocketResponse] = set()
        self.failed_tokens = FailedTokens()
        self._counters = admin_ui.CounterFeed(self.runtime)
        # Event streams never end by themselves: close them when the server shuts down, or the
        # shutdown would wait for them until its timeout.
        server.app.on_shutdown.append(self._close_event_sockets)

    @property
    def event_clients(self) -> int:
        """How many ``/admin/events`` websockets are open."""
        return len(self._event_sockets)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer a request for ``/metrics`` or under ``/admin``: 404 for an unknown endpoint,
        405 for a wrong method, then the token check for mutating calls."""
        path = request.path.rstrip("/") or "/"
        method = request.method
        if path == "/metrics":
            if method != "GET":
                return _json({"error": f"{method} not allowed"}, 405, {"Allow": "GET"})
            denied = self._check_access(request, mutating=False)
            if denied is not None:
                return denied
            return web.Response(body=self.metrics().encode(), headers={
                "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
                "X-Content-Type-Options": "nosniff"})
        parts = tuple(path.split("/")[2:])  # after "/admin"
        allowed = _endpoint_method(parts)
        if allowed is None:
            return _json({"error": f"no admin endpoint {method} {request.path}"}, 404)
        if method != allowed:
            return _json({"error": f"{method} not allowed"}, 405, {"Allow": allowed})
        if parts == () or parts[0] == "ui":  # the flow view's page and files: no data
            return await self._dispatch(request, parts)
        events = parts == ("events",)
        denied = self._check_access(request, mutating=method == "POST", query_token=events)
        if events and denied is not None and denied.status == 401:
            return await self.events(request, token_frame=True)
        if denied is not None:
            return denied
        return await self._dispatch(request, parts)

    async def _dispatch(self, request: web.Request, parts: tuple[str, ...]) -> web.StreamResponse:
        match parts:
            case () if admin_ui.wants_page(request):
                if not request.path.endswith("/"):  # the page's links are relative to /admin/
                    raise web.HTTPFound("/admin/")
                return admin_ui.page()
            case ():
                return _json({"endpoints": [f"{m} /admin/{'/'.join(p).replace('*', '{id}')}"
                                            for p, m in _ENDPOINTS.items() if p]
                              + ["GET /metrics"]})
            case ("flows",):
                return _json(self.flows())
            case ("types",):
                return _json(self.types())
            case ("nodes",):
                return _json([self.node_info(n) for n in self.runtime.nodes.values()])
            case ("nodes", node_id):
                node = self.runtime.get_node(node_id)
                if node is None:
                    return _json({"error": f"no node '{node_id}'"}, 404)
                return _json(self.node_info(node))
            case ("events",):
                return await self.events(request)
            case ("inject", node_id):
                return await self.inject(request, node_id)
            case ("reload",):
                return await self.reload()
            case ("view",):
                return _json(admin_ui.flow_view(self.runtime.flowset))
            case ("source", node_id):
                source = admin_ui.node_source(self.runtime.flowset, node_id)
                if source is None:
                    return _json({"error": f"no node '{node_id}'"}, 404)
                return _json(source)
            case ("ui", *path):
                return admin_ui.asset(tuple(path)) or _json(
                    {"error": f"no file {request.path}"}, 404)
        raise AssertionError(f"unhandled admin endpoint {parts}")  # _ENDPOINTS lists them all

    # -- reading --------------------------------------------------------------------------------

    def flows(self) -> list[dict[str, Any]]:
        """Each loaded flow with its nodes (disabled ones too) and their wires."""
        flowset = self.runtime.flowset
        return [{"flow": f.info.name, "file": str(f.path), "description": f.info.description,
                 "nodes": [{"id": i, "type": flowset.nodes[i].type,
                            "name": flowset.nodes[i].name or i,
                            "disabled": flowset.nodes[i].disabled,
                            "wires": flowset.nodes[i].wires} for i in f.node_ids]}
                for f in flowset.flows]

    def types(self) -> list[dict[str, Any]]:
        """The registered node types; without a registry, the types the loaded flows use."""
        registry = getattr(self.runtime, "registry", None)
        classes = registry.types() if registry is not None else sorted(
            {s.node_class for s in self.runtime.flowset.nodes.values()},
            key=lambda c: (c.category, c.type))
        return [{"type": c.type, "category": c.category, "description": c.description,
                 "inputs": c.inputs, "config": c.is_config, "schema": c.schema,
                 "example": c.example} for c in classes]

    @staticmethod
    def node_info(node: Any) -> dict[str, Any]:
        """A running node's state, last status and counters."""
        return {"id": node.id, "type": node.type, "name": node.name, "flow": node.flow.name,
                "state": node.state, "status": node.last_status or {},
                "counters": admin_ui.counters(node)}

    def metrics(self) -> str:
        """Prometheus text exposition (format 0.0.4) of the per-node counters."""
        lines: list[str] = []
        series = (("flowengine_node_messages_in_total", "counter", "Messages received.",
                   "msgs_in"),
                  ("flowengine_node_messages_out_total", "counter", "Messages sent.", "msgs_out"),
                  ("flowengine_node_errors_total", "counter", "Errors reported.", "error_count"),
                  ("flowengine_node_handler_seconds_total", "counter",
                   "Time spent in the node's input handler.", "handler_seconds"))
        nodes = list(self.runtime.nodes.values())
        for name, kind, help_text, attr in series:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for node in nodes:
                labels = (f'node="{_label(node.id)}",type="{_label(node.type)}",'
                          f'flow="{_label(node.flow.name)}"')
                lines.append(f"{name}{{{labels}}} {getattr(node, attr)}")
        lines.append("# HELP flowengine_messages_pending Deliveries queued or running.")
        lines.append("# TYPE flowengine_messages_pending gauge")
        lines.append(f"flowengine_messages_pending {self.runtime.router.pending}")
        return "\n".join(lines) + "\n"

    async def events(self, request: web.Request,
                     token_frame: bool = False) -> web.StreamResponse:
        """Stream runtime events as JSON text frames: ``{"kind": ..., "data": ...}``.

        Kinds are the runtime's (``debug``, ``status``, ``error``, ``log``, ``reload``),
        with ``?counters=1`` ``counters`` (changed node counters once a second, see
        ``admin_ui.live``), and ``dropped``
        (``{"count": n}``): the client read too slowly and the ``n`` oldest buffered events
        were discarded just before the events that follow.
        """
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, request.host, self.server.origins):
            log.warning("admin events: refused a page of origin %r from %s", origin,
                        request.remote)
            return _json({"error": "origin not allowed"}, 403)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=EVENT_FRAME_LIMIT)
        await ws.prepare(request)
        if token_frame and not await self._token_from_frame(request, ws):
            await ws.close(code=4401, message=b"a valid token is required")
            return ws
        limit = EVENT_QUEUE_LIMIT
        queue: deque[str] = deque()
        dropped = 0
        wake = asyncio.Event()

        def on_event(kind: str, data: dict[str, Any]) -> None:
            # Called synchronously by the runtime: never block, never grow without bound.
            nonlocal dropped
            if len(queue) >= limit:
                queue.popleft()
                dropped += 1
            queue.append(json.dumps({"kind": kind, "data": data}, default=str))
            wake.set()

        unsubscribe = self.runtime.events.subscribe(on_event)
        detach_counters = (self._counters.attach(on_event) if request.query.get("counters")
                           else lambda: None)
        self._event_sockets.add(ws)

        async def reader() -> None:
            async for msg in ws:  # the client sends nothing we need; watch for close
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break

        reading = asyncio.create_task(reader())
        waiter: asyncio.Task[Any] | None = None
        try:
            while not ws.closed and not reading.done():
                waiter = asyncio.create_task(wake.wait())
                await asyncio.wait({waiter, reading}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                wake.clear()
                while queue and not ws.closed:
                    if dropped:
                        lost, dropped = dropped, 0
                        await ws.send_str(json.dumps({"kind": "dropped",
                                                      "data": {"count": lost}}))
                    await ws.send_str(queue.popleft())
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-send
        finally:
            unsubscribe()
            detach_counters()
            self._event_sockets.discard(ws)
            for task in (reading, waiter):
                if task is not None:
                    task.cancel()
            await asyncio.gather(reading, *(() if waiter is None else (waiter,)),
                                 return_exceptions=True)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _token_from_frame(self, request: web.Request, ws: web.WebSocketResponse) -> bool:
        """Whether the socket's first frame is ``{"token": <the admin token>}``."""
        try:
            msg = await ws.receive(timeout=TOKEN_FRAME_TIMEOUT)
            given = json.loads(msg.data).get("token") if msg.type == WSMsgType.TEXT else None
        except (TimeoutError, ValueError, AttributeError):
            given = None
        if isinstance(given, str) and self._token_matches(given):
            return True
        self.failed_tokens.add(request.remote or "?")
        return False

    def _token_matches(self, given: str) -> bool:
        token = self.server.admin_token or ""
        # Compare bytes: compare_digest refuses non-ASCII text, and a header may hold any.
        return bool(token) and hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8"))

    async def _close_event_sockets(self, _app: web.Application) -> None:
        for ws in list(self._event_sockets):
            with contextlib.suppress(Exception):
                await ws.close(message=b"server shutdown")

    # -- mutating -------------------------------------------------------------------------------

    def _check_access(self, request: web.Request, mutating: bool,
                      query_token: bool = False) -> web.Response | None:
        """None when the request may go on, else the refusal (see the module docstring)."""
        if not mutating and _loopback(request.remote):
            return None  # reading on this machine
        token = self.server.admin_token
        if not token:
            if mutating:
                return _json({"error": "the admin API is read-only: set "
                                       "FLOWENGINE_ADMIN_TOKEN to allow changes"}, 403)
            return _json({"error": "the admin API answers other hosts only with a token: "
                                   "set FLOWENGINE_ADMIN_TOKEN"}, 403)
        address = request.remote or "?"
        wait = self.failed_tokens.retry_after(address)
        if wait:
            return _json({"error": "too many wrong tokens; try again later"}, 429,
                         {"Retry-After": str(int(wait) + 1)})
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" and query_token:
            scheme, given = "bearer", request.query.get("access_token", "")
        if scheme.lower() != "bearer" or not self._token_matches(given):
            if given.strip():  # a guess (a request without any token is no guess)
                self.failed_tokens.add(address)
            return _json({"error": "a valid bearer token is required"}, 401,
                         {"WWW-Authenticate": 'Bearer realm="flowengine"'})
        return None

    async def inject(self, request: web.Request, node_id: str) -> web.Response:
        """Trigger an inject node; ``{"props": {path: value}}`` replaces its properties."""
        node = self.runtime.get_node(node_id)
        if node is None or not callable(getattr(node, "inject", None)):
            return _json({"error": f"no inject node '{node_id}'"}, 404)
        overrides = None
        if request.can_read_body:
            try:
                body = json.loads(await request.read() or b"null")
            except (ValueError, UnicodeDecodeError):
                return _json({"error": "the body must be JSON"}, 400)
            if body is not None and not isinstance(body, dict):
                return _json({"error": "the body must be a JSON object"}, 400)
            props = (body or {}).get("props")
            if props is not None and not isinstance(props, dict):
                return _json({"error": "props must be an object: message path -> value"}, 400)
            overrides = props
        try:
            msg = node.inject(overrides)
        except Exception as exc:  # a bad override (e.g. an invalid path) is the caller's error
            return _json({"error": str(exc)}, 400)
        return _json({"injected": node_id, "msgid": msg.get("_msgid")})

    async def reload(self) -> web.Response:
        """Re-read the flow files: 200 with the summary, 400 with every load error (the
        running flows untouched), 409 when the runtime cannot reload."""
        async with self._reloading:
            try:
                summary = await reload_from_files(self.runtime)
            except NotReloadable as exc:
                return _json({"error": str(exc)}, 409)
            except FlowLoadError as exc:
                errors = [str(e) for e in exc.errors]
                log.error("reload refused: %d error(s); the running flows are unchanged",
                          len(errors))
                return _json({"error": "the flow files have errors; nothing was changed",
                              "errors": errors}, 400)
            except Exception as exc:
                log.exception("reload failed")
                return _json({"error": f"reload failed: {exc}"}, 500)
        return _json(summary)


async def reload_from_files(runtime: Runtime) -> dict[str, Any]:
    """Load the files the runtime's flows came from again and apply them (``Runtime.reload``:
    only added, changed and removed nodes restart).

    Returns ``{"added", "changed", "removed"}`` (node ids) and ``warnings`` (load warnings,
    and a note when settings changed: those apply only at the next start). Raises
    :class:`~flowengine.errors.FlowLoadError` without touching the running flows when the
    files are invalid now, and :class:`NotReloadable` when the runtime has no node registry
    or no flow files. Files given to ``flowrun`` as a folder are re-read, but a file added to
    that folder is not picked up (``flowrun --watch`` does that).
    """
    from flowengine.loader import Loader

    if runtime.registry is None:
        raise NotReloadable("this runtime has no node registry to load flows with")
    files = _root_files(runtime.flowset)
    if not files:
        raise NotReloadable("this runtime was not started from flow files")
    flowset = Loader(runtime.registry).load(files)
    warnings = [str(w) for w in flowset.warnings]
    if _file_settings(flowset) != _file_settings(runtime.flowset):
        warnings.append("settings changed; they apply when flowrun is restarted")
    summary: dict[str, Any] = dict(await runtime.reload(flowset))
    summary["warnings"] = warnings
    return summary


def _root_files(flowset: FlowSet) -> list[Path]:
    """The loaded files no other loaded file includes (the includes are followed again, so a
    file dropped from an ``include`` list is dropped from the flows)."""
    from flowengine.loader import expand_paths

    included: set[Path] = set()
    for flow in flowset.flows:
        for path in flow.includes:
            included.update(p.resolve() for p in (expand_paths([path]) if path.is_dir()
                                                  else [path]))
    roots = [f.path for f in flowset.flows if f.path.resolve() not in included]
    return roots or flowset.files  # an include cycle among all files: load them all


def _file_settings(flowset: FlowSet) -> dict[Path, dict[str, Any]]:
    # Each file's own settings: the merged ones may carry overrides such as flowrun --port.
    return {f.path.resolve(): f.settings for f in flowset.flows}


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
