"""Peer metrics through the real flows: request-stats rounds (every second here, STATS_INTERVAL),
the clients' answers aggregated per round and averaged over the last minute, stored in
PostgreSQL, served by /api/metrics and streamed to /dashboard-events. Orion is not configured
in this module (its tests are in test_flows_orion.py): /api/orion says so.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import DemoApp, SignalingClient, wait_until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120),
              pytest.mark.usefixtures("loopback_ice")]


async def next_round(client: SignalingClient) -> int:
    """Wait for the next request-stats and return its round."""
    seen = len(client.messages("request-stats"))
    await wait_until(lambda: len(client.messages("request-stats")) > seen, "a request-stats")
    return client.messages("request-stats")[-1]["round"]


async def answer(client: SignalingClient, sid: str, round_: int, **stats: Any) -> None:
    await client.send({"id": "stats", "sessionId": sid, "round": round_, "stats": stats})


async def round_row(app: DemoApp, round_: int) -> dict[str, Any]:
    [row] = await app.rows_eventually(1, "SELECT * FROM metric_rounds WHERE round = $1",
                                      round_)
    return row


async def test_rounds_are_aggregated_averaged_stored_and_streamed(demo_app: DemoApp,
                                                                  clients) -> None:
    publisher, viewer = await clients(), await clients()
    dashboard = await clients("/dashboard-events")
    snapshot = await dashboard.expect("snapshot")
    assert snapshot["metrics"] == [] and snapshot["orion"] == {"enabled": False}
    source = await publisher.publish()
    watching, _ = await viewer.watch(source)

    # Round r: two peers.
    first = await next_round(publisher)
    await wait_until(lambda: viewer.messages("request-stats", round=first), "the viewer's round")
    await answer(publisher, source, first, frameRate=30, width=640, height=480,
                 bitrate=800_000, packetsLost=0)
    await answer(publisher, source, first, frameRate=28, width=640, height=480,
                 bitrate=790_000, packetsLost=0)   # a second answer replaces the first
    await answer(viewer, watching, first, frameRate=20, width=320, height=240,
                 bitrate=400_000, packetsLost=2)
    row = await round_row(demo_app, first)
    assert (row["peers"], row["frame_rate"], row["width"], row["height"], row["bitrate"],
            row["packets_lost"]) == (2, 24.0, 480.0, 360.0, 595_000.0, 1.0)
    assert row["avg_frame_rate"] == 24.0  # the first round with replies: the same

    # Round r+1 (or later): one peer, one figure missing (null is left out, not zero).
    second = await next_round(publisher)
    await answer(publisher, source, second, frameRate=12, width=640, height=480,
                 bitrate=None, packetsLost=1)
    row = await round_row(demo_app, second)
    assert (row["peers"], row["frame_rate"], row["bitrate"]) == (1, 12.0, None)
    # The last minute: every reply of both rounds weighs the same.
    assert row["avg_frame_rate"] == 20.0            # (28 + 20 + 12) / 3
    assert row["avg_width"] == pytest.approx(533.333, abs=0.001)   # (640 + 320 + 640) / 3
    assert row["avg_bitrate"] == 595_000.0          # (790k + 400k) / 2
    assert row["avg_packets_lost"] == 1.0           # (0 + 2 + 1) / 3

    # The dashboard got both rounds as they closed.
    streamed = await wait_until(lambda: [m["round"] for m in dashboard.messages("metrics")
                                         if m["round"]["round"] in (first, second)],
                                "the rounds on the dashboard websocket")
    await wait_until(lambda: len([m for m in dashboard.messages("metrics")
                                  if m["round"]["round"] in (first, second)]) == 2,
                     "both rounds on the dashboard websocket")
    streamed = [m["round"] for m in dashboard.messages("metrics")
                if m["round"]["round"] in (first, second)]
    assert streamed[0]["frameRate"] == 24.0 and streamed[0]["peers"] == 2
    assert streamed[1]["avg"] == {"frameRate": 20.0, "width": 533.333, "height": 400.0,
                                  "bitrate": 595000.0, "packetsLost": 1.0}
    assert streamed[1]["sessions"] == 2
    # ... and sessions lists as they changed.
    assert any(len(m["sessions"]) == 2 for m in dashboard.messages("sessions"))

    # /api/metrics: the stored rounds and their average, weighted by peers.
    status, metrics = await demo_app.get("/api/metrics?minutes=5")
    assert status == 200 and metrics["minutes"] == 5
    rounds = {r["round"]: r for r in metrics["rounds"]}
    assert rounds[first]["frameRate"] == 24.0 and rounds[first]["peers"] == 2
    assert rounds[second]["avg"]["frameRate"] == 20.0
    assert metrics["average"]["frameRate"] == 20.0  # (24 * 2 + 12 * 1) / 3
    for bad in ("0", "1441", "x"):
        status, body = await demo_app.get(f"/api/metrics?minutes={bad}")
        assert status == 400 and "minutes" in body["error"]

    # A dashboard connecting now gets the stored rounds in its snapshot.
    late = await clients("/dashboard-events")
    snapshot = await late.expect("snapshot")
    assert [r["round"] for r in snapshot["metrics"]][-2:] == [first, second]
    assert {s["sessionId"] for s in snapshot["sessions"]} == {source, watching}
    assert snapshot["host"]["hostname"]


async def test_rounds_without_replies_are_not_stored(demo_app: DemoApp, clients) -> None:
    client = await clients()
    quiet = await next_round(client)
    await next_round(client)
    rows = await demo_app.rows("SELECT round FROM metric_rounds WHERE round = $1", quiet)
    assert rows == []


async def test_api_without_orion_and_host(demo_app: DemoApp) -> None:
    status, orion = await demo_app.get("/api/orion")
    assert (status, orion) == (200, {"enabled": False})
    status, host = await demo_app.get("/api/host")
    assert status == 200
    assert host["url"] == f"http://127.0.0.1:{demo_app.port}/"
    assert host["mediaServer"] == f"embedded ({demo_app.kms_url})"
    assert host["database"] == "embedded" and host["turn"] is None and host["orion"] is None
    assert host["mediaDir"] == str(demo_app.media_dir)
    assert isinstance(host["ipv4"], list) and host["hostname"]
