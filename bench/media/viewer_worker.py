"""A process of counting viewers (see :mod:`rtp_tap`), driven by ``viewers.py`` over a pipe.

``python bench/media/viewer_worker.py URL PIPELINE_IDS SOURCE_IDS CODEC`` (ids comma separated,
the viewers spread over the sources round-robin) reads one JSON command per line on stdin and
answers one JSON line on stdout:

* ``{"cmd": "add", "n": K}``: negotiate K more viewers (a few at a time), answer
  ``{"added": K, "failed": F, "join_ms": [...]}`` once each has received its first RTP packet
  (``join_ms``: from ``create`` of its endpoint to that packet);
* ``{"cmd": "stats"}``: ``{"t": monotonic, "cpu": seconds, "viewers": [[packets, frames,
  bytes, lost, lag_sum, lag_n, lag_max], ...]}``;
* ``{"cmd": "quit"}``: release the endpoints, close the peers, exit.

Each viewer is negotiated the way a Kurento application does it, through our Python client:
``create WebRtcEndpoint`` in the given pipeline, ``connect`` from the source, ``processOffer``
with the viewer's offer (receive-only video, only ``CODEC`` offered, its candidates in the SDP),
the server's candidates from ``IceCandidateFound`` events after ``gatherCandidates``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mediabench import codec_preferences, loopback_ice, new_peer
from rtp_tap import RtpTap, attach, install

SETUP_CONCURRENCY = 4


async def negotiate(client: Any, pipeline: Any, source: Any, pc: Any, codec: str) -> Any:
    """Negotiate ``pc`` (a fresh peer) as a receive-only viewer of ``source``; returns the
    server's endpoint proxy. Called with the peer's transceiver not yet added."""
    from aiortc import RTCSessionDescription
    from aiortc.sdp import candidate_from_sdp

    transceiver = pc.addTransceiver("video", direction="recvonly")
    codec_preferences(transceiver, codec)
    await pc.setLocalDescription(await pc.createOffer())
    endpoint = await pipeline.create("WebRtcEndpoint")
    await source.connect(endpoint, media_type="VIDEO")
    found: list[dict[str, Any]] = []
    await endpoint.on("IceCandidateFound", lambda data: found.append(data["candidate"]))
    done = endpoint.once("IceGatheringDone", timeout=20)
    answer = await endpoint.process_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await endpoint.gather_candidates()
    await done
    for value in found:
        candidate = candidate_from_sdp(value["candidate"].removeprefix("candidate:"))
        candidate.sdpMid = value["sdpMid"]
        candidate.sdpMLineIndex = value["sdpMLineIndex"]
        await pc.addIceCandidate(candidate)
    return endpoint


class Worker:
    def __init__(self, url: str, pipeline_ids: str, source_ids: str, codec: str):
        self.url = url
        self.sources = list(zip(pipeline_ids.split(","), source_ids.split(","), strict=True))
        self.codec = codec
        self.joined = 0
        self.client: Any = None
        self.viewers: list[tuple[Any, Any, RtpTap]] = []  # (pc, endpoint, tap)

    async def start(self) -> None:
        from flowengine.kurento import KurentoClient

        self.client = await KurentoClient.connect(self.url, timeout=60)

    async def add_one(self) -> float | None:
        pc = new_peer()
        tap = RtpTap()
        started = time.monotonic()
        pipeline_id, source_id = self.sources[self.joined % len(self.sources)]
        self.joined += 1
        try:
            endpoint = await negotiate(
                self.client,
                self.client.proxy(pipeline_id),
                self.client.proxy(source_id),
                pc,
                self.codec,
            )
            attach(pc, tap)
        except Exception as exc:
            print(f"viewer failed: {exc!r}", file=sys.stderr, flush=True)
            await pc.close()
            return None
        self.viewers.append((pc, endpoint, tap))
        deadline = started + 30
        while tap.first_packet is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if tap.first_packet is None:
            return None
        return (tap.first_packet - started) * 1000

    async def add(self, n: int) -> dict[str, Any]:
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def one() -> float | None:
            async with gate:
                return await self.add_one()

        results = await asyncio.gather(*(one() for _ in range(n)))
        joined = [round(r, 1) for r in results if r is not None]
        return {"added": len(joined), "failed": n - len(joined), "join_ms": joined}

    def stats(self) -> dict[str, Any]:
        times = os.times()
        return {
            "t": time.monotonic(),
            "cpu": times.user + times.system,
            "viewers": [tap.snapshot() for _, _, tap in self.viewers],
        }

    async def quit(self) -> None:
        for pc, endpoint, _ in self.viewers:
            with contextlib.suppress(Exception):
                await endpoint.release()
            await pc.close()
        if self.client is not None:
            await self.client.close()


async def main(argv: list[str]) -> None:
    url, pipeline_id, source_id, codec = argv
    loopback_ice()
    install()
    worker = Worker(url, pipeline_id, source_id, codec)
    await worker.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "add":
            answer = await worker.add(int(command["n"]))
        elif command["cmd"] == "stats":
            answer = worker.stats()
        else:
            await worker.quit()
            print(json.dumps({"bye": True}), flush=True)
            return
        print(json.dumps(answer), flush=True)
    await worker.quit()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
