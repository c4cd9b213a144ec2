"""Decode once, encode once per output format: the conversion stage of a :class:`MediaHub`.

A hub whose readers want a format other than the one its source produces feeds a
:class:`Transcoder`. It runs in its own thread (CPU work never holds the event loop), decodes each
input unit once, hands decoded frames to ``raw`` readers and encodes them once per requested
codec; every reader of that codec then gets the same packets. Its input queue is bounded
(``max_pending``): when the thread falls behind, units are dropped and, for video, decoding
resumes at the next key frame.

Decoders and the audio encoders are aiortc's (they take and give what aiortc's RTP layer
uses); video encoders are PyAV's libvpx and libx264, because aiortc's return RTP payloads
rather than a bitstream that can be shared between senders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from aiortc.codecs import get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from flowengine.media.engine.units import (
    RAW,
    VIDEO_CLOCK,
    VIDEO_TIME_BASE,
    EncodedUnit,
    Unit,
    clock_for,
    is_video_keyframe,
    own_video_frame,
)

log = logging.getLogger("flowengine.media.transcode")

_MIME = {
    "vp8": ("video/VP8", 90_000, None),
    "h264": ("video/H264", 90_000, None),
    "opus": ("audio/opus", 48_000, 2),
    "pcmu": ("audio/PCMU", 8_000, None),
    "pcma": ("audio/PCMA", 8_000, None),
}


def codec_parameters(fmt: str) -> RTCRtpCodecParameters:
    mime, clock, channels = _MIME[fmt]
    return RTCRtpCodecParameters(mimeType=mime, clockRate=clock, channels=channels)


class _VideoEncoder:
    """A PyAV encoder producing Annex B H.264 or VP8 frames, restarted on size changes."""

    def __init__(self, fmt: str, bitrate: int):
        self.fmt = fmt
        self.bitrate = bitrate
        self.ctx: Any = None
        self.size: tuple[int, int] | None = None
        self.force_keyframe = True

    def _open(self, width: int, height: int) -> None:
        name = "libx264" if self.fmt == "h264" else "libvpx"
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = VIDEO_TIME_BASE
        ctx.framerate = Fraction(30, 1)
        ctx.bit_rate = self.bitrate
        ctx.gop_size = 60
        if self.fmt == "h264":
            # Baseline, no B-frames, no lookahead: what WebRTC receivers decode with least delay.
            ctx.profile = "Baseline"
            ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "level": "31"}
        else:
            ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        self.ctx, self.size = ctx, (width, height)

    def encode(self, frame: av.VideoFrame) -> list[EncodedUnit]:
        if self.size != (frame.width, frame.height):
            self._open(frame.width, frame.height)
            self.force_keyframe = True
        pts = _rescale(frame.pts, frame.time_base, VIDEO_CLOCK)
        out = own_video_frame(frame, frame.width, frame.height)
        out.pts, out.time_base = pts, VIDEO_TIME_BASE
        out.pict_type = (
            av.video.frame.PictureType.I if self.force_keyframe else av.video.frame.PictureType.NONE
        )
        self.force_keyframe = False
        units = []
        for packet in self.ctx.encode(out):
            data = bytes(packet)
            units.append(
                EncodedUnit(
                    self.fmt,
                    data,
                    packet.pts if packet.pts is not None else pts,
                    VIDEO_TIME_BASE,
                    keyframe=packet.is_keyframe or is_video_keyframe(self.fmt, data),
                )
            )
        return units


class _AudioEncoder:
    """aiortc's audio encoder: each payload is one complete codec packet."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.encoder = get_encoder(codec_parameters(fmt))
        self.clock = clock_for("audio", fmt)
        self.force_keyframe = False

    def encode(self, frame: av.AudioFrame) -> list[EncodedUnit]:
        payloads, timestamp = self.encoder.encode(frame)
        base = Fraction(1, self.clock)
        return [EncodedUnit(self.fmt, p, timestamp, base) for p in payloads]


def _rescale(pts: int | None, time_base: Fraction | None, clock: int) -> int:
    if pts is None or time_base is None:
        return 0
    return int(pts * time_base * clock)


class Transcoder:
    """Converts one hub's source units into the formats its readers want (see module doc).

    ``deliver(fmt, unit)`` is called on the event loop for every produced unit. ``targets`` is
    read by the worker on each unit, so adding or removing a format needs no restart.
    """

    def __init__(
        self,
        kind: str,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[str, Unit], None],
        max_pending: int = 30,
        video_bitrate: int = 1_000_000,
        name: str = "transcoder",
    ):
        self.kind = kind
        self.loop = loop
        self.deliver = deliver
        self.video_bitrate = video_bitrate
        self.targets: set[str] = set()
        self._queue: queue.Queue[Unit | None] = queue.Queue(maxsize=max_pending)
        self._decoder: Any = None
        self._decoder_fmt: str | None = None
        self._encoders: dict[str, _VideoEncoder | _AudioEncoder] = {}
        self._skip_to_keyframe = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.dropped = 0

    def feed(self, unit: Unit) -> None:
        """Queue a source unit (never blocks: drops when the worker is behind)."""
        try:
            self._queue.put_nowait(unit)
        except queue.Full:
            self.dropped += 1
            self._skip_to_keyframe = self.kind == "video"

    def force_keyframe(self, fmt: str) -> None:
        encoder = self._encoders.get(fmt)
        if encoder is not None:
            encoder.force_keyframe = True

    def close(self) -> None:
        """Stop the worker (returns at once; the thread ends after its current unit)."""
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

    # --- worker thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            unit = self._queue.get()
            if unit is None:
                return
            try:
                self._process(unit)
            except Exception:  # a bad unit must not kill the stage
                log.exception("transcoding failed")

    def _emit(self, fmt: str, unit: Unit) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self.loop.call_soon_threadsafe(self.deliver, fmt, unit)

    def _process(self, unit: Unit) -> None:
        targets = set(self.targets)
        if not targets:
            return
        if isinstance(unit, EncodedUnit):
            if self._skip_to_keyframe:
                if not unit.keyframe:
                    return
                self._skip_to_keyframe = False
            frames = self._decode(unit)
        else:
            frames = [unit]
        for frame in frames:
            if RAW in targets:
                self._emit(RAW, frame)
            for fmt in targets - {RAW}:
                if isinstance(unit, EncodedUnit) and fmt == unit.codec:
                    continue  # served directly by the hub
                encoder = self._encoders.get(fmt)
                if encoder is None:
                    encoder = (
                        _VideoEncoder(fmt, self.video_bitrate)
                        if self.kind == "video"
                        else _AudioEncoder(fmt)
                    )
                    self._encoders[fmt] = encoder
                for out in encoder.encode(frame):
                    self._emit(fmt, out)

    def _decode(self, unit: EncodedUnit) -> list[Any]:
        if self._decoder_fmt != unit.codec:
            self._decoder = get_decoder(codec_parameters(unit.codec))
            self._decoder_fmt = unit.codec
        clock = clock_for(self.kind, unit.codec)
        timestamp = _rescale(unit.pts, unit.time_base, clock)
        try:
            return list(self._decoder.decode(JitterFrame(unit.data, timestamp)))
        except av.FFmpegError:
            self._skip_to_keyframe = self.kind == "video"
            return []
