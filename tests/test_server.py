"""The shared HTTP server (flowengine/server/app.py): static files, unknown paths, a clean stop,
a taken port, and ``flowrun --port 0`` as a real process. Real clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from flowengine.testing import FlowHarness

REPO = Path(__file__).resolve().parent.parent
SECRET = "TOP-SECRET-CONTENT"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")


def flow_with(http: dict[str, object], nodes: dict[str, object] | None = None) -> FlowHarness:
    """A flow that serves HTTP as flowrun does, with these ``settings.http``."""
    text = yaml.safe_dump({"flow": "web", "settings": {"http": {"port": 0, "host": "127.0.0.1",
                                                                **http}},
                           "nodes": nodes or {"show": {"type": "debug", "console": False}}})
    harness = FlowHarness.from_yaml(text)
    harness.runtime.serve_http = True
    return harness


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A static folder ``public`` with a secret file beside it (never to be served)."""
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "empty").mkdir()
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "sub" / "index.html").write_text("<h1>sub</h1>")
    (public / "page.html").write_text("<p>page</p>")
    (public / "style.css").write_text("body { color: red }")
    (public / "app.js").write_text("console.log(1)")
    (public / "data.json").write_text('{"a": 1}')
    (public / "notes.txt").write_text("notes")
    (public / "image.svg").write_text("<svg/>")
    (public / "pixel.png").write_bytes(PNG)
    (public / "blob.bin").write_bytes(bytes(range(256)))
    (tmp_path / "secret.txt").write_text(SECRET)
    (tmp_path / "public-2").mkdir()
    (tmp_path / "public-2" / "secret.txt").write_text(SECRET)
    os.symlink(tmp_path / "secret.txt", public / "link.txt")
    os.symlink(tmp_path, public / "up")
    return public


@contextlib.asynccontextmanager
async def static_server(site: Path) -> AsyncIterator[tuple[FlowHarness, aiohttp.ClientSession]]:
    async with flow_with({"static": str(site)}) as flow, \
            aiohttp.ClientSession(flow.runtime.http.url) as client:
        yield flow, client


async def raw_get(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send a request line exactly as written (clients would normalize ``..`` away)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                 .encode("latin-1"))
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    status_line = response.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), response


# -- static files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body"), [
    ("/", "<h1>home</h1>"),
    ("/index.html", "<h1>home</h1>"),
    ("/sub/", "<h1>sub</h1>"),
    ("/sub", "<h1>sub</h1>"),
    ("/sub/index.html", "<h1>sub</h1>"),
])
async def test_a_folder_serves_its_index_html(site: Path, path: str, body: str) -> None:
    async with static_server(site) as (_, client), client.get(path) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert await response.text() == body


@pytest.mark.parametrize(("name", "types"), [
    ("page.html", {"text/html"}),
    ("style.css", {"text/css"}),
    ("app.js", {"text/javascript", "application/javascript"}),  # by Python version
    ("data.json", {"application/json"}),
    ("notes.txt", {"text/plain"}),
    ("image.svg", {"image/svg+xml"}),
    ("pixel.png", {"image/png"}),
    ("blob.bin", {"application/octet-stream"}),
])
async def test_static_files_have_their_content_type(site: Path, name: str,
                                                    types: set[str]) -> None:
    async with static_server(site) as (_, client), client.get(f"/{name}") as response:
        assert response.status == 200
        assert response.content_type in types
        assert await response.read() == (site / name).read_bytes()


async def test_head_of_a_static_file_has_its_length_and_no_body(site: Path) -> None:
    async with static_server(site) as (flow, _):
        status, response = await raw_get(flow.runtime.http.port, "/blob.bin", method="HEAD")
    head, _, body = response.partition(b"\r\n\r\n")
    assert status == 200
    assert b"\r\nContent-Length: 256\r\n" in head
    assert body == b""


async def test_several_static_folders_are_searched_in_order(site: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.html").write_text("not this one")
    (other / "only-here.txt").write_text("second folder")
    async with flow_with({"static": [str(site), str(other)]}) as flow, \
            aiohttp.ClientSession(flow.runtime.http.url) as client:
        async with client.get("/") as response:
            assert await response.text() == "<h1>home</h1>"
        async with client.get("/only-here.txt") as response:
            assert await response.text() == "second folder"


@pytest.mark.parametrize("target", [
    "/../secret.txt",
    "/sub/../../secret.txt",
    "/../public-2/secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/sub%2f..%2f..%2fsecret.txt",
    "/%2f..%2fsecret.txt",
    "/.%2e/secret.txt",
    "/..%5csecret.txt",
    "/link.txt",            # a symlink to a file outside the folder
    "/up/secret.txt",       # through a symlinked folder
    "/up/",
    "/..",
    "http://127.0.0.1/../secret.txt",
])
async def test_nothing_outside_the_static_folder_is_served(site: Path, target: str) -> None:
    async with static_server(site) as (flow, _):
        status, response = await raw_get(flow.runtime.http.port, target)
    assert status == 404
    assert SECRET.encode() not in response


async def test_an_absolute_path_stays_inside_the_folder(site: Path, tmp_path: Path) -> None:
    async with static_server(site) as (flow, _):
        for target in (f"/{tmp_path}/secret.txt", f"/%2F{str(tmp_path).lstrip('/')}/secret.txt"):
            status, response = await raw_get(flow.runtime.http.port, target)
            assert status == 404, target
            assert SECRET.encode() not in response


@pytest.mark.parametrize("target", ["/%00", "/a%00b.html", "/" + "a" * 300, "/%ff%fe",
                                    "/sub/" + "b" * 5000])
async def test_impossible_file_names_are_404_not_a_server_error(site: Path, target: str) -> None:
    async with static_server(site) as (flow, _):
        status, _ = await raw_get(flow.runtime.http.port, target)
        # ...and the server still answers.
        assert (await raw_get(flow.runtime.http.port, "/"))[0] == 200
    assert status == 404


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/nope"), ("GET", "/empty/"), ("GET", "/sub/nope.html"), ("POST", "/page.html"),
    ("PUT", "/"), ("GET", "/adminx"),
])
async def test_unknown_paths_are_404(site: Path, method: str, path: str) -> None:
    async with static_server(site) as (_, client), client.request(method, path) as response:
        assert response.status == 404


async def test_without_a_static_folder_everything_unknown_is_404() -> None:
    async with flow_with({}) as flow, aiohttp.ClientSession(flow.runtime.http.url) as client:
        for path in ("/", "/index.html", "/../etc/passwd"):
            async with client.get(path) as response:
                assert response.status == 404, path


# -- lifecycle ------------------------------------------------------------------------------------


def port_is_listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_the_server_stops_cleanly_frees_the_port_and_leaks_no_task(site: Path) -> None:
    before = asyncio.all_tasks()
    flow = flow_with({"static": str(site)})
    await flow.__aenter__()
    port = flow.runtime.http.port
    assert port > 0
    assert port_is_listening(port)
    # Clients still connected at the stop: a keep-alive connection, an idle one that never
    # sent a request, and one that sent half a request head.
    client = aiohttp.ClientSession(flow.runtime.http.url)
    async with client.get("/") as response:
        assert response.status == 200
    idle, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    half, half_writer = await asyncio.open_connection("127.0.0.1", port)
    half_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    await half_writer.drain()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await flow.__aexit__(None, None, None)
    stopped = loop.time() - started
    try:
        assert stopped < 1.5
        assert not port_is_listening(port)
        # The server closed its side of every connection.
        assert await asyncio.wait_for(idle.read(), 2) == b""
        assert b"200 OK" not in await asyncio.wait_for(half.read(), 2)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as fresh:
                await fresh.get(f"http://127.0.0.1:{port}/")
    finally:
        await client.close()
        for writer in (idle_writer, half_writer):
            writer.close()
    await asyncio.sleep(0.05)
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == set()
    # The port can be served again at once (a restarted flowrun).
    async with flow_with({"port": port}) as again, aiohttp.ClientSession() as fresh, \
            fresh.get(f"{again.runtime.http.url}/admin/flows") as response:
        assert response.status == 200


async def test_a_taken_port_is_a_clear_oserror_at_start() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        flow = flow_with({"port": port})
        before = asyncio.all_tasks()
        with pytest.raises(OSError) as caught:
            await flow.runtime.start()
        await flow.runtime.stop()
    assert caught.value.errno == errno.EADDRINUSE
    assert str(port) in str(caught.value)
    assert "address already in use" in str(caught.value)
    assert asyncio.all_tasks() - before == set()
    # Nothing half set up is left: the port can be served once it is free.
    again = flow_with({"port": port})
    async with again, aiohttp.ClientSession() as client, \
            client.get(f"http://127.0.0.1:{port}/admin/flows") as response:
        assert response.status == 200


async def test_port_zero_picks_a_free_port_and_the_url_names_it() -> None:
    async with flow_with({}) as one, flow_with({}) as two:
        assert one.runtime.http.port != two.runtime.http.port
        assert one.runtime.http.url == f"http://127.0.0.1:{one.runtime.http.port}"


# -- flowrun as a process -------------------------------------------------------------------------


class Process:
    """A running ``flowrun``; stderr lines are collected by a thread."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flowengine.cli", *args], cwd=REPO, text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def wait_for_line(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line matching {pattern!r} in:\n{''.join(self.stderr)}"
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            match = re.search(pattern, line)
            if match:
                return match

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def test_flowrun_serves_the_admin_api_on_a_free_port_and_stops_on_sigterm() -> None:
    run = Process("--port", "0", "examples/flows/hello.yaml")
    try:
        match = await asyncio.to_thread(run.wait_for_line, r"admin API at (http://\S+)/admin")
        base = match.group(1)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        assert not base.endswith(":0")
        async with aiohttp.ClientSession(base) as client:
            async with client.get("/admin/flows") as response:
                assert response.status == 200
                flows = await response.json()
            assert [f["flow"] for f in flows] == ["hello"]
            assert [n["id"] for n in flows[0]["nodes"]] == ["hello", "greet", "show-greeting"]
            # The inject node fires once at start: the greeting reaches the debug node.
            for _ in range(100):
                async with client.get("/admin/nodes/show-greeting") as response:
                    node = await response.json()
                if node["counters"]["in"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert node["counters"]["in"] == 1
        run.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(run.proc.wait, 15)
        assert code == 0, "".join(run.stderr)
        assert any("flowrun: stopping" in line for line in run.stderr)
    finally:
        run.kill()
