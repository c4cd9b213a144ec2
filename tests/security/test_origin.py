"""Cross-origin websockets (issue 12, point 6): a page on another site must not be able to use
a visitor's browser to open this server's websockets. An upgrade whose ``Origin`` is neither
the serving host nor allowed (websocket-in ``origins``, ``settings.http.origins``) gets 403;
clients that send no Origin (not browsers) are served."""

from __future__ import annotations

from typing import Any

import pytest
from rawws import RawWebSocket

from flowengine.server.websocket import normalize_origin, origin_allowed
from flowengine.testing import FlowHarness

pytestmark = pytest.mark.timeout(60)


def flow(origins: list[str] | None = None, http: dict[str, Any] | None = None) -> FlowHarness:
    inbound: dict[str, Any] = {"type": "websocket-in", "path": "/ws", "wires": ["out"]}
    if origins is not None:
        inbound["origins"] = origins
    return FlowHarness.from_dict({
        "flow": "ws", "settings": {"http": {"port": 0, "host": "127.0.0.1", **(http or {})}},
        "nodes": {"in": inbound, "out": {"type": "websocket-out", "path": "/ws"}}})


async def status(h: FlowHarness, origin: str | None) -> int:
    headers = {"Origin": origin} if origin is not None else {}
    ws = await RawWebSocket.open(h.runtime.http.port, "/ws", headers)
    ws.abort()
    return ws.status


async def test_only_the_serving_host_by_default() -> None:
    async with flow() as h:
        port = h.runtime.http.port
        assert await status(h, None) == 101                       # not a browser
        assert await status(h, f"http://127.0.0.1:{port}") == 101  # the page it serves
        assert await status(h, f"HTTP://127.0.0.1:{port}/") == 101
        for foreign in ("https://evil.example", f"http://evil.example:{port}",
                        f"http://localhost:{port}",        # another origin for the browser
                        f"http://127.0.0.1:{port + 1}", "http://127.0.0.1", "null",
                        f"file://127.0.0.1:{port}", "not a url", ""):
            assert await status(h, foreign) == 403, foreign


async def test_origins_allowed_by_the_node_and_by_the_setting() -> None:
    async with flow(["https://app.example.org", "http://partner.example:8080"],
                    {"origins": ["https://dashboard.example.org:443"]}) as h:
        assert await status(h, "https://app.example.org") == 101
        assert await status(h, "https://app.example.org:443") == 101
        assert await status(h, "http://partner.example:8080") == 101
        assert await status(h, "https://dashboard.example.org") == 101
        assert await status(h, "https://app.example.org.evil.example") == 403
        assert await status(h, "http://app.example.org") == 403   # another scheme
    async with flow(["*"]) as h:
        assert await status(h, "https://anyone.example") == 101


def test_origin_rules() -> None:
    assert normalize_origin("HTTPS://Example.org:443/") == "https://example.org"
    assert normalize_origin("http://[::1]:8080") == "http://[::1]:8080"
    same = origin_allowed
    assert same("https://example.org", "example.org", frozenset())       # behind a TLS proxy
    assert same("http://example.org:1880", "example.org:1880", frozenset())
    assert not same("https://example.org", "example.org:1880", frozenset())
    assert same("http://[::1]:1880", "[::1]:1880", frozenset())
    assert not same("http://example.org", None, frozenset())
