"""Fixtures of the browser interop tests (issue 4 c, e, f): headless Chromium, our media server,
the Python Kurento client, a signaling server, coturn and a GStreamer RTSP server, every one on
127.0.0.1 of a network namespace that has no other interface, and stopped when the test ends.

Missing programs (Debian ``chromium``, ``coturn``, the GStreamer RTSP server packages) or a
missing Python Playwright make the tests *fail* with the package to install: they are part of
the project's install step, never skipped and never installed here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_media import SINGLE_KEYFRAME, write_hls, write_video_file
from browser_servers import (
    MARKER_VARIABLE,
    LoopbackNetns,
    MissingTool,
    RtspServer,
    TurnServer,
    new_marker,
    require_program,
    wait_for_no_processes,
)
from browserkit import CHROMIUM_PATH, BrowserPeer, SignalingServer, launch_chromium
from kurento_bundle import kurento_client_bundle

from flowengine.kurento import EmbeddedMediaServer, KurentoClient


def _need(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs the test in a network namespace with only ``lo`` (browser_servers.LoopbackNetns),
    marks every process it starts, and fails the test if one of them is still alive after the
    other fixtures were torn down (it is killed then). Set up first, torn down last."""
    marker = new_marker()
    monkeypatch.setenv(MARKER_VARIABLE, marker)
    netns = _need(LoopbackNetns)
    netns.start()
    netns.enter()
    try:
        yield marker
    finally:
        netns.stop()
        monkeypatch.delenv(MARKER_VARIABLE)
    leaked = wait_for_no_processes(marker)
    assert not leaked, f"processes left running after the test (killed now): {leaked}"


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test media, made once with PyAV before any browser starts (a browser starting up
    takes both cores for seconds): H.264 MP4 and VP8 WebM files with short GOPs; real-world
    ones (an H.264 MP4 with a key frame every 10 s and AAC, one with a single key frame and
    AAC, a VP8 WebM with a single key frame and Opus); an MP4 with a 4 s GOP and AAC for the
    RTSP server, and an HLS playlist with its MPEG-TS segments of the same (a folder)."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "h264": write_video_file(folder / "clip.mp4", "h264", seconds=8),
        "vp8": write_video_file(folder / "clip.webm", "vp8", seconds=8),
        "h264-gop10s-aac": write_video_file(folder / "gop10.mp4", "h264", seconds=14,
                                            gop=300, audio=True),
        "vp8-one-keyframe-opus": write_video_file(folder / "single.webm", "vp8", seconds=12,
                                                  gop=SINGLE_KEYFRAME, audio=True),
        "h264-one-keyframe-aac": write_video_file(folder / "single.mp4", "h264", seconds=10,
                                                  gop=SINGLE_KEYFRAME, audio=True),
        "rtsp": write_video_file(folder / "rtsp-source.mp4", "h264", seconds=30, gop=120,
                                 audio=True),
        "hls": write_hls(folder / "hls", seconds=20, segment_seconds=1, gop=120,
                         audio=True).parent,
    }


@pytest.fixture(scope="session")
def kurento_js_bundle() -> Path:
    """The official kurento-client 7.3.0 as a browser script (kurento_bundle.py). Built
    before the test enters its loopback-only network namespace (npm needs the registry):
    session fixtures are set up before the function-scoped ones."""
    return _need(kurento_client_bundle)


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    path = tmp_path / "media"
    path.mkdir()
    return path


@pytest.fixture
def www_dir(tmp_path: Path) -> Path:
    """Served by the signaling server under ``/media/`` (HLS playlists and segments)."""
    path = tmp_path / "www"
    path.mkdir()
    return path


@pytest.fixture
async def media_server(media_dir: Path) -> AsyncIterator[EmbeddedMediaServer]:
    """``python -m flowengine.media`` on 127.0.0.1 (a free port), as a child process."""
    server = EmbeddedMediaServer(media_dir, extra_args=("--gc-time", "30",
                                                          "--player-allow", "127.0.0.1"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def kurento(media_server: EmbeddedMediaServer) -> AsyncIterator[KurentoClient]:
    """Our Python Kurento client connected to the media server."""
    client = await KurentoClient.connect(media_server.url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def signaling(www_dir: Path) -> AsyncIterator[SignalingServer]:
    async with SignalingServer(static_dir=www_dir) as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's headless Chromium driven by Python Playwright (``executable_path``)."""
    _need(require_program, CHROMIUM_PATH, "chromium")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(
            "Python Playwright is not installed: the browser tests need the 'playwright' "
            "package from PyPI (pip install -e '.[test]'); never 'playwright install'",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def open_peer(browser: Any, signaling: SignalingServer):
    """``await open_peer()``: a new page of ``peer.html`` (closed after the test)."""
    context = await browser.new_context()
    peers: list[BrowserPeer] = []

    async def _open() -> BrowserPeer:
        peer = await BrowserPeer.open(context, signaling)
        peers.append(peer)
        return peer

    yield _open
    for peer in peers:
        await peer.close()
    await context.close()


@pytest.fixture
def turn_server(tmp_path: Path) -> Iterator[TurnServer]:
    """coturn on 127.0.0.1 with a long-term-credential user."""
    server = _need(TurnServer, tmp_path / "turn")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rtsp_server_for():
    """``rtsp_server_for(path, audio=False)``: a GStreamer RTSP server streaming an H.264 MP4
    (and its AAC track)."""
    servers: list[RtspServer] = []

    def _start(path: Path, audio: bool = False) -> RtspServer:
        server = _need(RtspServer, path, "/clip", audio)
        servers.append(server)
        server.start()
        return server

    yield _start
    for server in servers:
        server.stop()
