"""The flow view on the demo (``flowrun flows/kurento.yaml`` with its embedded media server
and PostgreSQL, tests/demo/e2ekit.py) in Debian's Chromium: every node of the 14 flows drawn
without overlaps, statuses and counters that change when a browser starts a webcam session,
an inject click that reaches its debug node, and a node's configuration with its file and
line. The demo runs with an admin token, entered once in the page."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import pytest
from conftest import REPO
from e2ekit import AppPage, DemoServer, browser_demo
from viewkit import FlowView

pytestmark = pytest.mark.timeout(240)

TOKEN = "demo-admin-token"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with browser_demo("flowview", {"FLOWENGINE_ADMIN_TOKEN": TOKEN}) as server:
        yield server


@pytest.fixture(scope="module")
def flows(demo: DemoServer) -> list[dict[str, Any]]:
    """What the server says is loaded (GET /admin/view)."""
    with urllib.request.urlopen(demo.url + "/admin/view", timeout=10) as response:
        return list(json.loads(response.read())["flows"])


@pytest.fixture
async def view(browser: Any, demo: DemoServer) -> Any:
    page = await FlowView.open(browser, demo.url)
    yield page
    assert not page.errors, page.errors
    await page.close()


async def test_every_node_of_every_flow_is_drawn_and_none_overlap(
        view: FlowView, flows: list[dict[str, Any]]) -> None:
    assert len(flows) == 14
    assert sum(len(f["nodes"]) for f in flows) >= 150
    tabs = await view.page.eval_on_selector_all("#tabs .tab", "els => els.map(e => e.textContent)")
    assert tabs == [f["name"] for f in flows]
    for flow in flows:
        await view.show(flow["name"])
        drawn = await view.drawn()
        expected = {(n["id"], n["type"], n["name"], n["config"]) for n in flow["nodes"]}
        assert {(n["id"], n["type"], n["label"], n["config"]) for n in drawn} == expected, (
            flow["name"])
        bodies = [n for n in drawn if not n["config"]]
        for a, b in combinations(bodies, 2):
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, f"{flow['name']}: {a['id']} overlaps {b['id']}"


async def test_statuses_set_before_the_page_opened_are_shown(view: FlowView) -> None:
    await view.show("metrics")
    status = await view.wait_for(lambda: _nonempty(view.status("save-round")),
                                 "the postgres node's status")
    assert status.startswith("connected 127.0.0.1:")  # set when the flows started
    await view.page.wait_for_timeout(1500)  # the first counters event has come by now
    assert await view.status("save-round") == status


async def test_statuses_and_counters_change_when_a_session_starts(
        browser: Any, view: FlowView, demo: DemoServer) -> None:
    await view.show("signaling")
    before = await view.status("signaling-in")
    await view.show("webcam")
    assert await view.counters("start-webcam") == ""  # no session yet
    app = await AppPage.open(browser, demo.url)
    try:
        await app.start_webcam()
        counters = await view.wait_for(lambda: _nonempty(view.counters("start-webcam")),
                                       "the webcam flow's counters")
        await view.show("signaling")
        status = await view.wait_for(lambda: _changed(view.status("signaling-in"), before),
                                     "the signaling socket's status")
    finally:
        await app.close()
    assert status.startswith("connected ")
    assert counters.startswith("1 in · ")  # one start request handled


async def test_an_inject_click_reaches_its_debug_node(view: FlowView) -> None:
    await view.show("database")
    await view.inject("database-start")  # runs the migrations again: nothing is pending
    await view.enter_token(TOKEN)
    [message] = await view.debug_from("ready-log")
    assert message["name"] == "node: database ready"
    assert message["topic"] == "msg.payload : Object"
    assert message["text"].startswith("▸{ ready: true, closed_sessions: ")


async def test_a_node_s_configuration_shows_its_file_and_line(view: FlowView) -> None:
    await view.show("kurento")
    panel = await view.open_node("db")
    lines = (REPO / "flows" / "kurento.yaml").read_text().splitlines()
    path, line = panel["file"].rsplit(":", 1)
    assert path.endswith("flows/kurento.yaml")
    assert lines[int(line) - 1] == "  db:"
    assert panel["editor"] == f"vscode://file{REPO / 'flows' / 'kurento.yaml'}:{line}:3"
    assert panel["yaml"] == "db:\n  type: postgres-server\n  dsn: ${DATABASE_URL}\n\n"
    await view.show("signaling")
    route = await view.open_node("route")
    assert route["file"].endswith(f"flows/kurento/signaling.yaml:{_line_of('route')}")
    assert "  property: payload.id\n" in route["yaml"]


def _line_of(node_id: str) -> int:
    lines = (REPO / "flows" / "kurento" / "signaling.yaml").read_text().splitlines()
    return lines.index(f"  {node_id}:") + 1


async def _nonempty(text: Any) -> str | None:
    return (await text) or None


async def _changed(text: Any, before: str) -> str | None:
    value = await text
    return value if value and value != before else None
