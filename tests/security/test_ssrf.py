"""Players and internal addresses (issue 12, point 5, SSRF): a client must not be able to make
the media server fetch from the server's own network. An http(s)/rtsp(s) player whose host is,
or resolves to, a loopback, private, link-local, shared or reserved address is refused (40107)
before anything is fetched, and the refusal names the host only (nothing that tells an open port
from a closed one). ``player_allow`` (setting, ``--player-allow``, ``FLOWENGINE_PLAYER_ALLOW``)
lets chosen internal sources through; file URIs stay confined to the media folder."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from flowengine.media import MediaServer, MediaServerSettings
from flowengine.media.cli import build_parser, settings_from_args
from flowengine.media.settings import PLAYER_ALLOW_ENV

pytestmark = pytest.mark.timeout(60)


class Recorded(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        Recorded.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def internal_http() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 that records every request it gets (none must come)."""
    Recorded.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A raw JSON-RPC client of an in-process media server."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.ids = 0

    async def call(self, method: str, params: dict) -> dict:
        self.ids += 1
        await self.ws.send_str(json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method,
                                           "params": params}))
        while True:
            answer = json.loads((await asyncio.wait_for(self.ws.receive(), 15)).data)
            if answer.get("id") == self.ids:
                return answer

    async def player(self, uri: str) -> dict:
        pipeline = (await self.call("create", {"type": "MediaPipeline"}))["result"]["value"]
        return await self.call("create", {"type": "PlayerEndpoint", "constructorParams": {
            "mediaPipeline": pipeline, "uri": uri}})


async def media_server(tmp_path: Path, **settings: object):
    server = MediaServer(MediaServerSettings(port=0, media_dir=tmp_path / "media", **settings))
    await server.start()
    return server


@pytest.fixture
async def client_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``await client_of(**settings)``: a client of a new server with these settings."""
    monkeypatch.delenv(PLAYER_ALLOW_ENV, raising=False)
    opened: list = []

    async def open_client(**settings: object) -> Client:
        server = await media_server(tmp_path, **settings)
        session = aiohttp.ClientSession()
        opened.append((server, session))
        return Client(await session.ws_connect(server.url))

    yield open_client
    for server, session in opened:
        await session.close()
        await server.stop()


def internal_urls(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/index.m3u8", f"https://127.0.0.1:{port}/x",
        f"http://localhost:{port}/index.m3u8",        # a name that resolves to loopback
        f"http://127.1:{port}/a", f"http://2130706433:{port}/a",  # 127.0.0.1 spelt otherwise
        f"http://0x7f000001:{port}/a", f"http://0.0.0.0:{port}/a",
        f"http://[::1]:{port}/a", f"http://[::ffff:127.0.0.1]:{port}/a",
        f"rtsp://127.0.0.1:{port}/cam", f"rtsps://127.0.0.1:{port}/cam",
        "http://10.0.0.1/a.m3u8", "http://172.16.5.4/a", "http://192.168.1.1/a",
        "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/a",
        "http://192.0.2.1/a", "http://[fe80::1]/a", "http://[fd12:3456::1]/a",
        f"http://user:pw@127.0.0.1:{port}/a",
    ]


async def test_internal_sources_are_refused_before_any_fetch(client_of, internal_http) -> None:
    client = await client_of()
    for url in internal_urls(internal_http):
        error = (await client.player(url)).get("error")
        assert error is not None, f"{url} was accepted"
        assert error["code"] == 40107, (url, error)
        assert "internal address" in error["message"], (url, error)
        assert str(internal_http) not in error["message"]  # names the host, not the port
    await asyncio.sleep(0.5)
    assert Recorded.hits == []


async def test_refusal_is_the_same_for_open_and_closed_ports(client_of, internal_http) -> None:
    client = await client_of()
    opened = (await client.player(f"http://127.0.0.1:{internal_http}/a"))["error"]
    closed = (await client.player(f"http://127.0.0.1:{closed_port()}/a"))["error"]
    assert opened == closed


async def test_a_name_that_does_not_resolve_is_refused(client_of) -> None:
    client = await client_of()
    error = (await client.player("http://no-such-host.invalid/a.m3u8"))["error"]
    assert error["code"] == 40107 and "cannot be resolved" in error["message"]


async def test_player_allow_lets_chosen_sources_through(client_of, internal_http) -> None:
    for allow in (("127.0.0.1",), ("127.0.0.0/8",), ("localhost",)):
        client = await client_of(player_allow=allow)
        host = "localhost" if allow == ("localhost",) else "127.0.0.1"
        answer = await client.player(f"http://{host}:{internal_http}/index.m3u8")
        assert "result" in answer, (allow, answer)
        if allow == ("127.0.0.0/8",):  # only what is allowed
            refused = await client.player("http://10.0.0.1/a")
            assert refused["error"]["code"] == 40107
    # Played: the source is fetched (so the refusals above did stop the fetches).
    client = await client_of(player_allow=("127.0.0.1",))
    pipeline = (await client.call("create", {"type": "MediaPipeline"}))["result"]["value"]
    player = (await client.call("create", {"type": "PlayerEndpoint", "constructorParams": {
        "mediaPipeline": pipeline,
        "uri": f"http://127.0.0.1:{internal_http}/index.m3u8"}}))["result"]["value"]
    await client.call("invoke", {"object": player, "operation": "play"})
    for _ in range(100):
        if Recorded.hits:
            break
        await asyncio.sleep(0.05)
    assert Recorded.hits == ["/index.m3u8"]


def test_the_command_line_and_the_environment_set_player_allow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLAYER_ALLOW_ENV, "127.0.0.1, cameras.lan 10.1.0.0/16")
    assert MediaServerSettings().player_allow == ("127.0.0.1", "cameras.lan", "10.1.0.0/16")
    args = build_parser().parse_args([])
    assert settings_from_args(args).player_allow == ("127.0.0.1", "cameras.lan",
                                                      "10.1.0.0/16")
    args = build_parser().parse_args(["--player-allow", "192.168.0.0/24"])
    assert settings_from_args(args).player_allow == ("192.168.0.0/24",)
    monkeypatch.delenv(PLAYER_ALLOW_ENV)
    assert MediaServerSettings().player_allow == ()


async def test_file_players_stay_in_the_media_folder(client_of, tmp_path: Path) -> None:
    client = await client_of()
    for uri in ("file:///etc/passwd", "file://../../etc/passwd", "/etc/hostname",
                "file:///%2e%2e/etc/passwd"):
        error = (await client.player(uri))["error"]
        assert error["code"] == 40107, (uri, error)
