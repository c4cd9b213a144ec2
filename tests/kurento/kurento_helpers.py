"""Helpers for the Kurento tests: our media server as a real child process, and a TCP relay
between a client and the server that the tests can cut, stall or re-point (a dropped socket, a
dead network, a restarted server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

START_TIMEOUT = 60.0  # the first start imports aiortc and av


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ping(url: str) -> bool:
    try:
        with ws_connect(url, open_timeout=2, proxy=None) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "ping"}))
            return json.loads(ws.recv(timeout=2)).get("result", {}).get("value") == "pong"
    except (OSError, TimeoutError, ValueError, AttributeError):
        return False
    except Exception:  # websockets' handshake and close errors
        return False


class MediaServerProcess:
    """``python -m flowengine.media`` on 127.0.0.1, started and stopped synchronously (so it can
    serve a whole test module). ``restart()`` keeps the port: a client sees a server that lost
    every session, as after a KMS restart."""

    def __init__(self, media_dir: Path, extra_args: tuple[str, ...] = ()):
        self.media_dir = media_dir
        self.port = free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = media_dir.parent / f"media-server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/kurento"

    def start(self) -> None:
        self.media_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flowengine.media", "--host", "127.0.0.1",
             "--port", str(self.port), "--media-dir", str(self.media_dir), *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the media server exited with {self.process.returncode}:\n"
                            f"{self.log_path.read_text(errors='replace')[-4000:]}")
            if answers_ping(self.url):
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"the media server did not answer ping within {START_TIMEOUT}s:\n"
                    f"{self.log_path.read_text(errors='replace')[-4000:]}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class TcpRelay:
    """Relays TCP connections from 127.0.0.1:``port`` to ``target_port``.

    ``drop()`` aborts every relayed connection (both sides see a reset, as when a network path
    dies and the OS notices); ``stall()`` keeps connections open but discards everything (a
    dead peer that never answers); ``refuse()`` closes new connections at once; ``resume()``
    relays again. ``target_port`` may be changed between connections.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self.stalled = False
        self.refusing = False
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/kurento"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        pumps = [asyncio.create_task(self._pump(reader, up_writer)),
                 asyncio.create_task(self._pump(up_reader, writer))]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
            self._tasks.discard(task)
        self._links.discard(link)
        for w in link:
            w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if not self.stalled:
                    writer.write(data)
                    await writer.drain()

    def drop(self) -> None:
        for link in list(self._links):
            for w in link:
                w.transport.abort()

    def stall(self) -> None:
        self.stalled = True

    def refuse(self) -> None:
        self.refusing = True

    def resume(self) -> None:
        self.stalled = False
        self.refusing = False

    @property
    def connections(self) -> int:
        return len(self._links)

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
