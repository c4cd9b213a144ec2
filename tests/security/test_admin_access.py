"""The admin API (issue 12, points 6 and 11): with a token every request needs it, reading and
the event stream included; wrong tokens are rate limited per address; without a token the API
is read-only and answers loopback clients only; the event stream refuses foreign origins."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from flowengine.server.admin import MAX_FAILURES
from flowengine.testing import FlowHarness

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWENGINE_ADMIN_TOKEN", raising=False)


def admin(token: str | None = None) -> FlowHarness:
    http = {"port": 0, "host": "127.0.0.1", **({"admin_token": token} if token else {})}
    harness = FlowHarness.from_dict({"flow": "f", "settings": {"http": http},
                                     "nodes": {"go": {"type": "inject"}}})
    harness.runtime.serve_http = True
    return harness


async def test_with_a_token_reading_needs_it_too() -> None:
    async with admin(TOKEN) as h, aiohttp.ClientSession(h.runtime.http.url) as client:
        for path in ("/admin", "/admin/nodes", "/admin/flows", "/admin/types", "/metrics"):
            async with client.get(path) as response:
                assert response.status == 401, path
            async with client.get(path, headers=AUTH) as response:
                assert response.status == 200, path
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/admin/events")
        assert refused.value.status == 401
        async with client.ws_connect("/admin/events", headers=AUTH):
            pass
        async with client.ws_connect(f"/admin/events?access_token={TOKEN}"):
            pass  # a browser cannot set the header on a websocket


async def test_wrong_tokens_are_rate_limited_per_address() -> None:
    async with admin(TOKEN) as h, aiohttp.ClientSession(h.runtime.http.url) as client:
        for _ in range(MAX_FAILURES):
            async with client.post("/admin/inject/go",
                                   headers={"Authorization": "Bearer guess"}) as response:
                assert response.status == 401
        # Now even the right token waits: guessing costs a minute per ten tries.
        async with client.post("/admin/inject/go", headers=AUTH) as response:
            assert response.status == 429
            assert 1 <= int(response.headers["Retry-After"]) <= 61
        async with client.get("/metrics", headers=AUTH) as response:
            assert response.status == 429


async def test_without_a_token_the_api_is_read_only_and_local() -> None:
    async with admin() as h, aiohttp.ClientSession(h.runtime.http.url) as client:
        async with client.get("/admin/nodes") as response:
            assert response.status == 200
        async with client.post("/admin/inject/go") as response:
            assert response.status == 403
        api = h.runtime.http.admin
        for remote, allowed in (("127.0.0.1", True), ("::1", True), ("192.0.2.10", False),
                                ("10.1.2.3", False)):
            request = make_mocked_request("GET", "/admin/nodes", transport=_Peer(remote))
            denied = api._check_access(request, mutating=False)
            assert (denied is None) is allowed, remote
            if denied is not None:
                assert denied.status == 403


async def test_the_event_stream_refuses_foreign_origins() -> None:
    async with admin() as h, aiohttp.ClientSession(h.runtime.http.url) as client:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/admin/events",
                                    headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        port = h.runtime.http.port
        async with client.ws_connect("/admin/events",
                                     headers={"Origin": f"http://127.0.0.1:{port}"}):
            pass


class _Peer:
    """A transport as aiohttp's request reads the client address from it."""

    def __init__(self, host: str):
        self.host = host

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.host, 40000) if name == "peername" else default
