"""One recording: what a RecorderEndpoint's sources send, timed and written by a
:class:`~flowengine.media.engine.muxer.LiveMuxer`.

Formats: a recording reads each source hub in the profile's codec (VP8 or H.264 video, Opus
audio). When the source sends that codec the hub hands over its own packets: they are written
as they come, never decoded. Otherwise the hub's shared transcoder decodes once and encodes
once (:mod:`~flowengine.media.engine.transcode`). MP4 audio is AAC, which no source sends: the
recording reads decoded audio (``raw``, the hub's shared decode) and the muxer encodes it.

Time: a packet's recording time comes from its own timestamp (RTP or file clock), anchored to
the recording clock at the first packet of each stream, so the file keeps the sender's pacing
and audio stays continuous; a stream re-anchors when it strays more than :data:`MAX_DRIFT` from
the clock (a new source, a source that stalled or jumped). The recording clock stands still
while paused, so a resumed recording continues the same file without a gap; video resumes at a
key frame, requested from the source. While recording, the source is asked for a key frame
every :data:`KEYFRAME_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from flowengine.media.engine.hub import HubReader, MediaHub, ReaderClosed
from flowengine.media.engine.muxer import ErrorCallback, LiveMuxer, Profile
from flowengine.media.engine.units import RAW, VIDEO_CODECS

log = logging.getLogger("flowengine.media.recorder")

PROFILES: dict[str, Profile] = {
    "MP4": Profile("mp4", "h264", "aac"),
    "MP4_VIDEO_ONLY": Profile("mp4", "h264", None),
    "MP4_AUDIO_ONLY": Profile("mp4", None, "aac"),
    "WEBM": Profile("webm", "vp8", "opus"),
    "WEBM_VIDEO_ONLY": Profile("webm", "vp8", None),
    "WEBM_AUDIO_ONLY": Profile("webm", None, "opus"),
    "MKV": Profile("matroska", "h264", "opus"),
    "MKV_VIDEO_ONLY": Profile("matroska", "h264", None),
    "MKV_AUDIO_ONLY": Profile("matroska", None, "opus"),
}
"""Kurento media profiles this server records (Kurento's codecs: WebM is VP8 + Opus, MP4 is
H.264 + AAC); others are refused at create (40107). Matroska holds VP8 as well as H.264: an MKV
recording takes the source's video codec when it is one of them."""

MAX_DRIFT = 1.0
"""Seconds a stream's timestamps may stray from the recording clock before re-anchoring."""
KEYFRAME_INTERVAL = 2.0
"""Seconds between key frames asked of a video source while recording. KMS asks for none, and a
WebRTC sender then makes one at the start only: such a file cannot be seeked, and a player of
it shows nothing until a key frame (Kurento's recorder tutorial plays the file right after
stopping). Two seconds is the usual GOP of streamed video."""
FINISH_TIMEOUT = 4.0
"""Seconds ``finish`` waits for the file to be closed (KMS's ``stopAndWait`` timeout)."""
_WRAP = 1 << 32  # RTP timestamps are 32-bit


class RecordingClock:
    """Seconds recorded so far: the monotonic clock since the start, pauses left out."""

    def __init__(self) -> None:
        self._origin = time.monotonic()
        self._paused_at: float | None = None

    def now(self) -> float:
        return (self._paused_at or time.monotonic()) - self._origin

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._origin += time.monotonic() - self._paused_at
            self._paused_at = None


class StreamTimeline:
    """Maps one stream's timestamps to recording time (see the module docstring)."""

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._ticks = 0
        self._origin: tuple[float, float] | None = None  # (source seconds, recording seconds)

    def place(self, pts: int | None, time_base: Any, now: float) -> float:
        if pts is None or not time_base:
            return now
        if self._last_raw is None:
            self._ticks = pts
        else:
            delta = pts - self._last_raw
            if 0 <= pts < _WRAP and 0 <= self._last_raw < _WRAP and abs(delta) >= _WRAP // 2:
                delta -= _WRAP if delta > 0 else -_WRAP  # an RTP timestamp wrapped around
            self._ticks += delta
        self._last_raw = pts
        source = float(self._ticks * time_base)
        if self._origin is None or abs(self._at(source) - now) > MAX_DRIFT:
            self._origin = (source, now)
        return self._at(source)

    def _at(self, source: float) -> float:
        assert self._origin is not None
        return self._origin[1] + source - self._origin[0]


def read_format(profile: Profile, kind: str, hub: MediaHub | None) -> str:
    """The format a recording of ``profile`` asks ``hub`` for."""
    if kind == "audio":
        return RAW if profile.audio_codec == "aac" else "opus"
    source = hub.expected_format if hub is not None else None
    if profile.container == "matroska" and source in VIDEO_CODECS:
        return source
    return profile.video_codec or "vp8"


class Recording:
    """Reads the source hubs into one file until ``finish`` (see the module docstring).

    ``on_error(description, code, type)`` is called on the event loop when the file cannot be
    written; the recording then takes no more media.
    """

    def __init__(
        self,
        path: Path,
        profile: Profile,
        hubs: dict[str, MediaHub | None],
        *,
        on_error: ErrorCallback,
        max_pending: int = 600,
    ):
        self.profile = profile
        self.clock = RecordingClock()
        self._hubs = {kind: hubs.get(kind) for kind in profile.kinds}
        self._formats = {kind: read_format(profile, kind, self._hubs[kind]) for kind in self._hubs}
        loop = asyncio.get_running_loop()
        self.muxer = LiveMuxer(
            path,
            profile,
            video_codec=self._formats.get("video"),
            on_error=lambda *args: loop.call_soon_threadsafe(on_error, *args),
            max_pending=max_pending,
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.paused = False
        for kind in self._hubs:
            self._subscribe(kind)

    def follow(self, kind: str, hub: MediaHub | None) -> None:
        """The ``kind`` input now comes from ``hub`` (``None``: disconnected)."""
        if kind in self._hubs:
            self._hubs[kind] = hub
            self._subscribe(kind)

    def pause(self) -> None:
        """Stop taking media; the clock stands still."""
        self.paused = True
        self.clock.pause()
        self._cancel_readers()

    def resume(self) -> None:
        """Take media again (video from a fresh key frame), into the same file."""
        if self.paused:
            self.paused = False
            self.clock.resume()
            for kind in self._hubs:
                self._subscribe(kind)

    def behind(self) -> float:
        """Seconds between the recording clock and the newest packet written."""
        return max(0.0, self.clock.now() - self.muxer.last_t) if self.muxer.opened else 0.0

    async def finish(self) -> None:
        """Write what is queued, complete the file and end the muxer thread. Raises the
        muxer's :class:`~flowengine.media.engine.muxer.MuxerError` if the file failed."""
        self._cancel_readers()
        self._hubs = dict.fromkeys(self._hubs)
        done = asyncio.wrap_future(self.muxer.finish())
        try:
            await asyncio.wait_for(asyncio.shield(done), FINISH_TIMEOUT)
        except TimeoutError:
            log.error("recording %s did not finish within %s s", self.muxer.path, FINISH_TIMEOUT)
            done.add_done_callback(lambda f: f.cancelled() or f.exception())

    # --- readers ----------------------------------------------------------------------------------

    def _cancel_readers(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def _subscribe(self, kind: str) -> None:
        old = self._tasks.pop(kind, None)
        if old is not None:
            old.cancel()
        hub = self._hubs.get(kind)
        if hub is not None and not self.paused and self.muxer.error is None:
            reader = hub.subscribe(self._formats[kind])
            self._tasks[kind] = asyncio.ensure_future(self._read(kind, reader))

    async def _read(self, kind: str, reader: HubReader) -> None:
        timeline = StreamTimeline()
        last_keyframe = 0.0
        try:
            while True:
                unit = await reader.get()
                now = self.clock.now()
                t = timeline.place(unit.pts, unit.time_base, now)
                if kind == "video":
                    if getattr(unit, "keyframe", False):
                        last_keyframe = now
                    elif now - last_keyframe > KEYFRAME_INTERVAL:
                        reader.hub.request_keyframe(reader.fmt)  # rate-limited by the hub
                if not self.muxer.put(kind, unit, t):
                    if self.muxer.error is not None:
                        return
                    if kind == "video":
                        # A dropped packet breaks the frames after it: restart at a key frame.
                        reader.need_keyframe = True
                        reader.hub.request_keyframe(reader.fmt)
        except ReaderClosed:
            return
        finally:
            with contextlib.suppress(Exception):
                reader.close()
