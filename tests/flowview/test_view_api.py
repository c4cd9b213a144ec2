"""What the flow view reads from the server (flowengine/server/admin_ui): the page and its
files, ``/admin/view``, ``/admin/source/{id}`` with secrets masked, and the ``counters`` and
``reload`` events; real aiohttp clients against a running runtime on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import re
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from flowengine.server.admin_ui import assets
from flowengine.testing import FlowHarness, test_registry

TOKEN = "view-token"
SECRET_ENV = "FLOWVIEW_TEST_SECRET"
SECRET = "s3cr3t-from-env"

MAIN = """\
    flow: main
    description: the flow view's test flow
    include: [other.yaml]
    env:
      API_TOKEN: ${FLOWVIEW_TEST_SECRET}
    settings:
      http: {port: 0, host: 127.0.0.1, admin_token: THE_TOKEN}
    config:
      db:
        type: postgres-server
        dsn: postgresql://app:hunter2@127.0.0.1:9/app
        disabled: true
    nodes:
      tick:
        type: inject
        payload: hello
        topic: greeting
        group: parse and route
        wires: [work]
      work:
        type: function
        group: parse and route
        code: |
          node.status({"fill": "green", "shape": "dot", "text": msg["payload"]})
          return [msg, None, msg]
        outputs: 3
        wires: [[show], [], [to-other]]
      show:
        type: debug
        console: false
        group: parse and route
      to-other:
        type: link out
        links: [from-main]
      fetch:
        type: http-request
        url: http://user:url-pw@127.0.0.1:9/x
        headers: {Authorization: "Bearer ${API_TOKEN}", X-Key: "Token ${FLOWVIEW_TEST_SECRET}",
                  X-Api-Key: literal-pw}
        disabled: true
    """.replace("THE_TOKEN", TOKEN)

OTHER = """\
    flow: other
    nodes:
      from-main:
        type: link in
        wires: [metrics]
      metrics:
        type: debug
        console: false
        complete: true
    """


@pytest.fixture
def main_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.delenv("FLOWENGINE_ADMIN_TOKEN", raising=False)
    (tmp_path / "other.yaml").write_text(textwrap.dedent(OTHER))
    main = tmp_path / "main.yaml"
    main.write_text(textwrap.dedent(MAIN))
    return main


@contextlib.asynccontextmanager
async def serving(main: Path) -> AsyncIterator[tuple[FlowHarness, aiohttp.ClientSession]]:
    """The flows of ``main`` served as flowrun serves them, with a client."""
    harness = FlowHarness.from_files([main], registry=test_registry())
    harness.runtime.serve_http = True
    harness.runtime.registry = test_registry()
    async with harness, aiohttp.ClientSession(harness.runtime.http.url) as client:
        yield harness, client


async def get_json(client: aiohttp.ClientSession, path: str, status: int = 200) -> Any:
    async with client.get(path) as response:
        assert response.status == status, await response.text()
        return await response.json()


async def next_event(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        event = await ws.receive_json(timeout=5)
        if event["kind"] == kind:
            return event["data"]


# -- the page -------------------------------------------------------------------------------------

async def test_a_browser_gets_the_page_and_an_api_client_the_endpoint_list(
        main_file: Path) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with serving(main_file) as (_, client):
        async with client.get("/admin/", headers=html) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
            headers = response.headers
        async with client.get("/admin", headers=html, allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/admin/"
        index = await get_json(client, "/admin/")
    assert "<title>flowengine: flows</title>" in page
    assert "GET /admin/view" in index["endpoints"]
    assert "GET /admin/source/{id}" in index["endpoints"]
    # Its buttons inject: no other site may frame it; it talks to its own server only.
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


async def test_every_file_the_page_loads_is_served_from_the_package(main_file: Path) -> None:
    referenced = _references_in_static()
    assert {"ui/app.js", "ui/vendor/elk-api.js", "ui/vendor/elk-worker.min.js",
            "ui/flowview.css"} <= referenced
    async with serving(main_file) as (_, client):
        view = await get_json(client, "/admin/view")
        icons = {f"ui/icons/{n['icon']}" for f in view["flows"] for n in f["nodes"] if n["icon"]}
        for url in sorted(referenced | icons):
            async with client.get(f"/admin/{url}") as response:
                assert response.status == 200, url
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                expected = {".js": "text/javascript", ".css": "text/css",
                            ".svg": "image/svg+xml"}[Path(url).suffix]
                assert response.content_type == expected, url


def _references_in_static() -> set[str]:
    """Every URL our own page files load (script/link/import/worker/icon), each checked to be
    relative: nothing comes from another host."""
    found: set[str] = set()
    ours = [p for p in assets.STATIC.glob("*") if p.suffix in (".html", ".js", ".css")]
    for path in ours:
        text = path.read_text()
        for url in re.findall(r'(?:src|href)="([^"]+)"', text) + re.findall(
                r'(?:import [^"]*from |workerUrl: )"([^"]+)"', text):
            assert not re.match(r"^(?:[a-z]+:)?//", url), f"{path.name} loads {url}"
            if url.startswith("./"):
                url = "ui/" + url[2:]
            if url.startswith("ui/"):
                found.add(url)
    return found


@pytest.mark.parametrize("path", [
    "/admin/ui/../admin.py", "/admin/ui/%2e%2e/admin.py", "/admin/ui/vendor",
    "/admin/ui/nope.js", "/admin/ui/icons/../../__init__.py", "/admin/ui/static/index.html",
])
async def test_nothing_outside_the_page_files_is_served(main_file: Path, path: str) -> None:
    async with serving(main_file) as (_, client), client.get(path) as response:
        assert response.status == 404, path
        assert "admin_ui" not in await response.text()


def test_the_page_files_are_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    patterns = re.search(r'flowengine = \[([^\]]*)\]', pyproject)
    assert patterns is not None
    globs = [g.removeprefix("server/admin_ui/") for g in re.findall(r'"([^"]+)"', patterns[1])
             if g.startswith("server/admin_ui/")]
    files = {p for p in assets.STATIC.rglob("*") if p.is_file()}
    covered = {p for g in globs for p in (assets.STATIC.parent.glob(g))}
    assert files and files <= covered, files - covered
    # Third-party files ship with their licences.
    assert (assets.STATIC / "vendor" / "elk.LICENSE.md").read_text().startswith(
        "# Eclipse Public License - v 2.0")
    assert "Apache License" in (assets.STATIC / "icons" / "LICENSE").read_text()


# -- what is drawn --------------------------------------------------------------------------------

async def test_view_lists_each_flow_with_what_the_page_draws(main_file: Path) -> None:
    async with serving(main_file) as (_, client):
        view = await get_json(client, "/admin/view")
    flows = {f["name"]: f for f in view["flows"]}
    assert list(flows) == ["main", "other"]
    assert flows["main"]["file"] == str(main_file)
    nodes = {n["id"]: n for f in view["flows"] for n in f["nodes"]}
    assert list(nodes) == ["db", "tick", "work", "show", "to-other", "fetch", "from-main",
                           "metrics"]
    work = nodes["work"]
    assert (work["type"], work["inputs"], work["outputs"]) == ("function", 1, 3)
    assert work["wires"] == [["show"], [], ["to-other"]]
    assert work["group"] == "parse and route"
    assert (work["color"], work["icon"]) == ("#fdd0a2", "function.svg")
    # The file line of the node and of the first line of its code (for error lines).
    lines = main_file.read_text().splitlines()
    assert lines[work["line"] - 1].strip() == "work:"
    assert lines[work["blocks"]["code"] - 1].strip().startswith("node.status(")
    assert nodes["to-other"]["links"] == ["from-main"]  # a link to another flow
    assert (nodes["db"]["config"], nodes["db"]["inputs"], nodes["db"]["outputs"]) == (
        True, 0, 0)
    assert nodes["fetch"]["disabled"] is True
    assert nodes["tick"]["group"] == "parse and route" and nodes["fetch"]["group"] is None
    # Nothing here carries configuration values.
    assert "hunter2" not in str(view) and SECRET not in str(view)


async def test_a_node_s_configuration_comes_with_file_and_line(main_file: Path) -> None:
    async with serving(main_file) as (_, client):
        source = await get_json(client, "/admin/source/work")
        await get_json(client, "/admin/source/nope", status=404)
    lines = main_file.read_text().splitlines()
    assert source["file"] == str(main_file)
    assert lines[source["line"] - 1].strip() == "work:"
    assert source["editor"] == (f"vscode://file{main_file.resolve()}:"
                                f"{source['line']}:{source['column']}")
    assert yaml.safe_load(source["yaml"])["work"]["code"].startswith("node.status(")
    assert "  code: |\n    node.status(" in source["yaml"]  # code as a block, as written


async def test_secrets_never_reach_the_page(main_file: Path) -> None:
    async with serving(main_file) as (_, client):
        db = await get_json(client, "/admin/source/db")
        fetch = await get_json(client, "/admin/source/fetch")
        everything = [await get_json(client, path) for path in (
            "/admin/view", "/admin/flows", "/admin/nodes")]
        everything += [await get_json(client, f"/admin/source/{n['id']}")
                       for f in everything[0]["flows"] for n in f["nodes"]]
    text = str(everything)
    for secret in (SECRET, "hunter2", "literal-pw", "url-pw"):
        assert secret not in text, secret
    config = yaml.safe_load(db["yaml"])["db"]
    assert config["dsn"] == "postgresql://app:********@127.0.0.1:9/app"
    fetched = yaml.safe_load(fetch["yaml"])["fetch"]
    assert fetched["url"] == "http://user:********@127.0.0.1:9/x"
    # References show where a value comes from, never the value.
    assert fetched["headers"] == {"Authorization": "Bearer ${API_TOKEN}",
                                  "X-Key": "Token ${FLOWVIEW_TEST_SECRET}",
                                  "X-Api-Key": "********"}


# -- live updates ---------------------------------------------------------------------------------

async def test_counters_are_pushed_while_someone_watches(main_file: Path) -> None:
    async with serving(main_file) as (flow, client):
        admin = flow.runtime.http.admin
        async with client.ws_connect("/admin/events") as plain, \
                client.ws_connect("/admin/events?counters=1") as ws:
            first = await next_event(ws, "counters")  # every node, at first
            assert set(first["nodes"]) == {"tick", "work", "show", "to-other", "from-main",
                                           "metrics"}  # the running ones
            assert first["nodes"]["work"] == {"in": 0, "out": 0, "errors": 0,
                                              "handler_seconds": 0}
            flow.send("work", {"payload": "a"})
            changed = await next_event(ws, "counters")  # only what changed since
            kinds = set()  # a client that did not ask gets none
            with contextlib.suppress(TimeoutError):
                while True:
                    kinds.add((await plain.receive_json(timeout=0.5))["kind"])
        assert kinds == {"status", "debug"}
        assert set(changed["nodes"]) == {"work", "show", "to-other", "from-main", "metrics"}
        assert changed["nodes"]["work"]["in"] == 1
        assert changed["nodes"]["work"]["out"] == 2
        assert changed["nodes"]["work"]["handler_seconds"] > 0
        for _ in range(50):  # the last client left: the feed stops
            if admin._counters._task is None:
                break
            await asyncio.sleep(0.02)
        assert admin._counters._task is None


async def test_debug_events_carry_the_topic(main_file: Path) -> None:
    async with serving(main_file) as (flow, client), client.ws_connect("/admin/events") as ws:
        flow.send("work", {"payload": "a", "topic": "greeting"})
        debug = await next_event(ws, "debug")
        await next_event(ws, "debug")  # the other flow's debug node, through the link
        flow.send("work", {"payload": "b"})
        untitled = await next_event(ws, "debug")
    assert (debug["id"], debug["topic"], debug["msg"]) == ("show", "greeting", "a")
    assert "topic" not in untitled


async def test_a_reload_is_announced_on_the_event_stream(main_file: Path) -> None:
    async with serving(main_file) as (_, client), client.ws_connect("/admin/events") as ws:
        main_file.write_text(main_file.read_text().replace(
            "group: parse and route\n    wires: [work]", "group: start\n    wires: [work]"
        ).replace("payload: hello", "payload: hi"))
        async with client.post("/admin/reload",
                               headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200, await response.text()
        reload = await next_event(ws, "reload")
        view = await get_json(client, "/admin/view")
    assert reload == {"added": [], "changed": ["tick"], "removed": []}
    tick = next(n for f in view["flows"] for n in f["nodes"] if n["id"] == "tick")
    assert tick["group"] == "start"


async def test_a_group_change_alone_restarts_nothing(main_file: Path) -> None:
    async with serving(main_file) as (_, client), client.ws_connect("/admin/events") as ws:
        main_file.write_text(main_file.read_text().replace("group: parse and route", "group: g2"))
        async with client.post("/admin/reload",
                               headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200, await response.text()
        reload = await next_event(ws, "reload")
        view = await get_json(client, "/admin/view")
    assert reload == {"added": [], "changed": [], "removed": []}
    assert {n["group"] for f in view["flows"] for n in f["nodes"]} == {"g2", None}
