"""Reading media with PyAV in a thread, paced in real time, into an element's hubs.

``av.open`` blocks (about 1 s for RTSP, and it would deadlock on an HLS playlist served by the
same event loop: docs/reference/aiortc-notes.md pitfall 7), so everything from opening to demuxing
runs in a :class:`PlayerThread`. Units reach the event loop through ``call_soon_threadsafe``; at
most ``max_in_flight`` may be waiting there (the loop is busy: later units are dropped, encoded
video then resumes at a key frame).

Two modes, as Kurento's ``useEncodedMedia``:

* ``decode=True`` (Kurento's default): audio and video are decoded here and handed on as
  frames; the hub encodes them once per format its readers want, with a key frame whenever a
  reader needs one.
* ``decode=False``: H.264 and VP8 video and Opus audio are passed through (no decode). H.264
  from MP4/MKV is AVCC and is turned into Annex B with the ``h264_mp4toannexb`` filter
  (pitfall 5); for streams whose parameter sets are only out of band (some RTSP cameras) the
  SPS/PPS are put in front of every key frame. Other codecs (AAC audio among them: no browser
  takes it over WebRTC) are decoded. The element turns on its video hub's key-frame bridge.

Failures are reported as Kurento reports them (:func:`open_error`, :func:`vanished_error`):
its PlayerEndpoint turns an error of its source element (the URI cannot be opened or read) into
``INVALID_URI``, and other GStreamer errors into their domain's type and code (a file that is
not media: code 4, a container without playable streams: code 9, an HLS stream that stops:
``STREAM_ERROR_FAILED``). A network source whose input ends is checked: if it is gone, that is
an error (Kurento's RTSP and HLS sources fail), not the end of the stream.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import av

from flowengine.media.engine.hub import MediaHub
from flowengine.media.engine.units import EncodedUnit

log = logging.getLogger("flowengine.media.player")

PASS_THROUGH_VIDEO = {"h264": "h264", "vp8": "vp8"}
PASS_THROUGH_AUDIO = {"opus": "opus"}
OPEN_TIMEOUT = 10.0
READ_TIMEOUT = 10.0
GONE_CHECK_TIMEOUT = 2.0
"""Seconds to reach a network source whose input ended, to tell its end from its vanishing."""


@dataclass(frozen=True)
class PlayerError:
    """The fields of Kurento's ``Error`` event for a player failure."""

    description: str
    code: int
    type: str
    reason: str = ""
    """Why, in FFmpeg's words without the URI (an embedded-server extension of the event, for
    people: Kurento's description of ``INVALID_URI`` says only "Invalid URI")."""


INVALID_URI = PlayerError("Invalid URI", 0, "INVALID_URI")
# GStreamer's GST_STREAM_ERROR codes that Kurento passes on as the event's errorCode.
STREAM_FAILED, TYPE_NOT_FOUND, DEMUX = 1, 4, 9


def _stream_error(code: int, message: str, detail: object) -> PlayerError:
    # Kurento names only some codes (MediaElementImpl::processBusMessage); the rest are
    # UNEXPECTED_ELEMENT_ERROR.
    kind = "STREAM_ERROR_FAILED" if code == STREAM_FAILED else "UNEXPECTED_ELEMENT_ERROR"
    detail = getattr(detail, "strerror", None) or detail  # FFmpeg's words, not the path
    return PlayerError(f"Error code {code}: {message} ({detail})", code, kind)


_CONTAINER_MAGIC = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (0, b"\x1a\x45\xdf\xa3"),
    (0, b"RIFF"), (0, b"OggS"), (0, b"FLV"), (0, b"#EXTM3U"),
)  # fmt: skip


def _known_container(path: str) -> bool:
    """Whether a local file starts like a media container (ISO BMFF, Matroska/WebM, RIFF, Ogg,
    FLV, HLS playlist, MPEG-TS)."""
    try:
        with open(path, "rb") as f:
            head = f.read(189)
    except OSError:
        return False
    if len(head) == 189 and head[0] == head[188] == 0x47:
        return True
    return any(head[at : at + len(magic)] == magic for at, magic in _CONTAINER_MAGIC)


def open_error(source: str, exc: Exception) -> PlayerError:
    """The Kurento error for a source PyAV could not open (see the module docstring)."""
    if not isinstance(exc, av.InvalidDataError):
        # Not found, not allowed, refused, timed out: the source element.
        reason = getattr(exc, "strerror", None) or ""
        return replace(INVALID_URI, reason=str(reason))
    if source.startswith("/") and _known_container(source):
        # A container whose demuxer finds nothing to play (an MP4 cut before its index).
        return _stream_error(DEMUX, "This file contains no playable streams.", exc)
    return _stream_error(TYPE_NOT_FOUND, "Could not determine type of stream.", exc)


def vanished_error(source: str) -> PlayerError:
    """The Kurento error for a network source that went away while playing."""
    if source.startswith(("http://", "https://")):
        return _stream_error(STREAM_FAILED, "Internal data stream error.", "source gone")
    return INVALID_URI  # rtspsrc is Kurento's source element


def _has_sps(data: bytes) -> bool:
    i = 0
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= len(data):
            return False
        if data[i + 3] & 0x1F == 7:
            return True
        i += 3


def probe_codecs(source: str) -> dict[str, str]:
    """The pass-through format of each kind in ``source`` (blocking; ``{}`` when unreadable).

    Only codecs the player forwards encoded are reported: for others the player decodes and
    any codec suits the sinks.
    """
    try:
        with av.open(source, timeout=(OPEN_TIMEOUT, READ_TIMEOUT)) as container:
            found = {}
            for stream in container.streams:
                name = stream.codec_context.name
                if stream.type == "video" and name in PASS_THROUGH_VIDEO:
                    found.setdefault("video", PASS_THROUGH_VIDEO[name])
                elif stream.type == "audio" and name in PASS_THROUGH_AUDIO:
                    found.setdefault("audio", PASS_THROUGH_AUDIO[name])
            return found
    except Exception:
        return {}


class PlayerThread:
    """Plays one source once (until its end, an error or ``stop``).

    ``on_event(name, data)`` is called on the event loop with ``"opened"`` (video info),
    ``"eos"`` or ``"error"`` (a :class:`PlayerError` as a dict).
    """

    def __init__(
        self,
        source: str,
        *,
        loop: asyncio.AbstractEventLoop,
        hubs: dict[str, MediaHub],
        on_event: Callable[[str, dict[str, Any]], None],
        decode: bool = True,
        network_cache_ms: int = 2000,
        max_in_flight: int = 120,
    ):
        self.source = source
        self.loop = loop
        self.hubs = hubs
        self.on_event = on_event
        self.decode = decode
        self.network_cache_ms = network_cache_ms
        self.max_in_flight = max_in_flight
        self.position_ms = 0
        self.info = {"isSeekable": False, "seekableInit": 0, "seekableEnd": 0, "duration": 0}
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._seek_ms: int | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._skip_video = False
        self._thread = threading.Thread(target=self._run, name="media-player", daemon=True)

    # --- control (event loop side) ----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def seek(self, position_ms: int) -> None:
        self._seek_ms = position_ms

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- thread -----------------------------------------------------------------------------------

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the server is shutting down
            self._stop.set()

    def _deliver(self, hub: MediaHub, unit: Any) -> None:
        with self._lock:
            self._in_flight -= 1
        hub.push(unit)

    def _push(self, kind: str, unit: Any) -> None:
        hub = self.hubs[kind]
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                if kind == "video" and isinstance(unit, EncodedUnit):
                    self._skip_video = True
                return
            self._in_flight += 1
        self._post(self._deliver, hub, unit)

    def _fail(self, error: PlayerError) -> None:
        self._post(self.on_event, "error", asdict(error))

    def _options(self) -> dict[str, str]:
        if self.source.startswith(("rtsp://", "rtsps://")):
            return {
                "rtsp_transport": "tcp",
                "max_delay": str(max(0, self.network_cache_ms) * 1000),
            }
        return {}

    def _run(self) -> None:
        try:
            container = av.open(
                self.source, options=self._options(), timeout=(OPEN_TIMEOUT, READ_TIMEOUT)
            )
        except Exception as exc:
            log.info("player cannot open %s: %s", self.source, exc)
            self._fail(open_error(self.source, exc))
            return
        try:
            self._play(container)
        except av.InvalidDataError as exc:
            self._fail(_stream_error(DEMUX, "Internal data stream error.", exc))
        except Exception as exc:
            log.info("player failed on %s: %s", self.source, exc, exc_info=True)
            self._fail(vanished_error(self.source) if self._network else INVALID_URI)
        finally:
            container.close()

    @property
    def _network(self) -> bool:
        return not self.source.startswith("/")

    def _play(self, container: Any) -> None:
        video = next((s for s in container.streams if s.type == "video"), None)
        audio = next((s for s in container.streams if s.type == "audio"), None)
        duration_ms = int(container.duration / 1000) if container.duration else 0
        seekable = duration_ms > 0 and not self._network
        self.info = {
            "isSeekable": seekable,
            "seekableInit": 0,
            "seekableEnd": duration_ms if seekable else 0,
            "duration": duration_ms,
        }
        self._post(self.on_event, "opened", dict(self.info))
        streams = [s for s in (video, audio) if s is not None]
        if not streams:
            self._fail(_stream_error(DEMUX, "This file contains no playable streams.", "none"))
            return
        video_mode, bsf, extradata = self._video_mode(video)
        audio_mode = self._audio_mode(audio)
        first_t: float | None = None
        last_t = 0.0
        base_wall: float | None = None
        base_t = 0.0
        for packet in container.demux(streams):
            if self._stop.is_set():
                return
            base_wall = self._wait_while_paused(base_wall)
            if self._stop.is_set():
                return
            if self._seek_ms is not None:
                target, self._seek_ms = self._seek_ms, None
                container.seek(target * 1000)
                base_wall = None
                continue
            if packet.size == 0:
                continue  # a flush packet
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None or packet.time_base is None:
                continue
            t = float(stamp * packet.time_base)
            first_t = t if first_t is None else first_t
            last_t = max(last_t, t)
            # Real-time pacing: files and VOD playlists would otherwise be read at disk speed.
            now = time.monotonic()
            if base_wall is None or t < base_t - 1.0 or (t - base_t) - (now - base_wall) > 5:
                base_wall, base_t = now, t
            delay = base_wall + (t - base_t) - now
            if delay > 0 and self._stop.wait(delay):
                return
            base_wall = self._wait_while_paused(base_wall)  # paused during the wait
            if self._stop.is_set():
                return
            if delay < -1.0:  # far behind (a stalled network source): do not burst
                base_wall, base_t = time.monotonic(), t
            self.position_ms = int(t * 1000)
            if packet.stream is video:
                self._video(packet, video_mode, bsf, extradata)
            else:
                self._audio(packet, audio_mode)
        if self._network and self._gone(container, (first_t or 0.0), last_t):
            self._fail(vanished_error(self.source))
            return
        self._post(self.on_event, "eos", {})

    def _gone(self, container: Any, first_t: float, last_t: float) -> bool:
        """Whether a network source whose input ended went away (FFmpeg ends an RTSP session
        whose server died, and skips HLS segments it cannot fetch, as if the stream ended)."""
        parts = urlsplit(self.source)
        try:
            if parts.scheme in ("rtsp", "rtsps"):
                port = parts.port or (322 if parts.scheme == "rtsps" else 554)
                socket.create_connection((parts.hostname, port), GONE_CHECK_TIMEOUT).close()
                return False
            with urllib.request.urlopen(self.source, timeout=GONE_CHECK_TIMEOUT) as response:
                response.read(1 << 16)
        except (OSError, ValueError):
            return True
        # Still there: a VOD playlist must have played to its end, else segments went missing.
        duration = container.duration / 1e6 if container.duration else None
        return duration is not None and last_t - first_t < duration - 2.0

    def _wait_while_paused(self, base_wall: float | None) -> float | None:
        """Block while paused; the pacing origin moves by the paused time."""
        if self._running.is_set():
            return base_wall
        paused_at = time.monotonic()
        self._running.wait()
        if base_wall is None:
            return None
        return base_wall + time.monotonic() - paused_at

    def _video_mode(self, video: Any) -> tuple[str | None, Any, bytes | None]:
        """Pass-through codec (``None``: decode), AVCC filter, out-of-band parameter sets."""
        if video is None or self.decode:
            return None, None, None
        codec = PASS_THROUGH_VIDEO.get(video.codec_context.name)
        if codec != "h264":
            return codec, None, None
        extradata = video.codec_context.extradata or b""
        if extradata[:1] == b"\x01":  # AVCC: MP4, MKV, FLV
            from av.bitstream import BitStreamFilterContext

            return codec, BitStreamFilterContext("h264_mp4toannexb", in_stream=video), None
        return codec, None, extradata or None

    def _audio_mode(self, audio: Any) -> str | None:
        if audio is None or self.decode:
            return None
        return PASS_THROUGH_AUDIO.get(audio.codec_context.name)

    def _decode(self, kind: str, packet: Any) -> None:
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:  # a damaged packet: the decoder goes on with the next
            log.debug("cannot decode a %s packet of %s: %s", kind, self.source, exc)
            return
        for frame in frames:
            self._push(kind, frame)

    def _video(self, packet: Any, mode: str | None, bsf: Any, extradata: bytes | None) -> None:
        if mode is None:
            self._decode("video", packet)
            return
        packets = bsf.filter(packet) if bsf is not None else [packet]
        for p in packets:
            data = bytes(p)
            keyframe = bool(p.is_keyframe)
            if self._skip_video:
                if not keyframe:
                    continue
                self._skip_video = False
            if keyframe and extradata and not _has_sps(data):
                data = extradata + data
            stamp = p.dts if p.dts is not None else p.pts
            time_base = p.time_base or packet.time_base or Fraction(1, 90000)
            self._push("video", EncodedUnit(mode, data, stamp or 0, time_base, keyframe))

    def _audio(self, packet: Any, mode: str | None) -> None:
        if mode is None:
            self._decode("audio", packet)
            return
        self._push(
            "audio", EncodedUnit(mode, bytes(packet), packet.pts or 0, packet.time_base, True)
        )
