"""Media made by the tests themselves with PyAV (nothing is downloaded).

``SyntheticVideo`` is an aiortc track of moving yuv420p frames; ``write_video_file`` and
``write_hls`` encode files and streams (H.264 Baseline without B-frames, or VP8) that a player
can pass through, as hard as real-world media: a key frame every ``gop`` frames, exactly (no
scene-cut key frames), or a single one (``gop=None``, as the recordings of a RecorderEndpoint);
with ``audio``, a 440 Hz tone in AAC (MP4, MPEG-TS, HLS: what a browser cannot take over
WebRTC) or Opus (WebM). The browser and demo tests use these too, with their own sizes.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from flowengine.media.engine.units import is_video_keyframe

WIDTH, HEIGHT = 320, 240


def make_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> av.VideoFrame:
    """A yuv420p frame whose brightness and a vertical bar move with ``index``."""
    background = bytes([(index * 7) % 200 + 30])
    bar = (index * 4) % width
    size = min(8, width - bar)
    row = background * bar + b"\xff" * size + background * (width - bar - size)
    frame = av.VideoFrame(width, height, "yuv420p")
    frame.planes[0].update(row * height)
    frame.planes[1].update(bytes([90]) * (width * height // 4))
    frame.planes[2].update(bytes([160]) * (width * height // 4))
    return frame


class SyntheticVideo(VideoStreamTrack):
    """30 fps of :func:`make_frame` frames, paced by aiortc's ``next_timestamp``."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = make_frame(self.count)
        self.count += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


FrameMaker = Callable[[int, int, int], av.VideoFrame]  # (index, width, height) -> frame
SINGLE_KEYFRAME = None
"""``gop=SINGLE_KEYFRAME``: the first frame is the only key frame."""
AUDIO_RATE = 48_000
TONE_HZ = 440


def video_stream(container: av.container.OutputContainer, codec: str = "h264", *, fps: int = 30,
                 size: tuple[int, int] = (WIDTH, HEIGHT), gop: int | None = 15) -> av.VideoStream:
    """A stream players can pass through: H.264 Baseline without B-frames (``h264``), or VP8
    (``vp8``); a key frame every ``gop`` frames and at no other place (``None``: only the
    first)."""
    stream = container.add_stream("libx264" if codec == "h264" else "libvpx", rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    interval = gop or 1 << 30
    stream.codec_context.gop_size = interval
    if codec == "h264":
        stream.codec_context.profile = "Baseline"
        keyint = f"keyint={gop}:min-keyint={gop}" if gop else "keyint=infinite"
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0",
                                        "x264-params": f"{keyint}:scenecut=0"}
    else:
        stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8",
                                        "kf_min_dist": str(interval)}
        stream.codec_context.bit_rate = 1_000_000
        stream.codec_context.thread_count = 1  # libvpx's threads cost far more CPU
    return stream


def audio_stream(container: av.container.OutputContainer) -> av.AudioStream:
    """Stereo 48 kHz audio in the container's natural codec: Opus in WebM, AAC elsewhere."""
    webm = container.format.name in ("webm", "matroska")
    stream = container.add_stream("libopus" if webm else "aac", rate=AUDIO_RATE)
    stream.layout = "stereo"
    return stream


def tone(start: int, samples: int) -> av.AudioFrame:
    """``samples`` of a 440 Hz tone (s16 stereo), from sample ``start`` on."""
    pcm = array.array("h")
    for n in range(start, start + samples):
        value = int(8000 * math.sin(2 * math.pi * TONE_HZ * n / AUDIO_RATE))
        pcm.extend((value, value))
    frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
    frame.planes[0].update(pcm.tobytes())
    frame.sample_rate, frame.pts = AUDIO_RATE, start
    frame.time_base = fractions.Fraction(1, AUDIO_RATE)
    return frame


def encode_frames(container: av.container.OutputContainer, stream: av.VideoStream, count: int,
                  frame: FrameMaker = make_frame,
                  audio: av.AudioStream | None = None) -> None:
    """Encode frames ``0..count-1`` of ``frame`` (at the stream's size and rate), and with
    ``audio`` a tone as long, interleaved; then flush."""
    rate = fractions.Fraction(stream.codec_context.framerate)
    samples = 0
    for i in range(count):
        picture = frame(i, stream.width, stream.height)
        picture.pts, picture.time_base = i, 1 / rate
        for packet in stream.encode(picture):
            container.mux(packet)
        while audio is not None and samples < (i + 1) / rate * AUDIO_RATE:
            for packet in audio.encode(tone(samples, 960)):
                container.mux(packet)
            samples += 960
    for encoder in (stream, audio) if audio is not None else (stream,):
        for packet in encoder.encode(None):
            container.mux(packet)


def write_video_file(path: Path, codec: str = "h264", seconds: float = 3.0, fps: int = 30, *,
                     size: tuple[int, int] = (WIDTH, HEIGHT), gop: int | None = 15,
                     frame: FrameMaker = make_frame, audio: bool = False) -> Path:
    """Encode a test file: ``h264`` -> MP4 (or MPEG-TS for a ``.ts`` name), ``vp8`` -> WebM;
    ``audio``: with a tone (AAC, or Opus in WebM)."""
    with av.open(str(path), "w") as container:
        stream = video_stream(container, codec, fps=fps, size=size, gop=gop)
        sound = audio_stream(container) if audio else None
        encode_frames(container, stream, int(seconds * fps), frame, sound)
    return path


def write_hls(directory: Path, seconds: float = 10.0, segment_seconds: int = 1, *,
              fps: int = 30, size: tuple[int, int] = (WIDTH, HEIGHT), gop: int | None = 15,
              frame: FrameMaker = make_frame, audio: bool = False) -> Path:
    """A VOD HLS playlist ``index.m3u8`` with MPEG-TS segments of H.264 (and AAC with
    ``audio``), written by FFmpeg's ``hls`` muxer through PyAV. Segments start at key frames,
    so a long ``gop`` makes long segments. Returns the playlist's path."""
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / "index.m3u8"
    options = {
        "hls_time": str(segment_seconds),
        "hls_list_size": "0",
        "hls_playlist_type": "vod",
        "hls_segment_filename": str(directory / "segment%03d.ts"),
    }
    with av.open(str(playlist), "w", format="hls", options=options) as container:
        stream = video_stream(container, "h264", fps=fps, size=size, gop=gop)
        sound = audio_stream(container) if audio else None
        encode_frames(container, stream, int(seconds * fps), frame, sound)
    return playlist


def keyframe_times(path: Path) -> list[float]:
    """When the video key frames of a media file (or playlist) come, in seconds."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return [float(p.pts * p.time_base) for p in container.demux(video)
                if p.is_keyframe and p.pts is not None]


def local_candidates(pc: RTCPeerConnection) -> list[dict]:
    """The peer's gathered candidates as Kurento ``IceCandidate`` dicts (as a browser sends)."""
    out = []
    seen = set()
    for index, transceiver in enumerate(pc.getTransceivers()):
        gatherer = transceiver.sender.transport.transport.iceGatherer
        if id(gatherer) in seen:
            continue
        seen.add(id(gatherer))
        for candidate in gatherer.getLocalCandidates():
            out.append(
                {
                    "__module__": "kurento",
                    "__type__": "IceCandidate",
                    "candidate": "candidate:" + candidate_to_sdp(candidate),
                    "sdpMid": transceiver.mid,
                    "sdpMLineIndex": index,
                }
            )
    return out


async def add_kurento_candidate(pc: RTCPeerConnection, value: dict) -> None:
    """Add an ``IceCandidateFound`` candidate to a test peer."""
    candidate = candidate_from_sdp(value["candidate"].removeprefix("candidate:"))
    candidate.sdpMid = value["sdpMid"]
    candidate.sdpMLineIndex = value["sdpMLineIndex"]
    await pc.addIceCandidate(candidate)


def strip_candidates(sdp: str) -> str:
    return "\r\n".join(
        line
        for line in sdp.split("\r\n")
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    )


class FrameCounter:
    """Consumes a received track; keeps the count and the size of the frames."""

    def __init__(self, track, on_first: Callable[[], None] | None = None) -> None:
        self.track = track  # an aiortc RemoteStreamTrack (None: nothing to count yet)
        self.count = 0
        self.sizes: set[tuple[int, int]] = set()
        self.lumas: set[int] = set()
        self.on_first = on_first
        self.task = asyncio.ensure_future(self._run()) if track is not None else None

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except Exception:
                return
            self.count += 1
            if self.count == 1 and self.on_first is not None:
                self.on_first()
            if isinstance(frame, av.VideoFrame):
                self.sizes.add((frame.width, frame.height))
                self.lumas.add(bytes(frame.planes[0])[0])

    async def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.count < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {self.count} frames received, wanted {count}")
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


async def trickle_from_server(client, endpoint: str, pc: RTCPeerConnection) -> list[dict]:
    """Candidates of ``endpoint`` as events, added to ``pc`` one by one, until gathering ends
    (the caller subscribed to IceCandidateFound and IceGatheringDone)."""
    found = []
    while True:
        event = await client.event()
        if event["object"] != endpoint:
            continue
        if event["type"] == "IceGatheringDone":
            return found
        if event["type"] == "IceCandidateFound":
            found.append(event["data"]["candidate"])
            await add_kurento_candidate(pc, event["data"]["candidate"])


async def view(
    client, endpoint: str, mime_type: str | None = None
) -> tuple[RTCPeerConnection, FrameCounter]:
    """A receive-only test peer negotiated with ``endpoint`` (trickle ICE both ways); with
    ``mime_type`` (``"video/H264"``), it takes that codec only."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    if mime_type is not None:
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType == mime_type])
    tracks: asyncio.Queue = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    await negotiate(pc, client, endpoint)
    return pc, FrameCounter(await asyncio.wait_for(tracks.get(), 10))


async def publish(client, endpoint: str, pc: RTCPeerConnection | None = None
                  ) -> RTCPeerConnection:
    """A test peer sending :class:`SyntheticVideo` to ``endpoint`` (or ``pc``, a peer whose
    tracks are added already)."""
    if pc is None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(SyntheticVideo())
    await pc.setLocalDescription(await pc.createOffer())
    for event in ("IceCandidateFound", "IceGatheringDone"):
        await client.result("subscribe", {"object": endpoint, "type": event})
    for candidate in local_candidates(pc):
        await client.invoke(endpoint, "addIceCandidate", candidate=candidate)
    answer = await client.invoke(
        endpoint, "processOffer", offer=strip_candidates(pc.localDescription.sdp)
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await client.invoke(endpoint, "gatherCandidates")
    await trickle_from_server(client, endpoint, pc)
    return pc


async def negotiate(pc: RTCPeerConnection, client, endpoint: str,
                    encoded: EncodedFrames | None = None) -> dict[str, str]:
    """Offer, answer and trickle ICE between ``pc`` and ``endpoint`` (with ``encoded`` as the
    video receiver's decoder queue, if given); returns the codec negotiated for each kind."""
    await pc.setLocalDescription(await pc.createOffer())
    for event in ("IceCandidateFound", "IceGatheringDone"):
        await client.result("subscribe", {"object": endpoint, "type": event})
    answer = await client.invoke(
        endpoint, "processOffer", offer=strip_candidates(pc.localDescription.sdp)
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    codecs: dict[str, str] = {}
    for transceiver in pc.getTransceivers():
        negotiated = getattr(transceiver, "_codecs", None) or []
        if negotiated:
            codecs[transceiver.kind] = negotiated[0].name.lower()
        if transceiver.kind == "video" and encoded is not None:
            # Before the receiver starts: its decoder thread takes the queue then.
            transceiver.receiver._RTCRtpReceiver__decoder_queue = encoded
    for candidate in local_candidates(pc):
        await client.invoke(endpoint, "addIceCandidate", candidate=candidate)
    await client.invoke(endpoint, "gatherCandidates")
    await trickle_from_server(client, endpoint, pc)
    return codecs


class EncodedFrames(queue.Queue):
    """Stands in for an aiortc receiver's decoder queue: notes when each encoded video frame
    arrived and whether it is a key frame, then lets it go on to the decoder
    (:func:`negotiate` puts it in place)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, bool]] = []

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is not None:
            codec, frame = item
            self.arrivals.append((time.monotonic(), is_video_keyframe(codec.name.lower(),
                                                                      bytes(frame.data))))
        super().put(item, block, timeout)


class Viewer:
    """A receive-only test peer of a WebRtcEndpoint (video, and audio with ``audio``), as a
    browser: decodes what it gets and keeps the facts a test checks. Times are
    ``time.monotonic()``."""

    def __init__(self, audio: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        if audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.connected_at: float | None = None
        self.video = FrameCounter(None)
        self.first_video_at: float | None = None
        self.audio_frames = 0
        self.audio_peak = 0
        """The loudest sample of the audio decoded so far (0: silence or nothing)."""
        self.codecs: dict[str, str] = {}
        self._encoded = EncodedFrames()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)
        self.pc.on("iceconnectionstatechange", self._on_ice)

    def _on_ice(self) -> None:
        if self.pc.iceConnectionState in ("connected", "completed") and not self.connected_at:
            self.connected_at = time.monotonic()

    def _on_track(self, track: Any) -> None:
        if track.kind == "video":
            self.video = FrameCounter(track, on_first=self._first_video)
        else:
            self._tasks.append(asyncio.ensure_future(self._listen(track)))

    def _first_video(self) -> None:
        self.first_video_at = time.monotonic()

    async def _listen(self, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            self.audio_frames += 1
            samples = array.array("h", bytes(frame.planes[0]))
            self.audio_peak = max(self.audio_peak, max(map(abs, samples), default=0))

    @property
    def keyframe_arrivals(self) -> list[float]:
        return [t for t, key in self._encoded.arrivals if key]

    @property
    def video_arrivals(self) -> list[float]:
        return [t for t, _ in self._encoded.arrivals]

    async def negotiate(self, client, endpoint: str) -> None:
        """Offer, answer and trickle ICE with ``endpoint`` (as :func:`view`)."""
        self.codecs = await negotiate(self.pc, client, endpoint, self._encoded)

    async def send_pli(self) -> None:
        """An RTCP PLI for the received video, as a browser sends when it lost a picture."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":
                receiver = transceiver.receiver
                for source in receiver.getSynchronizationSources():
                    await receiver._send_rtcp_pli(source.source)

    async def wait(self, what: Callable[[], bool], timeout: float, why: str) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError(f"{why} within {timeout} s (video frames "
                                     f"{self.video.count}, audio frames {self.audio_frames})")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.video.stop()
        for task in self._tasks:
            task.cancel()
        await self.pc.close()
