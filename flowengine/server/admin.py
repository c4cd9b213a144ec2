"""The admin API under ``/admin`` and the Prometheus metrics at ``/metrics``.

=========================  =========================================================
``GET /admin/flows``       loaded flows: name, file, description, node ids and types
``GET /admin/types``       node types: type, category, description, schema
``GET /admin/nodes``       running nodes: status and counters (in, out, errors, time)
``GET /admin/nodes/{id}``  one node
``POST /admin/inject/{id}`` trigger an inject node (body: optional ``{"props": {...}}``)
``POST /admin/reload``     re-read the flow files and apply the changes
``GET /admin/events``      websocket: debug output, status changes, errors, warnings
``GET /metrics``           per-node counters in Prometheus text format
=========================  =========================================================

Reading needs nothing. Mutating calls need a token (``FLOWENGINE_ADMIN_TOKEN`` or
``settings.http.admin_token``) as ``Authorization: Bearer <token>``; without a configured
token the API is read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from flowengine.server.app import HttpServer

log = logging.getLogger("flowengine.admin")

EVENT_QUEUE_LIMIT = 1000  # events buffered per admin websocket client before old ones drop


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


class AdminApi:
    """Handles ``/admin/*`` and ``/metrics`` for one server."""

    def __init__(self, server: HttpServer):
        self.server = server
        self.runtime = server.runtime

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        method = request.method
        if path == "/metrics" and method == "GET":
            return web.Response(text=self.metrics(), content_type="text/plain",
                                charset="utf-8", headers={"X-Content-Type-Options": "nosniff"})
        parts = path.split("/")[2:]  # after "/admin"
        if method == "GET":
            if parts == ["flows"]:
                return _json(self.flows())
            if parts == ["types"]:
                return _json(self.types())
            if parts == ["nodes"]:
                return _json([self.node_info(n) for n in self.runtime.nodes.values()])
            if len(parts) == 2 and parts[0] == "nodes":
                node = self.runtime.get_node(parts[1])
                if node is None:
                    return _json({"error": f"no node '{parts[1]}'"}, 404)
                return _json(self.node_info(node))
            if parts == ["events"]:
                return await self.events(request)
            if parts in ([], [""]):
                return _json({"endpoints": ["/admin/flows", "/admin/types", "/admin/nodes",
                                            "/admin/events", "/metrics"]})
        if method == "POST":
            denied = self._check_token(request)
            if denied is not None:
                return denied
            if len(parts) == 2 and parts[0] == "inject":
                return await self.inject(request, parts[1])
            if parts == ["reload"]:
                return await self.reload()
        return _json({"error": f"no admin endpoint {method} {request.path}"}, 404)

    # -- reading --------------------------------------------------------------------------------

    def flows(self) -> list[dict[str, Any]]:
        flowset = self.runtime.flowset
        return [{"flow": f.info.name, "file": str(f.path), "description": f.info.description,
                 "nodes": [{"id": i, "type": flowset.nodes[i].type,
                            "name": flowset.nodes[i].name or i,
                            "disabled": flowset.nodes[i].disabled,
                            "wires": flowset.nodes[i].wires} for i in f.node_ids]}
                for f in flowset.flows]

    def types(self) -> list[dict[str, Any]]:
        registry = getattr(self.runtime, "registry", None)
        classes = registry.types() if registry is not None else sorted(
            {s.node_class for s in self.runtime.flowset.nodes.values()},
            key=lambda c: (c.category, c.type))
        return [{"type": c.type, "category": c.category, "description": c.description,
                 "inputs": c.inputs, "config": c.is_config, "schema": c.schema,
                 "example": c.example} for c in classes]

    @staticmethod
    def node_info(node: Any) -> dict[str, Any]:
        return {"id": node.id, "type": node.type, "name": node.name, "flow": node.flow.name,
                "state": node.state, "status": node.last_status or {},
                "counters": {"in": node.msgs_in, "out": node.msgs_out,
                             "errors": node.error_count,
                             "handler_seconds": round(node.handler_seconds, 6)}}

    def metrics(self) -> str:
        """Prometheus text exposition of the per-node counters."""
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

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Stream runtime events as JSON text frames: ``{"kind": ..., "data": ...}``."""
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
        await ws.prepare(request)
        queue: deque[str] = deque(maxlen=EVENT_QUEUE_LIMIT)
        wake = asyncio.Event()

        def on_event(kind: str, data: dict[str, Any]) -> None:
            queue.append(json.dumps({"kind": kind, "data": data}, default=str))
            wake.set()

        unsubscribe = self.runtime.events.subscribe(on_event)

        async def reader() -> None:
            async for msg in ws:  # the client sends nothing we need; watch for close
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break

        reading = asyncio.create_task(reader())
        try:
            while not ws.closed and not reading.done():
                waiter = asyncio.create_task(wake.wait())
                await asyncio.wait({waiter, reading}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                wake.clear()
                while queue and not ws.closed:
                    await ws.send_str(queue.popleft())
        except (ConnectionError, RuntimeError):
            pass
        finally:
            unsubscribe()
            reading.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    # -- mutating -------------------------------------------------------------------------------

    def _check_token(self, request: web.Request) -> web.Response | None:
        token = self.server.admin_token
        if not token:
            return _json({"error": "the admin API is read-only: set FLOWENGINE_ADMIN_TOKEN to "
                                   "allow changes"}, 403)
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:], token):
            return _json({"error": "a valid bearer token is required"}, 401)
        return None

    async def inject(self, request: web.Request, node_id: str) -> web.Response:
        node = self.runtime.get_node(node_id)
        if node is None or not hasattr(node, "inject"):
            return _json({"error": f"no inject node '{node_id}'"}, 404)
        overrides = None
        if request.can_read_body:
            try:
                body = await request.json()
            except (ValueError, UnicodeDecodeError):
                return _json({"error": "the body must be JSON"}, 400)
            if isinstance(body, dict) and isinstance(body.get("props"), dict):
                overrides = body["props"]
        try:
            msg = node.inject(overrides)
        except Exception as exc:  # a bad override (e.g. an invalid path) is the caller's error
            return _json({"error": str(exc)}, 400)
        return _json({"injected": node_id, "msgid": msg.get("_msgid")})

    async def reload(self) -> web.Response:
        reloader = getattr(self.runtime, "reload_from_files", None)
        if reloader is None:
            return _json({"error": "this runtime was not started from files"}, 409)
        try:
            summary = await reloader()
        except Exception as exc:
            return _json({"error": str(exc)}, 400)
        return _json(summary)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
