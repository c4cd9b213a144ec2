"""``CompositeMixer``: the video grid and the audio mix of a ``Composite``, in one thread.

Video, as KMS's ``compositemixer``: every input that has sent a frame gets a tile of a grid of
``ceil(sqrt(n))`` columns and ``ceil(n / columns)`` rows on a ``width`` x ``height`` black
canvas, in the order the inputs were added (hub port creation order); each picture is scaled to
its tile keeping its aspect ratio (black borders, as ``videoscale``'s ``add-borders``). A frame
of the canvas is made ``framerate`` times a second from the newest picture of each input, and
goes to one output (``push_video``): every port of the Composite shows the same grid, encoded
once per format by the hub it is pushed to.

Audio, as KMS's ``kmsaudiomixer``: every 20 ms, each output gets the sum of every input but its
own (no one hears themself), as 48 kHz mono 16-bit frames. An input joins the mix once 40 ms of
it are buffered and holds at most ``MAX_AUDIO_BUFFER`` (the oldest samples go first), so a late
or bursty input adds no lasting delay to the others.

CPU and memory are bounded by the output, not by the inputs' rates: pictures are scaled only
when a new one arrived, at most ``framerate`` times a second, and an input keeps only its newest
picture; the thread skips ticks rather than falling behind. Decoding happens in the inputs' hubs
(once per source), encoding in the output hubs (once per format).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np

from flowengine.media.engine.units import VIDEO_CLOCK, VIDEO_TIME_BASE
from flowengine.media.engine.yuv import BLACK, yuv_planes

log = logging.getLogger("flowengine.media.mixer")

AUDIO_RATE = 48_000
AUDIO_TICK = 960
"""Samples per audio frame (20 ms)."""
AUDIO_START = 2 * AUDIO_TICK
"""Samples an input must have buffered before it joins the mix (and again after running dry)."""
MAX_AUDIO_BUFFER = AUDIO_RATE // 4
"""Samples an input may hold (250 ms)."""
MAX_PENDING_AUDIO_FRAMES = 50
"""Decoded audio frames waiting for the thread, per input."""
CATCH_UP = 0.2
"""Seconds behind schedule after which the thread skips ticks instead of catching up."""


def grid(count: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """KMS's Composite layout: ``(x, y, w, h)`` of each of ``count`` tiles, row by row."""
    if count <= 0:
        return []
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tile_w, tile_h = width // columns, height // rows
    return [((i % columns) * tile_w, (i // columns) * tile_h, tile_w, tile_h) for i in range(count)]


@dataclass
class _Input:
    order: int
    picture: Any = None
    picture_seq: int = 0
    audio_connected: bool = False
    audio_in: deque[Any] = field(default_factory=deque)
    resampler: Any = None
    samples: deque[np.ndarray] = field(default_factory=deque)
    buffered: int = 0
    primed: bool = False


class CompositeMixer:
    """See the module docstring. Inputs and outputs are keyed by any hashable (a hub port)."""

    def __init__(
        self,
        width: int,
        height: int,
        framerate: int,
        loop: asyncio.AbstractEventLoop,
        push_video: Callable[[av.VideoFrame], None],
        *,
        name: str = "composite",
    ):
        self.width, self.height = width - width % 2, height - height % 2
        self.framerate = framerate
        self.loop = loop
        self.push_video = push_video
        self.frames_made = 0
        self._inputs: dict[Hashable, _Input] = {}
        self._audio_outputs: dict[Hashable, Callable[[av.AudioFrame], None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._canvas = np.empty((self.height * 3 // 2, self.width), np.uint8)
        self._layout: list[Hashable] = []
        self._drawn: dict[Hashable, int] = {}
        self._audio_pts = 0
        self._thread = threading.Thread(target=self._run, name=f"mixer-{name}", daemon=True)
        self._thread.start()

    # --- event loop side --------------------------------------------------------------------------

    def add_input(self, key: Hashable, order: int) -> None:
        with self._lock:
            self._inputs.setdefault(key, _Input(order))

    def remove_input(self, key: Hashable) -> None:
        with self._lock:
            self._inputs.pop(key, None)

    def put_video(self, key: Hashable, frame: av.VideoFrame) -> None:
        """The newest picture of ``key`` (an older one not yet drawn is dropped)."""
        with self._lock:
            entry = self._inputs.get(key)
            if entry is not None:
                entry.picture = frame
                entry.picture_seq += 1

    def clear_video(self, key: Hashable) -> None:
        """``key`` has no video any more: its tile goes."""
        with self._lock:
            entry = self._inputs.get(key)
            if entry is not None:
                entry.picture = None

    def set_audio_connected(self, key: Hashable, connected: bool) -> None:
        with self._lock:
            entry = self._inputs.get(key)
            if entry is not None:
                entry.audio_connected = connected
                if not connected:
                    entry.audio_in.clear()

    def put_audio(self, key: Hashable, frame: av.AudioFrame) -> None:
        with self._lock:
            entry = self._inputs.get(key)
            if entry is None:
                return
            if len(entry.audio_in) >= MAX_PENDING_AUDIO_FRAMES:
                entry.audio_in.popleft()
            entry.audio_in.append(frame)

    def set_audio_output(self, key: Hashable, push: Callable[[av.AudioFrame], None] | None) -> None:
        """Where the mix for ``key`` goes (``None``: nowhere)."""
        with self._lock:
            if push is None:
                self._audio_outputs.pop(key, None)
            else:
                self._audio_outputs[key] = push

    def close(self) -> None:
        """Stop the thread (it ends within one tick)."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        video_period = 1.0 / self.framerate
        audio_period = AUDIO_TICK / AUDIO_RATE
        next_video = next_audio = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_audio:
                    self._mix_audio()
                    next_audio = self._next(next_audio, audio_period, now)
                if now >= next_video:
                    self._compose()
                    next_video = self._next(next_video, video_period, now)
            except Exception:  # a bad frame must not stop the mixer
                log.exception("mixing failed")
            self._stop.wait(max(0.0, min(next_audio, next_video) - time.monotonic()))

    def _next(self, due: float, period: float, now: float) -> float:
        due += period
        if now - due > CATCH_UP:
            skipped = int((now - due) / period)
            due += skipped * period
        return due

    def _emit(self, push: Callable[[Any], None], frame: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self.loop.call_soon_threadsafe(push, frame)

    # video

    def _compose(self) -> None:
        with self._lock:
            shown = sorted(
                ((entry.order, key, entry.picture, entry.picture_seq)
                 for key, entry in self._inputs.items() if entry.picture is not None),
                key=lambda item: item[0],
            )  # fmt: skip
        keys = [key for _, key, _, _ in shown]
        if keys != self._layout:
            self._layout = keys
            self._drawn.clear()
            self._fill(0, 0, self.width, self.height)
        for (x, y, w, h), (_, key, picture, seq) in zip(
            grid(len(shown), self.width, self.height), shown, strict=True
        ):
            if self._drawn.get(key) != seq:
                self._draw(picture, x, y, w, h)
                self._drawn[key] = seq
        frame = av.VideoFrame.from_ndarray(self._canvas, format="yuv420p")
        frame.pts = self.frames_made * VIDEO_CLOCK // self.framerate
        frame.time_base = VIDEO_TIME_BASE
        self.frames_made += 1
        self._emit(self.push_video, frame)

    def _planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return yuv_planes(self._canvas, self.width, self.height)

    def _fill(self, x: int, y: int, w: int, h: int) -> None:
        for plane, value, div in zip(self._planes(), BLACK, (1, 2, 2), strict=True):
            plane[y // div : (y + h) // div, x // div : (x + w) // div] = value

    def _draw(self, picture: av.VideoFrame, x: int, y: int, w: int, h: int) -> None:
        """``picture`` scaled into the tile, centred, aspect ratio kept (even sizes and
        offsets, for the half-size chroma planes)."""
        scale = min(w / picture.width, h / picture.height)
        sw = max(2, int(picture.width * scale) & ~1)
        sh = max(2, int(picture.height * scale) & ~1)
        ox = (x + (w - sw) // 2) & ~1
        oy = (y + (h - sh) // 2) & ~1
        if (sw, sh) != (w, h):
            self._fill(x & ~1, y & ~1, w & ~1, h & ~1)
        data = picture.reformat(width=sw, height=sh, format="yuv420p").to_ndarray()
        for source, target, div in zip(
            yuv_planes(data, sw, sh), self._planes(), (1, 2, 2), strict=True
        ):
            target[oy // div : (oy + sh) // div, ox // div : (ox + sw) // div] = source

    # audio

    def _mix_audio(self) -> None:
        with self._lock:
            outputs = dict(self._audio_outputs)
            inputs = list(self._inputs.items())
            arrived = {key: list(entry.audio_in) for key, entry in inputs}
            for _, entry in inputs:
                entry.audio_in.clear()
        connected = {key for key, entry in inputs if entry.audio_connected}
        chunks: dict[Hashable, np.ndarray] = {}
        for key, entry in inputs:
            self._buffer(entry, arrived[key])
            chunk = self._take(entry)
            if chunk is not None:
                chunks[key] = chunk
        if not outputs or not connected:
            return
        total = np.zeros(AUDIO_TICK, np.int32)
        for chunk in chunks.values():
            total += chunk
        for key, push in outputs.items():
            if not connected - {key}:
                continue  # nobody else to hear
            own = chunks.get(key)
            mix = total - own if own is not None else total
            samples = np.clip(mix, -32768, 32767).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts, frame.time_base = self._audio_pts, Fraction(1, AUDIO_RATE)
            self._emit(push, frame)
        self._audio_pts += AUDIO_TICK

    def _buffer(self, entry: _Input, frames: list[Any]) -> None:
        for frame in frames:
            if entry.resampler is None:
                entry.resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
            for out in entry.resampler.resample(frame):
                samples = out.to_ndarray().reshape(-1)
                entry.samples.append(samples)
                entry.buffered += len(samples)
        while entry.buffered > MAX_AUDIO_BUFFER:
            entry.buffered -= len(entry.samples.popleft())

    def _take(self, entry: _Input) -> np.ndarray | None:
        """The input's next 20 ms (int32), or ``None`` while it is not in the mix."""
        if not entry.primed:
            if entry.buffered < AUDIO_START:
                return None
            entry.primed = True
        out = np.zeros(AUDIO_TICK, np.int32)
        filled = 0
        while filled < AUDIO_TICK and entry.samples:
            head = entry.samples[0]
            n = min(len(head), AUDIO_TICK - filled)
            out[filled : filled + n] = head[:n]
            filled += n
            if n == len(head):
                entry.samples.popleft()
            else:
                entry.samples[0] = head[n:]
        entry.buffered -= filled
        if filled < AUDIO_TICK:
            entry.primed = False  # ran dry: wait for 40 ms again
        return out
