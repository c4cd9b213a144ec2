"""Writing decoded frames to MP4 or WEBM in a thread (``RecordingWriter``).

Frames arrive with a recording time in seconds (the wall clock since ``record``, pauses left
out), so the file plays at the pace it was recorded whatever the sources did. The container is
opened at the first video frame (its size is the file's size; later frames of another size are
scaled) or, for audio-only profiles, at the first audio frame. Audio that arrives before the
first video frame is kept, up to a bound. ``finish()`` flushes the encoders and closes the file;
its future completes when the file is complete and playable.

Bound: at most ``max_pending`` frames wait for the thread; beyond that frames are dropped (the
recording then has a gap rather than the server an unbounded queue).
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from flowengine.media.engine.units import own_video_frame

log = logging.getLogger("flowengine.media.recorder")


@dataclass(frozen=True)
class Profile:
    container: str
    video_codec: str | None
    audio_codec: str | None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k, c in (("video", self.video_codec), ("audio", self.audio_codec)) if c)


PROFILES: dict[str, Profile] = {
    "MP4": Profile("mp4", "libx264", "aac"),
    "MP4_VIDEO_ONLY": Profile("mp4", "libx264", None),
    "MP4_AUDIO_ONLY": Profile("mp4", None, "aac"),
    "WEBM": Profile("webm", "libvpx", "libopus"),
    "WEBM_VIDEO_ONLY": Profile("webm", "libvpx", None),
    "WEBM_AUDIO_ONLY": Profile("webm", None, "libopus"),
    "MKV": Profile("matroska", "libx264", "libopus"),
    "MKV_VIDEO_ONLY": Profile("matroska", "libx264", None),
    "MKV_AUDIO_ONLY": Profile("matroska", None, "libopus"),
}
"""Kurento media profiles this server records; others are refused at create (40107)."""

MS = Fraction(1, 1000)
AUDIO_RATE = 48_000


class RecordingWriter:
    """One output file. ``put`` from the event loop, the encoding happens in the thread."""

    def __init__(self, path: Path, profile: Profile, max_pending: int = 240):
        self.path = path
        self.profile = profile
        self.frames_written = 0
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, Any, float] | None] = queue.Queue(max_pending)
        self._done: concurrent.futures.Future[Path] = concurrent.futures.Future()
        self._container: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._resampler: Any = None
        self._early_audio: list[tuple[Any, float]] = []
        self._last_video_pts = -1
        self._audio_samples: int | None = None
        self._thread = threading.Thread(target=self._run, name="media-recorder", daemon=True)
        self._thread.start()

    def put(self, kind: str, frame: Any, t: float) -> None:
        if kind not in self.profile.kinds:
            return
        try:
            self._queue.put_nowait((kind, frame, t))
        except queue.Full:
            self.dropped += 1

    def finish(self) -> concurrent.futures.Future[Path]:
        """Close the file after the queued frames (idempotent)."""
        try:
            self._queue.put(None, timeout=5)
        except queue.Full:
            log.warning("recorder queue full at stop: closing without the last frames")
            self._queue = queue.Queue()
            self._queue.put(None)
        return self._done

    # --- thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                kind, frame, t = item
                try:
                    if kind == "video":
                        self._write_video(frame, t)
                    else:
                        self._write_audio(frame, t)
                except Exception:
                    log.exception("recording a %s frame failed", kind)
            self._close()
            self._done.set_result(self.path)
        except Exception as exc:
            log.exception("recording %s failed", self.path)
            self._done.set_exception(exc)

    def _open(self, width: int | None, height: int | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(self.path), mode="w", format=self.profile.container)
        if self.profile.video_codec and width and height:
            video = container.add_stream(self.profile.video_codec, rate=30)
            video.width, video.height = width - width % 2, height - height % 2
            video.pix_fmt = "yuv420p"
            video.codec_context.time_base = MS
            if self.profile.video_codec == "libx264":
                video.codec_context.options = {"preset": "veryfast", "tune": "zerolatency"}
            else:
                video.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
                video.codec_context.bit_rate = 1_500_000
            self._video = video
        if self.profile.audio_codec:
            audio = container.add_stream(self.profile.audio_codec, rate=AUDIO_RATE)
            audio.codec_context.layout = "stereo"
            self._audio = audio
        self._container = container

    def _write_video(self, frame: Any, t: float) -> None:
        if self._container is None:
            self._open(frame.width, frame.height)
            for early, early_t in self._early_audio:
                self._write_audio(early, early_t)
            self._early_audio.clear()
        if self._video is None:
            return
        # A private copy: the decoded frame is shared with other readers.
        out = own_video_frame(frame, self._video.width, self._video.height)
        pts = max(int(t * 1000), self._last_video_pts + 1)
        self._last_video_pts = pts
        out.pts, out.time_base = pts, MS
        for packet in self._video.encode(out):
            self._container.mux(packet)
        self.frames_written += 1

    def _write_audio(self, frame: Any, t: float) -> None:
        if self._container is None:
            if self.profile.video_codec:
                if len(self._early_audio) < 500:
                    self._early_audio.append((frame, t))
                return
            self._open(None, None)
        if self._audio is None:
            return
        if self._resampler is None:
            ctx = self._audio.codec_context
            self._resampler = av.AudioResampler(
                format=ctx.format.name if ctx.format else "fltp",
                layout="stereo",
                rate=AUDIO_RATE,
                frame_size=ctx.frame_size or 1024,
            )
        if self._audio_samples is None:
            self._audio_samples = int(t * AUDIO_RATE)
        for out in self._resampler.resample(frame):
            out.pts, out.time_base = self._audio_samples, Fraction(1, AUDIO_RATE)
            self._audio_samples += out.samples
            for packet in self._audio.encode(out):
                self._container.mux(packet)

    def _close(self) -> None:
        if self._container is None:
            if not self._early_audio:
                return  # nothing arrived: no file, as KMS leaves none
            self._open(None, None)
            for early, early_t in self._early_audio:
                self._write_audio(early, early_t)
        if self._video is not None:
            for packet in self._video.encode(None):
                self._container.mux(packet)
        if self._audio is not None:
            for packet in self._audio.encode(None):
                self._container.mux(packet)
        self._container.close()
