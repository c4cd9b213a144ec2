"""``http-request``: make an HTTP request per message (Node-RED's http request node).

Every http-request node of a runtime shares one ``aiohttp.ClientSession`` (one connection pool,
closed when the runtime stops). Each message runs in its own task, so slow servers never hold up
other messages. The answer replaces ``msg.payload`` and sets ``msg.statusCode``, ``msg.headers``
(lower-case names), ``msg.responseUrl``, ``msg.redirectList`` and ``msg.responseCookies``; a
4xx/5xx answer is a message like any other. A request that fails (no answer in time, a refused
connection...) is an error on the message for catch nodes, with Node-RED's texts
(``RequestError: connect ECONNREFUSED 127.0.0.1:1880``) and ``error.type`` ``ECONNREFUSED``,
``ETIMEDOUT``...; then, as Node-RED does unless ``send_failures`` is false, the message goes on
with the text in ``msg.payload`` and the code in ``msg.statusCode``. Every message is finished
(complete nodes), failed or not, as in Node-RED.

URL placeholders: ``{{name}}`` inserts a message property URL-encoded (``{{payload.id}}``),
``{{{name}}}`` inserts it as is (a host name, a path with slashes).
"""

from __future__ import annotations

import errno
import json
import math
import re
import ssl
import textwrap
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from flowengine import MISSING, ConfigError, Node, NodeError, Path, compile_value
from flowengine import schema as s
from flowengine.http import (
    REQUEST_NODE_HEADER,
    headers_dict,
    mark_response_headers,
    unmodified_response_headers,
)
from flowengine.js import to_string

SHARED_KEY = "http-client"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "use")
MAX_REDIRECTS = 10
#: Node-RED's texts (httpin.errors.no-url, common.notification.errors.no-response).
NO_URL = "No url specified"
NO_RESPONSE = "no response from server"
_PLACEHOLDER = re.compile(r"\{\{\{\s*([^{}]+?)\s*\}\}\}|\{\{\s*([^{}]+?)\s*\}\}")
_NO_CONTENT_TYPE = ("Content-Type",)
# Set from the body by the client; a value copied from an earlier answer would be wrong.
_COMPUTED_HEADERS = {"content-length", "transfer-encoding", REQUEST_NODE_HEADER}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class HttpClient:
    """The runtime's shared client session (``runtime.shared("http-client", HttpClient)``).

    Connections are pooled and kept alive per host (at most ``limit`` open at once, further
    requests wait for one). No cookie jar: cookies are what ``msg.cookies`` says, as in Node-RED.
    """

    def __init__(self, limit: int = 100):
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit),
            cookie_jar=aiohttp.DummyCookieJar(),
            # The timeout is set per request; proxies come from HTTP(S)_PROXY/NO_PROXY as in
            # Node-RED.
            timeout=aiohttp.ClientTimeout(total=None), trust_env=True)

    async def close(self) -> None:
        await self.session.close()


class UrlTemplate:
    """A URL with ``{{ }}`` placeholders, compiled once."""

    def __init__(self, text: str, field: str = "url"):
        self.text = text
        self.parts: list[str | tuple[Path, bool]] = []
        last = 0
        for match in _PLACEHOLDER.finditer(text):
            self.parts.append(text[last:match.start()])
            raw = match.group(1) is not None
            expr = match.group(1) if raw else match.group(2)
            try:
                self.parts.append((Path(expr), raw))
            except ValueError as exc:
                raise ConfigError(f"invalid placeholder {match.group(0)!r}: {exc}",
                                  field) from None
            last = match.end()
        self.parts.append(text[last:])
        self.static = len(self.parts) == 1

    def render(self, msg: dict[str, Any]) -> str:
        if self.static:
            return self.text
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            path, raw = part
            value = path.get(msg)
            text = "" if value is MISSING or value is None else to_string(value)
            out.append(text if raw else quote(text, safe=""))
        return "".join(out)


class HttpRequestNode(Node):
    type = "http-request"
    category = "network"
    auto_done = False  # every message is finished, also after a failure (Node-RED's done())
    description = ("Makes an HTTP request for each message and sends the answer: msg.payload "
                   "(text, bytes or parsed JSON per `ret`), msg.statusCode, msg.headers, "
                   "msg.responseUrl, msg.redirectList. The URL is `url` (with {{property}} "
                   "placeholders) or msg.url; the method `method` or msg.method (`use`); the "
                   "body msg.payload (dicts as JSON). A failed request (timeout, refused "
                   "connection) is a catchable error and, unless `send_failures` is false, "
                   "also sent on with the error text in msg.payload and its code in "
                   "msg.statusCode. All http-request nodes share one connection pool.")
    example = textwrap.dedent("""\
        fetch-user:
          type: http-request
          method: GET
          url: https://api.example.com/users/{{payload.id}}
          ret: obj
          headers:
            Authorization: {env: API_TOKEN}
          timeout: 10s
          wires: [use-user]
        """)
    schema = s.obj({
        "method": s.enum(METHODS, "GET", "The method; `use` takes msg.method."),
        "url": s.string(description="The URL; {{path}} inserts a msg property URL-encoded, "
                        "{{{path}}} as is. When empty, msg.url is used."),
        "ret": s.enum(("txt", "bin", "obj"), "txt", "msg.payload of the answer: text, bytes, "
                      "or parsed JSON (text kept, with a warning, when it is not JSON)."),
        "paytoqs": s.enum((False, "query", "body"), False, "For GET: add a dict msg.payload "
                          "to the query string (`query`) or send it as the body (`body`)."),
        "headers": {"type": "object", "description": "Request headers (name: value or value "
                    "reference); they override msg.headers; an empty value removes a header.",
                    "additionalProperties": s.value()},
        "timeout": s.duration("120s", "Give up (catchable error) after this long; "
                              "msg.requestTimeout (ms) overrides."),
        "follow_redirects": s.boolean(True, "Follow redirects (up to 10), listed in "
                                      "msg.redirectList; when false a 3xx is the answer."),
        "persist": s.boolean(True, "Keep the connection open for later requests."),
        "send_failures": s.boolean(True, "Also send a failed request's message on (its "
                                   "payload the error, statusCode its code), as Node-RED does "
                                   "unless 'only send non-2xx responses to Catch node' is set."),
        "tls": s.obj({
            "verify": s.boolean(True, "Check the server's certificate."),
            "ca_file": s.string(description="CA certificates (PEM) to trust."),
            "cert_file": s.string(description="Client certificate (PEM)."),
            "key_file": s.string(description="Client private key (PEM)."),
        }, description="TLS options for https URLs."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._method = config["method"]
        self._url = UrlTemplate(config["url"]) if config.get("url") else None
        if self._url is not None:
            scheme = _SCHEME.match(self._url.parts[0] if self._url.parts else "")
            if scheme and scheme.group(1).lower() not in ("http", "https"):
                raise ConfigError(f"unsupported URL scheme '{scheme.group(1)}' (http and https "
                                  "only)", "url")
        self._headers = [(name, compile_value(value, f"headers.{name}"))
                         for name, value in (config.get("headers") or {}).items()]
        self._timeout = config["timeout"]
        tls = config.get("tls") or {}
        if tls.get("key_file") and not tls.get("cert_file"):
            raise ConfigError("key_file needs cert_file", "tls.key_file")
        self._tls = tls
        self._ssl: ssl.SSLContext | bool = True  # aiohttp: the default verification
        self._tls_error: str | None = None
        self._in_flight = 0

    def on_start(self) -> None:
        self._client: HttpClient = self.runtime.shared(SHARED_KEY, HttpClient)
        try:
            self._ssl = self._ssl_context()
        except (OSError, ssl.SSLError) as exc:
            # Never fall back to requests without the configured certificates: every message
            # fails with this until the files are fixed.
            self._tls_error = f"TLS files could not be loaded: {exc}"
            raise NodeError(self._tls_error) from exc

    def _ssl_context(self) -> ssl.SSLContext | bool:
        tls = self._tls
        if not tls:
            return True
        if not tls.get("verify", True) and not tls.get("cert_file"):
            return False  # aiohttp: no certificate check
        base = self.runtime.base_dir
        context = ssl.create_default_context(
            cafile=str(base / tls["ca_file"]) if tls.get("ca_file") else None)
        if not tls.get("verify", True):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if tls.get("cert_file"):
            context.load_cert_chain(str(base / tls["cert_file"]),
                                    str(base / tls["key_file"]) if tls.get("key_file") else None)
        return context

    # -- one message ------------------------------------------------------------------------

    async def on_input(self, msg: dict[str, Any]) -> None:
        self._in_flight += 1
        if self._in_flight == 1:
            self.status({"fill": "blue", "shape": "dot", "text": "requesting"})
        failed = True
        try:
            try:
                if self._tls_error is not None:
                    raise NodeError(self._tls_error)
                method = self._method_for(msg)
                url = self._url_for(msg)
                headers = self._headers_for(msg)
                params, body = self._body_for(msg, method, headers)
                timeout = self._timeout_for(msg)
            except NodeError as exc:  # a request that cannot be made (status stays, as in NR)
                self.error(exc, msg)
                self.done(msg)
                return
            try:
                async with self._client.session.request(
                        method, url, params=params, data=body, headers=headers, ssl=self._ssl,
                        # aiohttp would label a POST without body application/octet-stream.
                        skip_auto_headers=_NO_CONTENT_TYPE if body is None else (),
                        allow_redirects=self.config["follow_redirects"],
                        max_redirects=MAX_REDIRECTS,
                        timeout=aiohttp.ClientTimeout(total=timeout or None)) as response:
                    data = await response.read()
            except TimeoutError:
                ms = math.ceil(timeout * 1000)
                self._failed(msg, url, NodeError(NO_RESPONSE), "ETIMEDOUT",
                             f"TimeoutError: Timeout awaiting 'request' for {ms}ms", NO_RESPONSE)
                return
            except aiohttp.ClientError as exc:
                code = _error_code(exc)
                text = _request_error(exc, code)
                err = NodeError(text)
                err.code = code  # msg.error.code
                err.cause = Error(text.removeprefix("RequestError: "))
                self._failed(msg, url, err, code, text, code)
                return
            failed = False
        finally:
            self._in_flight -= 1
            if not failed and self._in_flight == 0:
                self.status({})
        self._fill(msg, response, data)
        self.send(msg)
        self.done(msg)

    def _failed(self, msg: dict[str, Any], url: URL, err: NodeError, code: str, text: str,
                status: str) -> None:
        """Node-RED's failed request: the error for catch nodes, then (unless
        ``send_failures`` is false) the message on with the text and code; finished either
        way."""
        self.status({"fill": "red", "shape": "ring", "text": status})
        err.error_type = code  # msg.error.type
        self.error(err, msg)
        msg["payload"] = f"{text} : {url}"
        msg["statusCode"] = code
        if self.config["send_failures"]:
            self.send(msg)
        self.done(msg)

    def _method_for(self, msg: dict[str, Any]) -> str:
        given = msg.get("method")
        if self._method == "use":
            return str(given or "GET").upper()
        if isinstance(given, str) and given.upper() != self._method:
            self.warn(f"msg.method {given!r} ignored: the node's method is {self._method}")
        return self._method

    def _url_for(self, msg: dict[str, Any]) -> URL:
        given = msg.get("url")
        if self._url is not None:
            text = self._url.render(msg)
            if isinstance(given, str) and given and given != text:
                self.warn(f"msg.url {given!r} ignored: the node's url is set")
        elif isinstance(given, str) and given:
            text = given
        else:
            raise NodeError(NO_URL)
        text = text.strip()
        scheme = _SCHEME.match(text)
        if scheme is None:
            text = ("https://" if self._tls else "http://") + text
        elif scheme.group(1).lower() not in ("http", "https"):
            raise NodeError(f"unsupported URL scheme '{scheme.group(1)}' in {text!r} (http and "
                            "https only)")
        try:
            url = URL(text)  # keeps %XX escapes, encodes the rest
        except ValueError as exc:
            raise NodeError(f"invalid URL {text!r}: {exc}") from None
        if not url.host:
            raise NodeError(f"invalid URL {text!r}: no host")
        return url

    def _headers_for(self, msg: dict[str, Any]) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        given = msg.get("headers")
        if isinstance(given, dict) and not unmodified_response_headers(given):
            for name, value in given.items():
                if name.lower() in _COMPUTED_HEADERS or value is None:
                    continue
                headers[name] = to_string(value)  # the user's spelling is kept on the wire
        for name, value in self._headers:
            result = value.evaluate(self, msg)
            headers.popall(name, None)
            if result is not MISSING and result is not None and result != "":
                headers[name] = to_string(result)
        if not self.config["persist"]:
            headers["Connection"] = "close"
        cookies = msg.get("cookies")
        if isinstance(cookies, dict) and cookies:
            pairs = [f"{k}={to_string(v.get('value') if isinstance(v, dict) else v)}"
                     for k, v in cookies.items() if v is not None]
            headers["Cookie"] = "; ".join(pairs)
        return headers

    def _body_for(self, msg: dict[str, Any], method: str,
                  headers: CIMultiDict[str]) -> tuple[list[tuple[str, str]] | None, Any]:
        """Query parameters and body for the request (HR-03, HR-08 in
        docs/reference/nodered-cases.md)."""
        payload = msg.get("payload", MISSING)
        if method in ("GET", "HEAD"):
            mode = self.config["paytoqs"]
            if mode == "query" and payload is not MISSING and payload is not None:
                if not isinstance(payload, dict):
                    raise NodeError("paytoqs: msg.payload must be a dict of query parameters, "
                                    f"not {type(payload).__name__}")
                return _query_pairs(payload), None
            if mode != "body":
                return None, None
        if payload is MISSING or payload is None:
            return None, None
        content_type = headers.get("Content-Type", "")
        if isinstance(payload, (bytes, bytearray, memoryview)):
            return None, bytes(payload)
        if isinstance(payload, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return None, payload.encode()
        if isinstance(payload, (dict, list)):
            if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded" \
                    and isinstance(payload, dict):
                return None, urlencode(_query_pairs(payload)).encode()
            headers.setdefault("Content-Type", "application/json")
            return None, json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                                    default=str).encode()
        return None, to_string(payload).encode()

    def _timeout_for(self, msg: dict[str, Any]) -> float:
        given = msg.get("requestTimeout")
        if given is None:
            return self._timeout
        if isinstance(given, (int, float)) and not isinstance(given, bool) and given > 0:
            return given / 1000
        self.warn(f"msg.requestTimeout {given!r} ignored: it must be a positive number of ms")
        return self._timeout

    def _fill(self, msg: dict[str, Any], response: aiohttp.ClientResponse, data: bytes) -> None:
        """Put the answer into ``msg`` (HR-01, HR-02, HR-04, HR-09)."""
        headers = headers_dict(response.headers)
        mark_response_headers(headers)
        msg["statusCode"] = response.status
        msg["headers"] = headers
        msg["responseUrl"] = str(response.url)
        msg["redirectList"] = [_redirect(hop) for hop in response.history]
        msg["retry"] = 0  # Node-RED's count of retries after a dropped keep-alive connection
        if "set-cookie" in headers:  # as Node-RED: only when the answer sets cookies
            msg["responseCookies"] = _cookies(response.cookies)
        else:
            msg.pop("responseCookies", None)
        ret = self.config["ret"]
        if ret == "bin":
            msg["payload"] = data
            return
        text = data.decode(response.get_encoding() if data else "utf-8", errors="replace")
        if ret == "obj":
            if response.status == 204:
                text = "{}"  # Node-RED's answer to an empty JSON response
            try:
                msg["payload"] = json.loads(text)
                return
            except ValueError:
                self.warn(f"answer of {response.method} {response.url} is not JSON; "
                          "msg.payload is its text")
        msg["payload"] = text


def _query_pairs(payload: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in payload.items():
        for item in value if isinstance(value, list) else (value,):
            pairs.append((str(key), "" if item is None else to_string(item)))
    return pairs


def _redirect(hop: aiohttp.ClientResponse) -> dict[str, Any]:
    location = hop.headers.get("Location", "")
    return {"location": str(hop.url.join(URL(location))) if location else "",
            "cookies": _cookies(hop.cookies)}


def _cookies(cookies: Any) -> dict[str, dict[str, Any]]:
    """Set-Cookie answers as ``{name: {value, path, ...}}`` (Node-RED's responseCookies)."""
    result: dict[str, dict[str, Any]] = {}
    for name, morsel in cookies.items():
        entry: dict[str, Any] = {"value": morsel.value}
        for key, value in morsel.items():
            if value:
                entry[key.replace("-", "_")] = value
        result[name] = entry
    return result


class Error(Exception):
    """JavaScript's plain ``Error``: what Node-RED gives as ``msg.error.cause`` of a failed
    request (the system error under got's RequestError)."""


def _request_error(exc: aiohttp.ClientError, code: str) -> str:
    """Node-RED's text for a failed request (got's ``RequestError``)."""
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"MaxRedirectsError: Redirected {MAX_REDIRECTS} times. Aborting."
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        return f"RequestError: {reason}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"RequestError: getaddrinfo {code} {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        address = _CONNECT_ADDRESS.search(str(exc.os_error))
        where = f"{address.group(1)}:{address.group(2)}" if address else f"{exc.host}:{exc.port}"
        return f"RequestError: connect {code} {where}"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "RequestError: socket hang up"
    return f"RequestError: {exc}"


# asyncio's "Connect call failed ('127.0.0.1', 1880)": the address actually tried.
_CONNECT_ADDRESS = re.compile(r"\('([^']+)', (\d+)")


# OpenSSL's certificate verification results, as Node.js names them (err.code).
_CERT_CODES = {10: "CERT_HAS_EXPIRED", 18: "DEPTH_ZERO_SELF_SIGNED_CERT",
               19: "SELF_SIGNED_CERT_IN_CHAIN", 20: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
               21: "UNABLE_TO_VERIFY_LEAF_SIGNATURE", 62: "ERR_TLS_CERT_ALTNAME_INVALID"}


def _error_code(exc: BaseException) -> str:
    """A Node.js-style code for a client error (what Node-RED puts in msg.statusCode)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        verify = getattr(exc.certificate_error, "verify_code", None)
        return _CERT_CODES.get(verify, "CERT_VERIFY_FAILED")  # type: ignore[arg-type]
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "ENOTFOUND"
    os_error = getattr(exc, "os_error", None)
    number = getattr(os_error, "errno", None)
    if number is not None and number in errno.errorcode:
        return errno.errorcode[number]
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "ETOOMANYREDIRECTS"
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return "ECONNRESET"
    return type(exc).__name__
