"""websocket-in / websocket-out with real clients on 127.0.0.1 (Node-RED cases WS-01..WS-08 in
docs/reference/nodered-cases.md).

Clients are the ``websockets`` library's, plus a raw TCP socket where a test must send bytes no
well-behaved client would (malformed frames) or must not read.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import struct
from typing import Any

import pytest
import yaml
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from flowengine.errors import FlowLoadError
from flowengine.loader import Loader
from flowengine.server.websocket import WebSocketListener
from flowengine.testing import FlowHarness, test_registry

HTTP = {"http": {"port": 0, "host": "127.0.0.1"}}


class WsHarness(FlowHarness):
    """A flow whose websocket-in outputs are recorded from the start."""

    async def __aenter__(self) -> WsHarness:
        await super().__aenter__()
        for node in self.runtime.find_nodes(type="websocket-in"):
            self.watch_output(node.id)
        return self


def harness(nodes: dict[str, Any], settings: dict[str, Any] | None = None) -> WsHarness:
    flow = {"flow": "ws", "settings": settings or HTTP, "nodes": nodes}
    return WsHarness.from_dict(flow)  # type: ignore[return-value]


def echo_flow(path: str = "/ws", **in_config: Any) -> dict[str, Any]:
    return {"in": {"type": "websocket-in", "path": path, "wires": ["out"], **in_config},
            "out": {"type": "websocket-out", "path": path}}


def ws_url(h: FlowHarness, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{h.runtime.http.port}{path}"


def client(h: FlowHarness, path: str = "/ws", **kwargs: Any) -> Any:
    return connect(ws_url(h, path), compression=None, open_timeout=5, **kwargs)


async def recv(ws: ClientConnection, timeout: float = 2.0) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), timeout)


async def assert_silent(ws: ClientConnection, wait: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), wait)


async def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- a raw client: handshake by hand, then arbitrary bytes --------------------------------------

class RawClient:
    """A TCP connection that did the opening handshake and then sends whatever a test wants."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, h: FlowHarness, path: str = "/ws", rcvbuf: int | None = None
                   ) -> RawClient:
        sock = socket.socket()
        if rcvbuf is not None:  # a small receive window: the server's buffers fill sooner
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", h.runtime.http.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send_frame(self, first: int, payload: bytes, mask: bool = True) -> None:
        n = len(payload)
        length = (bytes((n | (0x80 if mask else 0),)) if n < 126 else
                  struct.pack("!BH", 126 | (0x80 if mask else 0), n))
        if mask:
            key = os.urandom(4)
            payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes((first,)) + length + payload)

    async def read_frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 3)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first, await self.reader.readexactly(n)

    async def read_close(self) -> int:
        """Skip data frames up to the close frame and return its code; answer it as a client
        should, then expect the server to end the TCP connection."""
        while True:
            first, payload = await self.read_frame()
            if first & 0x0F == 8:
                self.send_frame(0x88, payload[:2])
                assert await asyncio.wait_for(self.reader.read(), 1) == b""  # EOF, well before
                self.writer.close()  # the server's close timeout
                return int.from_bytes(payload[:2], "big")

    def close(self) -> None:
        self.writer.transport.abort()


# -- receiving (WS-01, WS-02) ---------------------------------------------------------------------

async def test_ws_01_receive_text_with_session() -> None:
    async with harness({"in": {"type": "websocket-in", "path": "/ws"}}) as h, client(h) as ws:
        await ws.send("hello")
        [msg] = await h.output("in")
    assert msg["payload"] == "hello"
    session = msg["_session"]
    assert session["type"] == "websocket" and session["path"] == "/ws"
    assert isinstance(session["id"], str) and session["id"]


async def test_ws_01_binary_frame_gives_bytes() -> None:
    async with harness({"in": {"type": "websocket-in", "path": "/ws"}}) as h, client(h) as ws:
        await ws.send(b"\x00\x01\xff")
        [msg] = await h.output("in")
    assert msg["payload"] == b"\x00\x01\xff"


async def test_path_without_leading_slash_is_served_at_slash_path() -> None:
    nodes = {"in": {"type": "websocket-in", "path": "ws"}}
    async with harness(nodes) as h, client(h, "/ws") as ws:
        await ws.send("x")
        [msg] = await h.output("in")
    assert msg["_session"]["path"] == "/ws"


async def test_ws_02_wholemsg_receive() -> None:
    nodes = {"in": {"type": "websocket-in", "path": "/ws", "wholemsg": True}}
    async with harness(nodes) as h, client(h) as ws:
        await ws.send('{"text": "hello", "topic": "t"}')
        await ws.send("hello")  # not JSON: the payload
        await ws.send("123")  # JSON, not an object: the payload
        await ws.send(b'{"a": 1}')  # binary frames stay bytes
        msgs = await h.output("in", count=4)
    assert msgs[0]["text"] == "hello" and msgs[0]["topic"] == "t"
    assert "payload" not in msgs[0]
    assert msgs[0]["_session"]["type"] == "websocket"
    assert msgs[1]["payload"] == "hello"
    assert msgs[2]["payload"] == 123
    assert msgs[3]["payload"] == b'{"a": 1}'


async def test_fragmented_message_and_ping_between_fragments() -> None:
    async with harness({"in": {"type": "websocket-in", "path": "/ws"}}) as h:
        raw = await RawClient.open(h)
        raw.send_frame(0x01, b"hel")  # text, not final
        raw.send_frame(0x89, b"are you there")  # ping between fragments (allowed, §5.4)
        raw.send_frame(0x80, b"lo")  # final continuation
        assert await raw.read_frame() == (0x8A, b"are you there")  # the pong
        [msg] = await h.output("in")
        raw.close()
    assert msg["payload"] == "hello"


# -- sending (WS-03..WS-07) -----------------------------------------------------------------------

async def test_ws_06_reply_goes_to_the_sender_only() -> None:
    async with harness(echo_flow()) as h, client(h) as a, client(h) as b:
        await a.send("from a")
        assert await recv(a) == "from a"
        await b.send(b"\x01\x02")
        assert await recv(b) == b"\x01\x02"  # binary stays binary
        await assert_silent(a)
        await assert_silent(b)


async def test_ws_03_broadcast_without_session_and_payload_types() -> None:
    async with harness(echo_flow()) as h, client(h) as a, client(h) as b:
        await wait_for(lambda: len(h.runtime.find_nodes(type="websocket-out")[0]
                                   ._endpoint.sessions) == 2)
        for payload in ("all", {"a": [1, 2.0]}, 42, 1.5, True, None, b"\x00bin"):
            h.send("out", {"payload": payload})
        expected = ["all", '{"a":[1,2]}', "42", "1.5", "true", "null", b"\x00bin"]
        for ws in (a, b):
            assert [await recv(ws) for _ in expected] == expected


async def test_ws_05_no_payload_or_empty_string_sends_nothing() -> None:
    async with harness(echo_flow()) as h, client(h) as ws:
        await wait_for(lambda: len(h.node("out")._endpoint.sessions) == 1)
        h.send("out", {"topic": "hello"})
        h.send("out", {"payload": ""})
        await assert_silent(ws)
        assert h.errors == []
        h.send("out", {"payload": "after"})
        assert await recv(ws) == "after"


async def test_ws_04_wholemsg_send_omits_session() -> None:
    nodes = echo_flow()
    nodes["out"]["wholemsg"] = True
    async with harness(nodes) as h, client(h) as ws:
        await ws.send("hello")
        reply = json.loads(await recv(ws))
    assert reply["payload"] == "hello"
    assert "_session" not in reply
    assert isinstance(reply["_msgid"], str)


async def test_ws_04_wholemsg_both_ways_round_trip() -> None:
    nodes = echo_flow(wholemsg=True)
    nodes["out"]["wholemsg"] = True
    async with harness(nodes) as h, client(h) as ws:
        await ws.send('{"text": "hi", "n": [1, 2]}')
        reply = json.loads(await recv(ws))
    assert reply["text"] == "hi" and reply["n"] == [1, 2]
    assert "_session" not in reply and "payload" not in reply


async def test_ws_07_session_of_another_endpoint_is_dropped() -> None:
    # /b's messages go to the websocket-out of /a: the session id means nothing there, so
    # nothing is sent (and in particular not broadcast to /a's clients).
    nodes = {"in-b": {"type": "websocket-in", "path": "/b", "wires": ["out-a"]},
             "out-a": {"type": "websocket-out", "path": "/a"}}
    async with harness(nodes) as h, client(h, "/a") as a, client(h, "/b") as b:
        await b.send("hello")
        [received] = await h.received("out-a")
        assert received["_session"]["path"] == "/b"
        await assert_silent(a)
        await assert_silent(b)


async def test_ws_08_endpoint_missing_or_ambiguous_is_a_load_error() -> None:
    loader = Loader(test_registry())
    for config in ({}, {"path": "/a", "url": "ws://127.0.0.1:1/a"}):
        text = yaml.safe_dump({"flow": "f", "nodes": {"in": {"type": "websocket in",
                                                             **config}}})
        with pytest.raises(FlowLoadError, match="path"):
            loader.load_text(text, "<test>")
    with pytest.raises(FlowLoadError, match="url"):
        loader.load_text(yaml.safe_dump({"flow": "f", "nodes": {
            "out": {"type": "websocket-out", "url": "http://x/"}}}), "<test>")


async def test_reply_to_a_session_that_left_is_dropped_quietly() -> None:
    async with harness({"in": {"type": "websocket-in", "path": "/ws"},
                        "out": {"type": "websocket-out", "path": "/ws"}}) as h:
        async with client(h) as ws:
            await ws.send("x")
            [msg] = await h.output("in")
        h.send("out", {"payload": "late", "_session": msg["_session"]})
        await h.settle()
        assert h.errors == []


# -- connection events ----------------------------------------------------------------------------

async def test_connect_and_disconnect_events() -> None:
    async with harness({"in": {"type": "websocket-in", "path": "/ws", "events": True}}) as h:
        async with client(h) as ws:
            [connected] = await h.output("in")
            await ws.send("data")
            await ws.close(4000, "bye")
        msgs = await h.output("in", count=3)
        abrupt = await RawClient.open(h)
        abrupt.close()  # no close frame: 1006
        msgs += (await h.output("in", count=5))[3:]
    data, disconnected = msgs[1], msgs[2]
    session = connected["_session"]
    assert connected["event"] == "connect"
    assert connected["payload"]["remote"].startswith("127.0.0.1:")
    assert data["payload"] == "data" and data["_session"] == session
    assert disconnected["event"] == "disconnect" and disconnected["_session"] == session
    assert disconnected["payload"]["code"] == 4000
    assert disconnected["payload"]["reason"] == "bye"
    assert [m["event"] for m in msgs[3:]] == ["connect", "disconnect"]
    assert msgs[4]["payload"]["code"] == 1006
    assert msgs[3]["_session"]["id"] == msgs[4]["_session"]["id"] != session["id"]


async def test_listener_status_counts_connections() -> None:
    async with harness(echo_flow()) as h:
        async with client(h), client(h):
            await wait_for(lambda: (h.node("in").last_status or {}).get("text")
                           == "connected 2")
        await wait_for(lambda: (h.node("in").last_status or {}).get("text") == "disconnected")
        assert h.node("out").last_status == {"fill": "red", "shape": "ring",
                                             "text": "disconnected"}


# -- many clients, vanishing clients --------------------------------------------------------------

async def test_300_concurrent_clients_each_get_exactly_their_replies() -> None:
    async with harness(echo_flow()) as h:
        async def talk(i: int) -> list[str]:
            async with client(h) as ws:
                replies = []
                for j in range(5):
                    await ws.send(f"{i}:{j}")
                    replies.append(await recv(ws, 10))
                await assert_silent(ws, 0.05)
                return replies

        results = await asyncio.gather(*(talk(i) for i in range(300)))
        assert h.errors == []
    assert results == [[f"{i}:{j}" for j in range(5)] for i in range(300)]


async def test_clients_vanishing_while_replies_are_queued(
        caplog: pytest.LogCaptureFixture) -> None:
    # Each message is answered with 20 frames: 256 KiB each for the clients that will vanish,
    # more than the kernel and the transport buffer take, so replies wait in their session
    # queues when they drop their TCP connection; 1 KiB each for the others.
    nodes = {
        "in": {"type": "websocket-in", "path": "/ws", "wires": ["burst"]},
        "burst": {"type": "function", "wires": ["out"], "code": (
            "size = 262144 if msg['payload'] == 'v' else 1024\n"
            "return [[dict(msg, payload=msg['payload'] * size, n=i) for i in range(20)]]")},
        "out": {"type": "websocket-out", "path": "/ws"},
    }
    caplog.set_level(logging.INFO, logger="flowengine")
    async with harness(nodes) as h:
        listener = h.node("in")._endpoint
        vanishing = [await RawClient.open(h, rcvbuf=4096) for _ in range(10)]
        ports = {f"127.0.0.1:{raw.writer.get_extra_info('sockname')[1]}" for raw in vanishing}
        staying = [await connect(ws_url(h), compression=None, max_size=None) for _ in range(10)]
        for raw in vanishing:
            raw.send_frame(0x81, b"v")
        for i, ws in enumerate(staying):
            await ws.send(chr(ord("a") + i))
        await h.received("out", count=400, timeout=5)
        queued = [len(c._backlog) for c in listener.sessions.values() if c.remote in ports]
        assert len(queued) == 10 and min(queued) > 0, queued  # replies are waiting
        for raw in vanishing:
            raw.close()
        for i, ws in enumerate(staying):
            replies = [await recv(ws, 10) for _ in range(20)]
            assert replies == [chr(ord("a") + i) * 1024] * 20
            await ws.send("again")
            assert [len(await recv(ws, 10)) for _ in range(20)] == [5 * 1024] * 20
        await wait_for(lambda: len(listener.sessions) == 10)
        for ws in staying:
            await ws.close()
        assert h.errors == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    lost = [r.getMessage() for r in caplog.records if " lost" in r.getMessage()]
    assert len(lost) == 10 and all(any(p in m for p in ports) for m in lost)  # once each


async def test_slow_reader_whose_queue_overflows_is_closed_with_1008() -> None:
    async with harness(echo_flow()) as h:
        listener = h.node("in")._endpoint
        listener.write_limit, listener.max_queue = 64 * 1024, 8
        slow = await RawClient.open(h)  # reads nothing until the queue overflowed
        port = slow.writer.get_extra_info("sockname")[1]
        async with client(h, max_size=None) as fast:
            await wait_for(lambda: len(listener.sessions) == 2)
            [slow_session] = [c for c in listener.sessions.values()
                              if c.remote == f"127.0.0.1:{port}"]
            sent = 0
            # Broadcast 64 KiB frames, the fast client reading each, until the kernel buffers,
            # the transport buffer and the queue of the slow client are full.
            while slow_session.state.value == "open" and sent < 2000:
                h.send("out", {"payload": "x" * 65536})
                assert len(await recv(fast, 5)) == 65536
                sent += 1
            assert 0 < sent < 2000
            # The slow client gets what was already buffered, then the close frame.
            assert await slow.read_close() == 1008
            h.send("out", {"payload": "fast still served"})
            assert await recv(fast) == "fast still served"
            await wait_for(lambda: len(listener.sessions) == 1)


# -- bad input ------------------------------------------------------------------------------------

async def test_oversized_frame_closes_only_that_client_with_1009(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flowengine")
    async with harness(echo_flow(max_size="1KiB")) as h:
        async with client(h) as big, client(h) as other:
            await big.send("x" * 1024)  # exactly the limit: fine
            assert await recv(big) == "x" * 1024
            await big.send("x" * 1025)
            with pytest.raises(ConnectionClosed) as closed:
                await recv(big)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
            await other.send("still here")
            assert await recv(other) == "still here"
        await h.settle()
    warnings = [r for r in caplog.records
                if r.levelno == logging.WARNING and "1009" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].node == "in"  # type: ignore[attr-defined]
    assert "127.0.0.1:" in warnings[0].getMessage()


async def test_oversized_fragmented_message_is_refused_too() -> None:
    async with harness(echo_flow(max_size=100)) as h:
        raw = await RawClient.open(h)
        raw.send_frame(0x01, b"a" * 60)
        raw.send_frame(0x80, b"b" * 60)  # 120 bytes in all
        assert await raw.read_close() == 1009
        async with client(h) as ws:
            await ws.send("ok")
            assert await recv(ws) == "ok"


@pytest.mark.parametrize(("first", "payload", "mask"), [
    (0xC1, b"reserved bits", True),  # RSV1 without a negotiated extension
    (0x81, b"unmasked", False),  # clients must mask
    (0x83, b"opcode 3", True),  # reserved opcode
    (0x09, b"ping", True),  # fragmented control frame
    (0x80, b"continuation", True),  # continuation without a message
])
async def test_malformed_frame_closes_only_that_client_with_1002(
        first: int, payload: bytes, mask: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flowengine")
    # A second websocket-in on the path records connection events; the first one echoes.
    nodes = {**echo_flow(), "events": {"type": "websocket-in", "path": "/ws", "events": True}}
    async with harness(nodes) as h:
        async with client(h) as other:
            raw = await RawClient.open(h)
            raw.send_frame(first, payload, mask)
            raw.writer.write(os.urandom(64))  # garbage after it is ignored
            assert await raw.read_close() == 1002
            await other.send("fine")
            assert await recv(other) == "fine"
        msgs = await h.output("events", count=5)
    closed = [m for m in msgs if m.get("event") == "disconnect" and m["payload"]["code"] == 1002]
    assert len(closed) == 1
    assert len([r for r in caplog.records if "1002" in r.getMessage()]) == 1


async def test_invalid_utf8_text_closes_with_1007() -> None:
    async with harness(echo_flow()) as h:
        raw = await RawClient.open(h)
        raw.send_frame(0x81, b"\xff\xfe")
        assert await raw.read_close() == 1007


async def test_bad_upgrade_requests_are_refused() -> None:
    async with harness(echo_flow()) as h:
        reader, writer = await asyncio.open_connection("127.0.0.1", h.runtime.http.port)
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        writer.close()
        assert head.startswith(b"HTTP/1.1 400")
        async with client(h) as ws:  # the path still works
            await ws.send("ok")
            assert await recv(ws) == "ok"


async def test_unknown_path_is_404() -> None:
    async with harness(echo_flow()) as h:
        with pytest.raises(InvalidStatus) as refused:
            async with client(h, "/nope"):
                pass
    assert refused.value.response.status_code == 404


async def test_silent_peer_is_dropped_by_the_heartbeat() -> None:
    async with harness(echo_flow(events=True)) as h:
        # Replace the shared listener by one with a short heartbeat before the nodes use it.
        runtime = h.runtime
        await h.node("in")._endpoint.close()
        listener = WebSocketListener(runtime.http, "/hb", heartbeat=0.2)
        try:
            silent = await RawClient.open(h, "/hb")  # reads nothing, answers no ping
            async with client(h, "/hb") as lively:  # websockets answers pings
                await wait_for(lambda: len(listener.sessions) == 2)
                await asyncio.sleep(0.7)
                assert [c.remote for c in listener.sessions.values()] == [
                    f"127.0.0.1:{lively.local_address[1]}"]
            silent.close()
        finally:
            await listener.close()


# -- lifecycle ------------------------------------------------------------------------------------

async def test_endpoint_closes_with_its_last_node_on_reload_and_reopens() -> None:
    async with harness(echo_flow()) as h:
        async with client(h) as ws:
            await ws.send("one")
            assert await recv(ws) == "one"
            without = Loader(test_registry()).load_text(yaml.safe_dump(
                {"flow": "ws", "settings": HTTP, "nodes": {"x": {"type": "comment"}}}), "<t>")
            await h.runtime.reload(without)
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        with pytest.raises(InvalidStatus):
            async with client(h):
                pass
        again = Loader(test_registry()).load_text(yaml.safe_dump(
            {"flow": "ws", "settings": HTTP, "nodes": echo_flow()}), "<t>")
        await h.runtime.reload(again)
        async with client(h) as ws:
            await ws.send("two")
            assert await recv(ws) == "two"


async def test_changing_one_node_keeps_the_shared_endpoint_and_its_clients() -> None:
    async with harness(echo_flow()) as h, client(h) as ws:
        changed = echo_flow(events=True)
        await h.runtime.reload(Loader(test_registry()).load_text(yaml.safe_dump(
            {"flow": "ws", "settings": HTTP, "nodes": changed}), "<t>"))
        await ws.send("still connected")
        assert await recv(ws) == "still connected"


async def test_no_task_left_after_stop() -> None:
    before = asyncio.all_tasks()
    port = free_port()
    server = harness(echo_flow(), {"http": {"port": port, "host": "127.0.0.1"}})
    url = f"ws://127.0.0.1:{port}/ws"
    clients = harness({"cin": {"type": "websocket-in", "url": url},
                       "cout": {"type": "websocket-out", "url": url}})
    async with server, clients as h:
        await wait_for(lambda: (h.node("cout").last_status or {}).get("text") == "connected")
        h.send("cout", {"payload": "hi"})
        [msg] = await h.output("cin")
        assert msg["payload"] == "hi"
        async with client(server) as ws:
            await ws.send("x")
            assert await recv(ws) == "x"
            idle = await RawClient.open(server)  # still connected, reading nothing, at stop
    idle.close()
    await asyncio.sleep(0.05)
    left = asyncio.all_tasks() - before
    assert left == set(), left


# -- client mode ----------------------------------------------------------------------------------

async def test_client_mode_talks_to_a_listener_and_reconnects_after_a_restart() -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/echo"
    server_settings = {"http": {"port": port, "host": "127.0.0.1"}}
    nodes = {"cin": {"type": "websocket-in", "url": url},
             "cout": {"type": "websocket-out", "url": url}}
    async with harness(nodes) as h:
        async with harness(echo_flow("/echo"), server_settings):
            await wait_for(lambda: (h.node("cin").last_status or {}).get("text") == "connected")
            h.send("cout", {"payload": "text"})
            h.send("cout", {"payload": b"\x00\x01"})
            first, second = await h.output("cin", count=2)
            assert first["payload"] == "text" and second["payload"] == b"\x00\x01"
            assert first["_session"]["type"] == "websocket"
            assert first["_session"]["url"] == url
        await wait_for(lambda: (h.node("cin").last_status or {}).get("text") != "connected")
        async with harness(echo_flow("/echo"), server_settings):
            await wait_for(lambda: (h.node("cout").last_status or {}).get("text")
                           == "connected", timeout=5)
            h.send("cout", {"payload": "after restart"})
            [*_, third] = await h.output("cin", count=3)
            assert third["payload"] == "after restart"
            assert third["_session"]["id"] != first["_session"]["id"]
        texts = [s["status"].get("text") for s in h.statuses if s["node"] == "cin"]
        assert "disconnected" in texts or any(t.startswith("error") for t in texts if t)


async def test_client_mode_without_server_reports_once_and_keeps_trying(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flowengine")
    url = f"ws://127.0.0.1:{free_port()}/none"
    async with harness({"cin": {"type": "websocket-in", "url": url}}) as h:
        endpoint = h.node("cin")._endpoint
        await asyncio.sleep(1.7)  # attempts at 0, 0.5, 1.5 s
        assert endpoint.state in ("error", "connecting")
        assert h.node("cin").last_status["fill"] in ("red", "yellow")
    failures = [r for r in caplog.records if "cannot connect" in r.getMessage()]
    assert len(failures) == 1 and failures[0].node == "cin"  # type: ignore[attr-defined]


async def test_client_mode_sees_server_close_codes() -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/echo"
    nodes = {"cin": {"type": "websocket-in", "url": url, "events": True}}
    async with harness(nodes) as h:
        async with harness(echo_flow("/echo"), {"http": {"port": port, "host": "127.0.0.1"}}):
            [connected] = await h.output("cin")
            assert connected["event"] == "connect"
        [_, disconnected] = await h.output("cin", count=2)
    assert disconnected["event"] == "disconnect"
    assert disconnected["payload"]["code"] == 1001  # the server went away
