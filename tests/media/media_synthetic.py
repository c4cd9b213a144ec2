"""Media made by the tests themselves with PyAV (nothing is downloaded).

``SyntheticVideo`` is an aiortc track of moving yuv420p frames; ``write_video_file`` and
``write_hls`` encode short files and streams (H.264 Baseline without B-frames, or VP8) that a
player can pass through. The browser and demo tests use these too, with their own sizes.
"""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import Callable
from pathlib import Path

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

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


def video_stream(container: av.container.OutputContainer, codec: str = "h264", *, fps: int = 30,
                 size: tuple[int, int] = (WIDTH, HEIGHT), gop: int = 15) -> av.VideoStream:
    """A stream players can pass through: H.264 Baseline without B-frames (``h264``), or VP8
    (``vp8``); a key frame every ``gop`` frames."""
    stream = container.add_stream("libx264" if codec == "h264" else "libvpx", rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.codec_context.gop_size = gop
    if codec == "h264":
        stream.codec_context.profile = "Baseline"
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
    else:
        stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
        stream.codec_context.bit_rate = 1_000_000
    return stream


def encode_frames(container: av.container.OutputContainer, stream: av.VideoStream, count: int,
                  frame: FrameMaker = make_frame) -> None:
    """Encode frames ``0..count-1`` of ``frame`` (at the stream's size and rate) and flush."""
    rate = fractions.Fraction(stream.codec_context.framerate)
    for i in range(count):
        picture = frame(i, stream.width, stream.height)
        picture.pts, picture.time_base = i, 1 / rate
        for packet in stream.encode(picture):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_video_file(path: Path, codec: str = "h264", seconds: float = 3.0, fps: int = 30, *,
                     size: tuple[int, int] = (WIDTH, HEIGHT), gop: int = 15,
                     frame: FrameMaker = make_frame) -> Path:
    """Encode a test file: ``h264`` -> MP4 (or MPEG-TS for a ``.ts`` name), ``vp8`` -> WebM."""
    with av.open(str(path), "w") as container:
        stream = video_stream(container, codec, fps=fps, size=size, gop=gop)
        encode_frames(container, stream, int(seconds * fps), frame)
    return path


def write_hls(directory: Path, seconds: float = 10.0, segment_seconds: int = 1, *,
              fps: int = 30, size: tuple[int, int] = (WIDTH, HEIGHT), gop: int = 15,
              frame: FrameMaker = make_frame) -> Path:
    """A VOD HLS playlist ``index.m3u8`` with MPEG-TS segments of H.264, written by FFmpeg's
    ``hls`` muxer through PyAV. Returns the playlist's path."""
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
        encode_frames(container, stream, int(seconds * fps), frame)
    return playlist


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

    def __init__(self, track) -> None:  # an aiortc RemoteStreamTrack
        self.track = track
        self.count = 0
        self.sizes: set[tuple[int, int]] = set()
        self.lumas: set[int] = set()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except Exception:
                return
            self.count += 1
            if isinstance(frame, av.VideoFrame):
                self.sizes.add((frame.width, frame.height))
                self.lumas.add(bytes(frame.planes[0])[0])

    async def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.count < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {self.count} frames received, wanted {count}")
            await asyncio.sleep(0.05)


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
    await pc.setLocalDescription(await pc.createOffer())
    for event in ("IceCandidateFound", "IceGatheringDone"):
        await client.result("subscribe", {"object": endpoint, "type": event})
    answer = await client.invoke(
        endpoint, "processOffer", offer=strip_candidates(pc.localDescription.sdp)
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    for candidate in local_candidates(pc):
        await client.invoke(endpoint, "addIceCandidate", candidate=candidate)
    await client.invoke(endpoint, "gatherCandidates")
    await trickle_from_server(client, endpoint, pc)
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
