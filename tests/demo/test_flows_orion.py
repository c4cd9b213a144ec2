"""Orion through the real flows, against ``orion_server.OrionTestServer`` (NGSI v2 as Orion
documents it; no Orion can run here): the stats entity is created at start and its attributes
updated after each round; a lost entity is created again; /api/orion relays version, entities
and subscriptions; an Orion in trouble is reported and nothing else stops.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from conftest import DemoApp, SignalingClient, wait_until
from orion_server import OrionTestServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120),
              pytest.mark.usefixtures("loopback_ice")]

ENTITY_ID = f"urn:ngsi-ld:MediaServerStats:{socket.gethostname()}"
ATTRS = {"frameRate", "width", "height", "bitrate", "packetsLost", "peers", "sessions", "round",
         "updatedAt"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def orion() -> AsyncIterator[OrionTestServer]:
    server = OrionTestServer()
    server.subscriptions.append({
        "id": "5e1f0b8c2f1a4b0d9c3e7a61", "description": "stats to the dashboard",
        "status": "active",
        "subject": {"entities": [{"idPattern": ".*", "type": "MediaServerStats"}]},
        "notification": {"http": {"url": "http://example.test/notify"}, "attrs": []}})
    await server.start()
    yield server
    await server.close()


@pytest.fixture(scope="module")
def demo_env(orion: OrionTestServer) -> dict[str, str]:
    return {"ORION_URL": orion.url + "/"}  # a trailing slash is fine


async def stats_round(client: SignalingClient, sid: str, **stats: Any) -> int:
    seen = len(client.messages("request-stats"))
    await wait_until(lambda: len(client.messages("request-stats")) > seen, "a request-stats")
    round_ = client.messages("request-stats")[-1]["round"]
    await client.send({"id": "stats", "sessionId": sid, "round": round_, "stats": stats})
    return round_


def entity_round(orion: OrionTestServer) -> Any:
    entity = orion.entities().get(ENTITY_ID)
    return entity and entity["attrs"]["round"]["value"]


async def test_entity_is_created_at_start_and_updated_after_each_round(
        demo_app: DemoApp, orion: OrionTestServer, clients) -> None:
    [create] = await wait_until(lambda: orion.calls("POST", "/v2/entities"), "the entity")
    assert create.path == "/v2/entities"
    assert create.headers["Content-Type"].startswith("application/json")
    assert create.body["id"] == ENTITY_ID and create.body["type"] == "MediaServerStats"
    assert set(create.body) == {"id", "type"} | ATTRS
    assert create.body["frameRate"] == {"type": "Number", "value": None}
    assert create.body["updatedAt"]["type"] == "DateTime"
    assert orion.entities()[ENTITY_ID]["type"] == "MediaServerStats"

    client = await clients()
    sid = await client.publish()
    round_ = await stats_round(client, sid, frameRate=25, width=320, height=240,
                               bitrate=300_000, packetsLost=0)
    await wait_until(lambda: entity_round(orion) == round_, "the attribute update")
    update = next(c for c in orion.calls("PATCH") if c.body["round"]["value"] == round_)
    assert update.path == f"/v2/entities/{ENTITY_ID}/attrs"
    assert set(update.body) == ATTRS
    attrs = orion.entities()[ENTITY_ID]["attrs"]
    assert {k: attrs[k]["value"] for k in ("frameRate", "width", "height", "bitrate",
                                           "packetsLost", "peers", "sessions")} == {
        "frameRate": 25.0, "width": 320.0, "height": 240.0, "bitrate": 300_000.0,
        "packetsLost": 0.0, "peers": 1, "sessions": 1}
    assert attrs["frameRate"]["type"] == "Number" and attrs["updatedAt"]["type"] == "DateTime"


async def test_entity_lost_by_orion_is_created_again(demo_app: DemoApp, orion: OrionTestServer,
                                                     clients) -> None:
    client = await clients()
    sid = await client.publish()
    del orion.entities()[ENTITY_ID]  # Orion restarted without its database
    round_ = await stats_round(client, sid, frameRate=15, width=640, height=480,
                               bitrate=100_000, packetsLost=3)
    await wait_until(lambda: entity_round(orion) == round_, "the entity created again")
    recreate = orion.calls("POST", "/v2/entities")[-1]
    assert recreate.body["id"] == ENTITY_ID and recreate.body["round"]["value"] == round_
    assert orion.entities()[ENTITY_ID]["attrs"]["peers"]["value"] == 1


async def test_api_relays_orion_metadata(demo_app: DemoApp, orion: OrionTestServer) -> None:
    status, answer = await demo_app.get("/api/orion")
    assert status == 200
    assert answer["enabled"] is True and answer["url"] == orion.url
    assert answer["entityId"] == ENTITY_ID
    assert answer["version"]["orion"]["version"] == "3.10.1"
    assert [e["id"] for e in answer["entities"]] == [ENTITY_ID]
    assert answer["entities"][0]["frameRate"]["type"] == "Number"
    assert [s["id"] for s in answer["subscriptions"]] == ["5e1f0b8c2f1a4b0d9c3e7a61"]
    gets = [c.path for c in orion.calls("GET")]
    assert gets[-3:] == ["/version", "/v2/entities", "/v2/subscriptions"]
    assert orion.calls("GET", "/v2/entities")[-1].query == {"limit": "100"}
    status, host = await demo_app.get("/api/host")
    assert host["orion"] == orion.url + "/"


async def test_orion_in_trouble_is_reported_and_nothing_else_stops(
        demo_app: DemoApp, orion: OrionTestServer, clients) -> None:
    orion.fail_with = 500
    try:
        status, answer = await demo_app.get("/api/orion")
        assert status == 200  # Orion answered, with an error: relayed as it is
        assert answer["version"] == {"error": "InternalServerError",
                                     "description": "failing on purpose"}
    finally:
        orion.fail_with = None
    await orion.close()  # Orion is gone
    try:
        status, answer = await demo_app.get("/api/orion")
        assert status == 502 and answer["enabled"] is True
        assert "error" in answer and answer["url"] == orion.url
        client = await clients()
        sid = await client.publish()
        round_ = await stats_round(client, sid, frameRate=30)
        [row] = await demo_app.rows_eventually(
            1, "SELECT frame_rate FROM metric_rounds WHERE round = $1", round_)
        assert row["frame_rate"] == 30.0   # the round is stored all the same
        status, _ = await demo_app.get("/api/sessions")
        assert status == 200
    finally:
        await orion.start(orion.port)
