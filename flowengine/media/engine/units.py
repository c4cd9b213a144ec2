"""Media units moved between elements: encoded frames, or decoded PyAV frames.

Formats are named by lower-case codec name (``"vp8"``, ``"h264"``, ``"opus"``, ``"pcmu"``,
``"pcma"``) or ``"raw"`` for decoded ``av.VideoFrame``/``av.AudioFrame``. Encoded H.264 is always
Annex B (start codes), which is what aiortc depacketises and packetises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import av

RAW = "raw"
VIDEO_CLOCK = 90_000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK)

AUDIO_CLOCKS = {"opus": 48_000, "pcmu": 8_000, "pcma": 8_000, "g722": 8_000}
VIDEO_CODECS = ("vp8", "h264")


@dataclass(slots=True)
class EncodedUnit:
    """One encoded access unit (a video frame or an audio packet)."""

    codec: str
    data: bytes
    pts: int
    time_base: Fraction
    keyframe: bool = True
    payloads: list[bytes] | None = field(default=None, repr=False, compare=False)
    """Its RTP payloads once a sender made them (shared by every sender of the same codec:
    see :mod:`flowengine.media.engine.rtp_sender`)."""

    def to_packet(self, pts: int, time_base: Fraction) -> av.Packet:
        """An ``av.Packet`` that aiortc's ``Encoder.pack`` accepts (pass-through sending)."""
        packet = av.Packet(self.data)
        packet.pts = pts
        packet.time_base = time_base
        return packet


Unit = EncodedUnit | av.VideoFrame | av.AudioFrame


def copy_video_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """A private copy of a decoded frame (shared frames must never get another pts)."""
    out = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for src, dst in zip(frame.planes, out.planes, strict=True):
        if src.line_size == dst.line_size and src.buffer_size == dst.buffer_size:
            dst.update(bytes(src))
            continue
        # Decoders pad their lines (alignment): copy row by row.
        s, d = memoryview(src), memoryview(dst)
        row = min(src.line_size, dst.line_size)
        for y in range(dst.height):
            d[y * dst.line_size : y * dst.line_size + row] = s[
                y * src.line_size : y * src.line_size + row
            ]
    return out


def own_video_frame(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``frame`` as yuv420p of the given size, never the shared object itself."""
    out = frame.reformat(width=width, height=height, format="yuv420p")
    return copy_video_frame(out) if out is frame else out


def unit_format(unit: Unit) -> str:
    return unit.codec if isinstance(unit, EncodedUnit) else RAW


def clock_for(kind: str, fmt: str) -> int:
    """The RTP clock rate used for a track of ``kind`` sending ``fmt``."""
    if kind == "video":
        return VIDEO_CLOCK
    return AUDIO_CLOCKS.get(fmt, 48_000)


def is_video_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded video frame can start decoding.

    VP8: bit 0 of the first byte of the frame tag is 0 for a key frame (RFC 6386 9.1).
    H.264 (Annex B): the access unit holds an IDR slice (NAL type 5) or an SPS (7).
    """
    if not data:
        return False
    if codec == "vp8":
        return (data[0] & 0x01) == 0
    if codec == "h264":
        i, n = 0, len(data)
        while True:
            i = data.find(b"\x00\x00\x01", i)
            if i < 0 or i + 3 >= n:
                return False
            nal_type = data[i + 3] & 0x1F
            if nal_type in (5, 7):
                return True
            i += 3
    return True
