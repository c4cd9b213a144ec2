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
                                     "nodes": {"go": {"type": "inject", "wires": ["show"]},
                                               "show": {"type": "debug", "console": False}}})
    harness.runtime.serve_http = True
    return harness


async def test_with_a_token_other_hosts_need_it_to_read() -> None:
    async with admin(TOKEN) as h, aiohttp.ClientSession(h.runtime.http.url) as client:
        api = h.runtime.http.admin
        for path in ("/admin/nodes", "/admin/flows", "/admin/view", "/metrics"):
            async with client.get(path) as response:   # this machine reads
                assert response.status == 200, path
        for remote, auth, status in (("192.0.2.10", None, 401), ("192.0.2.10", AUTH, None),
                                     ("10.1.2.3", {"Authorization": "Bearer no"}, 401),
                                     ("127.0.0.1", None, None)):
            request = make_mocked_request("GET", "/admin/nodes", headers=auth or {},
                                          transport=_Peer(remote))
            denied = api._check_access(request, mutating=False)
            assert (denied and denied.status) == status, (remote, auth)
        async with client.post("/admin/inject/go") as response:   # changing: the token always
            assert response.status == 401
        async with client.post("/admin/inject/go", headers=AUTH) as response:
            assert response.status == 200


async def test_a_remote_event_stream_needs_the_token() -> None:
    async with admin(TOKEN) as h:
        api = h.runtime.http.admin
        request = make_mocked_request("GET", "/admin/events", transport=_Peer("192.0.2.10"))
        assert api._check_access(request, mutating=False, query_token=True).status == 401
        request = make_mocked_request("GET", f"/admin/events?access_token={TOKEN}",
                                      transport=_Peer("192.0.2.10"))
        assert api._check_access(request, mutating=False, query_token=True) is None
        # The token sent in the first frame, as the flow view does from another host.
        assert await api._token_from_frame(request, _FirstFrame(TOKEN))
        assert not await api._token_from_frame(request, _FirstFrame("guess"))


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


class _FirstFrame:
    """A websocket whose first frame is ``{"token": ...}`` (what ``_token_from_frame`` reads)."""

    def __init__(self, token: str):
        self.token = token

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        return aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, f'{{"token": "{self.token}"}}', None)


class _Peer:
    """A transport as aiohttp's request reads the client address from it."""

    def __init__(self, host: str):
        self.host = host

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.host, 40000) if name == "peername" else default
