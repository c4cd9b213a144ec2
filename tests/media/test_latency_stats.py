"""End-to-end latency in ``getStats`` (issue 10 point 5), as KMS reports it with the pipeline's
``latencyStats`` (kms-core ``kmsbasertpendpoint.c``; docs/media-server.md "Latency stats"):
``EndpointStats.E2ELatency`` holds one MediaLatencyStat per sink pad of a sending endpoint
(``sink_video_default``...), its ``avg`` in nanoseconds measured from the unit's arrival in the
pipeline to its sending; ``videoE2ELatency``/``audioE2ELatency`` are the KMS 6 fields that the
JavaScript loopback-stats tutorial reads. Real aiortc peers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction

import aioice.ice
import pytest
from media_synthetic import publish, view

from flowengine.media.engine.latency import ArrivalLog
from flowengine.media.engine.units import EncodedUnit

PLAUSIBLE_NS = (10_000, 500_000_000)
"""10 µs to 500 ms: more than a constant's zero, less than a stalled pipeline."""


@pytest.fixture
def loopback_ice(monkeypatch):
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def endpoint_stats(client, endpoint: str, media_type: str | None = None) -> dict:
    params = {"mediaType": media_type} if media_type else {}
    stats = await client.invoke(endpoint, "getStats", **params)
    return next(s for s in stats.values() if s["type"] == "endpoint")


async def wait_video_latency(client, endpoint: str, timeout: float = 15) -> dict:
    """The endpoint's stats once its video E2E average settled (KMS's average starts at 0)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stats = await endpoint_stats(client, endpoint, "VIDEO")
        if stats["videoE2ELatency"] >= PLAUSIBLE_NS[0]:
            await asyncio.sleep(1.0)
            return await endpoint_stats(client, endpoint, "VIDEO")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no video E2E latency within {timeout}s: {stats}")
        await asyncio.sleep(0.2)


async def test_loopback_and_transcoding_viewer_report_e2e_latency(loopback_ice, client, server):
    pipeline = await client.create("MediaPipeline")
    await client.invoke(pipeline, "setLatencyStats", latencyStats=True)  # as the tutorial
    assert await client.invoke(pipeline, "getLatencyStats") is True
    loopback = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(loopback, "connect", sink=loopback)
    publisher = await publish(client, loopback)
    viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline, sendonly=True)
    await client.invoke(loopback, "connect", sink=viewer, mediaType="VIDEO")
    view_pc, counter = await view(client, viewer, "video/H264")  # the publisher sends VP8
    try:
        await counter.wait_for(30)
        assert await client.invoke(loopback, "isMediaTranscoding", mediaType="VIDEO") is True

        own = await wait_video_latency(client, loopback)
        assert own["__type__"] == "EndpointStats"
        [entry] = own["E2ELatency"]
        assert {k: entry[k] for k in ("__type__", "name", "type")} == {
            "__type__": "MediaLatencyStat", "name": "sink_video_default", "type": "VIDEO"}
        assert PLAUSIBLE_NS[0] <= entry["avg"] <= PLAUSIBLE_NS[1], entry
        assert own["videoE2ELatency"] == entry["avg"] and own["audioE2ELatency"] == 0.0

        transcoded = await wait_video_latency(client, viewer)
        assert PLAUSIBLE_NS[0] <= transcoded["videoE2ELatency"] <= PLAUSIBLE_NS[1], transcoded
        # Decoding and encoding take longer than handing the same frame on.
        assert transcoded["videoE2ELatency"] > own["videoE2ELatency"], (transcoded, own)

        # Measured, not made up: the average moves from one reading to the next.
        readings = set()
        for _ in range(5):
            readings.add((await endpoint_stats(client, loopback))["videoE2ELatency"])
            await asyncio.sleep(0.3)
        assert len(readings) > 1, readings
        everything = await endpoint_stats(client, loopback)
        assert [e["type"] for e in everything["E2ELatency"]] == ["VIDEO"]  # nothing sends audio
        audio = await endpoint_stats(client, loopback, "AUDIO")
        assert audio["E2ELatency"] == [] and audio["videoE2ELatency"] == 0.0
    finally:
        counter.task.cancel()
        await publisher.close()
        await view_pc.close()
        await client.result("release", {"object": pipeline})


async def test_latency_stats_off_reports_none_and_can_be_switched(loopback_ice, client):
    pipeline = await client.create("MediaPipeline")
    assert await client.invoke(pipeline, "getLatencyStats") is False
    loopback = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(loopback, "connect", sink=loopback)
    publisher = await publish(client, loopback)
    try:
        await asyncio.sleep(1.5)  # media flows, nothing is measured
        off = await endpoint_stats(client, loopback)
        assert (off["E2ELatency"], off["videoE2ELatency"], off["audioE2ELatency"]) == ([], 0.0, 0.0)
        # Switched on while media flows (the hubs exist already), then off again.
        await client.invoke(pipeline, "setLatencyStats", latencyStats=True)
        on = await wait_video_latency(client, loopback)
        assert PLAUSIBLE_NS[0] <= on["videoE2ELatency"] <= PLAUSIBLE_NS[1]
        await client.invoke(pipeline, "setLatencyStats", latencyStats=False)
        assert (await endpoint_stats(client, loopback))["E2ELatency"] == []
    finally:
        await publisher.close()
        await client.result("release", {"object": pipeline})


def test_arrival_log_matches_transcoded_units_and_forgets_old_ones():
    log = ArrivalLog(size=3)
    opus = [EncodedUnit("opus", b"x", i * 960, Fraction(1, 48_000)) for i in range(5)]
    for unit in opus[:4]:
        log.record(unit)
    assert log.arrival(opus[0]) is None  # evicted: only 3 kept
    assert log.arrival(opus[4]) is None  # never arrived
    assert log.arrival(opus[3]) is not None
    # A unit transcoded from opus[2]: same time on the 90 kHz clock, another time base.
    transcoded = EncodedUnit("vp8", b"x", 2 * 960 * 90_000 // 48_000, Fraction(1, 90_000))
    assert log.arrival(transcoded) == log.arrival(opus[2])
    # A looping source repeats its presentation times: the newest arrival counts.
    first = log.arrival(opus[3])
    log.record(EncodedUnit("opus", b"y", 3 * 960, Fraction(1, 48_000)))
    assert log.arrival(opus[3]) > first
