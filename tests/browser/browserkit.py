"""Headless Chromium as a real WebRTC peer of the media server, for tests and benchmarks.

The pieces, all on 127.0.0.1:

* :func:`launch_chromium`: Debian's ``/usr/bin/chromium`` through Python Playwright (never a
  browser downloaded by ``playwright install``), with the flags of docs/reference/aiortc-notes.md
  (fake camera and microphone, loopback ICE candidates, no mDNS obfuscation, autoplay).
* :class:`SignalingServer`: an aiohttp server that serves the test pages (``pages/``), optional
  static media files (``/media/...``, e.g. an HLS playlist for a PlayerEndpoint) and the
  WebSocket ``/signal`` through which a page negotiates with a ``WebRtcEndpoint`` that the test
  created with the Python Kurento client and :meth:`~SignalingServer.register`\\ ed under a name.
  As in the Kurento tutorials, the offer goes to ``processOffer``, the answer back to the page,
  every ``IceCandidateFound`` event to the page and every candidate of the page to
  ``addIceCandidate``; SDPs carry no candidates (trickle ICE only). Every exchange is kept in a
  :class:`PeerRecord` for the test to check.
* :class:`BrowserPeer`: one page running ``pages/peer.js`` (send the fake camera, or receive),
  with ``start``/``state``/``stats``/``wait_playing``.
* :func:`measure_first_frame`: offer-to-first-decoded-frame time of a receiving page.

Loopback only: candidates of the page are forwarded to the media server only when they are
on 127.0.0.1 or relayed (``typ relay``, whose address is coturn's 127.0.0.1 relay); the dropped
ones are counted in the record. That alone does not stop Chromium from sending connectivity
checks from its other interfaces' addresses, so the tests also run in a network namespace with
only ``lo`` (:class:`browser_servers.LoopbackNetns`); a benchmark should do the same.

Reuse (e.g. a benchmark), all inside one event loop::

    server = EmbeddedMediaServer(media_dir); await server.start()
    client = await KurentoClient.connect(server.url)
    async with SignalingServer() as signaling, async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        pipeline = await client.create("MediaPipeline")
        source = ...  # a flowing source: a publishing BrowserPeer's endpoint, a player
        viewer = await pipeline.create("WebRtcEndpoint"); await source.connect(viewer)
        signaling.register("viewer", viewer)
        page = await BrowserPeer.open(browser, signaling)
        timing = await measure_first_frame(page, "viewer")  # FirstFrame, in ms
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from flowengine.kurento import MediaObject

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
"""docs/reference/aiortc-notes.md: the flags that work headless as root."""

PAGES_DIR = Path(__file__).resolve().parent / "pages"


async def launch_chromium(playwright: Any, executable: str = CHROMIUM_PATH) -> Any:
    """A headless Chromium ``Browser`` (Playwright) from the Debian package."""
    return await playwright.chromium.launch(
        executable_path=executable, args=CHROMIUM_ARGS, headless=True, timeout=30_000
    )


def candidate_allowed(candidate: str) -> bool:
    """Whether a page's ``candidate:...`` line may go to the media server: a UDP candidate on
    127.0.0.1, or a relayed one (see the module docstring)."""
    parts = candidate.removeprefix("a=").split()
    if len(parts) < 8 or parts[2].lower() != "udp":
        return False
    return parts[4] == "127.0.0.1" or parts[7] == "relay"


@dataclass
class PeerRecord:
    """What went through the signaling server for one page (one endpoint)."""

    endpoint: str
    offer: str | None = None
    answer: str | None = None
    candidates_from_page: list[str] = field(default_factory=list)
    """Page candidates given to ``addIceCandidate``."""
    candidates_dropped: list[str] = field(default_factory=list)
    """Page candidates not forwarded (not loopback, not relayed)."""
    candidates_to_page: list[str] = field(default_factory=list)
    """``IceCandidateFound`` events forwarded to the page."""
    mids_to_page: list[tuple[str, int]] = field(default_factory=list)
    """``(sdpMid, sdpMLineIndex)`` of each of those candidates."""
    gathering_done: bool = False
    errors: list[str] = field(default_factory=list)
    offer_received_at: float | None = None
    answer_sent_at: float | None = None


class SignalingServer:
    """The test's application server (see the module docstring). ``static_dir`` is served
    under ``/media/``."""

    def __init__(self, static_dir: Path | None = None):
        self.static_dir = static_dir
        self.endpoints: dict[str, MediaObject] = {}
        self.records: dict[str, PeerRecord] = {}
        self.requests: list[str] = []
        """Paths of the static media requests (``/media/...``), in order."""
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/signal", self._signal)
        app.router.add_static("/pages/", PAGES_DIR)
        if self.static_dir is not None:
            app.router.add_get("/media/{path:.+}", self._media)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SignalingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page_url(self, name: str = "peer.html") -> str:
        return f"{self.base_url}/pages/{name}"

    def media_url(self, relative: str) -> str:
        return f"{self.base_url}/media/{relative}"

    def register(self, name: str, endpoint: MediaObject) -> PeerRecord:
        """Let a page negotiate with ``endpoint`` under ``name``; returns its record."""
        self.endpoints[name] = endpoint
        record = PeerRecord(endpoint=name)
        self.records[name] = record
        return record

    # --- handlers ---------------------------------------------------------------------------------

    async def _media(self, request: web.Request) -> web.StreamResponse:
        assert self.static_dir is not None
        relative = request.match_info["path"]
        path = (self.static_dir / relative).resolve()
        if self.static_dir.resolve() not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        self.requests.append(relative)
        return web.FileResponse(path)

    async def _signal(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        self._sockets.add(ws)
        record: PeerRecord | None = None
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                if data.get("id") == "start":
                    record = self.records.get(data.get("endpoint", ""))
                    if record is None:
                        await ws.send_json({"id": "error", "message": "unknown endpoint"})
                        continue
                    self._spawn(self._start(ws, record, data["sdpOffer"]), record)
                elif data.get("id") == "onIceCandidate" and record is not None:
                    # Candidates may reach the server before processOffer has finished: the
                    # endpoint must buffer them until it has the remote description.
                    self._spawn(self._add_candidate(record, data["candidate"]), record)
        finally:
            self._sockets.discard(ws)
        return ws

    def _spawn(self, coro: Any, record: PeerRecord) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                record.errors.append(repr(t.exception()))

        task.add_done_callback(done)

    async def _start(self, ws: web.WebSocketResponse, record: PeerRecord, offer: str) -> None:
        endpoint = self.endpoints[record.endpoint]
        record.offer = offer
        record.offer_received_at = time.monotonic()

        async def on_candidate(data: dict[str, Any]) -> None:
            candidate = data["candidate"]
            record.candidates_to_page.append(candidate["candidate"])
            record.mids_to_page.append((candidate["sdpMid"], candidate["sdpMLineIndex"]))
            if not ws.closed:
                await ws.send_json(
                    {"id": "iceCandidate", "candidate": _browser_candidate(candidate)}
                )

        def on_done(_data: dict[str, Any]) -> None:
            record.gathering_done = True

        # Subscribe before gatherCandidates: events fired earlier are lost (no buffering).
        await endpoint.on("IceCandidateFound", on_candidate)
        await endpoint.on("IceGatheringDone", on_done)
        try:
            answer = await endpoint.process_offer(offer)
        except Exception as exc:
            await ws.send_json({"id": "error", "message": str(exc)})
            raise
        record.answer = answer
        await ws.send_json({"id": "startResponse", "sdpAnswer": answer})
        record.answer_sent_at = time.monotonic()
        await endpoint.gather_candidates()

    async def _add_candidate(self, record: PeerRecord, candidate: dict[str, Any]) -> None:
        line = candidate.get("candidate") or ""
        if not candidate_allowed(line):
            record.candidates_dropped.append(line)
            return
        record.candidates_from_page.append(line)
        await self.endpoints[record.endpoint].add_ice_candidate(
            {
                "candidate": line,
                "sdpMid": candidate.get("sdpMid"),
                "sdpMLineIndex": candidate.get("sdpMLineIndex"),
            }
        )


def _browser_candidate(candidate: dict[str, Any]) -> dict[str, Any]:
    """A Kurento ``IceCandidate`` as an ``RTCIceCandidateInit`` (no ``__type__`` tags)."""
    return {
        "candidate": candidate["candidate"],
        "sdpMid": candidate["sdpMid"],
        "sdpMLineIndex": candidate["sdpMLineIndex"],
    }


class BrowserPeer:
    """One page of ``pages/peer.html`` negotiating with one registered endpoint."""

    def __init__(self, page: Any, signaling: SignalingServer):
        self.page = page
        self.signaling = signaling
        self.endpoint: str | None = None
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    @classmethod
    async def open(cls, context: Any, signaling: SignalingServer) -> BrowserPeer:
        """A new page of ``context`` (a Playwright ``BrowserContext`` or ``Browser``)."""
        page = await context.new_page()
        peer = cls(page, signaling)
        await page.goto(signaling.page_url("peer.html"))
        return peer

    async def start(
        self,
        endpoint: str,
        mode: str,
        *,
        audio: bool = False,
        ice_servers: list[dict[str, str]] | None = None,
        relay: bool = False,
        codec: str | None = None,
    ) -> None:
        """Negotiate with the endpoint registered as ``endpoint``: ``mode="send"`` publishes
        the fake camera (and microphone with ``audio``), ``"recv"`` receives video (and audio).
        ``relay`` sets ``iceTransportPolicy: "relay"``; ``codec`` ("VP8"/"H264") is the
        receiving page's preference. Returns once the offer is sent."""
        self.endpoint = endpoint
        await self.page.evaluate(
            "options => startPeer(options)",
            {
                "endpoint": endpoint,
                "mode": mode,
                "audio": audio,
                "iceServers": ice_servers or [],
                "relay": relay,
                "codec": codec,
            },
        )

    async def state(self) -> dict[str, Any]:
        """The page's ``peerState()`` (timings in ms of ``performance.now()``, counts, video)."""
        return await self.page.evaluate("peerState()")

    async def stats(self) -> dict[str, Any]:
        """The page's ``peerStats()``: selected candidate pair and RTP streams."""
        return await self.page.evaluate("peerStats()")

    async def _failure(self, what: str) -> AssertionError:
        state = await self.state()
        record = self.signaling.records.get(self.endpoint or "")
        return AssertionError(
            f"{what}\npage state: {json.dumps(state, default=str)[:3000]}\n"
            f"signaling record: {record}\nconsole: {self.console[-20:]}"
        )

    async def wait_playing(self, min_frames: int = 30, timeout: float = 20.0) -> dict[str, Any]:
        """Wait until the received video plays: ``videoWidth > 0`` and at least ``min_frames``
        decoded frames (``totalVideoFrames``), then check the count still grows (by at least 5
        frames within 1 s). Returns the last state."""
        deadline = time.monotonic() + timeout
        while True:
            state = await self.state()
            if state["errors"]:
                raise await self._failure(f"page errors: {state['errors']}")
            if state["videoWidth"] > 0 and state["totalVideoFrames"] >= min_frames:
                break
            if time.monotonic() > deadline:
                raise await self._failure(f"no playing video within {timeout}s")
            await asyncio.sleep(0.1)
        before = state["totalVideoFrames"]
        await asyncio.sleep(1.0)
        state = await self.state()
        if state["totalVideoFrames"] < before + 5:
            raise await self._failure(
                f"decoded frames stopped growing: {before} -> {state['totalVideoFrames']} in 1 s"
            )
        return state

    async def wait_sending(self, min_frames: int = 30, timeout: float = 20.0) -> dict[str, Any]:
        """Wait until a sending page has encoded and sent ``min_frames`` video frames."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats()
            video = stats["outbound"].get("video") or {}
            if (video.get("framesEncoded") or 0) >= min_frames and (video.get("packets") or 0):
                return stats
            state = await self.state()
            if state["errors"]:
                raise await self._failure(f"page errors: {state['errors']}")
            if time.monotonic() > deadline:
                raise await self._failure(f"not sending video within {timeout}s: {stats}")
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.page.close()


@dataclass
class FirstFrame:
    """Timings of one receiving page, in ms from its offer's creation (``createOffer``)."""

    offer_to_answer_ms: float
    offer_to_connected_ms: float | None
    offer_to_first_frame_ms: float
    candidates_to_page: int
    candidates_from_page: int


async def measure_first_frame(
    peer: BrowserPeer,
    endpoint: str,
    *,
    codec: str | None = None,
    ice_servers: list[dict[str, str]] | None = None,
    relay: bool = False,
    audio: bool = False,
    timeout: float = 15.0,
) -> FirstFrame:
    """Offer-to-first-decoded-frame time of ``peer`` receiving from the registered
    ``endpoint`` (whose source should already be flowing).

    The clock is the page's: from just before ``createOffer`` to the first
    ``requestVideoFrameCallback`` of the remote video (or ``totalVideoFrames > 0`` if that comes
    first), so it covers signaling, ``processOffer``, trickle ICE, DTLS, the first key frame
    and its decoding.
    """
    await peer.start(endpoint, "recv", codec=codec, ice_servers=ice_servers, relay=relay,
                     audio=audio)
    deadline = time.monotonic() + timeout
    while True:
        state = await peer.state()
        if state["firstFrameAt"] is not None and state["answerAt"] is not None:
            break
        if state["errors"]:
            raise await peer._failure(f"page errors: {state['errors']}")
        if time.monotonic() > deadline:
            raise await peer._failure(f"no decoded frame within {timeout}s")
        await asyncio.sleep(0.02)
    offer_at = state["offerAt"]
    record = peer.signaling.records[endpoint]
    connected = state["connectedAt"]
    return FirstFrame(
        offer_to_answer_ms=state["answerAt"] - offer_at,
        offer_to_connected_ms=connected - offer_at if connected is not None else None,
        offer_to_first_frame_ms=state["firstFrameAt"] - offer_at,
        candidates_to_page=len(record.candidates_to_page),
        candidates_from_page=len(record.candidates_from_page),
    )


async def recorder_tutorial_played(page: Any, timeout: float = 30.0) -> dict[str, Any]:
    """Poll ``tutorialState()`` of a ``recorder_tutorial.html`` page that plays a file until
    its player's ``EndOfStream`` (or ``timeout``); fails on a page error. Returns the state."""
    deadline = time.monotonic() + timeout
    while True:
        state = await page.evaluate("() => tutorialState()")
        assert not state["errors"], state
        if state["endOfStreamAt"] is not None or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.2)
