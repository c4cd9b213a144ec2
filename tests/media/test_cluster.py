"""Several media servers behind one Kurento endpoint (:mod:`flowengine.media.cluster`).

The router runs in the test's process (so the tests can see where it put each object); the
workers and the remote servers are real ``python -m flowengine.media`` processes on 127.0.0.1;
viewers are real aiortc peers that decode what they get. Media: an H.264 file with a single key
frame and AAC audio (a viewer joining late, on another worker, depends on the key-frame
bridge of the source's worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioice.ice
import pytest
from media_synthetic import FrameCounter, view, write_video_file

from flowengine.media import MediaServerSettings
from flowengine.media.cluster.backends import RemoteBackend, WorkerBackend
from flowengine.media.cluster.front import ClusterServer, cluster_server
from flowengine.media.cluster.router import GONE_ERROR_TYPE, Router

if TYPE_CHECKING:
    from conftest import RawClient

Cluster = Callable[..., Awaitable[ClusterServer]]


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice never offers 127.0.0.1 (docs/reference/aiortc-notes.md pitfall 2):
    # the test peers need this patch.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
async def cluster(media_dir: Path) -> AsyncIterator[Cluster]:
    """``await cluster(workers=2, remotes=[...], viewers_per_worker=1, gc_time=60)``: a router
    on a free port, checking its backends every 0.3 s (1.5 s without an answer: hung); the
    workers collect a session ``gc_time`` s after its last connection closed."""
    servers: list[ClusterServer] = []

    async def start(
        workers: int = 2, remotes: tuple[str, ...] = (), **options: Any
    ) -> ClusterServer:
        settings = MediaServerSettings(host="127.0.0.1", port=0, media_dir=media_dir, gc_time=60)
        server = cluster_server(
            settings, workers=workers, remotes=list(remotes),
            worker_args=["--log-level", "WARNING", "--ice-address", "127.0.0.1",
                         "--gc-time", str(options.get("gc_time", 60))],
            viewers_per_worker=options.get("viewers_per_worker", 200),
            health_interval=0.3, health_timeout=1.5,
        )  # fmt: skip
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        pids = [b.pid for b in server.router.backends if isinstance(b, WorkerBackend)]
        await server.stop()
        for pid in pids:
            assert pid is None or not alive(pid), f"worker {pid} outlived the server"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def until(check: Callable[[], bool], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        await asyncio.sleep(0.05)


async def play_file(client: RawClient, path: Path) -> tuple[str, str]:
    """A pipeline with a looping pass-through player of ``path``: (pipeline, player)."""
    pipeline = await client.create("MediaPipeline")
    player = await client.create(
        "PlayerEndpoint", mediaPipeline=pipeline, uri=str(path), useEncodedMedia=True
    )
    await client.invoke(player, "play")
    return pipeline, player


async def viewer_of(
    client: RawClient, pipeline: str, source: str
) -> tuple[str, Any, FrameCounter]:
    """A WebRtcEndpoint in ``pipeline`` fed by ``source`` and a decoding aiortc peer on it."""
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(source, "connect", sink=endpoint)
    pc, frames = await view(client, endpoint, "video/H264")
    return endpoint, pc, frames


def backend_of(server: ClusterServer, object_id: str) -> str:
    return server.router.locate(object_id).name


async def test_viewers_spread_and_a_killed_worker(
    cluster: Cluster, open_client: Callable[[str], Awaitable[RawClient]], media_dir: Path
) -> None:
    """Viewers beyond a worker's share go to the other worker and decode the source relayed
    there (no decode on the way: the file's single key frame is bridged on the source's
    worker). Then the source's worker is killed (SIGKILL) mid-stream: the session subscribed to
    its pipeline's Error gets it, and ObjectDestroyed; the pipeline is gone (40101) and so is
    its shadow on the surviving worker; the other session's stream goes on; the worker is
    started again and takes new pipelines."""
    path = write_video_file(media_dir / "clip.mp4", "h264", seconds=6, gop=None, audio=True)
    server = await cluster(workers=2, viewers_per_worker=1)
    one, two = await open_client(server.url), await open_client(server.url)
    peers = []
    try:
        pipeline, player = await play_file(one, path)
        home = backend_of(server, pipeline)
        near, pc1, frames1 = await viewer_of(one, pipeline, player)
        far, pc2, frames2 = await viewer_of(one, pipeline, player)
        peers += [pc1, pc2]
        assert backend_of(server, near) == home
        assert backend_of(server, far) != home  # the home worker holds its one viewer
        for frames in (frames1, frames2):
            await frames.wait_for(20)
            assert frames.sizes == {(320, 240)}
        children = await one.invoke(pipeline, "getChildren")
        assert {player, near, far} <= set(children)
        sinks = {c["sink"] for c in await one.invoke(player, "getSinkConnections")}
        assert sinks == {near, far}

        # Another session, on the other worker (the least loaded: no pipeline yet).
        other_pipeline, other_player = await play_file(two, path)
        assert backend_of(server, other_pipeline) != home
        _, pc3, frames3 = await viewer_of(two, other_pipeline, other_player)
        peers.append(pc3)
        await frames3.wait_for(10)

        await one.result("subscribe", {"object": pipeline, "type": "Error"})
        await one.result("subscribe", {"object": "manager_ServerManager",
                                       "type": "ObjectDestroyed"})  # fmt: skip
        worker = next(b for b in server.router.backends if b.name == home)
        survivor = next(b for b in server.router.backends if b.name != home)
        old_pid = worker.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)

        error = await one.event("Error", timeout=10)
        assert error["object"] == pipeline
        assert error["data"]["type"] == GONE_ERROR_TYPE and home in error["data"]["description"]
        destroyed = set()
        while pipeline not in destroyed:
            destroyed.add((await one.event("ObjectDestroyed"))["data"]["objectId"])
        gone = await one.call("invoke", {"object": pipeline, "operation": "getChildren"})
        assert gone["error"]["code"] == 40101
        # Nothing of the dead pipeline stays on the survivor (its shadow, the far viewer).
        direct = await open_client(survivor.url)
        pipelines = await direct.invoke("manager_ServerManager", "getPipelines")
        assert pipeline not in pipelines and other_pipeline in pipelines
        # The other session's viewer still gets frames.
        count = frames3.count
        await frames3.wait_for(count + 15)
        # The worker is back (another process) and takes pipelines again.
        await until(lambda: worker.alive and worker.pid != old_pid, 20, "the worker's restart")
        assert not alive(old_pid)
        again = await one.create("MediaPipeline")
        assert backend_of(server, again) == home  # the least loaded: empty
    finally:
        for pc in peers:
            await pc.close()


async def test_a_hung_worker_is_killed_and_started_again(
    cluster: Cluster, open_client: Callable[[str], Awaitable[RawClient]]
) -> None:
    """A worker that stops answering (SIGSTOP) is killed once its ping goes unanswered, its
    pipeline's session is told, a request caught in between gets a clear Kurento error, and a
    new worker takes new pipelines."""
    server = await cluster(workers=1)
    client = await open_client(server.url)
    pipeline = await client.create("MediaPipeline")
    await client.result("subscribe", {"object": pipeline, "type": "Error"})
    (worker,) = server.router.backends
    old_pid = worker.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGSTOP)
    try:
        answer = await client.call("invoke", {"object": pipeline, "operation": "getChildren"})
        assert answer["error"]["code"] in (40003, 40101), answer
        error = await client.event("Error", timeout=10)
        assert error["object"] == pipeline and error["data"]["type"] == GONE_ERROR_TYPE
        await until(lambda: not alive(old_pid), 10, "the hung worker's end")
        await until(lambda: worker.alive, 20, "the worker's restart")
        assert worker.pid != old_pid
        assert await client.create("MediaPipeline")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old_pid, signal.SIGKILL)


async def test_a_flood_of_creates(
    cluster: Cluster, open_client: Callable[[str], Awaitable[RawClient]]
) -> None:
    """200 pipelines asked for at once on two connections: every request answered, the
    pipelines spread evenly over the workers, and all gone from the workers once released."""
    server = await cluster(workers=2)
    clients = [await open_client(server.url) for _ in range(2)]
    results = await asyncio.gather(
        *(clients[i % 2].create("MediaPipeline") for i in range(200))
    )
    assert len(set(results)) == 200
    placed = [backend_of(server, p) for p in results]
    assert abs(placed.count("worker 1") - placed.count("worker 2")) <= 2
    merged = await clients[0].invoke("manager_ServerManager", "getPipelines")
    assert set(results) <= set(merged)
    await asyncio.gather(
        *(clients[i % 2].result("release", {"object": p}) for i, p in enumerate(results))
    )
    for backend in server.router.backends:
        direct = await open_client(backend.url)
        assert await direct.invoke("manager_ServerManager", "getPipelines") == []


async def test_a_collected_session_leaves_nothing_on_any_worker(
    cluster: Cluster, open_client: Callable[[str], Awaitable[RawClient]], media_dir: Path
) -> None:
    """A client that goes away without releasing anything: once the workers collect its
    session, its pipeline is gone from its worker, and so are the pipeline's shadow and the
    spread viewer on the other worker (the router follows what a worker destroys)."""
    path = write_video_file(media_dir / "clip.mp4", "h264", seconds=2, gop=None)
    server = await cluster(workers=2, viewers_per_worker=1, gc_time=1)
    client = await open_client(server.url)
    pipeline, player = await play_file(client, path)
    for _ in range(2):
        endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
        await client.invoke(player, "connect", sink=endpoint)
    assert len({backend_of(server, o) for o in server.router.objects}) == 2
    await client.close()
    directs = [await open_client(b.url) for b in server.router.backends]

    async def held() -> list[list[str]]:
        return [await d.invoke("manager_ServerManager", "getPipelines") for d in directs]

    deadline = time.monotonic() + 15
    while any(await held()):
        assert time.monotonic() < deadline, await held()
        await asyncio.sleep(0.2)
    assert server.router.objects == {}


async def test_two_remote_servers_and_one_vanishes(
    cluster: Cluster, open_client: Callable[[str], Awaitable[RawClient]], tmp_path: Path
) -> None:
    """A router over two media server processes of their own (``remotes``): new pipelines go
    to the less loaded one, a viewer's endpoint into its pipeline's server; when one server is
    killed, only its sessions are told (Error), the other's go on, and new pipelines go to the
    survivor."""
    servers = [await RemoteProcess.start(tmp_path / f"remote-{i}") for i in range(2)]
    try:
        router = await cluster(workers=0, remotes=tuple(s.url for s in servers))
        await until(lambda: all(b.alive for b in router.router.backends), 10, "both remotes")
        a, b = await open_client(router.url), await open_client(router.url)
        first = await a.create("MediaPipeline")
        second = await b.create("MediaPipeline")
        assert backend_of(router, first) != backend_of(router, second)
        endpoint = await a.create("WebRtcEndpoint", mediaPipeline=first)
        assert backend_of(router, endpoint) == backend_of(router, first)
        for client, pipeline in ((a, first), (b, second)):
            await client.result("subscribe", {"object": pipeline, "type": "Error"})
        victim = next(s for s in servers if s.url == router.router.locate(first).url)
        victim.kill()
        error = await a.event("Error", timeout=10)
        assert error["object"] == first
        assert await b.invoke(second, "getChildren") == []
        with pytest.raises(asyncio.TimeoutError):
            await b.event("Error", timeout=1)
        third = await b.create("MediaPipeline")
        assert backend_of(router, third) == backend_of(router, second)
    finally:
        for process in servers:
            process.kill()


class RemoteProcess:
    """``python -m flowengine.media --workers 1`` on a free port, as a remote Kurento server."""

    def __init__(self, process: asyncio.subprocess.Process, url: str):
        self.process = process
        self.url = url

    @classmethod
    async def start(cls, media_dir: Path) -> RemoteProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flowengine.media", "--port", "0", "--workers", "1",
            "--media-dir", str(media_dir), "--log-level", "WARNING",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        return cls(process, line.rsplit(" ", 1)[-1].strip())

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


async def test_the_command_line_server_leaves_no_worker_behind(tmp_path: Path) -> None:
    """``python -m flowengine.media --workers 2``: a router process and two worker processes;
    SIGKILL of the router takes the workers with it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowengine.media", "--port", "0", "--workers", "2",
        "--media-dir", str(tmp_path / "media"), "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert "listening on ws://" in line
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(children) == 2
        process.kill()
        await process.wait()
        await until(lambda: not any(alive(int(pid)) for pid in children), 10, "the workers' end")
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


def test_load_prefers_the_servers_own_figures() -> None:
    """A remote server's load is the CPU it reports, whatever it holds; a worker's, what it
    holds against its share of viewers."""
    timing = {"health_interval": 1, "health_timeout": 1}
    busy = RemoteBackend("ws://127.0.0.1:1/kurento", **timing)
    idle = RemoteBackend("ws://127.0.0.1:2/kurento", **timing)
    busy.used_cpu, idle.used_cpu = 80.0, 10.0
    idle.pipelines, idle.endpoints = 50, 150  # more objects, less CPU
    router = Router([busy, idle], viewers_per_worker=200)
    busy.alive = idle.alive = True
    assert router._least_loaded([busy, idle]) is idle
    assert idle.load(200) == pytest.approx(0.1)
    idle.used_cpu = None  # no figures (yet): what it holds
    assert idle.load(200) == pytest.approx(1.0)
    assert router._least_loaded([busy, idle]) is busy
