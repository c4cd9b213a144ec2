"""Fixtures for the media server tests: a server on 127.0.0.1 at a free port, and a raw
JSON-RPC client over a real WebSocket (no client library in between)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from flowengine.media import MediaServer, MediaServerSettings


class RawClient:
    """Sends raw frames and sorts what comes back: responses by id, events in a queue."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.next_id = 0
        self.responses: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.unmatched: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.session_id: str | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"server sent a non-text frame: {msg.type}")
            frame = json.loads(msg.data)
            if frame.get("method") == "onEvent":
                await self.events.put(frame)
                continue
            future = self.responses.pop(frame.get("id"), None)
            if future is not None and frame.get("id") is not None:
                future.set_result(frame)
            else:
                await self.unmatched.put(frame)

    async def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        request_id: Any = None,
        binary: bool = False,
    ) -> dict[str, Any]:
        """Send one request and return the whole response frame."""
        if request_id is None:
            request_id = self.next_id
            self.next_id += 1
        frame: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        future = asyncio.get_running_loop().create_future()
        self.responses[request_id] = future
        text = json.dumps(frame)
        await self.send_raw(text.encode() if binary else text)
        response = await asyncio.wait_for(future, 10)
        sid = (
            (response.get("result") or {}).get("sessionId")
            if isinstance(response.get("result"), dict)
            else None
        )
        if sid:
            self.session_id = sid
        return response

    async def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``result`` of a call that must succeed."""
        response = await self.call(method, params)
        assert "error" not in response, response
        return response["result"]

    async def invoke(self, obj: str, operation: str, **params: Any) -> Any:
        p: dict[str, Any] = {"object": obj, "operation": operation}
        if params:
            p["operationParams"] = params
        return (await self.result("invoke", p)).get("value")

    async def create(self, type_name: str, **ctor: Any) -> str:
        p: dict[str, Any] = {"type": type_name, "properties": {}}
        if ctor:
            p["constructorParams"] = ctor
        return (await self.result("create", p))["value"]

    async def event(self, event_type: str | None = None, timeout: float = 10) -> dict[str, Any]:
        """The next event (of ``event_type``, skipping others): ``params.value``."""
        while True:
            frame = await asyncio.wait_for(self.events.get(), timeout)
            value = frame["params"]["value"]
            if event_type is None or value["type"] == event_type:
                return value

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    path = tmp_path / "media"
    path.mkdir()
    return path


@pytest.fixture
async def server(media_dir: Path) -> AsyncIterator[MediaServer]:
    # The player tests serve their HLS and RTSP sources on 127.0.0.1: allowed explicitly.
    settings = MediaServerSettings(host="127.0.0.1", port=0, media_dir=media_dir, gc_time=60,
                                   player_allow=("127.0.0.1",))
    async with MediaServer(settings) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def open_client(http: aiohttp.ClientSession):
    """``await open_client(url)`` opens a raw client on any server (closed after the test)."""
    clients: list[RawClient] = []

    async def _open(url: str) -> RawClient:
        client = RawClient(await http.ws_connect(url))
        clients.append(client)
        return client

    yield _open
    for client in clients:
        await client.close()


@pytest.fixture
async def connect(open_client, server: MediaServer):
    """``await connect()`` opens a new raw client on the ``server`` fixture."""

    async def _connect() -> RawClient:
        return await open_client(server.url)

    return _connect


@pytest.fixture
async def client(connect) -> RawClient:
    return await connect()


@pytest.fixture
async def web_server():
    """``await web_server(folder)``: an aiohttp server of this event loop serving ``folder``
    at ``/hls/``; returns (its base URL, its runner)."""
    runners: list[web.AppRunner] = []

    async def _start(folder: Path) -> tuple[str, web.AppRunner]:
        app = web.Application()
        app.router.add_static("/hls", folder)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hls", runner

    yield _start
    for runner in runners:
        await runner.cleanup()
