"""http-in and http-response with real clients on 127.0.0.1.

One flow serves every case: ``/echo/:name`` (any method) describes the request it got;
other routes answer with set statuses, headers, cookies and body types, or never answer.
Clients are real ``aiohttp`` sessions, or raw sockets where a client must misbehave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from flowengine.loader import Loader
from flowengine.testing import FlowHarness, capture_logs, test_registry

FLOW = """\
flow: web
settings:
  http: {port: 0, host: 127.0.0.1, request_timeout: 0.5, max_body: 2000, idle_timeout: 1}
nodes:
  echo-in:
    type: http-in
    method: all
    url: /echo/:name
    wires: [describe]
  describe:
    type: function
    code: |
      req = msg["req"]
      payload = msg["payload"]
      if isinstance(payload, bytes):
          payload = {"bytes": payload.hex()}
      elif isinstance(payload, dict):
          payload = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in payload.items()}
      msg["payload"] = {
          "kind": type(msg["payload"]).__name__, "payload": payload, "method": req.method,
          "url": req.url, "path": req.path, "params": req.params, "query": req.query,
          "cookies": req.cookies, "x_test": req.headers.get("x-test"),
          "remote": req.remote, "body_is_payload": req.body is msg["payload"],
          "files": [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in f.items()}
                    for f in (req.files or [])],
          "by_path": req["params"].get("name")}
      return msg
    wires: [reply]
  reply:
    type: http-response

  upload-in: {type: http-in, method: post, url: /upload, upload: true, wires: [describe]}

  only-get: {type: http-in, method: get, url: /only-get, wires: [reply]}

  custom-in: {type: http-in, method: get, url: /custom, wires: [custom]}
  custom:
    type: function
    code: |
      msg["statusCode"] = 418
      msg["headers"] = {"X-From-Msg": "m", "X-Both": "from msg"}
      msg["cookies"] = {"plain": "v1", "session": {"value": "abc", "max_age": 60,
                        "http_only": True, "path": "/custom"}, "gone": None}
      msg["payload"] = "made"
      return msg
    wires: [custom-reply]
  custom-reply:
    type: http-response
    status_code: 201
    headers: {X-Both: from config, Cache-Control: no-store}

  status-in: {type: http-in, method: get, url: /status/:code, wires: [status]}
  status:
    type: function
    code: |
      msg["statusCode"] = msg["req"].params["code"]
      msg["payload"] = {"code": msg["statusCode"]}
      return msg
    wires: [reply]

  types-in: {type: http-in, method: get, url: /types/:kind, wires: [types]}
  types:
    type: function
    code: |
      values = {"dict": {"a": [1, "x"]}, "list": [1, 2], "bytes": b"\\x00\\x01",
                "str": "héllo", "int": 42, "float": 1.5, "none": None, "bool": True,
                "dict_bytes": {"b": b"hi"}}
      msg["payload"] = values[msg["req"].params["kind"]]
      return msg
    wires: [reply]

  never-in: {type: http-in, method: get, url: /never, wires: [swallow]}
  swallow: {type: function, code: "return None"}

  late-in: {type: http-in, method: get, url: /late, wires: [late]}
  late:
    type: function
    code: |
      await asyncio.sleep(float(msg["payload"].get("wait", "0.8")))
      return msg
    wires: [late-reply]
  late-reply: {type: http-response}

  bad-in: {type: http-in, method: get, url: /bad/:what, wires: [bad]}
  bad:
    type: function
    code: |
      if msg["req"].params["what"] == "header":
          msg["headers"] = {"X-Split": "a\\r\\nInjected: 1"}
      else:
          msg["cookies"] = {"no spaces allowed": "x"}
      return msg
    wires: [reply]

  twice-in: {type: http-in, method: get, url: /twice, wires: [[reply, twice-reply]]}
  twice-reply: {type: http-response}
"""


def serving(flow: str) -> FlowHarness:
    """The flow, listening as under flowrun (which always serves HTTP)."""
    harness = FlowHarness.from_yaml(flow)
    harness.runtime.serve_http = True
    return harness


@pytest.fixture
async def web() -> AsyncIterator[tuple[FlowHarness, str, aiohttp.ClientSession]]:
    """The running flow, its base URL, and a client session."""
    async with serving(FLOW) as h, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0)) as session:
        yield h, h.runtime.http.url, session


async def fetch(session: aiohttp.ClientSession, method: str, url: str | URL,
                **kwargs: Any) -> tuple[int, dict[str, Any] | str, aiohttp.ClientResponse]:
    async with session.request(method, url, **kwargs) as response:
        if response.content_type == "application/json":
            return response.status, await response.json(), response
        return response.status, await response.text(), response


def warnings_of(records: list[logging.LogRecord], node: str) -> list[str]:
    return [r.getMessage() for r in records
            if getattr(r, "node", None) == node and r.levelno == logging.WARNING]


# -- requests as messages ------------------------------------------------------------------------


async def test_get_gives_params_and_query_as_payload(web: Any) -> None:
    _, url, session = web
    status, body, response = await fetch(session, "GET", f"{url}/echo/ada?x=1&x=2&y=z",
                                         headers={"X-Test": "yes"})
    assert status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert body == {"kind": "dict", "payload": {"x": ["1", "2"], "y": "z"}, "method": "GET",
                    "url": "/echo/ada?x=1&x=2&y=z", "path": "/echo/ada",
                    "params": {"name": "ada"}, "query": {"x": ["1", "2"], "y": "z"},
                    "cookies": {}, "x_test": "yes", "remote": "127.0.0.1",
                    "body_is_payload": False, "files": [], "by_path": "ada"}


async def test_routes_ignore_case_and_params_are_decoded(web: Any) -> None:
    _, url, session = web
    status, body, _ = await fetch(session, "GET",
                                  URL(f"{url}/ECHO/x%2Fy%20z%C3%A9/?q=%2F", encoded=True))
    assert status == 200
    # Express: matched on the raw path, so the encoded "/" stays in the parameter.
    assert body["params"] == {"name": "x/y zé"}
    assert body["url"] == "/ECHO/x%2Fy%20z%C3%A9/?q=%2F"
    assert body["query"] == {"q": "/"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_every_method_reaches_an_all_route_with_its_json_body(web: Any,
                                                                     method: str) -> None:
    _, url, session = web
    status, body, _ = await fetch(session, method, f"{url}/echo/m", json={"a": 1, "b": [True]})
    assert status == 200
    assert (body["method"], body["kind"], body["payload"]) == (method, "dict",
                                                               {"a": 1, "b": [True]})
    assert body["body_is_payload"] is True


@pytest.mark.parametrize(("headers", "data", "kind", "payload"), [
    ({"Content-Type": "text/plain; charset=utf-8"}, "héllo".encode(), "str", "héllo"),
    ({"Content-Type": "text/plain; charset=latin-1"}, "héllo".encode("latin-1"), "str", "héllo"),
    ({"Content-Type": "application/xml"}, b"<a/>", "str", "<a/>"),
    ({"Content-Type": "application/javascript"}, b"var a;", "str", "var a;"),
    ({"Content-Type": "application/octet-stream"}, b"\x00\xff", "bytes", {"bytes": "00ff"}),
    ({"Content-Type": "image/png"}, b"\x89PNG", "bytes", {"bytes": "89504e47"}),
    ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=1&b=2&b=3&c=",
     "dict", {"a": "1", "b": ["2", "3"], "c": ""}),
    ({"Content-Type": "application/json"}, b"", "dict", {}),
    ({"Content-Type": "application/ld+json"}, b"[1, 2]", "list", [1, 2]),
    ({}, b"no type", "str", "no type"),
])
async def test_bodies_are_parsed_by_content_type(web: Any, headers: dict[str, str], data: bytes,
                                                 kind: str, payload: Any) -> None:
    _, url, session = web
    status, body, _ = await fetch(session, "POST", f"{url}/echo/b", data=data, headers=headers,
                                  skip_auto_headers=["Content-Type"])
    assert status == 200
    assert (body["kind"], body["payload"]) == (kind, payload)


async def test_multipart_fields_and_files(web: Any) -> None:
    _, url, session = web
    form = aiohttp.FormData()
    form.add_field("name", "ada")
    form.add_field("doc", b"\x01\x02", filename="a.bin", content_type="application/x-thing")
    status, body, _ = await fetch(session, "POST", f"{url}/echo/f", data=form)
    assert (status, body["kind"], body["files"]) == (200, "dict", [])
    assert body["payload"] == {"name": "ada", "doc": "0102"}  # without upload: bytes in payload

    form = aiohttp.FormData()
    form.add_field("name", "ada")
    form.add_field("doc", b"\x01\x02", filename="a.bin", content_type="application/x-thing")
    status, body, _ = await fetch(session, "POST", f"{url}/upload", data=form)
    assert (status, body["payload"]) == (200, {"name": "ada"})
    assert body["files"] == [{"fieldname": "doc", "originalname": "a.bin",
                              "mimetype": "application/x-thing", "size": 2, "buffer": "0102"}]


async def test_invalid_json_is_a_400_and_the_flow_does_not_run(web: Any) -> None:
    h, url, session = web
    records = capture_logs()
    status, body, _ = await fetch(session, "POST", f"{url}/echo/j", data=b'{"a": ',
                                  headers={"Content-Type": "application/json"})
    assert status == 400
    assert "invalid JSON body" in body
    assert h.received_now("describe") == []
    [warning] = warnings_of(records, "echo-in")
    assert "invalid JSON body" in warning and "from 127.0.0.1" in warning


async def test_a_request_cookie_reaches_msg_req_cookies(web: Any) -> None:
    _, url, session = web
    _, body, _ = await fetch(session, "GET", f"{url}/echo/c",
                                  headers={"Cookie": "theme=dark; id=7"})
    assert body["cookies"] == {"theme": "dark", "id": "7"}


async def test_head_on_a_get_route_has_headers_and_no_body(web: Any) -> None:
    _, url, session = web
    async with session.head(f"{url}/types/str") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert await response.read() == b""


# -- answers -------------------------------------------------------------------------------------


async def test_status_headers_and_cookies(web: Any) -> None:
    _, url, session = web
    async with session.get(f"{url}/custom") as response:
        assert response.status == 201  # the node's status_code wins over msg.statusCode
        assert await response.text() == "made"
        assert response.headers["X-Both"] == "from config"  # config headers win
        assert response.headers["X-From-Msg"] == "m"
        assert response.headers["Cache-Control"] == "no-store"
        cookies = sorted(response.headers.getall("Set-Cookie"))
    assert len(cookies) == 3
    gone, plain, session_cookie = cookies
    assert gone.startswith("gone=\"\"") and "Max-Age=0" in gone
    assert plain == "plain=v1; Path=/"
    assert session_cookie.startswith("session=abc;")
    assert {"HttpOnly", "Max-Age=60", "Path=/custom"} <= {
        part.strip() for part in session_cookie.split(";")}


@pytest.mark.parametrize(("code", "expected"), [("404", 404), ("503", 503), ("abc", 200),
                                                ("99", 200)])
async def test_msg_status_code(web: Any, code: str, expected: int) -> None:
    _, url, session = web
    status, body, _ = await fetch(session, "GET", f"{url}/status/{code}")
    assert (status, body) == (expected, {"code": code})


@pytest.mark.parametrize(("kind", "content_type", "data"), [
    ("dict", "application/json; charset=utf-8", b'{"a":[1,"x"]}'),
    ("list", "application/json; charset=utf-8", b"[1,2]"),
    ("bool", "application/json; charset=utf-8", b"true"),
    ("dict_bytes", "application/json; charset=utf-8", b'{"b":{"type":"Buffer","data":[104,105]}}'),
    ("bytes", "application/octet-stream", b"\x00\x01"),
    ("str", "text/html; charset=utf-8", "héllo".encode()),
    ("int", "text/html; charset=utf-8", b"42"),
    ("float", "text/html; charset=utf-8", b"1.5"),
    ("none", None, b""),
])
async def test_payload_types_as_express_sends_them(web: Any, kind: str, content_type: str | None,
                                                   data: bytes) -> None:
    _, url, session = web
    async with session.get(f"{url}/types/{kind}") as response:
        assert response.status == 200
        assert response.headers.get("Content-Type") == content_type
        assert response.headers["Content-Length"] == str(len(data))
        assert await response.read() == data


@pytest.mark.parametrize(("what", "problem"), [
    ("header", "invalid header 'X-Split': 'a\\r\\nInjected: 1'"),
    ("cookie", "Illegal key 'no spaces allowed'")])
async def test_an_unsendable_answer_is_a_500_and_a_node_error(web: Any, what: str,
                                                               problem: str) -> None:
    h, url, session = web
    status, body, response = await fetch(session, "GET", f"{url}/bad/{what}")
    assert (status, body) == (500, "Internal Server Error")
    assert "Injected" not in response.headers
    [error] = h.errors
    assert error["node"] == "reply"
    assert error["message"] == f"cannot answer GET /bad/{what}: {problem}"


async def test_unknown_path_is_404_and_wrong_method_405(web: Any) -> None:
    _, url, session = web
    status, _, _ = await fetch(session, "GET", f"{url}/nothing/here")
    assert status == 404
    status, _, response = await fetch(session, "POST", f"{url}/only-get", data=b"x")
    assert status == 405
    assert response.headers["Allow"] == "GET"


async def test_fan_out_shares_res_and_a_second_answer_is_a_warning(web: Any) -> None:
    h, url, session = web
    records = capture_logs()
    status, _, _ = await fetch(session, "GET", f"{url}/twice")
    assert status == 200
    await h.settle()
    # Both copies of the message carry the same response handle: one answer, one warning.
    [first] = h.received_now("reply")
    [second] = h.received_now("twice-reply")
    assert first["res"] is second["res"] and first["req"] is second["req"]
    assert first is not second
    assert warnings_of(records, "twice-reply") == ["GET /twice was already answered"]


async def test_a_message_without_res_is_a_warning(web: Any) -> None:
    h, _, _ = web
    records = capture_logs()
    h.send("reply", {"payload": "x"})
    await h.settle()
    assert warnings_of(records, "reply") == [
        "no response object: msg.res must come from an http-in node"]


# -- timeouts, limits, misbehaving clients -------------------------------------------------------


async def test_a_request_the_flow_never_answers_gets_504(web: Any) -> None:
    h, url, session = web
    records = capture_logs()
    started = time.monotonic()
    status, _, _ = await fetch(session, "GET", f"{url}/never")
    assert status == 504
    assert 0.45 < time.monotonic() - started < 2
    assert h.node("never-in").pending == 0  # the waiting entry is gone
    [warning] = warnings_of(records, "never-in")
    assert warning == ("no http-response answered GET /never from 127.0.0.1 within 0.5s; "
                       "answered 504")


async def test_an_answer_after_the_504_is_a_warning(web: Any) -> None:
    h, url, session = web
    records = capture_logs()
    status, _, _ = await fetch(session, "GET", f"{url}/late?wait=0.8")
    assert status == 504
    await h.received("late-reply", timeout=2)
    assert warnings_of(records, "late-reply") == [
        "too late: GET /late?wait=0.8 was answered 504 after the request timeout"]


async def test_a_client_that_leaves_early_is_dropped_quietly(web: Any) -> None:
    h, url, session = web
    records = capture_logs()
    with pytest.raises(asyncio.TimeoutError):
        await fetch(session, "GET", f"{url}/late?wait=0.3",
                    timeout=aiohttp.ClientTimeout(total=0.05))
    await h.received("late-reply", timeout=2)
    await h.settle()
    assert warnings_of(records, "late-reply") == []
    assert warnings_of(records, "late-in") == []
    assert h.errors == []
    status, body, _ = await fetch(session, "GET", f"{url}/echo/after")
    assert (status, body["params"]) == (200, {"name": "after"})


async def test_a_body_over_the_limit_is_413_and_the_flow_does_not_run(web: Any) -> None:
    h, url, session = web
    records = capture_logs()
    status, body, _ = await fetch(session, "POST", f"{url}/echo/big", data=b"x" * 5000)
    assert status == 413
    assert "over the 2000 byte limit" in body

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(10):
            yield b"y" * 500

    status, body, _ = await fetch(session, "POST", f"{url}/echo/big", data=chunks())
    assert status == 413
    assert h.received_now("describe") == []
    assert len(warnings_of(records, "echo-in")) == 2
    # The server is fine afterwards.
    status, body, _ = await fetch(session, "POST", f"{url}/echo/small", data=b"x" * 2000)
    assert (status, body["payload"]) == (200, "x" * 2000)


async def test_a_stalled_body_is_408(web: Any) -> None:
    h, _, _ = web
    port = h.runtime.http.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 3)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert h.received_now("describe") == []


async def test_slow_headers_do_not_block_others_and_are_cut_off(web: Any) -> None:
    """Slowloris: sockets that send their headers a byte at a time. Others are served
    meanwhile, and the server closes the slow ones after settings.http.idle_timeout (1 s)."""
    h, url, session = web
    port = h.runtime.http.port

    async def slow_client() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        request = b"GET /echo/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: aaaaaaaa\r\n"
        try:
            for byte in request:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)
            data = await asyncio.wait_for(reader.read(), 5)
            assert data == b""  # closed without an answer
        except ConnectionError:
            pass
        finally:
            writer.close()
        return time.monotonic() - started

    slow = [asyncio.create_task(slow_client()) for _ in range(20)]
    await asyncio.sleep(0.2)
    started = time.monotonic()
    for i in range(20):
        status, body, _ = await fetch(session, "GET", f"{url}/echo/fast{i}")
        assert (status, body["params"]) == (200, {"name": f"fast{i}"})
    assert time.monotonic() - started < 1  # not held up by the slow sockets
    durations = await asyncio.gather(*slow)
    # Cut off after about a second, well before they would have finished (3.4 s).
    assert all(0.9 < d < 2.5 for d in durations), durations


async def test_garbage_on_the_socket_is_a_400_for_that_client_only(web: Any) -> None:
    h, url, session = web
    reader, writer = await asyncio.open_connection("127.0.0.1", h.runtime.http.port)
    writer.write(b"\x16\x03\x01 definitely not http\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 3)
    writer.close()
    assert answer.split(b"\r\n")[0].split(b" ")[1] == b"400"
    status, _, _ = await fetch(session, "GET", f"{url}/echo/ok")
    assert status == 200


async def test_hundreds_of_concurrent_requests_are_all_answered_correctly(web: Any) -> None:
    h, url, session = web

    async def one(i: int) -> None:
        status, body, _ = await fetch(session, "POST", f"{url}/echo/n{i}?i={i}",
                                      json={"i": i})
        assert status == 200
        assert (body["params"], body["query"], body["payload"]) == (
            {"name": f"n{i}"}, {"i": str(i)}, {"i": i})

    await asyncio.gather(*(one(i) for i in range(500)))
    assert h.node("echo-in").msgs_out == 500


async def test_stop_leaves_no_task_and_frees_the_port() -> None:
    before = asyncio.all_tasks()
    async with serving(FLOW) as h:
        port = h.runtime.http.port
        async with aiohttp.ClientSession() as session:
            # One answered, one pending (no answer ever), when the runtime stops.
            status, _, _ = await fetch(session, "GET", f"{h.runtime.http.url}/echo/x")
            assert status == 200
            pending = asyncio.create_task(fetch(session, "GET",
                                                f"{h.runtime.http.url}/never"))
            await asyncio.sleep(0.1)
    with contextlib.suppress(aiohttp.ClientError, asyncio.CancelledError):
        await pending
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free again


async def test_a_reload_without_the_node_removes_its_route() -> None:
    async with serving(FLOW) as h:
        url = h.runtime.http.url
        async with aiohttp.ClientSession() as session:
            assert (await fetch(session, "GET", f"{url}/only-get"))[0] == 200
            without = FLOW.replace("  only-get: {type: http-in, method: get, url: /only-get, "
                                   "wires: [reply]}\n", "")
            assert without != FLOW
            await h.runtime.reload(Loader(test_registry()).load_text(without, "<test>"))
            assert (await fetch(session, "GET", f"{url}/only-get"))[0] == 404
            assert (await fetch(session, "GET", f"{url}/echo/still"))[0] == 200


async def test_a_reload_adding_the_first_http_in_starts_listening() -> None:
    quiet = "flow: web\nsettings:\n  http: {port: 0, host: 127.0.0.1}\nnodes:\n" \
            "  note: {type: comment}\n"
    async with FlowHarness.from_yaml(quiet) as h:
        assert not h.runtime.http.listening
        served = quiet + "  hi: {type: http-in, url: /hi, wires: [reply]}\n" \
                         "  reply: {type: http-response}\n"
        await h.runtime.reload(Loader(test_registry()).load_text(served, "<test>"))
        async with aiohttp.ClientSession() as session:
            status, body, _ = await fetch(session, "GET", f"{h.runtime.http.url}/hi?a=b")
    assert (status, body) == (200, {"a": "b"})
