"""CPU of a Composite and of a FaceOverlayFilter in the media server (issue 17).

    python bench/media/elements_cpu.py                     # both, 10 s windows
    python bench/media/elements_cpu.py --only composite --window 20

The server runs as a child process (``python -m flowengine.media``, as users run it) and its
CPU is read from ``/proc`` (all its threads; % of one core, the machine has 2). The peers are
aiortc peers in this process, negotiated through our Python Kurento client.

* ``composite``: three publishers send 640x480 30 fps VP8 (a moving synthetic picture) and a
  tone. Windows: (a) the publishers alone, connected to nothing (receiving costs); (b) each
  into a HubPort of one Composite (800x600, 15 fps) and one viewer port to an aiortc viewer;
  (c) four more viewer ports and viewers. The Composite's cost is (b) - (a): three decodes,
  the mixer thread, one VP8 encode of the grid and the viewer's Opus encode; each further
  viewer adds (c) - (b) / 4 (its own audio mix and packets: the grid is encoded once).
* ``face``: the filter's processing alone on one thread (frames/s it can do), then a
  PlayerEndpoint plays a 640x480 30 fps H.264 file of a face
  (tests/fixtures/face), through a FaceOverlayFilter (overlay set) to an aiortc viewer: the
  server's CPU and the frames per second the viewer decodes, against the same player sent
  straight to a viewer (which costs a decode and a VP8 encode too, as the viewer takes VP8).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "media"))

from mediabench import CpuSample, ServerProcess, load_average, loopback_ice, pct  # noqa: E402


async def negotiate(kurento, endpoint, pc) -> None:
    """Offer from ``pc``, answer from ``endpoint``, candidates both ways (trickle)."""
    from aiortc import RTCSessionDescription
    from media_synthetic import add_kurento_candidate, local_candidates, strip_candidates

    gathered = asyncio.Event()
    endpoint.on("IceCandidateFound", lambda data: add_kurento_candidate(pc, data["candidate"]))
    endpoint.on("IceGatheringDone", lambda data: gathered.set())
    await pc.setLocalDescription(await pc.createOffer())
    answer = await endpoint.process_offer(strip_candidates(pc.localDescription.sdp))
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    for candidate in local_candidates(pc):
        await endpoint.add_ice_candidate(candidate)
    await endpoint.gather_candidates()
    await asyncio.wait_for(gathered.wait(), 10)


class Counter:
    """An aiortc receiving peer that decodes and counts video frames."""

    def __init__(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.frames = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", lambda t: self.tasks.append(asyncio.ensure_future(self._eat(t))))

    async def _eat(self, track) -> None:
        while True:
            try:
                await track.recv()
            except Exception:
                return
            if track.kind == "video":
                self.frames += 1


async def window(server: ServerProcess, seconds: float, counters: list[Counter]
                 ) -> tuple[float, float]:  # fmt: skip
    """(server CPU %, mean video fps of the counters) over ``seconds``."""
    before, frames = CpuSample.take(server.pid), [c.frames for c in counters]
    await asyncio.sleep(seconds)
    after = CpuSample.take(server.pid)
    wall = after.wall - before.wall
    fps = [(c.frames - f) / wall for c, f in zip(counters, frames, strict=True)]
    return pct(before.process, after.process, wall), sum(fps) / len(fps) if fps else 0.0


async def composite(kurento, server: ServerProcess, args: argparse.Namespace) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection
    from media_mixing import Tone
    from media_synthetic import SyntheticVideo

    class BigVideo(SyntheticVideo):
        async def recv(self):
            from media_synthetic import make_frame

            pts, time_base = await self.next_timestamp()
            frame = make_frame(self.count, 640, 480)
            self.count += 1
            frame.pts, frame.time_base = pts, time_base
            return frame

    pipeline = await kurento.create("MediaPipeline")
    publishers, peers = [], []
    for hz in (440, 660, 990):
        endpoint = await pipeline.create("WebRtcEndpoint")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(Tone(hz))
        pc.addTrack(BigVideo())
        await negotiate(kurento, endpoint, pc)
        publishers.append(endpoint)
        peers.append(pc)
    await asyncio.sleep(args.settle)
    alone, _ = await window(server, args.window, [])
    mix = await pipeline.create("Composite")
    for endpoint in publishers:
        port = await mix.create("HubPort")
        await endpoint.connect(port)
    counters = []

    async def add_viewer() -> None:
        port = await mix.create("HubPort")
        viewer = await pipeline.create("WebRtcEndpoint")
        await port.connect(viewer)
        counter = Counter()
        await negotiate(kurento, viewer, counter.pc)
        counters.append(counter)

    await add_viewer()
    await asyncio.sleep(args.settle)
    one, fps1 = await window(server, args.window, counters)
    for _ in range(4):
        await add_viewer()
    await asyncio.sleep(args.settle)
    five, fps5 = await window(server, args.window, counters)
    print(f"composite: publishers alone {alone:.0f} %, + Composite and 1 viewer {one:.0f} % "
          f"(viewer {fps1:.1f} fps), 5 viewers {five:.0f} % ({fps5:.1f} fps each)")
    print(f"composite_cpu_pct={one - alone:.0f} per_extra_viewer_pct={(five - one) / 4:.1f} "
          f"load={load_average()}")
    for pc in peers + [c.pc for c in counters]:
        await pc.close()
    await pipeline.release()


async def face(kurento, server: ServerProcess, args: argparse.Namespace, media: Path) -> None:
    from media_mixing import face_frame, magenta_png
    from media_synthetic import write_video_file

    source = write_video_file(media / "face.mp4", "h264", seconds=60, size=(640, 480),
                              frame=face_frame, gop=30)  # fmt: skip
    hat = magenta_png(media / "hat.png")
    results = {}
    for mode in ("straight", "filtered"):
        pipeline = await kurento.create("MediaPipeline")
        player = await pipeline.create("PlayerEndpoint", uri=str(source))
        viewer = await pipeline.create("WebRtcEndpoint")
        if mode == "filtered":
            overlay = await pipeline.create("FaceOverlayFilter")
            await overlay.set_overlayed_image(str(hat), -0.35, -1.2, 1.6, 1.6)
            await player.connect(overlay)
            await overlay.connect(viewer)
        else:
            await player.connect(viewer)
        counter = Counter()
        counter.pc.getTransceivers()[0].setCodecPreferences(
            [c for c in __import__("aiortc").RTCRtpSender.getCapabilities("video").codecs
             if c.mimeType == "video/VP8"])  # fmt: skip
        await negotiate(kurento, viewer, counter.pc)
        await player.play()
        await asyncio.sleep(args.settle)
        results[mode] = await window(server, args.window, [counter])
        await counter.pc.close()
        await pipeline.release()
    capacity, detections = overlay_capacity(hat)
    print(f"face: FaceOverlayer alone, one thread: {capacity:.0f} frames/s of 640x480 "
          f"({detections:.0f} detections/s)")
    (straight, fps0), (filtered, fps1) = results["straight"], results["filtered"]
    print(f"face: player -> viewer {straight:.0f} % ({fps0:.1f} fps); player -> "
          f"FaceOverlayFilter -> viewer {filtered:.0f} % ({fps1:.1f} fps)")
    print(f"face_overlay_cpu_pct={filtered - straight:.0f} face_overlay_fps={fps1:.1f} "
          f"load={load_average()}")


def overlay_capacity(hat: Path, frames: int = 150) -> tuple[float, float]:
    """Frames per second the filter's processing does on one thread, as fast as it can."""
    import cv2
    from media_mixing import face_frame

    from flowengine.media.engine.face_overlay import FaceOverlayer, Overlay

    overlayer = FaceOverlayer()
    overlayer.set_overlay(Overlay(cv2.imread(str(hat), cv2.IMREAD_UNCHANGED), -0.35, -1.2,
                                  1.6, 1.6))  # fmt: skip
    pictures = [face_frame(i, 640, 480).reformat(format="yuv420p") for i in range(30)]
    started = time.perf_counter()
    for i in range(frames):
        overlayer.process(pictures[i % 30])
    took = time.perf_counter() - started
    return frames / took, overlayer.detections / took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("composite", "face"))
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=4.0)
    args = parser.parse_args()
    loopback_ice()
    from flowengine.kurento import KurentoClient

    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp)
        server = ServerProcess(media)
        await server.start()
        kurento = await KurentoClient.connect(server.url)
        started = time.monotonic()
        try:
            if args.only in (None, "composite"):
                await composite(kurento, server, args)
            if args.only in (None, "face"):
                await face(kurento, server, args, media)
        finally:
            await kurento.close()
            await server.stop()
        print(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
