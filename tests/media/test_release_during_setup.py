"""A pipeline released while an endpoint's setup runs leaves nothing behind (issue 12 point 4).

Hundreds of cycles create a pipeline and a WebRtcEndpoint, start one setup call (processOffer,
generateOffer, processAnswer, addIceCandidate) and release the pipeline 0 to 30 ms later, as a
user who stops right after starting does. The UDP sockets and file descriptors of this process
(the media server runs in it) are counted before and after: every socket that candidate
gathering opened must be closed, whatever step the release interrupted. The SDPs come from real
aiortc peers, closed before the first count. The setup call either completes or fails with
40101 (the object is gone), never with another error.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from media_synthetic import SyntheticVideo, local_candidates, strip_candidates

CYCLES = {"processOffer": 240, "generateOffer": 80, "processAnswer": 60}
RELEASE_AFTER = (0.0, 0.030)  # seconds after the setup call was sent
SETTLE = 5.0  # seconds for closes under way to finish before the final count


@pytest.fixture
def loopback_ice(monkeypatch):
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def udp_sockets() -> int:
    """UDP sockets among this process's file descriptors."""
    inodes: set[str] = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        with open(table) as rows:
            inodes.update(row.split()[9] for row in list(rows)[1:])
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled(baseline: tuple[int, int]) -> tuple[int, int]:
    """The (UDP sockets, fds) count once back to ``baseline``, or after ``SETTLE`` seconds."""
    deadline = time.monotonic() + SETTLE
    while True:
        now = (udp_sockets(), open_fds())
        if (now[0] <= baseline[0] and now[1] <= baseline[1]) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.1)


async def peer_offer(data_channel: bool) -> tuple[str, list[dict]]:
    """A browser-like offer (audio, video, optionally a data channel) and its candidates."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if data_channel:
        pc.createDataChannel("chat")
    pc.addTrack(SyntheticVideo())
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    offer, candidates = strip_candidates(pc.localDescription.sdp), local_candidates(pc)
    await pc.close()
    return offer, candidates


async def peer_answer(offer: str) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    answer = strip_candidates(pc.localDescription.sdp)
    await pc.close()
    return answer


async def test_release_during_setup_leaks_no_socket(loopback_ice, client, server):
    offers = [await peer_offer(False), await peer_offer(True)]
    answers = {}  # for an offer of the server, without and with data channels
    probe_pipeline = await client.create("MediaPipeline")
    for data in (False, True):
        probe = await client.create(
            "WebRtcEndpoint", mediaPipeline=probe_pipeline, useDataChannels=data
        )
        answers[data] = await peer_answer(await client.invoke(probe, "generateOffer"))
    await client.result("release", {"object": probe_pipeline})
    baseline = await settled((udp_sockets(), open_fds()))

    outcomes: dict[str, int] = {}
    rng = random.Random(12)

    async def cycle(step: str) -> None:
        pipeline = await client.create("MediaPipeline")
        data = rng.random() < 0.5
        endpoint = await client.create(
            "WebRtcEndpoint", mediaPipeline=pipeline, useDataChannels=data
        )
        offer, candidates = rng.choice(offers)
        if step == "processAnswer":
            await client.invoke(endpoint, "generateOffer")
        calls = [("processOffer", {"offer": offer})] if step == "processOffer" else []
        calls += [("generateOffer", {})] if step == "generateOffer" else []
        calls += [("processAnswer", {"answer": answers[data]})] if step == "processAnswer" else []
        if step == "processOffer":  # candidates before and after the offer
            calls = [("addIceCandidate", {"candidate": c}) for c in candidates] + calls
            calls += [("addIceCandidate", {"candidate": c}) for c in candidates]
        pending = [
            asyncio.ensure_future(client.call(
                "invoke", {"object": endpoint, "operation": op, "operationParams": params}))
            for op, params in calls
        ]  # fmt: skip
        await asyncio.sleep(rng.uniform(*RELEASE_AFTER))
        await client.result("release", {"object": pipeline})
        for (op, _), response in zip(calls, await asyncio.gather(*pending), strict=True):
            outcome = "ok" if "result" in response else str(response["error"]["code"])
            outcomes[f"{op} {outcome}"] = outcomes.get(f"{op} {outcome}", 0) + 1

    for step, count in CYCLES.items():
        for _ in range(count):
            await cycle(step)

    after = await settled(baseline)
    assert after[0] <= baseline[0], (
        f"UDP sockets: {baseline[0]} before, {after[0]} after "
        f"{sum(CYCLES.values())} cycles; outcomes {outcomes}"
    )
    assert after[1] <= baseline[1], f"fds: {baseline[1]} before, {after[1]} after"
    assert server.media_set.pipelines() == []
    assert set(outcomes) <= {f"{op} {code}" for op in (
        "processOffer", "generateOffer", "processAnswer", "addIceCandidate"
    ) for code in ("ok", "40101")}, outcomes  # fmt: skip
    # Both sides of the race were exercised.
    assert outcomes.get("processOffer ok") and outcomes.get("processOffer 40101"), outcomes
