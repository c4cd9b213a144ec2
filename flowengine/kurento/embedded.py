"""Our media server as a child process: ``url: embedded`` in a ``kurento-server`` config node.

:class:`EmbeddedMediaServer` runs ``python -m flowengine.media --host 127.0.0.1 --port N
--media-dir DIR`` with the running interpreter. Without a configured port it passes ``--port 0``
and reads the port from the child's ``media server listening on ws://...`` line (no race for a
"free" port with other programs); the port is then kept for restarts. The server is ready when
it answers a Kurento ``ping`` on ``ws://127.0.0.1:N/kurento``. The flows then speak the real
protocol over a real socket, exactly as with a remote Kurento Media Server.

Stopping sends SIGTERM, then SIGKILL after ``stop_timeout``. The child runs in its own session
(a Ctrl-C on the terminal reaches the runtime, which stops the server after the flows drained)
and, on Linux, gets SIGTERM when the process that started it dies
(:func:`flowengine.childproc.die_with_parent`), so a killed runtime leaves no server behind; a
normal interpreter exit kills what is still running.

The child's output (stdout and stderr together) is logged at debug level on the
``flowengine.media.child`` logger; the last :data:`OUTPUT_TAIL_LINES` lines are kept for error
messages.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

import flowengine
from flowengine.childproc import die_with_parent

log = logging.getLogger("flowengine.media.child")

START_TIMEOUT = 30.0  # seconds until the first pong; importing aiortc and av takes 1-3 s
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
ANNOUNCEMENT = re.compile(r"listening on ws://\S+?:(\d+)/")  # the child's "ready" line
OUTPUT_TAIL_LINES = 40
PATH = "kurento"

_running: set[int] = set()  # pids of started children, for the atexit fallback


class EmbeddedMediaServerError(RuntimeError):
    """The media server child process did not start (the message has its last output)."""


class EmbeddedMediaServer:
    """One ``flowengine.media`` child process; see the module docstring.

    ``port=0`` picks a free port. ``extra_args`` are appended to the command line (e.g. server
    options such as a session garbage-collection time).
    """

    def __init__(
        self,
        media_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        extra_args: tuple[str, ...] | list[str] = (),
    ):
        self.media_dir = Path(media_dir)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = tuple(extra_args)
        self._process: asyncio.subprocess.Process | None = None
        self._output_task: asyncio.Task[None] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._announced: asyncio.Future[int] | None = None

    @property
    def url(self) -> str:
        """``ws://host:port/kurento`` (the port is known once started)."""
        return f"ws://{self.host}:{self.port}/{PATH}"

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._process is not None and self._process.returncode is None

    @property
    def output_tail(self) -> str:
        """The last lines the child printed."""
        return "\n".join(self._tail)

    async def start(self) -> None:
        """Start the child and wait until it answers ``ping``. Raises
        :class:`EmbeddedMediaServerError` if it exits or stays silent for ``start_timeout``.
        With ``port=0`` the child picks a free port and announces it on its output (no race
        with other programs); the port is then kept for restarts."""
        if self.running:
            return
        self.media_dir.mkdir(parents=True, exist_ok=True)
        await self._spawn()
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _spawn(self) -> None:
        args = [
            sys.executable,
            "-m",
            "flowengine.media",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--media-dir",
            str(self.media_dir),
            *self.extra_args,
        ]
        env = dict(os.environ)
        # The child must import the same flowengine, even when it is not installed.
        package_root = str(Path(flowengine.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._tail.clear()
        self._announced = asyncio.get_running_loop().create_future()
        log.debug("starting the media server: %s", " ".join(args))
        args, preexec = die_with_parent(args, signal.SIGTERM)
        self._process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
        )
        _running.add(self._process.pid)
        self._output_task = asyncio.create_task(
            self._read_output(self._process, self._announced), name="media-server-output"
        )

    async def _read_output(
        self, process: asyncio.subprocess.Process, announced: asyncio.Future[int]
    ) -> None:
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            self._tail.append(text)
            log.debug("[media %s] %s", process.pid, text)
            match = ANNOUNCEMENT.search(text)
            if match and not announced.done():
                announced.set_result(int(match.group(1)))

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        last = "no answer yet"
        announced = self._announced
        assert announced is not None
        while loop.time() < deadline:
            assert self._process is not None
            if self._process.returncode is not None:
                if self._output_task is not None:  # collect its last words
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._output_task), 1.0)
                raise EmbeddedMediaServerError(
                    f"the media server exited with code {self._process.returncode} before "
                    f"answering on {self.url}:\n{self.output_tail}"
                )
            if self.port == 0:  # wait for the port the child announces
                if announced.done():
                    self.port = announced.result()
                    continue
                await asyncio.wait({announced}, timeout=0.1)
                last = "no port announced yet"
                continue
            try:
                await asyncio.wait_for(ping(self.url), 2.0)
                return
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError, ValueError) as exc:
                last = str(exc) or type(exc).__name__
            await asyncio.sleep(0.1)
        raise EmbeddedMediaServerError(
            f"the media server did not answer ping on {self.url} within "
            f"{self.start_timeout:g}s ({last}):\n{self.output_tail}"
        )

    async def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL after ``stop_timeout``. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout)
            except TimeoutError:
                log.warning(
                    "the media server (pid %s) did not stop within %gs; killing it",
                    process.pid,
                    self.stop_timeout,
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        _running.discard(process.pid)
        if self._output_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._output_task, 1.0)
            self._output_task = None


async def ping(url: str) -> None:
    """Open ``url``, send a Kurento ``ping`` and wait for its ``pong`` (raises otherwise)."""
    async with websockets.connect(
        url, open_timeout=2.0, ping_interval=None, compression=None, proxy=None
    ) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "ping"}))
        answer = json.loads(await ws.recv())
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, dict) or result.get("value") != "pong":
            raise ValueError(f"unexpected answer to ping: {answer!r}")


@atexit.register
def _kill_leftovers() -> None:
    for pid in list(_running):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
