"""``http-in``: serve an HTTP endpoint on the shared server and start a flow per request.

Each request becomes ``{payload, req, res, _msgid}``. ``msg["req"]`` (:class:`HttpRequest`) and
``msg["res"]`` (:class:`flowengine.http.HttpResponseHandle`) are plain objects, not dicts, so the
runtime never copies them: every copy of the message made on fan-out refers to the same request,
and the first http-response node to reach ``res`` answers it.

The route handler waits for that answer for the server's ``request_timeout`` and sends 504 when
none came; a client that goes away first gets nothing and the late answer is dropped quietly.
When the message fails and no catch node handles the error, the runtime answers 500 at once
(:meth:`~flowengine.http.HttpResponseHandle.fail`).
Request bodies are parsed as Node-RED's http-in does (its ``rawBodyParser`` and body-parser):
JSON -> object, urlencoded and multipart forms -> dict, text -> str, binary -> bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from flowengine import Node, new_msgid
from flowengine import schema as s
from flowengine.http import HttpResponseHandle, headers_dict

METHODS = ("get", "post", "put", "delete", "patch", "all")
# application/* subtypes Node-RED reads as bytes; every other application/* is text.
_BINARY_APPLICATION = {"octet-stream", "cbor", "x-protobuf"}
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


class BodyError(Exception):
    """A request body that cannot be accepted; ``status`` is the HTTP answer (400, 413)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class HttpRequest(Mapping[str, Any]):
    """``msg["req"]``: the request, read-only.

    Read as attributes (``msg["req"].params["id"]``) or as a mapping, so property paths such as
    ``req.params.id`` in change and switch nodes work too. Fields: ``method``, ``url`` (path and
    query string, Express's ``req.url``), ``path``, ``params`` (from ``/users/:id``), ``query``
    (a repeated key gives a list), ``headers`` (lower-case names), ``cookies``, ``body`` (the
    parsed body; None for GET), ``files`` (multipart uploads when the node has ``upload``:
    ``{fieldname, originalname, mimetype, size, buffer}``), ``remote`` (the peer's address).
    ``raw`` is the underlying ``aiohttp.web.Request``. Express's ``originalUrl`` (as ``url``:
    routes are mounted at the root), ``baseUrl`` (``""``), ``hostname`` (the Host header without
    its port), ``ip`` (as ``remote``), ``protocol`` (``http`` or ``https``) and ``route``
    (``{path, methods}``: the http-in node's path pattern) are there too, as Node-RED flows read
    them.
    """

    FIELDS = ("method", "url", "originalUrl", "baseUrl", "path", "hostname", "ip", "protocol",
              "route", "params", "query", "headers", "cookies", "body", "files", "remote")
    __slots__ = ("_cookies", "_headers", "_query", "body", "files", "params", "raw", "route")

    def __init__(self, request: web.Request, params: dict[str, str], body: Any = None,
                 files: list[dict[str, Any]] | None = None, route: dict[str, Any] | None = None):
        self.raw = request
        self.params = params
        self.body = body
        self.files = files
        self.route = route
        # Headers, query and cookies are built on first use: most flows never read them, and
        # this object is made for every request.
        self._headers: dict[str, Any] | None = None
        self._query: dict[str, Any] | None = None
        self._cookies: dict[str, str] | None = None

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def url(self) -> str:
        return self.raw.raw_path  # as sent: path and query string, still percent-encoded

    @property
    def originalUrl(self) -> str:  # Express's name
        return self.raw.raw_path

    @property
    def baseUrl(self) -> str:  # Express's name
        return ""  # http-in routes are mounted at the root

    @property
    def path(self) -> str:
        return self.raw.path

    @property
    def hostname(self) -> str | None:
        host = self.raw.headers.get("Host")
        if not host:
            return None
        if host.startswith("["):  # an IPv6 literal keeps its brackets, as in Express
            return host[:host.index("]") + 1] if "]" in host else host
        return host.split(":", 1)[0]

    @property
    def ip(self) -> str | None:
        return self.raw.remote

    @property
    def protocol(self) -> str:
        return self.raw.scheme

    @property
    def remote(self) -> str | None:
        return self.raw.remote

    @property
    def headers(self) -> dict[str, Any]:
        if self._headers is None:
            self._headers = headers_dict(self.raw.headers)
        return self._headers

    @property
    def query(self) -> dict[str, Any]:
        if self._query is None:
            self._query = multi_to_dict(self.raw.query)
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = dict(self.raw.cookies)
        return self._cookies

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """A field (``req.get("query")``), or, as Express's ``req.get``, a header by name."""
        if key in self.FIELDS:
            return getattr(self, key)
        return self.raw.headers.get(key, default)

    def __getitem__(self, key: str) -> Any:
        if key not in self.FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.FIELDS)

    def __len__(self) -> int:
        return len(self.FIELDS)

    def __repr__(self) -> str:
        return f"<HttpRequest {self.method} {self.url} from {self.remote}>"


class HttpInNode(Node):
    type = "http-in"
    category = "network"
    inputs = 0
    is_source = True
    description = ("Serves an HTTP endpoint on the shared server (settings.http) and sends one "
                   "message per request: msg.payload is the parsed body (JSON -> object, form -> "
                   "dict, text -> str, binary -> bytes; for GET the query parameters), msg.req "
                   "the request (method, url, path, params, query, headers, cookies, body, "
                   "remote) and msg.res the handle an http-response node answers. A request no "
                   "http-response answers within settings.http.request_timeout gets a 504; one "
                   "whose message fails with no catch node to handle it gets a 500 at once.")
    example = textwrap.dedent("""\
        get-user:
          type: http-in
          method: get
          url: /users/:id
          wires: [load-user]
        """)
    schema = s.obj({
        "method": s.enum(METHODS, "get", "The HTTP method served (`all`: any method)."),
        "url": s.string(description="The path, in Express syntax: `/users/:id` captures "
                        "msg.req.params.id, `/files/*` the rest of the path.", minLength=1),
        "upload": s.boolean(False, "Accept multipart file uploads into msg.req.files."),
    }, required=["url"])

    def configure(self, config: dict[str, Any]) -> None:
        url = config["url"]
        self._url = url if url.startswith("/") else "/" + url
        self._method = config["method"]
        self._upload = bool(config["upload"])
        self._pending: set[HttpResponseHandle] = set()

    async def on_start(self) -> None:
        server = self.runtime.http
        server.add_route(self._method, self._url, self._serve, self)
        if self.runtime.started and not server.listening:
            # Added by a reload to a runtime that served no HTTP so far.
            await server.start()

    def on_close(self, removed: bool) -> None:
        # Requests already in the flow keep their handle: an http-response may still answer
        # them while the runtime drains, and the server answers the rest when it stops.
        self.runtime.http.remove(self)

    @property
    def pending(self) -> int:
        """Requests waiting for their http-response."""
        return len(self._pending)

    async def _serve(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        server = self.runtime.http
        timeout = server.request_timeout if server.request_timeout > 0 else None
        body: Any = None
        files: list[dict[str, Any]] | None = None
        if request.method in ("GET", "HEAD"):
            payload: Any = multi_to_dict(request.query)
        else:
            try:
                async with asyncio.timeout(timeout):
                    body, files = await read_body(request, server.max_body, self._upload)
            except BodyError as exc:
                self.warn(f"{exc.message}: {request.method} {request.path_qs} from "
                          f"{request.remote}; answered {exc.status}")
                return _plain(exc.status, exc.message, close=exc.status == 413)
            except TimeoutError:
                self.warn(f"request body not received within {timeout:g}s: {request.method} "
                          f"{request.path_qs} from {request.remote}; answered 408")
                return await _answer_and_hang_up(request, _plain(408, "Request Timeout"))
            payload = body
        loop = asyncio.get_running_loop()
        future: asyncio.Future[web.StreamResponse | None] = loop.create_future()
        res = HttpResponseHandle(request, future, self.id)
        self._pending.add(res)
        route = {"path": self._url, "methods": {
            ("_all" if self._method == "all" else self._method): True}}
        self.send({"_msgid": new_msgid(), "req": HttpRequest(request, params, body, files, route),
                   "res": res, "payload": payload})
        # A plain timer rather than asyncio.timeout(): this is the per-request hot path, and a
        # timer that completes the future costs a fraction of a task cancellation.
        timer = loop.call_later(timeout, res.time_out) if timeout else None
        try:
            response = await future
        except asyncio.CancelledError:
            res.expire("closed")  # the server is stopping
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._pending.discard(res)
        if response is None:
            if res.connected:
                self.warn(f"no http-response answered {request.method} {request.path_qs} from "
                          f"{request.remote} within {timeout:g}s; answered 504")
            return _plain(504, "Gateway Timeout")
        return response


async def read_body(request: web.Request, max_body: int,
                    upload: bool) -> tuple[Any, list[dict[str, Any]] | None]:
    """The parsed body of ``request`` and its uploaded files (multipart with ``upload``).

    Raises :class:`BodyError` for a body over ``max_body`` bytes (413) or invalid JSON (400).
    """
    length = request.content_length
    if length is not None and length > max_body:
        raise BodyError(413, f"request body of {length} bytes is over the {max_body} byte limit")
    mimetype = request.content_type if "Content-Type" in request.headers else ""
    try:
        if mimetype == _MULTIPART:
            return await _read_multipart(request, upload)
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyError(413, f"request body is over the {max_body} byte limit") from None
    if mimetype == "application/json" or mimetype.endswith("+json"):
        if not data.strip():
            return {}, None  # body-parser's answer to an empty JSON body
        try:
            return json.loads(data), None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BodyError(400, f"invalid JSON body ({exc})") from None
    charset = request.charset or "utf-8"
    if mimetype == _FORM:
        from urllib.parse import parse_qsl

        text = data.decode(charset, errors="replace")
        return _pairs_to_dict(parse_qsl(text, keep_blank_values=True)), None
    if _is_text(mimetype):
        return data.decode(charset, errors="replace"), None
    if mimetype.startswith("application/"):
        # Other application types (javascript, yaml, ...) are text when they decode.
        try:
            return data.decode(charset), None
        except (UnicodeDecodeError, LookupError):
            return data, None
    return data, None


async def _read_multipart(request: web.Request,
                          upload: bool) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    form = await request.post()  # enforces client_max_size (the server's max_body)
    fields: list[tuple[str, Any]] = []
    files: list[dict[str, Any]] = []
    for name, value in form.items():
        if isinstance(value, web.FileField):
            content = value.file.read()
            if upload:
                # multer's shape, which Node-RED flows read from msg.req.files.
                files.append({"fieldname": name, "originalname": value.filename,
                              "mimetype": value.content_type, "size": len(content),
                              "buffer": content})
            else:
                fields.append((name, content))
        else:
            fields.append((name, value))
    return _pairs_to_dict(fields), files if upload else None


def _is_text(mimetype: str) -> bool:
    """Node-RED's rawBodyParser: no type, text/*, and XML are text."""
    if not mimetype or mimetype.startswith("text/"):
        return True
    subtype = mimetype.partition("/")[2]
    return subtype == "xml" or subtype.endswith("+xml")


def _pairs_to_dict(pairs: Any) -> dict[str, Any]:
    """Form or query pairs as a dict; a repeated key collects its values in a list."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            previous = result[key]
            if isinstance(previous, list):
                previous.append(value)
            else:
                result[key] = [previous, value]
        else:
            result[key] = value
    return result


def multi_to_dict(multi: MultiMapping[Any]) -> dict[str, Any]:
    """A query string's MultiDict as Express's ``req.query``: ``?a=1&a=2`` -> ``{"a": [...]}``."""
    if not multi:
        return {}
    return _pairs_to_dict(multi.items())


def _plain(status: int, text: str, close: bool = False) -> web.Response:
    response = web.Response(status=status, text=text)
    if close:
        # Do not read the rest of an oversized or stalled body: answer and hang up.
        response.force_close()
    return response


async def _answer_and_hang_up(request: web.Request,
                              response: web.StreamResponse) -> web.StreamResponse:
    """Send ``response`` and close the connection now. Otherwise aiohttp would linger for up
    to 10 s reading the rest of a body that a stalled client is not sending."""
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        await response.write_eof()
    transport = request.transport
    if transport is not None:
        transport.close()  # after the buffered answer is written
    return response
