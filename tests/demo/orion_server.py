"""A small NGSI v2 server for the demo's Orion tests, following the FIWARE Orion Context Broker
API as Orion documents it ("FIWARE-NGSI v2 Specification" and Orion's user manual), for the
calls the flows make and the web app shows:

- ``GET /version`` -> ``{"orion": {"version", "uptime", "git_hash", ...}}``
- ``POST /v2/entities`` (JSON entity, ``id`` required, ``type`` default ``Thing``) -> 201 with
  ``Location: /v2/entities/{id}?type={type}``; 422 ``Already Exists``; ``?options=upsert``
  updates instead; ``?options=keyValues`` takes plain values
- ``GET /v2/entities`` (``id``, ``type``, ``limit`` (default 20, at most 1000), ``offset``,
  ``options=count`` -> ``Fiware-Total-Count``, ``options=keyValues``) -> list
- ``GET /v2/entities/{id}`` -> entity; 404 ``NotFound``
- ``POST /v2/entities/{id}/attrs`` -> 204 (attributes added or replaced; ``?options=append``:
  422 if one exists)
- ``PATCH /v2/entities/{id}/attrs`` -> 204 (only existing attributes; 422 ``do not exist``)
- ``DELETE /v2/entities/{id}`` -> 204
- ``GET /v2/subscriptions`` -> list; ``POST /v2/subscriptions`` -> 201 with Location

Errors are Orion's ``{"error", "description"}`` bodies: 400 ``ParseError`` for JSON that does
not parse, 400 ``BadRequest`` for a body of the wrong shape, 415 for a body that is not
``application/json``, 404 ``NotFound``, 422 ``Unprocessable``. Attribute types are inferred as
Orion does when not given (``Number``, ``Text``, ``Boolean``, ``StructuredValue``, ``None``).
Entities are kept per ``Fiware-Service`` header. Every request is recorded (``requests``) for
the tests to inspect; ``fail_with`` makes every request answer a status (an Orion in trouble).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

VERSION = "3.10.1"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "description": description}, status=status)


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "Text"
    if value is None:
        return "None"
    return "StructuredValue"


def _attribute(value: Any, key_values: bool) -> dict[str, Any]:
    if key_values or not isinstance(value, dict):
        return {"type": _infer_type(value), "value": value, "metadata": {}}
    plain = value.get("value")
    return {"type": value.get("type") or _infer_type(plain), "value": plain,
            "metadata": value.get("metadata") or {}}


class OrionTestServer:
    """``await server.start()``, ``server.url``, ``await server.close()``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.services: dict[str, dict[str, dict[str, Any]]] = {}
        self.subscriptions: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.started = time.monotonic()
        self.port = 0
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/version", self.version)
        app.router.add_get("/v2/entities", self.list_entities)
        app.router.add_post("/v2/entities", self.create_entity)
        app.router.add_get("/v2/entities/{id}", self.get_entity)
        app.router.add_delete("/v2/entities/{id}", self.delete_entity)
        app.router.add_post("/v2/entities/{id}/attrs", self.append_attrs)
        app.router.add_patch("/v2/entities/{id}/attrs", self.update_attrs)
        app.router.add_get("/v2/subscriptions", self.list_subscriptions)
        app.router.add_post("/v2/subscriptions", self.create_subscription)
        app.middlewares.append(self._record)
        self.app = app

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def entities(self, service: str = "") -> dict[str, dict[str, Any]]:
        """The entities of a service, by id."""
        return self.services.setdefault(service, {})

    def calls(self, method: str, path_prefix: str = "") -> list[Recorded]:
        return [r for r in self.requests
                if r.method == method and r.path.startswith(path_prefix)]

    # -- handlers -------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(Recorded(request.method, request.path, dict(request.query), body,
                                      dict(request.headers)))
        if self.fail_with is not None:
            return _error(self.fail_with, "InternalServerError", "failing on purpose")
        return await handler(request)

    async def version(self, request: web.Request) -> web.Response:
        uptime = int(time.monotonic() - self.started)
        return web.json_response({"orion": {
            "version": VERSION, "uptime": f"0 d, 0 h, 0 m, {uptime} s",
            "git_hash": "nogitversion", "compile_time": "nodate", "compiled_by": "test",
            "compiled_in": "test", "release_date": "nodate", "machine": "x86_64",
            "doc": "https://fiware-orion.rtfd.io/en/3.10.1/", "libversions": {}}})

    async def _body(self, request: web.Request) -> tuple[Any, web.Response | None]:
        if not request.content_type.startswith("application/json"):
            return None, _error(415, "UnsupportedMediaType",
                                "not supported content type: " + request.content_type)
        try:
            return json.loads(await request.read()), None
        except ValueError:
            return None, _error(400, "ParseError", "Errors found in incoming JSON buffer")

    def _service(self, request: web.Request) -> dict[str, dict[str, Any]]:
        return self.entities(request.headers.get("Fiware-Service", ""))

    def _render(self, entity: dict[str, Any], key_values: bool) -> dict[str, Any]:
        out = {"id": entity["id"], "type": entity["type"]}
        for name, attr in entity["attrs"].items():
            out[name] = attr["value"] if key_values else dict(attr)
        return out

    async def create_entity(self, request: web.Request) -> web.Response:
        body, problem = await self._body(request)
        if problem is not None:
            return problem
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            return _error(400, "BadRequest", "entity id is missing")
        options = request.query.get("options", "").split(",")
        key_values = "keyValues" in options
        entities = self._service(request)
        attrs = {k: _attribute(v, key_values) for k, v in body.items() if k not in ("id", "type")}
        existing = entities.get(body["id"])
        if existing is not None:
            if "upsert" not in options:
                return _error(422, "Unprocessable", "Already Exists")
            existing["attrs"].update(attrs)
            return web.Response(status=204)
        entity_type = body.get("type") or "Thing"
        entities[body["id"]] = {"id": body["id"], "type": entity_type, "attrs": attrs}
        return web.Response(status=201, headers={
            "Location": f"/v2/entities/{body['id']}?type={entity_type}"})

    async def list_entities(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", "20"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            return _error(400, "BadRequest", "Bad pagination data")
        if not 1 <= limit <= 1000 or offset < 0:
            return _error(400, "BadRequest", "Bad pagination data")
        found = list(self._service(request).values())
        if "id" in query:
            ids = query["id"].split(",")
            found = [e for e in found if e["id"] in ids]
        if "type" in query:
            types = query["type"].split(",")
            found = [e for e in found if e["type"] in types]
        options = query.get("options", "").split(",")
        page = found[offset:offset + limit]
        headers = {"Fiware-Total-Count": str(len(found))} if "count" in options else {}
        return web.json_response([self._render(e, "keyValues" in options) for e in page],
                                 headers=headers)

    def _find(self, request: web.Request) -> dict[str, Any] | None:
        return self._service(request).get(request.match_info["id"])

    @staticmethod
    def _not_found() -> web.Response:
        return _error(404, "NotFound",
                      "The requested entity has not been found. Check type and id")

    async def _entity_and_attrs(self, request: web.Request
                                ) -> tuple[dict[str, Any], dict[str, Any]] | web.Response:
        """The entity named in the path and the attributes object of the body, or the error
        reply Orion gives (404, 415, 400)."""
        entity = self._find(request)
        if entity is None:
            return self._not_found()
        body, problem = await self._body(request)
        if problem is not None:
            return problem
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "attributes must be a JSON object")
        return entity, body

    async def get_entity(self, request: web.Request) -> web.Response:
        entity = self._find(request)
        if entity is None:
            return self._not_found()
        key_values = "keyValues" in request.query.get("options", "").split(",")
        return web.json_response(self._render(entity, key_values))

    async def delete_entity(self, request: web.Request) -> web.Response:
        if self._service(request).pop(request.match_info["id"], None) is None:
            return self._not_found()
        return web.Response(status=204)

    async def append_attrs(self, request: web.Request) -> web.Response:
        found = await self._entity_and_attrs(request)
        if isinstance(found, web.Response):
            return found
        entity, body = found
        options = request.query.get("options", "").split(",")
        if "append" in options:
            clash = [k for k in body if k in entity["attrs"]]
            if clash:
                return _error(422, "Unprocessable",
                              f"one or more of the attributes in the request already exist: "
                              f"{entity['id']} - {clash}")
        key_values = "keyValues" in options
        entity["attrs"].update({k: _attribute(v, key_values) for k, v in body.items()})
        return web.Response(status=204)

    async def update_attrs(self, request: web.Request) -> web.Response:
        found = await self._entity_and_attrs(request)
        if isinstance(found, web.Response):
            return found
        entity, body = found
        missing = [k for k in body if k not in entity["attrs"]]
        if missing:
            return _error(422, "Unprocessable",
                          f"do not exist: {entity['id']} - [ {', '.join(missing)} ]")
        key_values = "keyValues" in request.query.get("options", "").split(",")
        entity["attrs"].update({k: _attribute(v, key_values) for k, v in body.items()})
        return web.Response(status=204)

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        return web.json_response(self.subscriptions)

    async def create_subscription(self, request: web.Request) -> web.Response:
        body, problem = await self._body(request)
        if problem is not None:
            return problem
        if not isinstance(body, dict) or "subject" not in body or "notification" not in body:
            return _error(400, "BadRequest", "subject and notification are required")
        subscription = {"id": uuid.uuid4().hex[:24], "status": "active", **body}
        self.subscriptions.append(subscription)
        return web.Response(status=201,
                            headers={"Location": f"/v2/subscriptions/{subscription['id']}"})
