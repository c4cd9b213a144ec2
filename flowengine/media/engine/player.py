"""Reading media with PyAV in a thread, paced in real time, into an element's hubs.

``av.open`` blocks (about 1 s for RTSP, and it would deadlock on an HLS playlist served by the
same event loop: aiortc-notes pitfall 7), so everything from opening to demuxing runs in a
:class:`PlayerThread`. Units reach the event loop through ``call_soon_threadsafe``; at most
``max_in_flight`` may be waiting there (the loop is busy: later units are dropped, video then
resumes at a key frame).

Encoded H.264 and VP8 are passed through (no decode). H.264 from MP4/MKV is AVCC and is turned
into Annex B with the ``h264_mp4toannexb`` filter (pitfall 5); for streams whose parameter sets
are only out of band (some RTSP cameras) the SPS/PPS are put in front of every key frame. Other
codecs are decoded here and handed on as frames. Opus audio is passed through; other audio is
decoded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av

from flowengine.media.engine.hub import MediaHub
from flowengine.media.engine.units import EncodedUnit

log = logging.getLogger("flowengine.media.player")

PASS_THROUGH_VIDEO = {"h264": "h264", "vp8": "vp8"}
PASS_THROUGH_AUDIO = {"opus": "opus"}
OPEN_TIMEOUT = 10.0
READ_TIMEOUT = 10.0


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
    ``"eos"`` or ``"error"`` (``{"description", "type"}``).
    """

    def __init__(
        self,
        source: str,
        *,
        loop: asyncio.AbstractEventLoop,
        hubs: dict[str, MediaHub],
        on_event: Callable[[str, dict[str, Any]], None],
        network_cache_ms: int = 2000,
        max_in_flight: int = 120,
    ):
        self.source = source
        self.loop = loop
        self.hubs = hubs
        self.on_event = on_event
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
                if kind == "video":
                    self._skip_video = True
                return
            self._in_flight += 1
        self._post(self._deliver, hub, unit)

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
            self._post(
                self.on_event,
                "error",
                {"description": f"Cannot open '{self.source}': {exc}", "type": "PLAYER_ERROR"},
            )
            return
        try:
            self._play(container)
        except Exception as exc:
            log.exception("player failed on %s", self.source)
            self._post(self.on_event, "error", {"description": str(exc), "type": "PLAYER_ERROR"})
        finally:
            container.close()

    def _play(self, container: Any) -> None:
        video = next((s for s in container.streams if s.type == "video"), None)
        audio = next((s for s in container.streams if s.type == "audio"), None)
        duration_ms = int(container.duration / 1000) if container.duration else 0
        seekable = duration_ms > 0 and not self.source.startswith(("rtsp", "http"))
        self.info = {
            "isSeekable": seekable,
            "seekableInit": 0,
            "seekableEnd": duration_ms if seekable else 0,
            "duration": duration_ms,
        }
        self._post(self.on_event, "opened", dict(self.info))
        streams = [s for s in (video, audio) if s is not None]
        if not streams:
            self._post(
                self.on_event, "error", {"description": "No media streams", "type": "PLAYER_ERROR"}
            )
            return
        video_mode, bsf, extradata = self._video_mode(video)
        audio_mode = PASS_THROUGH_AUDIO.get(audio.codec_context.name) if audio else None
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
        self._post(self.on_event, "eos", {})

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
        if video is None:
            return None, None, None
        codec = PASS_THROUGH_VIDEO.get(video.codec_context.name)
        if codec != "h264":
            return codec, None, None
        extradata = video.codec_context.extradata or b""
        if extradata[:1] == b"\x01":  # AVCC: MP4, MKV, FLV
            from av.bitstream import BitStreamFilterContext

            return codec, BitStreamFilterContext("h264_mp4toannexb", in_stream=video), None
        return codec, None, extradata or None

    def _video(self, packet: Any, mode: str | None, bsf: Any, extradata: bytes | None) -> None:
        if mode is None:
            for frame in packet.decode():
                self._push("video", frame)
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
            for frame in packet.decode():
                self._push("audio", frame)
            return
        self._push(
            "audio", EncodedUnit(mode, bytes(packet), packet.pts or 0, packet.time_base, True)
        )
