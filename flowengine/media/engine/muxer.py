"""``LiveMuxer``: writes encoded packets into a file that grows while recording.

Encoded video (VP8, H.264 Annex B) and Opus packets are muxed as they come, without decoding;
only AAC (the MP4 profiles' audio) is encoded here, from decoded frames. The file is readable at
any time: WebM/Matroska closes a cluster at least every :data:`FLUSH_MS` (as Kurento's
``webmmux`` writes it: clusters as they come, cues and duration at the end), MP4 is fragmented
(an empty ``moov``, then a fragment at least every :data:`FLUSH_MS`), and every written packet
is flushed to the file. ``finish()`` writes the trailer; its future completes when the file is
complete.

The container is opened at the first video key frame (its size is read from the bitstream:
:mod:`~flowengine.media.engine.bitstream`), or at the first audio for profiles without video.
Audio arriving before that waits, up to :data:`VIDEO_WAIT` seconds; then the file is written
without video.

Failures (the file or its folder removed, the disk full, a write error) end the muxer and are
reported once through ``on_error(description, code, type)`` with Kurento's error types
(``RESOURCE_ERROR_OPEN``, ``RESOURCE_ERROR_WRITE``, ``RESOURCE_ERROR_NO_SPACE_LEFT``; the codes
are GStreamer's ``GstResourceError`` values that KMS forwards).

Everything but ``put``/``finish`` runs in the muxer's own thread; ``put`` never blocks.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av

from flowengine.media.engine.bitstream import video_size
from flowengine.media.engine.units import EncodedUnit

log = logging.getLogger("flowengine.media.muxer")

FLUSH_MS = 300
"""Longest stretch of media held in memory before it is written to the file."""
VIDEO_WAIT = 5.0
"""Seconds audio waits for the first video key frame before the file opens without video."""
FILE_CHECK_INTERVAL = 0.5
"""Seconds between two checks that the file still exists on disk."""
AUDIO_RATE = 48_000
VIDEO_TIME_BASE = Fraction(1, 90_000)
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)

# GstResourceError codes, as KMS puts them in Error events (MediaElementImpl::processBusMessage).
RESOURCE_OPEN_WRITE = 6
RESOURCE_WRITE = 10
RESOURCE_NO_SPACE_LEFT = 14

ErrorCallback = Callable[[str, int, str], None]


@dataclass(frozen=True)
class Profile:
    """A recording profile: container and codecs (``None``: no such track)."""

    container: str
    video_codec: str | None
    audio_codec: str | None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k, c in (("video", self.video_codec), ("audio", self.audio_codec)) if c)


class MuxerError(Exception):
    """The file cannot be written; ``code`` and ``type`` as in a Kurento ``Error`` event."""

    def __init__(self, description: str, code: int, error_type: str):
        super().__init__(description)
        self.code = code
        self.type = error_type


def _container_options(container: str) -> dict[str, str]:
    # max_interleave_delta: a track that stops (muted audio) must not hold the other one back
    # for FFmpeg's default 10 s.
    common = {"flush_packets": "1", "max_interleave_delta": str(FLUSH_MS * 1000)}
    if container == "mp4":
        return {
            **common,
            "movflags": "empty_moov+default_base_moof+frag_keyframe",
            "frag_duration": str(FLUSH_MS * 1000),
        }
    return {**common, "cluster_time_limit": str(FLUSH_MS)}


class LiveMuxer:
    """One output file (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        profile: Profile,
        *,
        video_codec: str | None = None,
        on_error: ErrorCallback | None = None,
        max_pending: int = 600,
    ):
        self.path = path
        self.profile = profile
        self.video_codec = video_codec or profile.video_codec
        """The video codec of the packets (``"vp8"`` or ``"h264"``)."""
        self.on_error = on_error
        self.last_t = 0.0
        """Recording time (s) of the newest packet given to the container."""
        self.error: MuxerError | None = None
        self._queue: queue.Queue[tuple[str, Any, float] | None] = queue.Queue(max_pending)
        self._done: concurrent.futures.Future[Path] = concurrent.futures.Future()
        self._finishing = threading.Event()
        self._file: BinaryIO | None = None
        self._container: Any = None
        self._streams: dict[str, Any] = {}
        self._last_pts: dict[str, int] = {}
        self._origin: float | None = None
        self._early_audio: deque[tuple[Any, float]] = deque(maxlen=int(VIDEO_WAIT * 60))
        self._first_audio_at: float | None = None
        self._aac_resampler: Any = None
        self._aac_next: int | None = None
        self._next_file_check = 0.0
        self._thread = threading.Thread(target=self._run, name="media-muxer", daemon=True)
        self._thread.start()

    # --- event loop side --------------------------------------------------------------------------

    def put(self, kind: str, item: EncodedUnit | av.AudioFrame, t: float) -> bool:
        """Queue an encoded packet (or, for AAC, a decoded audio frame) at recording time ``t``
        (seconds). ``False`` when it was dropped (the thread is behind, or has ended)."""
        if self._done.done() or kind not in self.profile.kinds:
            return False
        try:
            self._queue.put_nowait((kind, item, t))
            return True
        except queue.Full:
            return False

    def finish(self) -> concurrent.futures.Future[Path]:
        """Write the queued packets and the trailer, close the file (idempotent; never
        blocks: a full queue is drained first)."""
        self._finishing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wakes the thread at once
        return self._done

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def opened(self) -> bool:
        return self._container is not None

    # --- thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=FILE_CHECK_INTERVAL / 2)
                except queue.Empty:
                    item = ()  # nothing came: still check the file and the video wait
                if item is None or (not item and self._finishing.is_set()):
                    break
                if item:
                    self._handle(*item)
                self._check()
            self._close()
            self._done.set_result(self.path)
        except MuxerError as exc:
            self._fail(exc)
        except Exception as exc:  # an unforeseen FFmpeg or OS error: still a write error
            log.exception("recording %s failed", self.path)
            self._fail(_write_error(exc, self.path))

    def _fail(self, exc: MuxerError) -> None:
        self.error = exc
        with contextlib.suppress(Exception):
            if self._container is not None:
                self._container.close()
        with contextlib.suppress(Exception):
            if self._file is not None:
                self._file.close()
        self._done.set_exception(exc)
        if self.on_error is not None:
            self.on_error(str(exc), exc.code, exc.type)

    def _handle(self, kind: str, item: Any, t: float) -> None:
        if self._container is None:
            if kind == "audio" and self.profile.video_codec is not None:
                if self._first_audio_at is None:
                    self._first_audio_at = time.monotonic()
                self._early_audio.append((item, t))
                return
            if kind == "video" and not (isinstance(item, EncodedUnit) and item.keyframe):
                return  # a recording starts at a key frame
            self._open(item if kind == "video" else None)
        if kind == "video":
            self._write_video(item, t)
        else:
            self._write_audio(item, t)

    def _check(self) -> None:
        now = time.monotonic()
        if (
            self._container is None
            and self._first_audio_at is not None
            and now - self._first_audio_at > VIDEO_WAIT
        ):
            log.warning("no video key frame for %s s: recording %s without video",
                        VIDEO_WAIT, self.path)
            self._open(None)
        if self._file is not None and now >= self._next_file_check:
            self._next_file_check = now + FILE_CHECK_INTERVAL
            try:
                gone = os.fstat(self._file.fileno()).st_nlink == 0
            except OSError:
                gone = True
            if gone:
                raise MuxerError(
                    f"Could not write to resource: '{self.path}' was removed while recording",
                    RESOURCE_WRITE,
                    "RESOURCE_ERROR_WRITE",
                )

    def _open(self, first_video: EncodedUnit | None) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed in _close/_fail
        except OSError as exc:
            raise MuxerError(
                f"Could not open file '{self.path}' for writing: {exc.strerror or exc}",
                RESOURCE_OPEN_WRITE,
                "RESOURCE_ERROR_OPEN",
            ) from exc
        container = av.open(
            self._file,
            mode="w",
            format=self.profile.container,
            options=_container_options(self.profile.container),
        )
        self._container = container
        size = video_size(self.video_codec, first_video.data) if first_video else None
        if first_video is not None and self.video_codec is not None:
            width, height = size or (0, 0)
            stream = container.add_mux_stream(self.video_codec, width=width, height=height)
            stream.time_base = VIDEO_TIME_BASE
            self._streams["video"] = stream
        if self.profile.audio_codec == "opus":
            # An encoder-backed stream only for its OpusHead (CodecPrivate): packets come
            # encoded and are muxed as they are.
            stream = container.add_stream("libopus", rate=AUDIO_RATE)
            stream.codec_context.layout = "stereo"
            self._streams["audio"] = stream
        elif self.profile.audio_codec == "aac":
            stream = container.add_stream("aac", rate=AUDIO_RATE)
            stream.codec_context.layout = "stereo"
            stream.codec_context.bit_rate = 128_000
            self._streams["audio"] = stream
        early, self._early_audio = list(self._early_audio), deque()
        for item, t in early:
            self._write_audio(item, t)

    def _file_time(self, t: float) -> float:
        """Seconds into the file: it starts at its first packet, as KMS's files do."""
        if self._origin is None:
            self._origin = t
        return max(0.0, t - self._origin)

    def _next_pts(self, kind: str, t: float, time_base: Fraction) -> int:
        pts = int(self._file_time(t) / time_base)
        last = self._last_pts.get(kind)
        if last is not None and pts <= last:
            pts = last + 1  # strictly increasing per track
        self._last_pts[kind] = pts
        return pts

    def _mux(self, packet: av.Packet, t: float) -> None:
        try:
            self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            raise _write_error(exc, self.path) from exc
        self.last_t = max(self.last_t, t)

    def _write_video(self, unit: EncodedUnit, t: float) -> None:
        stream = self._streams.get("video")
        if stream is None:
            return
        packet = av.Packet(unit.data)
        packet.stream = stream
        packet.time_base = VIDEO_TIME_BASE
        packet.pts = packet.dts = self._next_pts("video", t, VIDEO_TIME_BASE)
        packet.is_keyframe = unit.keyframe
        self._mux(packet, t)

    def _write_audio(self, item: Any, t: float) -> None:
        stream = self._streams.get("audio")
        if stream is None:
            return
        if isinstance(item, EncodedUnit):
            packet = av.Packet(item.data)
            packet.stream = stream
            packet.time_base = AUDIO_TIME_BASE
            packet.pts = packet.dts = self._next_pts("audio", t, AUDIO_TIME_BASE)
            self._mux(packet, t)
            return
        self._encode_aac(stream, item, t)

    def _encode_aac(self, stream: Any, frame: av.AudioFrame, t: float) -> None:
        ctx = stream.codec_context
        if self._aac_resampler is None:
            self._aac_resampler = av.AudioResampler(
                format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=ctx.frame_size or 1024
            )
        start = int(self._file_time(t) * AUDIO_RATE)
        if self._aac_next is None or start - self._aac_next > AUDIO_RATE // 5:
            self._aac_next = start  # the first frame, or a gap of 200 ms or more in the input
        for out in self._aac_resampler.resample(frame):
            out.pts, out.time_base = self._aac_next, AUDIO_TIME_BASE
            self._aac_next += out.samples
            for packet in stream.encode(out):
                self._mux(packet, t)

    def _close(self) -> None:
        if self._container is None and self._early_audio:
            self._open(None)
        if self._container is None:
            return  # nothing arrived: no file, as KMS leaves none
        stream = self._streams.get("audio")
        if stream is not None and self.profile.audio_codec == "aac":
            for packet in stream.encode(None):
                self._mux(packet, self.last_t)
        try:
            self._container.close()
            assert self._file is not None
            self._file.close()
        except (OSError, av.FFmpegError) as exc:
            raise _write_error(exc, self.path) from exc


def _write_error(exc: BaseException, path: Path) -> MuxerError:
    if isinstance(exc, MuxerError):
        return exc
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return MuxerError(
            f"No space left on the resource writing '{path}'",
            RESOURCE_NO_SPACE_LEFT,
            "RESOURCE_ERROR_NO_SPACE_LEFT",
        )
    return MuxerError(
        f"Could not write to resource '{path}': {exc}", RESOURCE_WRITE, "RESOURCE_ERROR_WRITE"
    )
