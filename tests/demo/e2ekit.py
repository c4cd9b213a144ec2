"""Helpers of the demo's browser end-to-end tests (``tests/demo/test_e2e_*.py``).

Everything here is real: Debian's Chromium driven by Python Playwright (never a browser that
Playwright downloads), ``flowrun flows/kurento.yaml`` as a child process with its embedded
media server and embedded PostgreSQL, coturn for the TURN test, and HLS made with PyAV and
served over http by the test itself.

A missing Chromium, Playwright or coturn makes the tests FAIL with a message naming the
package to install: the demo is part of the product, so its tests never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import media_synthetic  # tests/media, put on sys.path by tests/demo/conftest.py
import pytest

REPO = Path(__file__).resolve().parents[2]
FLOW_FILE = REPO / "flows" / "kurento.yaml"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TURNSERVER = os.environ.get("TURNSERVER", "turnserver")

# The flags measured in docs/reference/aiortc-notes.md: fake camera and permission
# prompts, loopback ICE candidates (everything here runs on 127.0.0.1), plain IPs instead of
# mDNS names in candidates, autoplay without a click, and nothing that calls home.
# getDisplayMedia is answered by --use-fake-ui-for-media-stream with a fake 1280x720 screen;
# --auto-select-desktop-capture-source makes the choice explicit for Chromium builds that ask.
CHROMIUM_FLAGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--auto-select-desktop-capture-source=Entire screen",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

TURN_USER, TURN_PASSWORD, TURN_REALM = "demo", "demo-secret", "flowengine.test"


# -- requirements: fail, never skip ---------------------------------------------------------------

def require_chromium() -> str:
    """The Chromium executable, or a test failure saying how to install it."""
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: the demo's browser tests need Debian's "
                    "package (apt-get install -y chromium) or CHROMIUM=/path/to/chromium",
                    pytrace=False)
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.fail("Python Playwright is missing: pip install playwright (the browser is "
                    "Debian's chromium; never run `playwright install`)", pytrace=False)
    return path


def require_turnserver() -> str:
    """coturn's ``turnserver``, or a test failure saying how to install it."""
    path = shutil.which(TURNSERVER)
    if path is None:
        pytest.fail("coturn's turnserver not found: the TURN test needs Debian's package "
                    "(apt-get install -y coturn)", pytrace=False)
    return path


# -- small utilities ------------------------------------------------------------------------------

def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free right now on 127.0.0.1 (for programs that cannot pick their own)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, what: str, alive: Any = None) -> None:
    """Wait until a TCP connection to 127.0.0.1:port succeeds. ``alive()`` returning False
    (the program exited) stops the wait at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise AssertionError(f"{what} exited before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on port {port} within {timeout:g}s")


def http_json(url: str, timeout: float = 10.0) -> Any:
    """GET ``url`` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


async def eventually(check: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    """Call ``check()`` (sync or async) until it returns a truthy value; fail after
    ``timeout`` seconds with ``what`` and the last value or error."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            last = value
        except AssertionError as exc:
            last = exc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not true within {timeout:g}s (last: {last!r})")
        await asyncio.sleep(interval)


# -- flowrun flows/kurento.yaml -------------------------------------------------------------------

@dataclass
class DemoServer:
    """``flowrun flows/kurento.yaml`` as a child process (see :func:`start_demo`)."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def media_dir(self) -> Path:
        return Path(self.env["MEDIA_DIR"])

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log_path.read_text("utf-8", "replace")

    def kms_url_from(self, host: dict[str, Any]) -> str:
        """The media server the flows use: ``KMS_URL`` when the test set it, else the
        embedded server's URL from ``GET /api/host`` (``mediaServer``) or, failing that, as
        the flows printed it."""
        if self.env.get("KMS_URL"):
            return self.env["KMS_URL"]
        pattern = r"wss?://[^\s\"')]+/kurento"
        found = re.findall(pattern, str(host.get("mediaServer") or "")) or re.findall(
            pattern, self.output())
        if not found:
            raise AssertionError(f"no media server URL in /api/host ({host!r}) nor in the "
                                 f"demo's output:\n{self.tail()}")
        return found[-1]

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGINT (flowrun's Ctrl-C: flows drain, embedded servers stop), then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, directly or not (flowrun's embedded servers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def start_demo(workdir: Path, extra_env: dict[str, str] | None = None,
               timeout: float = 120.0) -> DemoServer:
    """Start ``flowrun flows/kurento.yaml`` on a free port with its data in ``workdir`` and
    wait until the web app is served. ``extra_env`` adds settings (``KMS_URL``, ``TURN_URL``,
    ...); variables of the caller's environment that would point the demo at outside services
    are removed first."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # The port is given as a user gives it, `--port` alone: PORT is unset.
    env = {k: v for k, v in os.environ.items()
           if k not in ("KMS_URL", "DATABASE_URL", "ORION_URL", "TURN_URL", "PORT",
                        "FLOWENGINE_DATA", "MEDIA_DIR")}
    env.update({
        "FLOWENGINE_DATA": str(workdir / "data"),
        "MEDIA_DIR": str(workdir / "data" / "media"),
        "PLAYER_ALLOW": "127.0.0.1",  # the tests' HLS servers run on 127.0.0.1
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    log_path = workdir / "flowrun.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowengine.cli", str(FLOW_FILE), "--port", str(port)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DemoServer(process, port, workdir, log_path, env)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"flowrun exited with code {process.returncode}:\n"
                                     f"{server.tail()}")
            if "flowrun: running" in server.output():
                with (contextlib.suppress(OSError, urllib.error.URLError),
                      urllib.request.urlopen(server.url + "/", timeout=2) as response):
                    if response.status == 200:
                        return server
            if time.monotonic() > deadline:
                raise AssertionError(f"the demo did not serve {server.url}/ within "
                                     f"{timeout:g}s:\n{server.tail()}")
            time.sleep(0.2)
    except BaseException:
        server.stop()
        raise



@contextlib.contextmanager
def browser_demo(name: str, extra_env: dict[str, str] | None = None) -> Iterator[DemoServer]:
    """:func:`start_demo` for browser tests, in a temporary folder, stopped afterwards. Fails
    before starting anything when Chromium is missing. The folder is not under pytest's base
    folder: as root the embedded PostgreSQL runs as another user that must traverse the parent
    folders (see tests/conftest.py)."""
    require_chromium()
    with tempfile.TemporaryDirectory(prefix=f"flowengine-demo-{name}-",
                                     ignore_cleanup_errors=True) as folder:
        server = start_demo(Path(folder), extra_env)
        try:
            yield server
        finally:
            server.stop()

# -- media made by the test -----------------------------------------------------------------------

WIDTH, HEIGHT, FPS = 640, 360, 25


# Colour bars in Y'CbCr (BT.601): white, yellow, cyan, green, magenta, red, blue, black.
_BARS = ((235, 128, 128), (210, 16, 146), (170, 166, 16), (145, 54, 34),
         (106, 202, 222), (81, 90, 240), (41, 240, 110), (16, 128, 128))


def _frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> av.VideoFrame:
    """A yuv420p test-card frame: colour bars that scroll with ``index`` (so frames differ)."""
    shift = index * 8
    columns = [((x + shift) % width) * len(_BARS) // width for x in range(width)]
    luma_row = bytes(_BARS[c][0] for c in columns)
    cb_row = bytes(_BARS[c][1] for c in columns[::2])
    cr_row = bytes(_BARS[c][2] for c in columns[::2])
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, row, rows in ((0, luma_row, height), (1, cb_row, height // 2),
                             (2, cr_row, height // 2)):
        line = frame.planes[plane].line_size
        frame.planes[plane].update((row + bytes(line - len(row))) * rows)
    return frame


def write_hls(folder: Path, seconds: float = 30.0) -> Path:
    """A VOD HLS stream of the test card: H.264 Baseline, no B-frames, a key frame every second
    (players can pass it through), 1 s segments. Returns the playlist's path."""
    return media_synthetic.write_hls(folder, seconds, 1, fps=FPS, size=(WIDTH, HEIGHT), gop=FPS,
                                     frame=_frame)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over http on 127.0.0.1 in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="hls-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def count_frames(path: Path) -> tuple[int, int, int]:
    """Decode a recorded file with PyAV: (video frames, width, height)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = 0
        width = height = 0
        for frame in container.decode(stream):
            frames += 1
            width, height = frame.width, frame.height
    return frames, width, height


# -- coturn ---------------------------------------------------------------------------------------

@dataclass
class Coturn:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def turn_url(self) -> str:
        """The demo's ``TURN_URL`` form: turn:user:password@host:port."""
        return f"turn:{TURN_USER}:{TURN_PASSWORD}@127.0.0.1:{self.port}"

    def allocations(self) -> int:
        """Relay allocations coturn logged so far (proof that media went through it)."""
        text = self.log_path.read_text("utf-8", "replace")
        return len(re.findall(r"ALLOCATE processed, success", text))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_coturn(workdir: Path) -> Coturn:
    """coturn relaying on 127.0.0.1 only, long-term credentials (the docs/reference/aiortc-notes.md
    command; ``--allow-loopback-peers`` is for loopback tests only)."""
    binary = require_turnserver()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    relay_low = 49160 + (port % 40) * 20  # a relay range of its own per test run
    log_path = workdir / "turnserver.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
             f"--listening-port={port}", "--lt-cred-mech",
             f"--user={TURN_USER}:{TURN_PASSWORD}", f"--realm={TURN_REALM}", "--no-cli",
             "--no-tls", "--no-dtls", "--allow-loopback-peers", f"--min-port={relay_low}",
             f"--max-port={relay_low + 19}", "--fingerprint", "--verbose",
             "--log-file=stdout", "--simple-log"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    turn = Coturn(process, port, log_path)
    try:
        wait_for_port(port, 15, "turnserver", alive=lambda: process.poll() is None)
    except BaseException:
        turn.stop()
        raise
    return turn


# -- the embedded services' addresses -------------------------------------------------------------

def embedded_postgres_dsn(data_dir: Path) -> str:
    """The connection URL of the embedded PostgreSQL running on ``data_dir`` (the port from
    ``postmaster.pid``, the password the runtime generated in ``flowengine.password``)."""
    lines = (data_dir / "postmaster.pid").read_text().splitlines()
    port = int(lines[3])  # line 4 of postmaster.pid: the port
    password = (data_dir / "flowengine.password").read_text().strip()
    quoted = urllib.parse.quote(password, safe="")
    return f"postgresql://postgres:{quoted}@127.0.0.1:{port}/postgres"


async def media_pipelines(kms_url: str) -> list[str]:
    """Ids of the pipelines the media server holds (``ServerManager.getPipelines``), asked
    through our Kurento client in a session of its own."""
    from flowengine.kurento import KurentoClient

    client = await KurentoClient.connect(kms_url)
    try:
        pipelines = await client.server_manager.get_pipelines()
    finally:
        await client.close()
    return sorted(p.id if hasattr(p, "id") else str(p) for p in pipelines)


# -- the browser ----------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def chromium() -> Any:
    """Debian's Chromium through Playwright, with :data:`CHROMIUM_FLAGS`."""
    executable = require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_FLAGS), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


class AppPage:
    """One tab of the web app, as a person uses it (buttons, fields), plus the checks the
    tests make on its videos. Its own browser context: a separate "person"."""

    def __init__(self, context: Any, page: Any, base_url: str):
        self.context = context
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text)
                if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    @classmethod
    async def open(cls, browser: Any, base_url: str, path: str = "/") -> AppPage:
        context = await browser.new_context(viewport={"width": 1280, "height": 860})
        page = await context.new_page()
        app = cls(context, page, base_url)
        await page.goto(base_url + path)
        await page.wait_for_selector("#connection[data-state=open]", timeout=15000)
        if not path.startswith("/dashboard"):  # the video page: wait for the server's hello
            await page.wait_for_function("() => window.demo && window.demo.state.connectionId",
                                         timeout=15000)
        return app

    async def close(self) -> None:
        """Close the tab (its socket closes as when a person closes it) and the context."""
        with contextlib.suppress(Exception):
            await self.context.close()

    async def new_card(self, kind: str, action: Any, timeout: float = 30.0) -> str:
        """Run ``action`` (clicks) and wait until a new card of ``kind`` is connected; returns
        its session id."""
        before = set(await self.page.eval_on_selector_all(
            f".peer[data-kind={kind}]", "els => els.map(e => e.dataset.sessionId)"))
        await action()
        selector = f".peer[data-kind={kind}]"
        deadline = time.monotonic() + timeout
        while True:
            cards = await self.page.eval_on_selector_all(selector, """els => els.map(e => [
                e.dataset.sessionId, e.querySelector('.peer-state').dataset.state || '',
                e.querySelector('.peer-detail').textContent])""")
            for session_id, state, detail in cards:
                if session_id in before:
                    continue
                if state == "connected":
                    return str(session_id)
                if state in ("failed", "ended"):
                    raise AssertionError(f"{kind} session {session_id} {state}: {detail}; "
                                         f"errors shown: {await self.errors()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no connected {kind} card within {timeout:g}s: {cards}; "
                                     f"errors shown: {await self.errors()}")
            await asyncio.sleep(0.2)

    async def start_webcam(self) -> str:
        return await self.new_card("webcam", lambda: self.page.click("#start-webcam"))

    async def share_screen(self) -> str:
        return await self.new_card("screen", lambda: self.page.click("#start-screen"))

    async def play(self, url: str) -> str:
        async def action() -> None:
            await self.page.fill("#play-url", url)
            await self.page.click("#play")
        return await self.new_card("player", action)

    async def watch(self, source_id: str) -> str:
        """Click Watch on the running session ``source_id`` in the sessions list."""
        button = f"#sessions tr[data-session-id='{source_id}'] button.watch"
        await self.page.wait_for_selector(button, timeout=15000)
        return await self.new_card("viewer", lambda: self.page.click(button))

    def card(self, session_id: str) -> str:
        return f".peer[data-session-id='{session_id}']"

    async def errors(self) -> list[str]:
        """The server errors the page shows."""
        return [text.strip() for text in await self.page.eval_on_selector_all(
            "#error-list li span", "els => els.map(e => e.textContent)")]

    async def video_progress(self, session_id: str, seconds: float = 1.0) -> dict[str, int]:
        """The card's video size and its decoded frame count now and ``seconds`` later."""
        return await self.page.evaluate("""async ([selector, ms]) => {
            const v = document.querySelector(selector + " video");
            const frames = () => v.getVideoPlaybackQuality().totalVideoFrames;
            const before = frames();
            await new Promise((r) => setTimeout(r, ms));
            return {width: v.videoWidth, height: v.videoHeight, before, after: frames()};
        }""", [self.card(session_id), int(seconds * 1000)])

    async def wait_playing(self, session_id: str, timeout: float = 20.0) -> dict[str, int]:
        """Wait until the card's video plays: ``videoWidth > 0`` and decoded frames growing
        (at least 5 more in one second). Returns the last measure."""
        deadline = time.monotonic() + timeout
        while True:
            progress = await self.video_progress(session_id)
            if progress["width"] > 0 and progress["after"] - progress["before"] >= 5:
                return progress
            if time.monotonic() > deadline:
                raise AssertionError(f"the video of {session_id} does not play: {progress}; "
                                     f"errors shown: {await self.errors()}")

    async def selected_candidate_type(self, session_id: str) -> str | None:
        """``host``/``srflx``/``relay`` of the local candidate of the pair ICE selected."""
        return await self.page.evaluate("""async (id) => {
            const peer = window.demo.state.peers.get(id);
            const report = await peer.pc.getStats();
            let pair = null;
            report.forEach((s) => {
                if (s.type === "transport" && s.selectedCandidatePairId) {
                    pair = report.get(s.selectedCandidatePairId);
                }
            });
            if (!pair) return null;
            return report.get(pair.localCandidateId)?.candidateType ?? null;
        }""", session_id)


# -- an NGSI v2 server for the Orion panel --------------------------------------------------------

@contextlib.contextmanager
def orion_in_thread() -> Iterator[Any]:
    """``orion_server.OrionTestServer`` (the demo's NGSI v2 test server, as Orion documents
    the API) on an event loop of its own thread, so that it answers while a test blocks."""
    from orion_server import OrionTestServer

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="orion", daemon=True)
    thread.start()
    server = OrionTestServer()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def post_json(url: str, body: Any) -> int:
    """POST ``body`` as JSON; returns the status."""
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)
