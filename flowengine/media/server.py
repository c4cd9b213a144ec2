"""The WebSocket front of the media server
(docs/reference/kurento-protocol.md section 1), on aiohttp.

One WebSocket connection is one :class:`ClientConnection`: it reads frames (text or binary),
runs up to ``max_concurrent_requests`` of them at once through the :class:`Dispatcher` (answers
may leave in another order, matched by id), and writes text frames from one bounded queue that
also carries the events of the session bound to it. A path other than ``/kurento`` (query
ignored) is closed with 1002 ``Invalid path``.

Usage::

    async with MediaServer(MediaServerSettings(port=0, media_dir=tmp)) as server:
        print(server.url)   # ws://127.0.0.1:<port>/kurento
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from flowengine.media.context import ServerContext
from flowengine.media.dispatch import Dispatcher, Factory
from flowengine.media.elements.media_pipeline import MediaPipelineImpl
from flowengine.media.elements.server_manager import ServerManagerImpl
from flowengine.media.sessions import MediaSet
from flowengine.media.settings import MediaServerSettings

log = logging.getLogger("flowengine.media")


def default_factories() -> dict[str, Factory]:
    """Implementations of the creatable classes (imported lazily: they pull in aiortc)."""
    from flowengine.media.elements.composite import CompositeImpl
    from flowengine.media.elements.dispatcher import DispatcherImpl, DispatcherOneToManyImpl
    from flowengine.media.elements.face_overlay_filter import FaceOverlayFilterImpl
    from flowengine.media.elements.gstreamer_filter import GStreamerFilterImpl
    from flowengine.media.elements.hub import HubPortImpl
    from flowengine.media.elements.player_endpoint import PlayerEndpointImpl
    from flowengine.media.elements.recorder_endpoint import RecorderEndpointImpl
    from flowengine.media.elements.webrtc_endpoint import WebRtcEndpointImpl

    return {
        "MediaPipeline": MediaPipelineImpl,
        "WebRtcEndpoint": WebRtcEndpointImpl,
        "PlayerEndpoint": PlayerEndpointImpl,
        "RecorderEndpoint": RecorderEndpointImpl,
        "HubPort": HubPortImpl,
        "Composite": CompositeImpl,
        "Dispatcher": DispatcherImpl,
        "DispatcherOneToMany": DispatcherOneToManyImpl,
        "FaceOverlayFilter": FaceOverlayFilterImpl,
        "GStreamerFilter": GStreamerFilterImpl,
    }


CLOSE_TIMEOUT = 1.0  # seconds a peer gets to answer our close frame before the TCP link drops


class ClientConnection:
    """One WebSocket client. Implements :class:`~flowengine.media.sessions.FrameSink`.

    States: open (reading and writing) -> closing (``_closing`` set: nothing more is queued,
    queued frames are dropped) -> closed. Nothing here waits for the peer to read: answers and
    events go to a bounded queue, and a client that lets ``max_outgoing_frames`` pile up is
    closed (1008) and then dropped. When the connection ends, what it held (its queue, its
    binding to a session) is let go at once; its session survives for the GC time, like any
    dropped connection, and the requests still running finish with their answers discarded.
    """

    def __init__(self, ws: web.WebSocketResponse, transport: Any, server: MediaServer):
        self.ws = ws
        self.transport = transport
        self.server = server
        settings = server.settings
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(settings.max_outgoing_frames)
        self._slots = asyncio.Semaphore(settings.max_concurrent_requests)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closer: asyncio.Task[None] | None = None

    def send_frame(self, frame: str) -> None:
        if self._closing:
            return
        try:
            self._outgoing.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("client does not read its frames: closing the connection")
            self.close(1008, b"Too slow")

    def close(self, code: int, message: bytes) -> asyncio.Task[None]:
        """Start closing (idempotent): the close frame, then the TCP link is dropped after
        :data:`CLOSE_TIMEOUT` whatever the peer does. Returns the task doing it."""
        if self._closer is None:
            self._closing = True
            self._drop_outgoing()
            self._closer = asyncio.get_running_loop().create_task(self._close(code, message))
        return self._closer

    async def _close(self, code: int, message: bytes) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=message)
        except Exception as exc:  # TimeoutError: the peer reads nothing
            log.debug("closing a client connection: %s", exc)
        finally:
            if self.transport is not None:
                self.transport.abort()

    def _drop_outgoing(self) -> None:
        while not self._outgoing.empty():
            self._outgoing.get_nowait()

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT or msg.type == WSMsgType.BINARY:
                    await self._slots.acquire()
                    task = asyncio.create_task(self._serve(msg.data))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif msg.type == WSMsgType.ERROR:
                    log.debug("websocket error: %s", self.ws.exception())
        finally:
            self._closing = True
            self.server.media_set.connection_closed(self)
            # Requests already running complete (a half-done create or release would leave
            # the registry inconsistent); their answers are dropped.
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self._drop_outgoing()

    async def _serve(self, data: str | bytes) -> None:
        try:
            frame = await self.server.dispatcher.handle_frame(data, self)
        except Exception:  # a bug must not cost the client its answer slot
            log.exception("request failed")
            return
        finally:
            self._slots.release()
        self.send_frame(frame)

    async def _write(self) -> None:
        while True:
            frame = await self._outgoing.get()
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return


class MediaServer:
    """A Kurento-protocol media server. ``start()``/``stop()`` or ``async with``."""

    def __init__(
        self,
        settings: MediaServerSettings | None = None,
        factories: dict[str, Factory] | None = None,
    ):
        self.settings = settings or MediaServerSettings()
        self.media_set = MediaSet(self.settings.gc_time, self.settings.max_objects)
        self.ctx = ServerContext(self.settings, self.media_set)
        self.media_set.manager = ServerManagerImpl(self.ctx)
        self.dispatcher = Dispatcher(self.ctx, factories or default_factories())
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._gc_task: asyncio.Task[None] | None = None
        self._connections: set[ClientConnection] = set()

    @property
    def url(self) -> str:
        """``ws://host:port/kurento`` (after ``start``)."""
        return f"ws://{self.settings.host}:{self.port}/{self.settings.path}"

    async def start(self) -> None:
        self.settings.media_dir.mkdir(parents=True, exist_ok=True)
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        # Connections are closed by stop() first, so the runner need not wait long for them.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=CLOSE_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only there
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        self._gc_task = asyncio.create_task(
            self.media_set.run_gc(self.settings.effective_gc_interval), name="media-gc"
        )
        log.info("media server listening on %s", self.url)

    async def stop(self) -> None:
        if self._gc_task is not None:
            self._gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gc_task
            self._gc_task = None
        # Every client at once, each bounded by CLOSE_TIMEOUT: stopping takes about a second
        # however many clients there are and whatever they do.
        closing = [c.close(1001, b"Server shutdown") for c in list(self._connections)]
        if closing:
            await asyncio.wait(closing)
        await self.media_set.release_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.ctx.blocking.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> MediaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.settings.max_frame_bytes, autoping=True)
        await ws.prepare(request)
        if request.path.strip("/") != self.settings.path:
            await ws.close(code=1002, message=b"Invalid path")
            return ws
        connection = ClientConnection(ws, request.transport, self)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
        return ws
