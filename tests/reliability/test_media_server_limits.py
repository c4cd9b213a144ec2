"""The standalone media server against hostile clients (issue 12, point 7): JSON nested
thousands of levels deep gets a parse error (not a dead task and no answer); clients that
flood requests without reading are closed and, once gone, leave nothing behind; and the server
stops at once (under 2 s) however many such clients hang on to it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from rawws import TEXT, RawWebSocket

from flowengine.media import MediaServer, MediaServerSettings

pytestmark = pytest.mark.timeout(90)

PARSE_ERROR = {"code": -32700, "message": "Parse error."}


async def answer(ws: RawWebSocket) -> dict:
    first, payload = await ws.read_frame()
    assert first == TEXT
    return json.loads(payload)


@pytest.fixture
async def server(tmp_path: Path):
    server = MediaServer(MediaServerSettings(port=0, media_dir=tmp_path / "media"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.parametrize("depth", [101, 1500, 20_000])
async def test_deeply_nested_json_is_a_parse_error(server: MediaServer, depth: int) -> None:
    ws = await RawWebSocket.open(server.port, "/kurento")
    ws.send_text("[" * depth + "]" * depth)
    assert (await answer(ws))["error"] == PARSE_ERROR
    ws.send_text('{"jsonrpc": "2.0", "id": 7, "method": "ping", "params": {"x": '
                 + "[" * depth + "]" * depth + "}}")
    assert (await answer(ws))["error"] == PARSE_ERROR
    # The connection still works, and ordinary nesting is fine.
    ws.send_text(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "ping",
                             "params": {"x": [[[[{"y": [1]}]]]]}}))
    assert (await answer(ws))["result"]["value"] == "pong"
    ws.abort()


async def flood(port: int, requests: int = 4_000) -> RawWebSocket:
    """A client that sends ``requests`` pings and reads nothing; each answer echoes the
    request's 4 KB id, so the answers outgrow the kernel's buffers."""
    ws = await RawWebSocket.open(port, "/kurento", rcvbuf=4096)
    for i in range(requests):
        ws.send_text(json.dumps({"jsonrpc": "2.0", "id": f"{i:04d}" + "x" * 4000,
                                 "method": "ping"}))
        if i % 200 == 0:
            await ws.writer.drain()
    return ws


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_flooding_clients_are_closed_and_leave_nothing_behind(
        server: MediaServer) -> None:
    flooders = [await flood(server.port) for _ in range(3)]
    await wait_for(lambda: not server._connections, timeout=20)  # closed: "Too slow"
    for ws in flooders:
        assert await ws.close_code() in (1008, None)
        ws.abort()
    # A well-behaved client is served as before.
    ws = await RawWebSocket.open(server.port, "/kurento")
    ws.send_text(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
    assert (await answer(ws))["result"]["value"] == "pong"
    ws.abort()
    await wait_for(lambda: not server._connections)


async def test_clients_that_vanish_while_flooding_leave_nothing_behind(
        server: MediaServer) -> None:
    flooders = [await flood(server.port, 1_000) for _ in range(3)]
    await wait_for(lambda: len(server._connections) == 3)
    for ws in flooders:
        ws.abort()
    await wait_for(lambda: not server._connections)


async def test_stop_takes_under_two_seconds_with_clients_that_read_nothing(
        tmp_path: Path) -> None:
    server = MediaServer(MediaServerSettings(port=0, media_dir=tmp_path / "media",
                                             max_outgoing_frames=1_000_000))
    await server.start()
    flooders = [await flood(server.port) for _ in range(3)]
    await asyncio.sleep(1)
    started = time.monotonic()
    await server.stop()
    elapsed = time.monotonic() - started
    for ws in flooders:
        ws.abort()
    assert elapsed < 2.0, f"stop took {elapsed:.1f}s"
