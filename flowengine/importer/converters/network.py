"""Converters of Node-RED's network nodes: http in/response/request and websocket in/out
(their websocket-listener, websocket-client and tls-config nodes are read, not imported)."""

from __future__ import annotations

from typing import Any

from flowengine.importer.converters import (
    Context,
    Converted,
    Unsupported,
    as_list,
    converts,
    truthy,
)
from flowengine.importer.values import WHOLE_ENV, EnvText, js_number


@converts("http in")
def http_in(n: dict[str, Any], cx: Context) -> Converted:
    url = str(n.get("url") or "")
    if not url:
        raise Unsupported("an empty URL")
    config: dict[str, Any] = {"method": (n.get("method") or "get").lower(),
                              "url": url if url.startswith("/") else "/" + url}
    if truthy(n.get("upload")):
        config["upload"] = True
    if truthy(n.get("skipBodyParsing")):
        cx.note("'do not parse the body' is not imported: bodies are parsed")
    return Converted("http-in", config)


@converts("http response")
def http_response(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {}
    status = js_number(n.get("statusCode") or 0)
    if status == status and 100 <= status <= 599:
        config["status_code"] = int(status)
    headers = n.get("headers")
    if isinstance(headers, dict) and headers:
        config["headers"] = {str(k): cx.text(v) for k, v in headers.items()}
    return Converted("http-response", config)


@converts("http request")
def http_request(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {}
    method = str(n.get("method") or "GET")
    config["method"] = "use" if method.lower() == "use" else method.upper()
    if n.get("ret") in ("bin", "obj"):
        config["ret"] = n["ret"]
    url = n.get("url")
    if isinstance(url, str) and url:
        config["url"] = cx.text(url)
    paytoqs = n.get("paytoqs")
    if paytoqs is True or paytoqs == "query":
        config["paytoqs"] = "query"
    elif paytoqs == "body":
        config["paytoqs"] = "body"
    if not truthy(n.get("persist")):
        config["persist"] = False
    headers = {}
    for header in as_list(n.get("headers")):
        if not isinstance(header, dict):
            continue
        name = header.get("keyValue") if header.get("keyType") == "other" else \
            header.get("keyType")
        value_kind = header.get("valueType")
        if value_kind == "other":
            value = cx.text(header.get("valueValue") or "")
        elif value_kind in ("msg", "flow", "global", "env", "jsonata"):
            value = cx.value(header.get("valueValue"), value_kind, "header")
        else:
            value = value_kind
        if name and header.get("keyType") != "msg":
            headers[str(name)] = value
        else:
            cx.note("a header named by a message property is not imported")
    if headers:
        config["headers"] = headers
    if n.get("tls"):
        tls = cx.config(n["tls"], "tls-config")
        if tls is not None:
            config["tls"] = _tls(tls, cx)
    if n.get("proxy"):
        cx.note("the HTTP proxy configuration is not imported")
    if n.get("authType"):
        cx.note(f"'{n['authType']}' authentication is not imported (its credentials are not "
                "in flows.json): set msg.headers.authorization")
    if truthy(n.get("senderr")):
        config["send_failures"] = False
    return Converted("http-request", config)


def _tls(tls: dict[str, Any], cx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if tls.get("verifyservercert") in (False, "false"):
        out["verify"] = False
    for ours, theirs in (("ca_file", "ca"), ("cert_file", "cert"), ("key_file", "key")):
        if isinstance(tls.get(theirs), str) and tls[theirs].strip():
            out[ours] = tls[theirs].strip()
    if tls.get("certname") or tls.get("keyname") or tls.get("caname"):
        cx.note("uploaded TLS certificates are not in flows.json: give the files instead")
    return out


@converts("websocket in", "websocket out")
def websocket(n: dict[str, Any], cx: Context) -> Converted:
    ours = "websocket-in" if n["type"] == "websocket in" else "websocket-out"
    config: dict[str, Any] = {}
    if n.get("client"):
        client = cx.config(n["client"], "websocket-client")
        if client is None:
            raise Unsupported("its websocket-client configuration is missing")
        url = str(client.get("path") or "")
        if WHOLE_ENV.match(url):
            config["url"] = cx.text(url)
        elif not url.lower().startswith(("ws://", "wss://")):
            raise Unsupported(f"the websocket URL {url!r}")
        else:
            config["url"] = url
        if js_number(client.get("hb") or 0) or client.get("subprotocol"):
            cx.note("the websocket-client heartbeat and subprotocol options are not imported")
        source = client
    else:
        listener = cx.config(n.get("server"), "websocket-listener")
        if listener is None:
            raise Unsupported("its websocket-listener configuration is missing")
        path = cx.text(str(listener.get("path") or ""))
        if not path:
            raise Unsupported("an empty websocket path")
        # Node-RED serves "ws" at "/ws" too; a whole ${NAME} is left to the loader.
        config["path"] = path if path.startswith("/") or isinstance(path, EnvText) \
            else "/" + path
        source = listener
    if truthy(source.get("wholemsg")):
        config["wholemsg"] = True
    return Converted(ours, config)
