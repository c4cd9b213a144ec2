"""Fixtures of the demo's tests (``tests/demo``).

Server-side flow tests (``test_flows_*.py``): the flows of ``flows/kurento.yaml`` run in this
process (:class:`flowengine.testing.FlowHarness`, the real loader and runtime) with their
embedded media server and embedded PostgreSQL, on a free port, with their data in a temporary
folder. The tests talk to them as a browser does: JSON over the ``/signaling`` websocket, WebRTC
from aiortc peers (synthetic PyAV video; loopback ICE candidates, see tests/media/test_webrtc.py),
HTTP for the API. They check the outcome at the source: the media server's pipelines through our
Kurento client, PostgreSQL's rows through asyncpg, the recorded files through PyAV.

One app serves a test module (module-scoped fixtures on a module-scoped event loop: test modules
set ``pytestmark = pytest.mark.asyncio(loop_scope="module")``). A module can add environment
variables by overriding the ``demo_env`` fixture (the Orion tests point ORION_URL at their
server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import asyncpg
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from flowengine.kurento import KurentoClient
from flowengine.testing import FlowHarness

# The synthetic video track and SDP/candidate helpers of the media server's tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "media"))
from media_synthetic import (
    FrameCounter,
    SyntheticVideo,
    add_kurento_candidate,
    local_candidates,
    strip_candidates,
)

REPO = Path(__file__).resolve().parents[2]
FLOW_FILE = REPO / "flows" / "kurento.yaml"
TIMEOUT = 20.0  # seconds to wait for an answer of the flows (the first start of a pipeline)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the app ------------------------------------------------------------------------------------

class DemoApp:
    """The running flows, with the ways a test reaches them."""

    def __init__(self, harness: FlowHarness, port: int, data_dir: Path):
        self.harness = harness
        self.port = port
        self.data_dir = data_dir

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kms_url(self) -> str:
        """The embedded media server's ws:// URL."""
        return self.harness.node("kms").url  # type: ignore[attr-defined]

    @property
    def dsn(self) -> str:
        return self.harness.node("db").embedded.dsn  # type: ignore[attr-defined]

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Errors the nodes reported so far (the runtime's error events)."""
        return self.harness.errors

    def global_context(self, key: str) -> Any:
        return self.harness.runtime.contexts.global_context().get(key)

    async def pipelines(self) -> list[str]:
        """The pipelines the media server holds (ServerManager.getPipelines), asked in a
        Kurento session of the test's own."""
        client = await KurentoClient.connect(self.kms_url)
        try:
            return sorted(p.id for p in await client.server_manager.get_pipelines())
        finally:
            await client.close()

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of a query on the app's PostgreSQL."""
        conn = await asyncpg.connect(self.dsn)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    async def rows_eventually(self, count: int, sql: str, *args: Any) -> list[dict[str, Any]]:
        """The rows of a query once there are ``count`` of them (writes are asynchronous)."""
        async def enough() -> list[dict[str, Any]] | None:
            rows = await self.rows(sql, *args)
            return rows if len(rows) >= count else None
        return await wait_until(enough, f"{count} row(s) of {sql!r}")

    async def get(self, path: str) -> tuple[int, Any]:
        """GET an API path: (status, JSON body or bytes)."""
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as response:
            body = await response.read()
            if response.content_type == "application/json":
                return response.status, json.loads(body)
            return response.status, body

    async def connect(self, path: str = "/signaling") -> SignalingClient:
        client = SignalingClient(self.url.replace("http://", "ws://") + path)
        await client.open()
        return client


async def wait_until(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``check`` (sync or async) until it returns something true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def demo_env() -> dict[str, str]:
    """Extra environment for the module's app (override in a test module)."""
    return {}


@pytest.fixture(scope="module")
def data_root() -> Iterator[Path]:
    """A folder for the app's data, outside pytest's base folder: the embedded PostgreSQL runs
    as another user that must traverse the parent folders, and a concurrent pytest session
    resets that base folder to mode 0700 (see tests/conftest.py)."""
    with tempfile.TemporaryDirectory(prefix="flowengine-demo-flows-",
                                     ignore_cleanup_errors=True) as folder:
        yield Path(folder)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo_app(data_root: Path, demo_env: dict[str, str]) -> AsyncIterator[DemoApp]:
    """``flows/kurento.yaml`` running with its embedded media server and PostgreSQL."""
    data_dir = data_root / "data"
    port = free_port()
    environ = {  # replaces the process environment for the flows' ${NAME}s
        "PORT": str(port), "FLOWENGINE_DATA": str(data_dir),
        "MIGRATIONS_DIR": str(REPO / "flows" / "migrations"),
        "STATS_INTERVAL": "1s",
        "PLAYER_ALLOW": "127.0.0.1",  # the tests' HLS servers run on 127.0.0.1
        **demo_env,
    }
    harness = FlowHarness.from_files([FLOW_FILE], environ=environ)
    async with harness:
        app = DemoApp(harness, harness.runtime.http.port or port, data_dir)
        await wait_until(lambda: app.global_context("database_ready"), "the database schema",
                         timeout=90)
        await wait_until(lambda: app.global_context("media_dir"), "the media server",
                         timeout=90)
        yield app


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice never offers 127.0.0.1 as a host candidate; the test peers need it (the
    embedded media server offers only 127.0.0.1)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses",
                        lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest_asyncio.fixture(loop_scope="module")
async def clients(demo_app: DemoApp) -> AsyncIterator[Callable[..., Any]]:
    """``await clients()`` opens a signaling client; all are closed after the test (which
    releases their sessions) and the test waits until the media server has no pipeline left
    but those it had before the test."""
    opened: list[SignalingClient] = []
    before = set(await demo_app.pipelines())

    async def open_client(path: str = "/signaling") -> SignalingClient:
        client = await demo_app.connect(path)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()
    await wait_until(lambda: _no_sessions(demo_app, before), "every session to be released")


async def _no_sessions(app: DemoApp, before: set[str]) -> bool:
    return not app.global_context("sessions") and set(await app.pipelines()) <= before


# -- a browser's side of the signaling ----------------------------------------------------------

class SignalingClient:
    """A websocket client of /signaling: sends requests, keeps every message it receives."""

    def __init__(self, url: str):
        self.url = url
        self.received: list[dict[str, Any]] = []
        self.connection_id: str | None = None
        self.ice_servers: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.peers: list[RTCPeerConnection] = []
        self.counters: list[FrameCounter] = []
        self.close_code: int | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        self._http = aiohttp.ClientSession()
        self.ws = await self._http.ws_connect(self.url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        if self.url.endswith("/signaling"):
            hello = await self.expect("hello")
            self.connection_id = hello["connectionId"]
            self.ice_servers = hello["iceServers"]

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self.received.append(json.loads(frame.data))
                self._changed.set()
        self.close_code = self.ws.close_code
        self._changed.set()

    async def send(self, message: dict[str, Any] | str) -> None:
        assert self.ws is not None
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    def messages(self, message_id: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """What was received so far: all messages, or those with this id (and fields)."""
        return [m for m in self.received
                if (message_id is None or m.get("id") == message_id)
                and all(m.get(k) == v for k, v in fields.items())]

    async def expect(self, message_id: str, timeout: float = TIMEOUT,
                     **fields: Any) -> dict[str, Any]:
        """The first message with this id (and these field values), waiting for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.messages(message_id, **fields)
            if found:
                return found[0]
            if self.ws is None or (self.ws.closed and self._reader and self._reader.done()):
                raise AssertionError(f"socket closed without {message_id} {fields}; got "
                                     f"{self.received}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {message_id} {fields} within {timeout}s; got "
                                     f"{[m.get('id') for m in self.received]}: "
                                     f"{self.received[-5:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def request(self, message: dict[str, Any], answer: str) -> dict[str, Any]:
        """Send a request and return its answer, or fail with the error the server sent."""
        before = len(self.received)
        await self.send(message)
        return await self._answer(answer, before)

    async def error_for(self, message: dict[str, Any] | str,
                        timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send a bad request and return the {id: error} it gets."""
        before = len(self.messages("error"))
        await self.send(message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages("error")) <= before:
            if loop.time() > deadline:
                raise AssertionError(f"no error within {timeout}s; got {self.received[-5:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.2)
        return self.messages("error")[before]

    # -- WebRTC through the signaling (aiortc plays the browser) ------------------------------

    async def _negotiate(self, pc: RTCPeerConnection, request: dict[str, Any],
                         answer_id: str, own_id: bool = True) -> dict[str, Any]:
        """Offer; apply the answer; add the server's candidates as they come. With ``own_id``
        the client names the session and trickles its candidates right after the request, so
        they reach the flows before the endpoint exists (the candidate queue); otherwise it
        waits for the server's sessionId first, as a browser must then."""
        await pc.setLocalDescription(await pc.createOffer())
        request["sdpOffer"] = strip_candidates(pc.localDescription.sdp)
        if own_id:
            request.setdefault("sessionId", uuid.uuid4().hex)
        before = len(self.received)
        await self.send(request)
        if own_id:
            await self._send_candidates(pc, request["sessionId"])
        answer = await self._answer(answer_id, before)
        if not own_id:
            await self._send_candidates(pc, answer["sessionId"])
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdpAnswer"], "answer"))
        self._tasks.append(asyncio.create_task(self._trickle(pc, answer["sessionId"])))
        return answer

    async def _send_candidates(self, pc: RTCPeerConnection, sid: str) -> None:
        for candidate in local_candidates(pc):
            browser = {k: candidate[k] for k in ("candidate", "sdpMid", "sdpMLineIndex")}
            await self.send({"id": "onIceCandidate", "sessionId": sid, "candidate": browser})

    async def _answer(self, answer_id: str, before: int) -> dict[str, Any]:
        """The answer to the request sent when ``before`` messages had arrived; an error
        instead fails at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            for m in self.received[before:]:
                if m.get("id") == answer_id:
                    return m
                if m.get("id") == "error":
                    raise AssertionError(f"the server answered with an error: {m}")
            if loop.time() > deadline:
                raise AssertionError(f"no {answer_id} within {TIMEOUT}s: "
                                     f"{self.received[before:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.2)

    async def _trickle(self, pc: RTCPeerConnection, sid: str) -> None:
        added = 0
        while pc.connectionState != "closed":
            found = self.messages("iceCandidate", sessionId=sid)
            for message in found[added:]:
                await add_kurento_candidate(pc, message["candidate"])
            added = len(found)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.2)

    async def publish(self, kind: str = "webcam", own_id: bool = True, **extra: Any) -> str:
        """Start a webcam (or screen) session from an aiortc peer sending synthetic video."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers.append(pc)
        pc.addTrack(SyntheticVideo())
        answer = await self._negotiate(pc, {"id": "start", "kind": kind, **extra},
                                       "startResponse", own_id)
        return answer["sessionId"]

    async def view(self, request: dict[str, Any], answer_id: str) -> tuple[str, FrameCounter]:
        """A receive-only peer (viewer or player session); returns its sessionId and the
        counter of the frames it gets."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers.append(pc)
        pc.addTransceiver("video", direction="recvonly")
        tracks: asyncio.Queue[Any] = asyncio.Queue()
        pc.on("track", tracks.put_nowait)
        answer = await self._negotiate(pc, request, answer_id)
        counter = FrameCounter(await asyncio.wait_for(tracks.get(), TIMEOUT))
        self.counters.append(counter)
        return answer["sessionId"], counter

    async def watch(self, source: str) -> tuple[str, FrameCounter]:
        return await self.view({"id": "viewer", "source": source}, "viewerResponse")

    async def play(self, url: str) -> tuple[str, FrameCounter]:
        return await self.view({"id": "play", "url": url}, "playResponse")

    async def close(self) -> None:
        for counter in self.counters:
            counter.task.cancel()
        for task in self._tasks:
            task.cancel()
        for pc in self.peers:
            await pc.close()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        if self._http is not None:
            await self._http.close()



@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save screenshots: a temporary folder, or FLOWENGINE_SCREENSHOTS
    (``tools/screenshots.py`` points it at docs/screenshots). Tests never write into the
    repository by themselves."""
    folder = os.environ.get("FLOWENGINE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium for the browser tests (``test_e2e_*.py``)."""
    from e2ekit import chromium

    async with chromium() as instance:
        yield instance
