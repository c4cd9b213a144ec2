"""Start, stop and abort, hundreds of times (issue 12: "a disconnected browser gets its pipeline
released"; points 4 and 9). Sessions are stopped 0 to 30 ms after their start request (while
the media server creates the endpoint or answers the offer), aborted by closing the socket,
or run with a real aiortc peer until connected; afterwards the media server holds no pipeline,
UDP socket or descriptor more than before, memory stays put, and every session row in
PostgreSQL is closed.

Bounded: ``CYCLES`` quick cycles (with the SDP offer of a real peer, reused) on ``WORKERS``
sockets at a time, and ``PEER_CYCLES`` cycles with a connected aiortc peer.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from demokit import DemoApp, SignalingClient, peer_offer, wait_until
from procstat import snapshot

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(600),
              pytest.mark.usefixtures("loopback_ice")]

CYCLES = 300
WORKERS = 4
PEER_CYCLES = 24
RSS_GROWTH_MIB = 40  # the media server's allowance (allocator caches, codec tables)




async def quick_cycle(app: DemoApp, client: SignalingClient, offer: str, rng: random.Random,
                      counts: dict[str, int]) -> SignalingClient:
    """One start, then a stop (or the socket closed) 0-30 ms later; returns the socket to use
    next (a new one after an abort)."""
    sid = uuid.uuid4().hex
    await client.send({"id": "start", "sessionId": sid, "sdpOffer": offer})
    await asyncio.sleep(rng.uniform(0, 0.030))
    if rng.random() < 0.25:
        counts["aborted"] += 1
        await client.close()
        return await app.connect()
    counts["stopped"] += 1
    await client.send({"id": "stop", "sessionId": sid})
    await client.expect("stopped", sessionId=sid)  # an answer to the stop, or the session's end
    return client


async def test_hundreds_of_start_stop_abort_cycles_leave_nothing_behind(
        demo_app: DemoApp) -> None:
    media_pid = demo_app.harness.node("kms").embedded.pid  # type: ignore[attr-defined]
    offer = await peer_offer()
    # Warm up (first endpoint, codecs, pools), then measure.
    warm = await demo_app.connect()
    await quick_cycle(demo_app, warm, offer, random.Random(0), {"aborted": 0, "stopped": 0})
    await wait_until(lambda: not demo_app.global_context("sessions"), "the warm-up to end")
    pipelines_before = await demo_app.pipelines()
    before = snapshot(media_pid)

    counts = {"aborted": 0, "stopped": 0}

    async def worker(seed: int, cycles: int) -> SignalingClient:
        rng = random.Random(seed)
        client = await demo_app.connect()
        for _ in range(cycles):
            client = await quick_cycle(demo_app, client, offer, rng, counts)
        return client

    finished = await asyncio.gather(*(worker(seed, CYCLES // WORKERS)
                                      for seed in range(WORKERS)))

    # Real peers: connected (media flows), then stopped or their socket closed.
    for index in range(PEER_CYCLES):
        client = await demo_app.connect()
        sid = await client.publish()
        if index % 2:
            await client.request({"id": "stop", "sessionId": sid}, "stopped")
        await client.close()

    for client in [warm, *finished]:
        await client.close()
    await wait_until(lambda: not demo_app.global_context("sessions"), "every session to end")
    await wait_until(lambda: _same_pipelines(demo_app, pipelines_before), "pipelines released")
    # Released objects free their sockets and threads shortly after the release answers.
    after = snapshot(media_pid)
    for _ in range(50):
        if after.udp_sockets <= before.udp_sockets and after.fds <= before.fds:
            break
        await asyncio.sleep(0.2)
        after = snapshot(media_pid)
    print(f"\nleaks: {CYCLES} quick cycles ({counts['stopped']} stopped, {counts['aborted']} "
          f"aborted, 0-30 ms after the start) and {PEER_CYCLES} connected peers; media server "
          f"before: {before}; after: {after}")
    assert after.udp_sockets <= before.udp_sockets, (before, after)
    assert after.fds <= before.fds, (before, after)
    assert after.threads <= before.threads + 2, (before, after)
    assert after.rss_mib - before.rss_mib < RSS_GROWTH_MIB, (before, after)
    # Every session that ended is closed in PostgreSQL (point 9: stop right after start).
    open_rows = await demo_app.rows("SELECT session_id FROM sessions WHERE ended_at IS NULL")
    assert open_rows == []
    rows = await demo_app.rows("SELECT count(*) AS n FROM sessions")
    assert rows[0]["n"] >= PEER_CYCLES


async def _same_pipelines(app: DemoApp, before: list[str]) -> bool:
    return await app.pipelines() == before


async def test_session_rows_are_closed_whatever_order_the_writes_take(demo_app: DemoApp
                                                                     ) -> None:
    """Point 9: the start (INSERT) and the end (UPDATE) of a session are written by two nodes
    at once; a stop right after a start could reach PostgreSQL first and leave the row open."""
    import datetime

    runtime = demo_app.harness.runtime
    started = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    sids = [f"race-{n}" for n in range(40)]
    for n, sid in enumerate(sids):
        row = {"session_id": sid, "kind": "webcam", "name": "", "owner": "c1", "url": None,
               "source": None, "started_at": started}
        ended = {"params": {**row, "reason": "stop"}}
        writes = [("end-session", ended), ("insert-session", {"params": row})]
        for node, msg in (writes if n % 2 == 0 else reversed(writes)):  # end first, or not
            runtime.deliver(node, msg)
    rows = await demo_app.rows_eventually(
        len(sids), "SELECT session_id, ended_at, end_reason FROM sessions "
                   "WHERE session_id LIKE 'race-%'")
    await asyncio.sleep(0.5)  # the later of each pair of writes has landed too
    rows = await demo_app.rows("SELECT session_id, ended_at, end_reason FROM sessions "
                               "WHERE session_id LIKE 'race-%'")
    assert sorted(r["session_id"] for r in rows) == sorted(sids)  # one row each
    assert all(r["ended_at"] is not None and r["end_reason"] == "stop" for r in rows)
