"""http-request against a real aiohttp server on 127.0.0.1 (Node-RED cases HR-01..HR-09 in
docs/reference/nodered-cases.md).

The server (started per test on a free port) answers text, JSON, bytes, statuses, redirects,
slow and large answers, and echoes what it received, so each test checks both sides.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import socket
import ssl
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from flowengine.errors import FlowLoadError
from flowengine.testing import FlowHarness, NodeHarness, capture_logs

BIG = 20 * 1024 * 1024
CHUNK = bytes(range(256)) * 256  # 64 KiB


def echo_of(request: web.Request, body: bytes) -> dict[str, Any]:
    return {"method": request.method, "path_qs": request.path_qs,
            "headers": [[k.decode(), v.decode()] for k, v in request.raw_headers],
            "body": body.decode("utf-8", errors="replace"),
            "peer_port": request.transport.get_extra_info("peername")[1]}


async def echo(request: web.Request) -> web.Response:
    return web.json_response(echo_of(request, await request.read()))


async def text(request: web.Request) -> web.Response:
    return web.Response(text="hello", content_type="text/html")


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    if code == 204:
        return web.Response(status=204)
    return web.Response(status=code, text=f"status {code}")


async def redirect(request: web.Request) -> web.Response:
    left = int(request.match_info["n"])
    target = f"/redirect/{left - 1}" if left > 1 else "/text"
    response = web.Response(status=302, headers={"Location": target})
    response.set_cookie(f"hop{left}", f"v{left}")
    return response


async def sleep(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("t", "1")))
    return web.Response(text="late")


async def big(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    for _ in range(BIG // len(CHUNK)):
        await response.write(CHUNK)
    await response.write_eof()
    return response


async def headers(request: web.Request) -> web.Response:
    response = web.Response(text="h")
    response.headers["X-Test-Header"] = "yes"
    response.set_cookie("a", "1", path="/p")
    response.set_cookie("b", "2")
    return response


def answer(response: web.Response) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=response.status, body=response.body,
                            headers=response.headers)
    return handler


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/text", text)
    app.router.add_get("/json", answer(web.json_response({"a": 1})))
    app.router.add_get("/badjson", answer(web.Response(text="{a:1",
                                                       content_type="application/json")))
    app.router.add_get("/bin", answer(web.Response(body=bytes(range(256)))))
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/sleep", sleep)
    app.router.add_get("/big", big)
    app.router.add_get("/headers", headers)
    return app


async def start(app: web.Application, ssl_context: ssl.SSLContext | None = None
                ) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@pytest.fixture
async def server() -> AsyncIterator[str]:
    runner, port = await start(make_app())
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def run(config: dict[str, Any], *msgs: dict[str, Any], outputs: int | None = None,
              errors: int = 0, timeout: float = 5.0) -> tuple[list[dict[str, Any]],
                                                              list[dict[str, Any]]]:
    """Send ``msgs`` to an http-request node; its outputs and what a catch node got."""
    wanted = len(msgs) - errors if outputs is None else outputs
    async with NodeHarness("http-request", config,
                           extra_nodes={"catcher": {"type": "catch"}}) as h:
        h.watch_output("catcher")
        for msg in msgs:
            h.send(msg)
        out = await h.output(0, wanted, timeout=timeout) if wanted else []
        caught = await FlowHarness.output(h, "catcher", 0, errors, timeout) if errors else []
        await h.settle(timeout)
        assert len(h.output_now(0)) == wanted
        assert len(h.output_now(0, "catcher")) == errors
    return out, caught


def warnings(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records
            if r.levelno == logging.WARNING and getattr(r, "node", None) == "node"]


def header(echoed: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echoed["headers"] if k.lower() == name.lower()]


# -- HR-01, HR-02: answers -----------------------------------------------------------------------


async def test_hr_01_get_text(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/text"}, {"payload": "ignored"})
    assert msg["payload"] == "hello"
    assert msg["statusCode"] == 200
    assert msg["headers"]["content-length"] == "5"
    assert msg["headers"]["content-type"].startswith("text/html")
    assert msg["redirectList"] == []
    assert msg["responseUrl"] == f"{server}/text"


async def test_hr_02_ret_obj_and_bin(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/json", "ret": "obj"}, {})
    assert msg["payload"] == {"a": 1}
    [msg], _ = await run({"url": f"{server}/bin", "ret": "bin"}, {})
    assert msg["payload"] == bytes(range(256))
    [msg], _ = await run({"url": f"{server}/json", "ret": "txt"}, {})
    assert msg["payload"] == '{"a": 1}'


async def test_hr_02_invalid_json_keeps_the_text_with_a_warning(server: str) -> None:
    records = capture_logs()
    [msg], _ = await run({"url": f"{server}/badjson", "ret": "obj"}, {})
    assert msg["payload"] == "{a:1"
    assert warnings(records) == [f"answer of GET {server}/badjson is not JSON; msg.payload is "
                                 "its text"]


async def test_a_20_mb_streamed_answer_arrives_whole(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/big", "ret": "bin"}, {}, timeout=30)
    assert len(msg["payload"]) == BIG
    expected = hashlib.sha256(CHUNK * (BIG // len(CHUNK))).hexdigest()
    assert hashlib.sha256(msg["payload"]).hexdigest() == expected


# -- HR-03: bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(("msg", "body", "content_type"), [
    ({"payload": {"foo": "abcde"}}, '{"foo":"abcde"}', ["application/json"]),
    ({"payload": 0, "headers": {"content-type": "text/plain"}}, "0", ["text/plain"]),
    ({"payload": {"foo": 1}, "headers": {"content-type": "text/plain"}}, '{"foo":1}',
     ["text/plain"]),
    ({"payload": b"\x01\x02abc"}, "\x01\x02abc", ["application/octet-stream"]),
    ({"payload": "plain text"}, "plain text", ["text/plain; charset=utf-8"]),
    ({"payload": {"a": 1, "b": ["x", "y"]},
      "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, "a=1&b=x&b=y",
     ["application/x-www-form-urlencoded"]),
    ({}, "", []),
])
async def test_hr_03_post_bodies(server: str, msg: dict[str, Any], body: str,
                                 content_type: list[str]) -> None:
    [out], _ = await run({"method": "POST", "url": f"{server}/echo", "ret": "obj"}, msg)
    assert out["payload"]["body"] == body
    assert header(out["payload"], "content-type") == content_type
    assert header(out["payload"], "content-length") == [str(len(body.encode()))]


# -- HR-04: statuses -----------------------------------------------------------------------------


async def test_hr_04_204_and_error_statuses_are_messages(server: str) -> None:
    out, _ = await run({"url": f"{server}/status/204"}, {})
    assert (out[0]["payload"], out[0]["statusCode"]) == ("", 204)
    out, _ = await run({"url": f"{server}/status/204", "ret": "obj"}, {})
    assert (out[0]["payload"], out[0]["statusCode"]) == ({}, 204)
    for code in (400, 404, 500, 503):
        [msg], _ = await run({"url": f"{server}/status/{code}"}, {})
        assert (msg["statusCode"], msg["payload"]) == (code, f"status {code}")


# -- HR-05: the URL ------------------------------------------------------------------------------


async def test_hr_05_msg_url_when_the_node_has_none(server: str) -> None:
    [msg], _ = await run({}, {"url": f"{server}/text"})
    assert msg["payload"] == "hello"


async def test_hr_05_the_node_url_wins_over_msg_url_with_a_warning(server: str) -> None:
    records = capture_logs()
    [msg], _ = await run({"url": f"{server}/text"}, {"url": f"{server}/json"})
    assert msg["payload"] == "hello"
    assert warnings(records) == [f"msg.url '{server}/json' ignored: the node's url is set"]


async def test_hr_05_no_url_is_a_catchable_error() -> None:
    _, [caught] = await run({}, {"payload": 1}, errors=1)
    assert caught["error"]["message"] == "No url specified"  # Node-RED's text


async def test_hr_05_placeholders(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/te{{{{placeholder}}}}"}, {"placeholder": "xt"})
    assert msg["payload"] == "hello"
    config = {"url": f"{server}/echo/{{{{{{path}}}}}}/{{{{path}}}}?q={{{{payload.q}}}}&n="
                     "{{n}}&none={{missing}}", "ret": "obj"}
    [msg], _ = await run(config, {"path": "a/b", "payload": {"q": "x y&z=1/é"}, "n": 2.5})
    # {{ }} is URL-encoded, {{{ }}} inserted as is; a missing property is empty. ("/" needs
    # no escape in a query string, so the URL library writes it plain there.)
    assert msg["payload"]["path_qs"] == "/echo/a/b/a%2Fb?q=x%20y%26z%3D1/%C3%A9&n=2.5&none="


async def test_hr_05_a_url_without_scheme_gets_http(server: str) -> None:
    [msg], _ = await run({"url": server.removeprefix("http://") + "/text"}, {})
    assert msg["payload"] == "hello"


async def test_hr_05_other_schemes_are_refused() -> None:
    with pytest.raises(FlowLoadError, match="unsupported URL scheme 'ftp'"):
        NodeHarness("http-request", {"url": "ftp://foo/bar"})
    _, [caught] = await run({}, {"url": "ftp://foo/bar"}, errors=1)
    assert caught["error"]["message"].startswith("unsupported URL scheme 'ftp'")


# -- HR-06: the method ---------------------------------------------------------------------------


async def test_hr_06_method(server: str) -> None:
    records = capture_logs()
    [msg], _ = await run({"url": f"{server}/echo", "ret": "obj"}, {"method": "POST"})
    assert msg["payload"]["method"] == "GET"
    assert warnings(records) == ["msg.method 'POST' ignored: the node's method is GET"]
    out, _ = await run({"method": "use", "url": f"{server}/echo", "ret": "obj"},
                       {"method": "get"}, {"method": "delete"}, {})
    assert sorted(m["payload"]["method"] for m in out) == ["DELETE", "GET", "GET"]


# -- HR-07: timeouts and connection errors -------------------------------------------------------


async def test_hr_07_timeout_is_caught_and_sent_on_with_its_code(server: str) -> None:
    started = time.monotonic()
    [sent], [caught] = await run({"url": f"{server}/sleep?t=2", "timeout": "200ms"},
                                 {"payload": 1}, outputs=1, errors=1)
    assert time.monotonic() - started < 1.5
    # Node-RED's texts; the catch node gets the message as it was when the error came.
    assert caught["error"]["message"] == "no response from server"
    assert caught["error"]["type"] == "ETIMEDOUT"
    assert caught["payload"] == 1 and "statusCode" not in caught
    assert sent["payload"] == (f"TimeoutError: Timeout awaiting 'request' for 200ms : "
                               f"{server}/sleep?t=2")
    assert sent["statusCode"] == "ETIMEDOUT"


async def test_failures_go_to_catch_nodes_only_without_send_failures(server: str) -> None:
    _, [caught] = await run({"url": f"{server}/sleep?t=2", "timeout": "100ms",
                             "send_failures": False}, {}, outputs=0, errors=1)
    assert caught["error"]["type"] == "ETIMEDOUT"


async def test_hr_07_msg_request_timeout_overrides(server: str) -> None:
    records = capture_logs()
    [sent], _ = await run({"url": f"{server}/sleep?t=0.5", "timeout": 5},
                          {"requestTimeout": 100}, outputs=1, errors=1)
    assert "Timeout awaiting 'request' for 100ms" in sent["payload"]
    [msg], _ = await run({"url": f"{server}/sleep?t=0.1", "timeout": 5},
                         {"requestTimeout": -1})
    assert msg["payload"] == "late"
    assert warnings(records) == ["msg.requestTimeout -1 ignored: it must be a positive number "
                                 "of ms"]


async def test_connection_refused_is_a_catchable_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [sent], [caught] = await run({"url": f"http://127.0.0.1:{port}/x"}, {"_msgid": "M1"},
                                 outputs=1, errors=1)
    assert caught["_msgid"] == "M1"
    assert caught["error"]["type"] == "ECONNREFUSED"
    assert caught["error"]["message"] == f"RequestError: connect ECONNREFUSED 127.0.0.1:{port}"
    assert caught["error"]["code"] == "ECONNREFUSED"
    assert str(caught["error"]["cause"]) == f"connect ECONNREFUSED 127.0.0.1:{port}"
    assert caught["error"]["source"]["id"] == "node"
    assert sent["payload"] == (f"RequestError: connect ECONNREFUSED 127.0.0.1:{port} : "
                               f"http://127.0.0.1:{port}/x")
    assert sent["statusCode"] == "ECONNREFUSED"


async def test_a_server_that_hangs_up_is_a_catchable_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, [caught] = await run({"url": f"http://127.0.0.1:{port}/"}, {}, outputs=1, errors=1)
    finally:
        server.close()
        await server.wait_closed()
    assert caught["error"]["type"] == "ECONNRESET"


# -- HR-08: query parameters ---------------------------------------------------------------------


async def test_hr_08_paytoqs(server: str) -> None:
    config = {"url": f"{server}/echo?x=0", "ret": "obj", "paytoqs": "query"}
    [msg], _ = await run(config, {"payload": {"a": 1, "b": [2, 3], "c": "é&"}})
    assert msg["payload"]["path_qs"] == "/echo?x=0&a=1&b=2&b=3&c=%C3%A9%26"
    assert msg["payload"]["body"] == ""
    config["paytoqs"] = "body"
    [msg], _ = await run(config, {"payload": {"a": 1}})
    assert (msg["payload"]["path_qs"], msg["payload"]["body"]) == ("/echo?x=0", '{"a":1}')
    del config["paytoqs"]
    [msg], _ = await run(config, {"payload": {"a": 1}})
    assert (msg["payload"]["path_qs"], msg["payload"]["body"]) == ("/echo?x=0", "")


# -- HR-09: headers ------------------------------------------------------------------------------


async def test_hr_09_request_header_case_is_kept(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/echo", "ret": "obj"},
                         {"headers": {"X-Test-HEAD": "foo", "x-lower": 1}})
    sent = msg["payload"]["headers"]
    assert ["X-Test-HEAD", "foo"] in sent and ["x-lower", "1"] in sent


async def test_hr_09_response_headers_are_lower_case_with_cookies(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/headers"}, {})
    assert msg["headers"]["x-test-header"] == "yes"
    assert msg["headers"]["set-cookie"] == ["a=1; Path=/p", "b=2; Path=/"]
    assert "x-node-red-request-node" in msg["headers"]
    assert msg["responseCookies"] == {"a": {"value": "1", "path": "/p"},
                                      "b": {"value": "2", "path": "/"}}


async def test_hr_09_unmodified_response_headers_are_not_sent_again(server: str) -> None:
    flow = f"""\
        flow: chain
        nodes:
          first: {{type: http-request, url: "{server}/headers", wires: [second, third]}}
          second: {{type: http-request, url: "{server}/echo", ret: obj}}
          third:
            type: function
            code: |
              msg["headers"]["x-added"] = "1"
              return msg
            wires: [fourth]
          fourth: {{type: http-request, url: "{server}/echo", ret: obj}}
        """
    async with FlowHarness.from_yaml(textwrap.dedent(flow)) as h:
        h.watch_output("second")
        h.watch_output("fourth")
        h.send("first", {})
        [second] = await h.output("second", timeout=5)
        [fourth] = await h.output("fourth", timeout=5)
    # "second" got the first answer's headers unchanged: none of them is sent.
    assert header(second["payload"], "x-test-header") == []
    # "fourth" got them changed (by "third"): they are all sent, the marker never.
    assert header(fourth["payload"], "x-added") == ["1"]
    assert header(fourth["payload"], "x-test-header") == ["yes"]
    assert header(fourth["payload"], "x-node-red-request-node") == []


async def test_hr_09_node_headers_override_and_an_empty_one_removes(server: str) -> None:
    config = {"url": f"{server}/echo", "ret": "obj",
              "headers": {"Authorization": {"msg": "token"}, "X-Remove": "",
                          "x-mine": "node"}}
    async with NodeHarness("http-request", config) as h:
        h.send({"token": "Bearer t",
                "headers": {"X-Remove": "msg", "X-Mine": "msg", "X-Keep": "k"}})
        [msg] = await h.output(0, timeout=5)
    sent = {k.lower(): v for k, v in msg["payload"]["headers"]}
    assert sent["authorization"] == "Bearer t"
    assert sent["x-mine"] == "node"
    assert sent["x-keep"] == "k"
    assert "x-remove" not in sent


async def test_msg_cookies_are_sent(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/echo", "ret": "obj"},
                         {"cookies": {"a": "1", "b": {"value": "2"}, "gone": None}})
    assert header(msg["payload"], "cookie") == ["a=1; b=2"]


# -- redirects -----------------------------------------------------------------------------------


async def test_redirects_are_followed_and_listed(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/redirect/2"}, {})
    assert (msg["statusCode"], msg["payload"]) == (200, "hello")
    assert msg["responseUrl"] == f"{server}/text"
    assert msg["redirectList"] == [
        {"location": f"{server}/redirect/1", "cookies": {"hop2": {"value": "v2", "path": "/"}}},
        {"location": f"{server}/text", "cookies": {"hop1": {"value": "v1", "path": "/"}}}]


async def test_redirects_not_followed_give_the_3xx(server: str) -> None:
    [msg], _ = await run({"url": f"{server}/redirect/2", "follow_redirects": False}, {})
    assert msg["statusCode"] == 302
    assert msg["headers"]["location"] == "/redirect/1"
    assert msg["redirectList"] == []


async def test_too_many_redirects_is_a_catchable_error(server: str) -> None:
    _, [caught] = await run({"url": f"{server}/redirect/15"}, {}, outputs=1, errors=1)
    assert caught["error"]["type"] == "ETOOMANYREDIRECTS"
    assert caught["error"]["message"] == "MaxRedirectsError: Redirected 10 times. Aborting."


# -- the shared pool, concurrency, stop ----------------------------------------------------------


async def test_nodes_share_one_pool_and_persist_false_closes(server: str) -> None:
    flow = f"""\
        flow: pool
        nodes:
          a: {{type: http-request, url: "{server}/echo", ret: obj}}
          b: {{type: http-request, url: "{server}/echo", ret: obj}}
          c: {{type: http-request, url: "{server}/echo", ret: obj, persist: false}}
        """
    async with FlowHarness.from_yaml(textwrap.dedent(flow)) as h:
        ports = []
        for node_id in ("a", "b", "a", "c", "c", "a"):
            h.send(node_id, {})
            count = len(h.output_now(node_id)) + 1
            out = await h.output(node_id, 0, count, timeout=5)
            ports.append(out[-1]["payload"]["peer_port"])
        client = h.runtime.shared("http-client", lambda: None)
        assert client is not None and not client.session.closed
    # a, b, a: one kept-alive connection. c may use it but closes it after its request, so
    # every request after a c opens a new connection.
    assert ports[0] == ports[1] == ports[2]
    assert ports[4] != ports[3] and ports[5] not in (ports[3], ports[4])
    assert client.session.closed  # closed with the runtime


async def test_requests_run_concurrently(server: str) -> None:
    started = time.monotonic()
    out, _ = await run({"url": f"{server}/sleep?t=0.3"}, *({"i": i} for i in range(50)),
                       timeout=10)
    assert time.monotonic() - started < 2.5  # 50 x 0.3 s in sequence would be 15 s
    assert sorted(m["i"] for m in out) == list(range(50))
    assert all(m["payload"] == "late" for m in out)


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_tls_verify_ca_file_and_client_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner, port = await start(make_app(), context)
    url = f"https://127.0.0.1:{port}/text"
    try:
        # A self-signed certificate is refused by default...
        [sent], [caught] = await run({"url": url}, {}, outputs=1, errors=1)
        assert caught["error"]["message"] == "RequestError: self-signed certificate"
        assert sent["statusCode"] == "DEPTH_ZERO_SELF_SIGNED_CERT"
        # ...accepted with its CA file or without verification.
        [msg], _ = await run({"url": url, "tls": {"ca_file": str(cert)}}, {})
        assert msg["payload"] == "hello"
        [msg], _ = await run({"url": url, "tls": {"verify": False}}, {})
        assert msg["payload"] == "hello"
        # A server that wants a client certificate gets one from cert_file/key_file.
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cert)
        _, [caught] = await run({"url": url, "tls": {"ca_file": str(cert)}}, {}, outputs=1,
                                errors=1)
        [msg], _ = await run({"url": url, "tls": {"ca_file": str(cert), "cert_file": str(cert),
                                                  "key_file": str(key)}}, {})
        assert msg["payload"] == "hello"
    finally:
        await runner.cleanup()


async def test_missing_tls_files_fail_every_message(tmp_path: Path) -> None:
    records = capture_logs()
    _, [caught] = await run({"url": "https://127.0.0.1:1/", "tls": {
        "ca_file": str(tmp_path / "nope.pem")}}, {}, errors=1)
    assert caught["error"]["message"].startswith("TLS files could not be loaded: ")
    assert any("failed to start: TLS files could not be loaded" in r.getMessage()
               for r in records)


async def test_a_key_without_certificate_is_a_load_error() -> None:
    with pytest.raises(FlowLoadError, match="key_file needs cert_file"):
        NodeHarness("http-request", {"url": "https://x", "tls": {"key_file": "k.pem"}})



async def test_stop_with_requests_in_flight_leaves_no_task(server: str) -> None:
    before = asyncio.all_tasks()
    async with NodeHarness("http-request", {"url": f"{server}/sleep?t=5"},
                           settings={"drain_timeout": 0.2}) as h:
        for i in range(5):
            h.send({"i": i})
        await asyncio.sleep(0.2)
        client = h.runtime.shared("http-client", lambda: None)
        assert h.node("node").last_status == {"fill": "blue", "shape": "dot",
                                              "text": "requesting"}
    await asyncio.sleep(0)
    assert client.session.closed
    # What is left is the test server, still sleeping in its handlers (RequestHandler).
    left = {t for t in asyncio.all_tasks() - before
            if not t.get_coro().__qualname__.startswith("RequestHandler.")}
    assert left == set()
    assert h.output_now(0) == []
