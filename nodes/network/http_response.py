"""``http-response``: answer the request an http-in node started (``msg["res"]``).

Status, headers, cookies and body follow Node-RED's node, which hands them to Express:
a dict or list (or a boolean) is sent as JSON, bytes as they are, a string as
``text/html; charset=utf-8`` unless a content type is given, a number as its text, and no
payload as an empty body. Configured headers win over ``msg.headers``; ``msg.headers`` copied
unchanged from an http-request response is ignored, as in Node-RED.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping
from http.cookies import CookieError
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from flowengine import MISSING, ConfigError, Node, NodeError
from flowengine import schema as s
from flowengine.http import REQUEST_NODE_HEADER, HttpResponseHandle, unmodified_response_headers
from flowengine.js import to_string

# Computed from the body by the server; a value copied from elsewhere would be wrong.
_DROPPED_HEADERS = {"content-length", "transfer-encoding", "connection", REQUEST_NODE_HEADER}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field names
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")  # would split the header: response splitting
_COOKIE_OPTIONS = {"path": "path", "domain": "domain", "expires": "expires", "secure": "secure",
                   "http_only": "httponly", "httpOnly": "httponly", "httponly": "httponly",
                   "same_site": "samesite", "sameSite": "samesite", "samesite": "samesite",
                   "max_age": "max_age"}


class HttpResponseNode(Node):
    type = "http-response"
    category = "network"
    outputs = 0
    description = ("Answers the HTTP request of an http-in node (msg.res). The status is "
                   "`status_code`, else msg.statusCode, else 200; headers are `headers` over "
                   "msg.headers; msg.cookies sets cookies ({name: value} or {name: {value, "
                   "max_age, path, domain, secure, http_only, same_site}}; a null value clears "
                   "one). msg.payload is the body: a dict or list as JSON, bytes as is, a string "
                   "as text/html unless a content type is set.")
    example = textwrap.dedent("""\
        reply:
          type: http-response
          status_code: 201
          headers:
            Cache-Control: no-store
        """)
    schema = s.obj({
        "status_code": s.integer(description="The status; when absent msg.statusCode, else 200.",
                                 minimum=100, maximum=599),
        "headers": {"type": "object", "description": "Response headers (name: value); they "
                    "override msg.headers.",
                    "additionalProperties": {"type": ["string", "number", "boolean"]}},
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._status = config.get("status_code")
        self._headers = {name: to_string(value)
                         for name, value in (config.get("headers") or {}).items()}
        for name in self._headers:
            if name.lower() in _DROPPED_HEADERS:
                raise ConfigError(f"header '{name}' is set by the server", f"headers.{name}")

    def on_input(self, msg: dict[str, Any]) -> None:
        res = msg.get("res")
        if not isinstance(res, HttpResponseHandle):
            self.warn("no response object: msg.res must come from an http-in node")
            return
        if res.answered:
            if res.outcome == "timeout":
                self.warn(f"too late: {res.request.method} {res.request.path_qs} was answered "
                          "504 after the request timeout")
            else:
                self.warn(f"{res.request.method} {res.request.path_qs} was already answered")
            return
        try:
            response = build_response(msg, self._status, self._headers)
        except (NodeError, CookieError) as exc:
            # Tell the client now rather than leave it waiting for the 504.
            res.send(web.Response(status=500, text="Internal Server Error"))
            raise NodeError(f"cannot answer {res.request.method} {res.request.path_qs}: "
                            f"{exc}") from exc
        connected = res.connected
        res.send(response)
        if not connected:
            # The client went away while the flow worked: nothing to tell anyone.
            self.debug(f"client of {res.request.method} {res.request.path_qs} disconnected "
                       "before the answer")


def build_response(msg: dict[str, Any], status: int | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    """The response for ``msg`` (see the module docstring); ``status`` and ``headers`` are the
    node's configuration, which wins over the message."""
    code = status or _status_from(msg.get("statusCode")) or 200
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in (headers or {}).items():
        out[name] = value
    msg_headers = msg.get("headers")
    if isinstance(msg_headers, dict) and not unmodified_response_headers(msg_headers):
        for name, value in msg_headers.items():
            if name.lower() in _DROPPED_HEADERS or name in out or value is None:
                continue
            for item in value if isinstance(value, list) else (value,):
                out.add(name, to_string(item))
    for name, value in out.items():
        if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            raise NodeError(f"invalid header {name!r}: {value!r}")
    body, content_type = _body(msg.get("payload", MISSING))
    if content_type and "Content-Type" not in out:
        out["Content-Type"] = content_type
    response = web.Response(status=code, body=body, headers=out)
    cookies = msg.get("cookies")
    if isinstance(cookies, dict):
        _set_cookies(response, cookies)
    return response


def _status_from(value: Any) -> int | None:
    """``parseInt(msg.statusCode)``: a number or numeric text within 100..599, else None."""
    try:
        code = int(value) if not isinstance(value, str) else int(value.strip()[:3])
    except (TypeError, ValueError):
        return None
    return code if 100 <= code <= 599 else None


def _body(payload: Any) -> tuple[bytes, str | None]:
    """The bytes of the body and the content type it implies (None: none)."""
    if payload is MISSING or payload is None:
        return b"", None
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload), "application/octet-stream"
    if isinstance(payload, str):
        return payload.encode(), "text/html; charset=utf-8"
    if isinstance(payload, (int, float)) and not isinstance(payload, bool):
        return to_string(payload).encode(), "text/html; charset=utf-8"
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return text.encode(), "application/json; charset=utf-8"


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"type": "Buffer", "data": list(value)}  # JSON.stringify of a Node.js Buffer
    if isinstance(value, Mapping):  # e.g. msg.req
        return dict(value)
    return str(value)


def _set_cookies(response: web.Response, cookies: dict[str, Any]) -> None:
    """Express's ``res.cookie``/``res.clearCookie`` for each entry of ``msg.cookies``."""
    for name, spec in cookies.items():
        options: dict[str, Any] = {}
        value = spec
        if isinstance(spec, dict):
            value = spec.get("value")
            for key, option in spec.items():
                if key in _COOKIE_OPTIONS:
                    options[_COOKIE_OPTIONS[key]] = option
                elif key == "maxAge" and isinstance(option, (int, float)):
                    options["max_age"] = int(option // 1000)  # Express takes milliseconds
        if value is None:
            response.del_cookie(name, path=options.get("path", "/"),
                                domain=options.get("domain"))
            continue
        for flag in ("httponly", "secure"):
            if flag in options and not options[flag]:
                del options[flag]
        response.set_cookie(name, to_string(value), **options)
