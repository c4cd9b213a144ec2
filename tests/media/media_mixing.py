"""Test media and peers for the hub and filter tests: aiortc tracks of a colour and of a tone; a
peer that keeps what it decodes (the newest picture, the audio samples, when encoded key frames
arrived), so a test can look at tiles, colours and spectra; a face (tests/fixtures/face) as
frames, as a fake camera file for Chromium, and an overlay image to find on it."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack, VideoStreamTrack
from media_synthetic import EncodedFrames, negotiate

from flowengine.media.engine.yuv import yuv_planes

RATE = 48_000
FACE = Path(__file__).resolve().parent.parent / "fixtures" / "face" / "astronaut.jpg"
COLORS = {  # (Y, U, V), far apart in every plane
    "red": (82, 90, 240),
    "green": (145, 54, 34),
    "blue": (41, 240, 110),
    "white": (235, 128, 128),
    "gray82": (82, 128, 128),  # red without its colour
}


class ColorVideo(VideoStreamTrack):
    """30 fps of a flat colour with a small moving grey square (so the encoder has work)."""

    def __init__(self, color: str, width: int = 320, height: int = 240):
        super().__init__()
        self.yuv = COLORS[color]
        self.width, self.height = width, height
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        data = np.empty((self.height * 3 // 2, self.width), np.uint8)
        planes = yuv_planes(data, self.width, self.height)
        for plane, value in zip(planes, self.yuv, strict=True):
            plane[:] = value
        x = (self.count * 4) % (self.width - 16)
        planes[0][8:24, x : x + 16] = 128
        self.count += 1
        frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Tone(MediaStreamTrack):
    """A sine tone, 48 kHz mono, 20 ms frames paced in real time."""

    kind = "audio"

    def __init__(self, hz: float, amplitude: int = 6000):
        super().__init__()
        self.hz, self.amplitude = hz, amplitude
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._sent / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        n = np.arange(self._sent, self._sent + 960)
        samples = (self.amplitude * np.sin(2 * np.pi * self.hz * n / RATE)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts, frame.time_base = self._sent, fractions.Fraction(1, RATE)
        self._sent += 960
        return frame


class Peer:
    """An aiortc peer of a WebRtcEndpoint that sends ``tracks`` and receives audio and video,
    keeping the newest picture (Y, U, V planes), the last 2 s of audio and key-frame times."""

    def __init__(self, *tracks: MediaStreamTrack, receive: bool = True):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        kinds = set()
        for track in tracks:
            self.pc.addTrack(track)
            kinds.add(track.kind)
        if receive:
            for kind in ("audio", "video"):
                if kind not in kinds:
                    self.pc.addTransceiver(kind, direction="recvonly")
        self.picture: tuple[np.ndarray, ...] | None = None
        self.frames = 0
        self.frame_times: list[tuple[float, tuple[int, ...]]] = []
        self.samples: deque[np.ndarray] = deque(maxlen=100)
        self._encoded = EncodedFrames()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    @property
    def keyframes(self) -> list[float]:
        return [t for t, key in self._encoded.arrivals if key]

    def _on_track(self, track: Any) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if isinstance(frame, av.VideoFrame):
                data = frame.reformat(format="yuv420p").to_ndarray()
                self.picture = yuv_planes(data, frame.width & ~1, frame.height & ~1)
                self.frames += 1
                self.frame_times.append((time.monotonic(), self.color_at(0.5, 0.5)))
            else:
                self.samples.append(frame.to_ndarray().reshape(-1)[:: len(frame.layout.channels)])

    def color_at(self, fx: float, fy: float) -> tuple[int, ...]:
        """Mean (Y, U, V) of an 8 x 8 block at a fraction of the picture's size."""
        assert self.picture is not None
        y_plane = self.picture[0]
        x, y = int(fx * y_plane.shape[1]) & ~1, int(fy * y_plane.shape[0]) & ~1
        return tuple(
            int(plane[(y // d) - 4 // d : (y // d) + 4 // d, (x // d) - 4 // d : (x // d) + 4 // d]
                .mean())
            for plane, d in zip(self.picture, (1, 2, 2), strict=True)
        )  # fmt: skip

    def tone_levels(self, *hz: float, seconds: float = 0.5) -> list[float]:
        """For each frequency, its spectral peak over the median level of the last
        ``seconds`` of decoded audio (1: not there; hundreds: loud and clear)."""
        samples = np.concatenate(list(self.samples))[-int(RATE * seconds):].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
        floor = np.median(spectrum) + 1e-9
        bins = [round(f * len(samples) / RATE) for f in hz]
        return [float(spectrum[b - 2 : b + 3].max() / floor) for b in bins]

    async def negotiate(self, client, endpoint: str) -> None:
        """Offer, answer and trickle ICE with ``endpoint``."""
        await negotiate(self.pc, client, endpoint, self._encoded)

    async def wait(self, what: Callable[[], Any], why: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > deadline:
                centre = self.color_at(0.5, 0.5) if self.picture is not None else None
                raise AssertionError(f"{why}: not within {timeout} s ({self.frames} frames, "
                                     f"the last one {centre} at its centre)")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


def near(color: tuple[int, ...], name: str, tolerance: int = 24) -> bool:
    """Whether a measured (Y, U, V) is the named colour (codec losses allowed)."""
    return all(abs(a - b) <= tolerance for a, b in zip(color, COLORS[name], strict=True))


def black(color: tuple[int, ...]) -> bool:
    return color[0] < 40 and all(abs(c - 128) < 16 for c in color[1:])


def face_frame(index: int, width: int, height: int) -> av.VideoFrame:
    """The astronaut's picture, drifting a few pixels to the side and back."""
    picture = cv2.resize(cv2.imread(str(FACE)), (width, height))
    shift = (index // 3) % 12 - 6
    return av.VideoFrame.from_ndarray(np.roll(picture, shift, axis=1), format="bgr24")


def write_face_camera(path: Path, seconds: float = 2.0, fps: int = 30) -> Path:
    """A Y4M file of :func:`face_frame` at 640 x 480, for Chromium's
    ``--use-file-for-fake-video-capture`` (which plays it in a loop)."""
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = face_frame(i, 640, 480).reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def magenta_png(path: Path) -> Path:
    """An opaque magenta square with a transparent frame around it (PNG with alpha)."""
    image = np.zeros((64, 64, 4), np.uint8)
    image[8:56, 8:56] = (255, 0, 255, 255)
    cv2.imwrite(str(path), image)
    return path


def magenta(color: tuple[int, ...]) -> bool:
    """Whether a measured (Y, U, V) is the overlay's magenta."""
    return color[1] > 180 and color[2] > 190
