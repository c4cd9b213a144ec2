"""The reconnecting client's opening handshake (websockets' ClientProtocol) against raw servers
on 127.0.0.1 that answer exactly what each case needs: a good upgrade with a frame in the same
segment, refusals (403 with a body, no upgrade, a wrong Sec-WebSocket-Accept), an endless head."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from wsmodel import parse_frames

from flowengine.server.websocket import WebSocketClient

pytestmark = pytest.mark.timeout(30)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Answer = Callable[[dict[str, str]], bytes | list[bytes]]  # a list: one write each, 10 ms apart


def accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade(headers: dict[str, str], extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept(headers["sec-websocket-key"]).encode()
            + b"\r\n\r\n" + extra)


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[dict[str, Any]]:
    """A TCP server that reads one request head, records it and writes ``answer(headers)``."""
    seen: dict[str, Any] = {"requests": [], "frames": bytearray()}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        seen["requests"].append((lines[0], headers))
        pieces = answer(headers)
        for piece in pieces if isinstance(pieces, list) else [pieces]:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        with_data = await reader.read(65536)
        seen["frames"] += with_data
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    seen["port"] = srv.sockets[0].getsockname()[1]
    async with srv:
        yield seen


async def run_client(url: str, until: Callable[[list[tuple[str, str]], list[Any]], bool]
                     ) -> tuple[list[tuple[str, str]], list[Any]]:
    states: list[tuple[str, str]] = []
    messages: list[Any] = []
    client = WebSocketClient(url, heartbeat=None, min_backoff=5, open_timeout=3)
    client.subscribe("test", lambda _sid, data: messages.append(data),
                     on_state=lambda state, detail: states.append((state, detail)),
                     report=lambda _level, _text: None)
    client.start()
    try:
        async with asyncio.timeout(5):
            while not until(states, messages):
                await asyncio.sleep(0.01)
    finally:
        await client.close()
    return states, messages


def errored(states: list[tuple[str, str]], _messages: list[Any]) -> bool:
    return any(state == "error" for state, _ in states)


async def test_upgrade_split_across_segments() -> None:
    def answer(headers: dict[str, str]) -> list[bytes]:
        whole = upgrade(headers, bytes((0x82, 2)) + b"hi")
        return [whole[:20], whole[20:-5], whole[-5:-1], whole[-1:]]

    async with server(answer) as seen:
        _, messages = await run_client(f"ws://127.0.0.1:{seen['port']}/", lambda _s, m: bool(m))
    assert messages == [b"hi"]


async def test_upgrade_with_a_frame_in_the_same_segment() -> None:
    # The server's first frame arrives with the 101: it is ours to parse, not the handshake's.
    hello = bytes((0x81, 5)) + b"hello"
    async with server(lambda h: upgrade(h, hello)) as seen:
        url = f"ws://user:secret@127.0.0.1:{seen['port']}/path?q=1"
        states, messages = await run_client(url, lambda _s, m: bool(m))
    assert messages == ["hello"]
    assert ("connected", "") in states and not errored(states, messages)
    [(line, headers)] = seen["requests"]
    assert line == "GET /path?q=1 HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{seen['port']}"
    assert headers["upgrade"] == "websocket" and headers["sec-websocket-version"] == "13"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"user:secret").decode()
    [close] = parse_frames(bytes(seen["frames"]), mask=True)  # the client's close on leaving
    assert close.data[:2] == (1000).to_bytes(2, "big")


@pytest.mark.parametrize(("answer", "reason"), [
    (lambda h: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden", "HTTP 403"),
    (lambda h: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP 200"),
    (lambda h: [b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nno", b"pe"], "HTTP 404"),
    (lambda h: upgrade(h).replace(b"Upgrade: websocket", b"Upgrade: h2c"), "Upgrade"),
    (lambda h: upgrade({"sec-websocket-key": "AAAAAAAAAAAAAAAAAAAAAA=="}),
     "Sec-WebSocket-Accept"),
    (lambda h: b"HTTP/1.1 101 Switching Protocols\r\n" + b"X-Pad: " + b"x" * 70_000,
     "handshake response too long"),
], ids=["403 with a body", "200", "404 with a body in two segments", "no websocket upgrade",
      "wrong accept", "endless head"])
async def test_refused_handshakes_are_reported(answer: Answer, reason: str) -> None:
    async with server(answer) as seen:
        states, _ = await run_client(f"ws://127.0.0.1:{seen['port']}/", errored)
    detail = next(detail for state, detail in states if state == "error")
    assert reason in detail
    assert ("connected", "") not in states
