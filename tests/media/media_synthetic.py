"""Media made by the tests themselves with PyAV (nothing is downloaded).

``SyntheticVideo`` is an aiortc track of moving yuv420p frames; ``write_video_file`` encodes a
short file (H.264 Baseline without B-frames, or VP8) that a player can pass through.
"""

from __future__ import annotations

import asyncio
import fractions
from pathlib import Path

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

WIDTH, HEIGHT = 320, 240


def make_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> av.VideoFrame:
    """A yuv420p frame whose brightness and a vertical bar move with ``index``."""
    frame = av.VideoFrame(width, height, "yuv420p")
    luma = bytearray([(index * 7) % 200 + 30]) * (width * height)
    bar = (index * 4) % width
    size = min(8, width - bar)
    for row in range(height):
        start = row * width + bar
        luma[start : start + size] = b"\xff" * size
    assert len(luma) == width * height
    frame.planes[0].update(bytes(luma))
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


def write_video_file(path: Path, codec: str = "h264", seconds: float = 3.0, fps: int = 30) -> Path:
    """Encode a test file: ``h264`` -> MP4 (Baseline, no B-frames, GOP 15), ``vp8`` -> WEBM."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264" if codec == "h264" else "libvpx", rate=fps)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.codec_context.gop_size = 15
    if codec == "h264":
        stream.codec_context.profile = "Baseline"
        stream.codec_context.options = {"preset": "ultrafast", "bf": "0"}
    for i in range(int(seconds * fps)):
        frame = make_frame(i)
        frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


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


async def view(client, endpoint: str) -> tuple[RTCPeerConnection, FrameCounter]:
    """A receive-only test peer negotiated with ``endpoint`` (trickle ICE both ways)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
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


async def publish(client, endpoint: str) -> RTCPeerConnection:
    """A test peer sending :class:`SyntheticVideo` to ``endpoint``."""
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
