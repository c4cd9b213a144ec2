"""The one HTTP server of a runtime (docs/design/runtime.md, "The shared server").

One aiohttp application on one port serves, in this order: the admin API under ``/admin`` and
``/metrics``, the websocket paths of websocket-in/out nodes, the routes of http-in nodes, and
static files (``settings.http.static``). Routes and websocket paths are kept in our own tables,
looked up per request, because nodes add and remove them while the server runs (a reload).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from flowengine.durations import parse_duration
from flowengine.server.routes import RouteTable
from flowengine.server.websocket import normalize_origin

if TYPE_CHECKING:
    from flowengine.runtime import Runtime

log = logging.getLogger("flowengine.server")

RouteHandler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]
SocketHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_PORT = 1880
# Only this machine by default (secure by default: the admin API, the flows' websockets and
# endpoints are not offered to the network until a user says so); Node-RED binds every
# interface. ``settings.http.host: 0.0.0.0`` (or ``flowrun --host``) opens it.
DEFAULT_HOST = "127.0.0.1"
EVERY_INTERFACE = ("0.0.0.0", "::", "")
DEFAULT_MAX_BODY = 5 * 1024 * 1024  # bytes; Node-RED's apiMaxLength is "5mb"
DEFAULT_REQUEST_TIMEOUT = 120.0  # seconds; Node-RED's httpRequestTimeout
# aiohttp closes a connection that has not sent a complete request head this long after it
# opened (or after its last response): our defence against slowloris-style clients, since
# aiohttp has no separate header-read timeout. Node.js's server.headersTimeout is 60 s.
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_BACKLOG = 1024  # pending connections; bursts of hundreds of clients must not see refusals


class HttpServer:
    """The shared aiohttp server.

    Settings (``settings.http``): ``port`` (1880; 0 picks a free port), ``host`` (the address
    to listen on: ``127.0.0.1``; ``0.0.0.0`` for every IPv4 interface, ``::`` for every one),
    ``static`` (a folder, or a list of folders), ``max_body`` (bytes, 5 MiB),
    ``request_timeout`` (how long an http-in request may take to send its body and to get its
    http-response: 408 or 504 after that; 120 s), ``idle_timeout`` (a connection that sends no
    complete request head for this long, new or between keep-alive requests, is closed; 60 s),
    ``backlog`` (pending connections, 1024), ``admin_token`` (or the
    ``FLOWENGINE_ADMIN_TOKEN`` environment variable), ``error_details`` (false: the 500 that
    answers a request whose message failed uncaught says only "Internal Server Error"; true:
    it carries the error's text), ``origins`` (browser origins, besides the serving host's,
    allowed to open any of the server's websockets, ``/admin/events`` included:
    ``["https://app.example.org"]``; ``"*"`` allows every origin).
    """

    def __init__(self, runtime: Runtime, settings: dict[str, Any] | None = None):
        settings = dict(settings or {})
        self.runtime = runtime
        host = settings.get("host")
        self.host: str = DEFAULT_HOST if host is None else str(host)
        # ``port: null`` registers routes without listening (flow tests run that way).
        port = settings.get("port", DEFAULT_PORT)
        self.port: int | None = None if port is None else int(port)
        static = settings.get("static") or []
        self.static_dirs = [Path(p).resolve() for p in ([static] if isinstance(static, str)
                                                        else static)]
        self.max_body = int(settings.get("max_body", DEFAULT_MAX_BODY))
        self.request_timeout = parse_duration(settings.get("request_timeout",
                                                           DEFAULT_REQUEST_TIMEOUT))
        self.idle_timeout = parse_duration(settings.get("idle_timeout", DEFAULT_IDLE_TIMEOUT))
        self.backlog = int(settings.get("backlog", DEFAULT_BACKLOG))
        self.error_details = settings.get("error_details") is True
        self.admin_token: str | None = (settings.get("admin_token")
                                        or os.environ.get("FLOWENGINE_ADMIN_TOKEN") or None)
        origins = settings.get("origins") or []
        self.origins = frozenset(normalize_origin(str(o))
                                 for o in ([origins] if isinstance(origins, str) else origins))
        self.routes = RouteTable()
        self._sockets: dict[str, tuple[SocketHandler, object]] = {}
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=self.max_body)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        from flowengine.server.admin import AdminApi

        self.admin = AdminApi(self)

    # -- what nodes use -------------------------------------------------------------------------

    def add_route(self, method: str, path: str, handler: RouteHandler, owner: object) -> None:
        """Serve ``method path`` (Express syntax: ``/a/:id``) with ``handler(request, params)``."""
        self.routes.add(method, path, handler, owner)

    def add_websocket(self, path: str, handler: SocketHandler, owner: object) -> None:
        """Serve websocket upgrades on ``path`` with ``handler(request)``."""
        other = self._sockets.get(path)
        if other is not None and other[1] is not owner:
            raise ValueError(f"websocket path {path} is already served")
        self._sockets[path] = (handler, owner)

    def remove(self, owner: object) -> None:
        """Remove every route and websocket path ``owner`` added."""
        self.routes.remove_owner(owner)
        for path, (_, who) in list(self._sockets.items()):
            if who is owner:
                del self._sockets[path]

    @property
    def url(self) -> str:
        """The base URL a browser on this machine opens (``http://127.0.0.1:1880``), once
        started."""
        host = "127.0.0.1" if self.host in EVERY_INTERFACE else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def env(self) -> dict[str, Any]:
        """Where the server listens, as flows read it with ``env.get`` (docs/flow-format.md):
        ``FLOWENGINE_HTTP_HOST`` (the address bound), ``FLOWENGINE_HTTP_PORT``,
        ``FLOWENGINE_HTTP_URL`` (:attr:`url`); empty while it does not listen."""
        if not self.listening:
            return {}
        return {"FLOWENGINE_HTTP_HOST": self.host, "FLOWENGINE_HTTP_PORT": self.port,
                "FLOWENGINE_HTTP_URL": self.url}

    @property
    def listening(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._runner is not None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; with port 0 the chosen port is stored in ``self.port``; with None, don't.
        Calling it again while listening does nothing."""
        if self.port is None or self._runner is not None:
            return
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=2.0, keepalive_timeout=self.idle_timeout)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True,
                           backlog=self.backlog)
        try:
            await site.start()
        except OSError:  # e.g. the port is taken: leave nothing half set up behind
            await self._runner.cleanup()
            self._runner = None
            raise
        server = getattr(site, "_server", None)
        sockets = server.sockets if server is not None else []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        bound = ", ".join(sorted({_address(s.getsockname()) for s in sockets})) or self.host
        if self.host in EVERY_INTERFACE:
            log.info("http server listening on every interface (%s): other machines can "
                     "connect; here open %s/", bound, self.url)
        elif _is_loopback(self.host):
            log.info("http server listening on %s, this machine only (settings.http.host or "
                     "flowrun --host 0.0.0.0 to accept other machines): open %s/",
                     bound, self.url)
        else:
            log.info("http server listening on %s: open %s/", bound, self.url)

    async def stop(self) -> None:
        """Close websockets and stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- dispatch -------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/metrics" or path == "/admin" or path.startswith("/admin/"):
            return await self.admin.handle(request)
        socket = self._sockets.get(path)
        if socket is not None and request.headers.get("Upgrade", "").lower() == "websocket":
            return await socket[0](request)
        # Routes match the raw path (Express does), so an encoded "/" stays inside a parameter;
        # the decoded path is the fallback for routes written with non-ASCII characters.
        found = (self.routes.match(request.method, request.rel_url.raw_path)
                 or self.routes.match(request.method, path))
        if found is not None:
            route, params = found
            return await route.handler(request, params)
        if request.method in ("GET", "HEAD"):
            static = self._static_file(path)
            if static is not None:
                return web.FileResponse(static)
        allowed = (self.routes.allowed_methods(request.rel_url.raw_path)
                   or self.routes.allowed_methods(path))
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()

    def _static_file(self, path: str) -> Path | None:
        relative = path.lstrip("/")
        for root in self.static_dirs:
            try:
                candidate = (root / relative).resolve()
                if candidate.is_dir():
                    candidate = candidate / "index.html"
                # Never serve outside the static folder (../ in the path).
                if candidate.is_file() and candidate.is_relative_to(root):
                    return candidate
            except (OSError, ValueError):  # a NUL byte or a too long name: no such file
                continue
        return None


def _address(sockname: Any) -> str:
    """``host:port`` of a bound socket (``[::1]:1880`` for IPv6)."""
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
