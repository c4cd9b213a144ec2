"""The media servers behind a router: worker processes it runs, and remote Kurento servers.

A :class:`Backend` is one Kurento-protocol server at a ``ws://`` URL, with a *control*
connection the router keeps open (its own session: relays and shadow pipelines live there, so no
client session owns them). The control connection pings every ``health_interval``; no answer
within ``health_timeout``, or the connection closing, makes the backend *down*:

* a :class:`WorkerBackend` is a ``flowengine.media`` child process in worker mode (relays
  between workers, :mod:`.relay`); when it dies or hangs it is killed (SIGKILL) and started again
  at once on the same port;
* a :class:`RemoteBackend` is a Kurento Media Server (or another ``flowrun media-server``)
  elsewhere; it is tried again every ``health_interval``.

Load, for placing new pipelines (:meth:`Backend.load`): a worker counts its pipelines and
WebRTC endpoints against ``viewers_per_worker`` (what the router placed there); a remote server
reports its own figures: ``getUsedCpu`` (percent) and ``getUsedMemory``, polled every
``load_interval`` on the control connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from flowengine.kurento.embedded import EmbeddedMediaServer
from flowengine.kurento.jsonrpc import Notification, parse_event
from flowengine.kurento.model import SERVER_MANAGER_ID as MANAGER
from flowengine.media.cluster.upstream import BackendGone, Upstream

log = logging.getLogger("flowengine.media.cluster")

CALL_TIMEOUT = 20.0
"""Seconds a backend may take to answer a forwarded request."""


class Backend:
    """One media server behind the router (see the module docstring)."""

    kind = "remote"

    def __init__(self, name: str, url: str, *, health_interval: float, health_timeout: float):
        self.name = name
        self.url = url
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.alive = False
        self.session_id = f"router-{uuid.uuid4()}"
        """The control connection's session: what the router itself creates lives there."""
        self.pipelines = 0
        self.endpoints = 0
        self.used_cpu: float | None = None
        self.used_memory: int | None = None
        self.control: Upstream | None = None
        self.on_down: Callable[[Backend, str], Awaitable[None]] | None = None
        self.on_destroyed: Callable[[Backend, str], None] | None = None
        """Called with each object the server destroys (a release, its own GC)."""
        self._http: aiohttp.ClientSession | None = None
        self._watch: asyncio.Task[None] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"<{self.name} {self.url}{'' if self.alive else ' (down)'}>"

    def load(self, capacity: int) -> float:
        """How busy the server is, 1.0 being full (see the module docstring)."""
        if self.used_cpu is not None:
            return self.used_cpu / 100.0
        return (self.pipelines + self.endpoints) / max(1, capacity)

    async def start(self, http: aiohttp.ClientSession) -> None:
        """Connect (a worker: start it first) and keep watching it."""
        self._http = http
        with contextlib.suppress(BackendGone, TimeoutError, OSError):
            await self._connect()
        self._watch = asyncio.create_task(self._watch_loop(), name=f"watch {self.name}")

    async def _connect(self) -> None:
        assert self._http is not None
        control = Upstream(self.url, self._http, on_close=self._lost, on_event=self._event)
        await control.open(self.health_timeout)
        self.control = control
        answer = await control.call("connect", {"sessionId": self.session_id}, CALL_TIMEOUT)
        if answer.is_error:  # a new server: no such session yet (40007), take a new one
            answer = await control.call("connect", None, CALL_TIMEOUT)
            self.session_id = answer.session_id or self.session_id
        # What the server releases by itself (a client session collected): the router forgets.
        subscription = {"object": MANAGER, "type": "ObjectDestroyed", "sessionId": self.session_id}
        await control.call("subscribe", subscription, CALL_TIMEOUT)
        self.alive = True
        log.info("media server %s at %s is up", self.name, self.url)

    def _event(self, notification: Notification) -> None:
        event = parse_event(notification)
        if event is None or event.type != "ObjectDestroyed" or self.on_destroyed is None:
            return
        oid = event.data.get("objectId")
        if isinstance(oid, str):
            self.on_destroyed(self, oid)

    def _lost(self, control: Upstream) -> None:
        if control is self.control and not self._closing:
            asyncio.get_running_loop().create_task(self.mark_down("its connection closed"))

    async def call(self, method: str, params: dict[str, Any], timeout: float = CALL_TIMEOUT) -> Any:
        """A request of the router's own on the control connection, in its own session; the
        result's value (raises :class:`BackendGone`, or the Kurento error)."""
        if self.control is None or not self.alive:
            raise BackendGone(f"media server {self.name} is down")
        answer = await self.control.call(method, {**params, "sessionId": self.session_id}, timeout)
        if answer.error is not None:
            raise answer.error
        return answer.value

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            if self.alive:
                try:
                    await self.control.call("ping", None, self.health_timeout)  # type: ignore[union-attr]
                    await self.poll_load()
                except (BackendGone, TimeoutError) as exc:
                    await self.mark_down(str(exc) or "no answer to ping")
            else:
                await self.revive()

    async def poll_load(self) -> None:
        """Hook: refresh the load figures (remote servers)."""

    async def revive(self) -> None:
        """Try to bring the backend back (a remote one: connect again)."""
        with contextlib.suppress(BackendGone, TimeoutError, OSError):
            await self._connect()

    async def mark_down(self, reason: str) -> None:
        """The backend is gone: tell the router (once), drop the control connection."""
        if not self.alive:
            return
        self.alive = False
        self.pipelines = self.endpoints = 0
        self.used_cpu = self.used_memory = None
        log.warning("media server %s at %s is down: %s", self.name, self.url, reason)
        control, self.control = self.control, None
        if control is not None:
            await control.close()
        if self.on_down is not None:
            await self.on_down(self, reason)

    async def stop(self) -> None:
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        control, self.control = self.control, None
        self.alive = False
        if control is not None:
            await control.close()


class RemoteBackend(Backend):
    """A Kurento server at a configured URL; its load is what it reports."""

    kind = "remote"

    def __init__(self, url: str, *, health_interval: float, health_timeout: float):
        super().__init__(url, url, health_interval=health_interval, health_timeout=health_timeout)
        self._load_polls = 0

    async def poll_load(self) -> None:
        self._load_polls += 1
        if self._load_polls % 3 != 1:  # every third health check
            return
        with contextlib.suppress(Exception):  # a server without the figures keeps counting
            figures = {"interval": 500}
            cpu = await self.call(
                "invoke", {"object": MANAGER, "operation": "getUsedCpu", "operationParams": figures}
            )
            memory = await self.call("invoke", {"object": MANAGER, "operation": "getUsedMemory"})
            self.used_cpu = float(cpu)
            self.used_memory = int(memory)


class WorkerBackend(Backend):
    """A worker process of ours (``python -m flowengine.media --worker``) on 127.0.0.1."""

    kind = "worker"

    def __init__(
        self,
        index: int,
        media_dir: Path,
        server_args: list[str],
        *,
        health_interval: float,
        health_timeout: float,
    ):
        self.process = EmbeddedMediaServer(
            media_dir, port=0, extra_args=("--worker", *server_args), stop_timeout=3.0
        )
        super().__init__(
            f"worker {index}", "", health_interval=health_interval, health_timeout=health_timeout
        )
        self.index = index

    @property
    def pid(self) -> int | None:
        return self.process.pid

    async def start(self, http: aiohttp.ClientSession) -> None:
        await self.process.start()
        self.url = self.process.url
        await super().start(http)

    async def mark_down(self, reason: str) -> None:
        if not self.alive:
            return
        # Dead, or hung: make sure it is gone before it is started again (SIGKILL).
        pid = self.process.pid
        if pid is not None and self.process.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await super().mark_down(reason)
        await self.revive()

    async def revive(self) -> None:
        if self._closing:
            return
        with contextlib.suppress(Exception):
            await self.process.stop()
        try:
            await self.process.start()
            self.url = self.process.url
            await self._connect()
        except Exception as exc:
            log.warning("media server %s did not start again: %s", self.name, exc)

    async def stop(self) -> None:
        await super().stop()
        await self.process.stop()
