"""The dashboard's Orion panel end to end: with ``ORION_URL`` set the flows publish the metrics
to Orion (NGSI v2), and the dashboard shows Orion's version, entities (with the updated stats
attributes) and subscriptions, as relayed by ``GET /api/orion``.

No Orion can run here: ``orion_server.OrionTestServer`` follows Orion's documented API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2ekit import (
    AppPage,
    DemoServer,
    browser_demo,
    eventually,
    orion_in_thread,
    post_json,
)

pytestmark = pytest.mark.timeout(180)

SUBSCRIPTION = {
    "description": "Media server stats to the history store",
    "subject": {"entities": [{"idPattern": ".*", "type": "MediaServerStats"}]},
    "notification": {"http": {"url": "http://127.0.0.1:9/notify"}, "attrs": ["frameRate"]},
}


@pytest.fixture(scope="module")
def orion() -> Iterator[Any]:
    with orion_in_thread() as server:
        assert post_json(server.url + "/v2/subscriptions", SUBSCRIPTION) == 201
        yield server


@pytest.fixture(scope="module")
def demo(orion: Any) -> Iterator[DemoServer]:
    with browser_demo("orion", {"ORION_URL": orion.url}) as server:
        yield server


async def test_dashboard_shows_orion_metadata_and_stats(browser: Any, demo: DemoServer,
                                                        orion: Any) -> None:
    publisher = await AppPage.open(browser, demo.url)
    dashboard = await AppPage.open(browser, demo.url, "/dashboard.html")
    try:
        await publisher.start_webcam()

        def stats_entity() -> dict[str, Any] | None:
            for entity in list(orion.entities().values()):
                if entity.get("type") == "MediaServerStats" and "frameRate" in entity["attrs"]:
                    return entity
            return None

        entity = await eventually(stats_entity, 30, "the stats entity updated in Orion")
        await dashboard.page.reload()  # the panel reads /api/orion when the page opens
        await dashboard.page.wait_for_selector("#orion-entities tbody tr", timeout=15000)

        panel = await dashboard.page.text_content("#orion")
        assert "3.10.1" in panel  # Orion's version (GET /version)
        assert orion.url in panel
        rows = await dashboard.page.eval_on_selector_all(
            "#orion-entities tbody tr",
            "rows => rows.map(r => Array.from(r.cells, c => c.textContent))")
        shown = {row[0]: row for row in rows}
        assert entity["id"] in shown, rows
        assert shown[entity["id"]][1] == "MediaServerStats"
        assert "frameRate=" in shown[entity["id"]][2]
        subscriptions = await dashboard.page.eval_on_selector_all(
            "#orion-subscriptions li", "items => items.map(i => i.textContent)")
        assert len(subscriptions) == 1
        assert subscriptions[0].startswith(SUBSCRIPTION["description"])
        assert "http://127.0.0.1:9/notify" in subscriptions[0]
    finally:
        await dashboard.close()
        await publisher.close()
