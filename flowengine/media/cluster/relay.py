"""A source's encoded media forwarded from one worker to another (what mediasoup calls a pipe).

When the router puts a viewer of a source on another worker than the source's (the source's
worker is full), the source's worker *relays out* and the viewer's worker *relays in*:

* ``flowengine.relayOut`` (on the source's worker, params ``object``): a :class:`RelayOut`
  reads the element's audio and video hubs in their encoded format (the source's own: no
  decode; a source of decoded frames, a filter, is encoded once, VP8/Opus) and serves them on a
  TCP port of 127.0.0.1 as RTP packets framed as RFC 4571 describes (a 16-bit length before
  each). H.264 goes out as the very payloads the worker's own viewers get (packetised once per
  frame). Answers ``{"port", "formats"}``.
* ``flowengine.relayIn`` (on the viewer's worker, params ``pipeline``, ``object``, ``port``,
  ``formats``; ``pipeline`` alone: the shadow pipeline, empty): a *shadow* of the source's
  pipeline (same id, in the router's session) gets a
  :class:`RelayInImpl` element with the source's id, which connects to that port and pushes
  each frame it reassembles into its hubs. The router then connects it to the viewer there: the
  viewer's connections and events name the source, as on the source's worker.

Key frames: a viewer that needs one makes the shadow's hub ask (``on_keyframe_request``); the
request goes back as an RTCP PLI on the same connection and the relay's reader on the source's
worker asks its hub at once (the source, its transcoder or its key-frame bridge): the viewer's
worker rate-limits what it asks, as for a source of its own.

One RelayOut per source serves every worker relaying it in (one connection each). It ends with
the source (checked every :data:`FOLLOW_INTERVAL`) or when told; a relay-in whose connection
drops stops pushing (its viewers see the media stop, as when a source goes away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from fractions import Fraction
from typing import Any, ClassVar

from aiortc.codecs.h264 import h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload

from flowengine.kurento import errors, model
from flowengine.kurento.errors import KurentoError
from flowengine.media.elements.media_element import MediaElementImpl
from flowengine.media.elements.media_pipeline import MediaPipelineImpl
from flowengine.media.engine.hub import HubReader
from flowengine.media.engine.rtp_sender import h264_payloads
from flowengine.media.engine.units import RAW, EncodedUnit, Unit, clock_for, is_video_keyframe

log = logging.getLogger("flowengine.media.cluster")

KINDS = ("video", "audio")
FALLBACK_FORMAT = {"video": "vp8", "audio": "opus"}
"""What a relay sends of a source whose hub carries decoded frames."""
PAYLOAD_TYPES = {"vp8": 96, "h264": 97, "opus": 111, "pcmu": 0, "pcma": 8}
SSRC = {"video": 0x0F10_0001, "audio": 0x0F10_0002}
PLI = struct.pack("!BBHII", 0x81, 206, 2, SSRC["video"], SSRC["video"])  # RFC 4585 6.3.1
FOLLOW_INTERVAL = 0.5
"""Seconds between two checks that a relay still reads its source's current hubs."""
MAX_FRAME = 4 * 1024 * 1024
"""Largest encoded frame a relay-in reassembles (a bigger one is dropped)."""

_RTP_HEADER = struct.Struct("!BBHII")


def _formats(element: MediaElementImpl) -> dict[str, str]:
    formats = {}
    for kind in KINDS:
        hub = element.output_hub(kind)
        expected = hub.expected_format
        formats[kind] = expected if expected and expected != RAW else FALLBACK_FORMAT[kind]
    return formats


class _Outgoing:
    """One worker's connection to a :class:`RelayOut`: a reader per kind writing RTP."""

    def __init__(self, relay: RelayOut, writer: asyncio.StreamWriter):
        self.relay = relay
        self.writer = writer
        self.readers: dict[str, HubReader] = {}
        self.sequence = dict.fromkeys(KINDS, 0)
        self.picture_id = 0
        self.origin: dict[str, int] = {}

    def follow(self) -> None:
        """(Re)subscribe to the source's current hubs."""
        for kind in KINDS:
            hub = self.relay.source.output_hub(kind)
            reader = self.readers.get(kind)
            if reader is not None and reader.hub is hub and not reader.closed:
                continue
            if reader is not None:
                reader.close()
            self.readers[kind] = hub.subscribe(self.relay.formats[kind], sink=self._sink(kind))

    def _sink(self, kind: str) -> Callable[[Unit], None]:
        fmt = self.relay.formats[kind]
        clock = clock_for(kind, fmt)
        payload_type = PAYLOAD_TYPES.get(fmt, 96)
        ssrc = SSRC[kind]

        def send(unit: Unit) -> None:
            if not isinstance(unit, EncodedUnit) or self.writer.is_closing():
                return
            if fmt == "h264":
                payloads = h264_payloads(unit)
            elif fmt == "vp8":
                payloads = Vp8Encoder._packetize(unit.data, self.picture_id)
                self.picture_id = (self.picture_id + 1) % (1 << 15)
            else:
                payloads = [unit.data]
            time_base = unit.time_base or Fraction(1, clock)
            timestamp = (unit.pts or 0) * time_base.numerator * clock // time_base.denominator
            timestamp &= 0xFFFFFFFF
            sequence = self.sequence[kind]
            chunks = []
            last = len(payloads) - 1
            for i, payload in enumerate(payloads):
                marker = 0x80 if i == last else 0
                header = _RTP_HEADER.pack(0x80, payload_type | marker, sequence, timestamp, ssrc)
                chunks += [struct.pack("!H", len(header) + len(payload)), header, payload]
                sequence = (sequence + 1) & 0xFFFF
            self.sequence[kind] = sequence
            self.writer.write(b"".join(chunks))
            if self.writer.transport.get_write_buffer_size() > 8 * 1024 * 1024:
                log.warning("relay of %s: the other worker does not read; closing", self.relay.id)
                self.writer.close()

        return send

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()
        self.writer.close()


class RelayOut:
    """The source side (see the module docstring)."""

    def __init__(self, source: MediaElementImpl):
        self.source = source
        self.id = source.id
        self.formats = _formats(source)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[_Outgoing] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._task = asyncio.create_task(self._follow(), name=f"relay-out {self.id}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        outgoing = _Outgoing(self, writer)
        self._connections.add(outgoing)
        outgoing.follow()
        try:
            while True:  # RTCP from the other worker: key-frame requests
                length = struct.unpack("!H", await reader.readexactly(2))[0]
                packet = await reader.readexactly(length)
                if len(packet) >= 2 and packet[1] == 206:
                    video = outgoing.readers.get("video")
                    if video is not None:
                        # Forced: the other worker's hub rate-limits its requests already,
                        # and a viewer that just joined there must not wait for this one's.
                        video.request_keyframe(force=True)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.discard(outgoing)
            outgoing.close()

    async def _follow(self) -> None:
        while not self.source.released:
            await asyncio.sleep(FOLLOW_INTERVAL)
            for outgoing in list(self._connections):
                outgoing.follow()
        await self.close()

    async def close(self) -> None:
        for outgoing in list(self._connections):
            outgoing.close()
        self._connections.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()


class RelayInImpl(MediaElementImpl):
    """The shadow of a source on another worker: its hubs carry what the relay brings."""

    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["MediaElement"]

    def __init__(self, *args: Any, port: int, formats: dict[str, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.port = port
        self.formats = {k: v for k, v in formats.items() if k in KINDS}
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for kind, fmt in self.formats.items():
            self.output_hub(kind).format_hint = fmt
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._task = asyncio.create_task(self._receive(reader), name=f"relay-in {self.id}")

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        by_ssrc = {SSRC[kind]: kind for kind in self.formats}
        pending: dict[str, list[bytes]] = {kind: [] for kind in self.formats}
        sizes = dict.fromkeys(self.formats, 0)
        try:
            while True:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
                packet = await reader.readexactly(length)
                if len(packet) < 12:
                    continue
                kind = by_ssrc.get(struct.unpack_from("!I", packet, 8)[0])
                if kind is None:
                    continue
                parts = pending[kind]
                parts.append(packet[12:])
                sizes[kind] += len(packet) - 12
                if sizes[kind] > MAX_FRAME:
                    parts.clear()
                    sizes[kind] = 0
                    continue
                if packet[1] & 0x80:  # the marker: the frame is complete
                    timestamp = struct.unpack_from("!I", packet, 4)[0]
                    self._push(kind, parts[:], timestamp)
                    parts.clear()
                    sizes[kind] = 0
        except (asyncio.IncompleteReadError, ConnectionError):
            log.debug("relay-in %s: the source's worker closed the relay", self.id)

    def _push(self, kind: str, payloads: list[bytes], timestamp: int) -> None:
        fmt = self.formats[kind]
        if fmt == "h264":
            data = b"".join(h264_depayload(p) for p in payloads)
        elif fmt == "vp8":
            data = b"".join(vp8_depayload(p) for p in payloads)
        else:
            data = b"".join(payloads)
        keyframe = is_video_keyframe(fmt, data) if kind == "video" else True
        unit = EncodedUnit(fmt, data, timestamp, Fraction(1, clock_for(kind, fmt)), keyframe)
        if fmt == "h264":
            unit.payloads = payloads  # this worker's viewers send them as they came
        self.output_hub(kind).push(unit)

    def on_keyframe_request(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(struct.pack("!H", len(PLI)) + PLI)

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
        await super().release()


def install(server: Any) -> None:
    """Give a worker's dispatcher the relay methods (see the module docstring)."""
    ctx, media_set = server.ctx, server.media_set
    relays: dict[str, RelayOut] = {}

    def _session(params: dict[str, Any]) -> str:
        sid = params.get("sessionId")
        if not isinstance(sid, str):
            raise errors.param_required("sessionId")
        return sid

    async def relay_out(params: dict[str, Any] | None) -> dict[str, Any]:
        params = params or {}
        sid = _session(params)
        source = media_set.get(sid, str(params.get("object")))
        if not isinstance(source, MediaElementImpl):
            raise KurentoError(errors.MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, "Not a media element")
        relay = relays.get(source.id)
        if relay is None or relay._server is None:
            relay = relays[source.id] = RelayOut(source)
            await relay.start()
        return {"sessionId": sid, "value": {"port": relay.port, "formats": relay.formats}}

    async def relay_in(params: dict[str, Any] | None) -> dict[str, Any]:
        params = params or {}
        sid = _session(params)
        pipeline_id = str(params.get("pipeline"))
        object_id = str(params.get("object", pipeline_id))  # none: the shadow pipeline only
        pipeline = media_set.objects.get(pipeline_id)
        if pipeline is None:
            pipeline = MediaPipelineImpl(ctx, object_id=pipeline_id)
            await pipeline.start()
            media_set.register(pipeline, sid)
        if object_id not in media_set.objects:
            element = RelayInImpl(
                ctx, parent=pipeline, params={}, object_id=object_id,
                port=int(params.get("port", 0)), formats=dict(params.get("formats") or {}),
            )  # fmt: skip
            try:
                await element.start()
            except OSError as exc:
                await element.release()
                raise KurentoError(errors.CONNECT_ERROR, f"Relay not reachable: {exc}") from None
            media_set.register(element, sid)
        return {"sessionId": sid}

    server.dispatcher.methods["flowengine.relayOut"] = relay_out
    server.dispatcher.methods["flowengine.relayIn"] = relay_in
