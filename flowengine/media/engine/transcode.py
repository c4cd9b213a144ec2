"""Decode once, encode once per output format: the conversion stage of a :class:`MediaHub`.

A hub whose readers want a format other than the one its source produces feeds a
:class:`Transcoder`. It runs in its own thread (CPU work never holds the event loop), decodes each
input unit once, hands decoded frames to ``raw`` readers and encodes them once per requested
codec (``targets``, chosen by the hub); every reader of that codec then gets the same packets.
A target may be the source's own codec: the hub's key-frame bridge (see
:mod:`~flowengine.media.engine.hub`). With ``decode_always`` the decoder follows the source
even while nothing is wanted, so a key frame can be made the moment a reader needs one. Its
input queue is bounded (``max_pending``): when the thread falls behind, units are dropped and,
for video, decoding resumes at the next key frame.

Video decoders are FFmpeg's own H.264 and VP8 on one thread (aiortc's VP8 decoder is libvpx, at
several times the CPU); audio decoders are aiortc's. Encoders are PyAV's (libvpx, libx264,
libopus, G.711), because aiortc's return RTP payloads rather than a bitstream that can be
shared between senders, and its audio encoders take only packed 16-bit samples (an AAC decoder
gives planar floats).
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
from aiortc.codecs import get_decoder
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

KEYFRAME_INTERVAL = 300
"""Frames between the key frames an encoder makes unasked (10 s at 30 fps): a reader that
needs one sooner asks (a viewer's PLI, a joining viewer), and each unasked one costs every
viewer a burst."""

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
        ctx.gop_size = KEYFRAME_INTERVAL
        if self.fmt == "h264":
            # Baseline, no B-frames, no lookahead: what WebRTC receivers decode with least delay.
            ctx.profile = "Baseline"
            ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "level": "31"}
        else:
            ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
            # libvpx's own threads cost 5 to 10 times the CPU of one (measured at 320x240
            # and 640x480 on 2 cores) and the encoder has a thread of its own anyway.
            ctx.thread_count = 1
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


_AUDIO_CODECS = {
    # format: (FFmpeg encoder, channel layout, samples per packet: 20 ms)
    "opus": ("libopus", "stereo", 960),
    "pcmu": ("pcm_mulaw", "mono", 160),
    "pcma": ("pcm_alaw", "mono", 160),
}


class _AudioEncoder:
    """Any decoded audio (sample format, rate, channels) to 20 ms packets of ``fmt``; each
    packet is one unit, timed by its first sample on the codec's clock."""

    def __init__(self, fmt: str):
        name, layout, self.samples = _AUDIO_CODECS[fmt]
        self.fmt = fmt
        self.clock = clock_for("audio", fmt)
        self.time_base = Fraction(1, self.clock)
        self.ctx: Any = av.CodecContext.create(name, "w")
        self.ctx.format, self.ctx.layout, self.ctx.sample_rate = "s16", layout, self.clock
        self.ctx.time_base = self.time_base
        if fmt == "opus":
            self.ctx.bit_rate = 64_000
        self.resampler = av.AudioResampler(
            format="s16", layout=layout, rate=self.clock, frame_size=self.samples
        )
        self.force_keyframe = False
        self._next: int | None = None  # the timestamp of the next packet

    def encode(self, frame: av.AudioFrame) -> list[EncodedUnit]:
        start = _rescale(frame.pts, frame.time_base, self.clock)
        if self._next is None or abs(start - self._next) > self.clock:
            self._next = start  # the first frame, or the source jumped (seek, loop)
        units = []
        for chunk in self.resampler.resample(frame):
            chunk.pts = None  # the encoder's own clock would start over at each jump
            for packet in self.ctx.encode(chunk):
                units.append(EncodedUnit(self.fmt, bytes(packet), self._next, self.time_base))
                self._next += self.samples
        return units


def _rescale(pts: int | None, time_base: Fraction | None, clock: int) -> int:
    if pts is None or time_base is None:
        return 0
    return int(pts * time_base * clock)


class Transcoder:
    """Converts one hub's source units into the formats its readers want (see module doc).

    ``deliver(fmt, unit)`` is called on the event loop for every produced unit. ``targets`` is
    read by the worker on each unit, so adding or removing a format needs no restart.
    ``on_keyframe_needed()`` is called on the event loop while the video decoder waits for a
    key frame of the source (at the start, after a loss): a source that can make one should.
    """

    def __init__(
        self,
        kind: str,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[str, Unit], None],
        max_pending: int = 30,
        video_bitrate: int = 1_000_000,
        name: str = "transcoder",
        decode_always: bool = False,
        on_keyframe_needed: Callable[[], None] | None = None,
    ):
        self.kind = kind
        self.loop = loop
        self.deliver = deliver
        self.video_bitrate = video_bitrate
        self.decode_always = decode_always
        self.on_keyframe_needed = on_keyframe_needed
        self.targets: set[str] = set()
        self._queue: queue.Queue[Unit | None] = queue.Queue(maxsize=max_pending)
        self._decoder: Any = None
        self._decoder_fmt: str | None = None
        self._encoders: dict[str, _VideoEncoder | _AudioEncoder] = {}
        self._skip_to_keyframe = kind == "video"  # a decoder starts at a key frame
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
        self._post(self.deliver, fmt, unit)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self.loop.call_soon_threadsafe(fn, *args)

    def _process(self, unit: Unit) -> None:
        targets = self.targets
        encoded = isinstance(unit, EncodedUnit)
        if not targets and not (self.decode_always and encoded):
            self._skip_to_keyframe = self.kind == "video"  # the decoder missed this unit
            return
        if encoded:
            if self._skip_to_keyframe:
                if not unit.keyframe:
                    if self.on_keyframe_needed is not None:
                        self._post(self.on_keyframe_needed)
                    return
                self._skip_to_keyframe = False
            frames = self._decode(unit)
        else:
            frames = [unit]
        for frame in frames:
            if RAW in targets:
                self._emit(RAW, frame)
            for fmt in targets - {RAW}:
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
            self._decoder = _new_decoder(unit.codec)
            self._decoder_fmt = unit.codec
        clock = clock_for(self.kind, unit.codec)
        timestamp = _rescale(unit.pts, unit.time_base, clock)
        try:
            return list(self._decoder.decode(JitterFrame(unit.data, timestamp)))
        except av.FFmpegError:
            self._skip_to_keyframe = self.kind == "video"
            return []


class _VideoDecoder:
    """FFmpeg's own H.264 or VP8 decoder on one thread: no frame-threading delay, and
    aiortc's VP8 decoder (libvpx) costs several times the CPU."""

    def __init__(self, fmt: str):
        self.ctx: Any = av.CodecContext.create(fmt, "r")
        self.ctx.thread_count = 1

    def decode(self, frame: JitterFrame) -> list[av.VideoFrame]:
        packet = av.Packet(frame.data)
        packet.pts, packet.time_base = frame.timestamp, VIDEO_TIME_BASE
        return self.ctx.decode(packet)


def _new_decoder(fmt: str) -> Any:
    if fmt in ("h264", "vp8"):
        return _VideoDecoder(fmt)
    return get_decoder(codec_parameters(fmt))  # aiortc's audio decoders: packed 16-bit
