"""The admin API and /metrics (docs/design/runtime.md "The shared server",
flowengine/server/admin.py), with real aiohttp clients against a running runtime on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import socket
import struct
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flowengine.runtime import Runtime
from flowengine.server import admin
from flowengine.testing import FlowHarness, test_registry

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

FLOW = """\
    flow: adm
    description: admin API test flow
    settings:
      http: {port: 0, host: 127.0.0.1%(token)s}
    nodes:
      go:
        type: inject
        payload: hello
        topic: greeting
        wires: [work]
      work:
        type: function
        code: |
          node.status({"fill": "green", "shape": "dot", "text": f"got {msg['payload']}"})
          if msg["payload"] == "boom":
              raise ValueError("boom")
          return msg
        wires: [show]
      show:
        type: debug
        console: false
        max_length: 100000
      off:
        type: debug
        disabled: true
    """


def flow_text(token: str | None = None) -> str:
    return textwrap.dedent(FLOW) % {"token": f", admin_token: {token}" if token else ""}


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide about the token themselves; the developer's environment must not."""
    monkeypatch.delenv("FLOWENGINE_ADMIN_TOKEN", raising=False)


@contextlib.asynccontextmanager
async def serving(harness: FlowHarness, *, registry: bool = True
                  ) -> AsyncIterator[tuple[FlowHarness, aiohttp.ClientSession]]:
    """Run ``harness`` serving HTTP as flowrun does (with the node registry), with a client."""
    harness.runtime.serve_http = True
    if registry:
        harness.runtime.registry = test_registry()
    async with harness, aiohttp.ClientSession(harness.runtime.http.url) as client:
        yield harness, client


def admin_flow(token: str | None = None) -> contextlib.AbstractAsyncContextManager[
        tuple[FlowHarness, aiohttp.ClientSession]]:
    return serving(FlowHarness.from_yaml(flow_text(token)))


async def get_json(client: aiohttp.ClientSession, path: str, status: int = 200) -> Any:
    async with client.get(path) as response:
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


async def post(client: aiohttp.ClientSession, path: str, *, status: int,
               headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    async with client.post(path, headers=headers, **kwargs) as response:
        assert response.status == status, await response.text()
        return await response.json()


# -- reading --------------------------------------------------------------------------------------


async def test_flows_lists_each_flow_with_node_ids_types_and_wires() -> None:
    async with admin_flow() as (_, client):
        flows = await get_json(client, "/admin/flows")
    assert flows == [{
        "flow": "adm", "file": "<test>", "description": "admin API test flow",
        "nodes": [
            {"id": "go", "type": "inject", "name": "go", "disabled": False,
             "wires": [["work"]]},
            {"id": "work", "type": "function", "name": "work", "disabled": False,
             "wires": [["show"]]},
            {"id": "show", "type": "debug", "name": "show", "disabled": False, "wires": []},
            {"id": "off", "type": "debug", "name": "off", "disabled": True, "wires": []},
        ]}]


async def test_types_lists_every_registered_type_with_its_schema() -> None:
    async with admin_flow() as (_, client):
        types = await get_json(client, "/admin/types")
    by_type = {t["type"]: t for t in types}
    assert set(by_type) == {c.type for c in test_registry().types()}
    assert {"inject", "function", "debug", "catch", "status", "complete"} <= set(by_type)
    inject = by_type["inject"]
    assert inject["category"] == "common"
    assert inject["inputs"] == 0
    assert inject["config"] is False
    assert inject["schema"]["properties"]["repeat"]["description"] == (
        "Send every interval (e.g. 5s).")
    assert "every-5s:" in inject["example"]


async def test_types_without_a_registry_are_those_the_flows_use() -> None:
    async with serving(FlowHarness.from_yaml(flow_text()), registry=False) as (_, client):
        types = await get_json(client, "/admin/types")
    assert [t["type"] for t in types] == ["debug", "inject", "function"]  # category, type


async def test_nodes_show_status_and_counters_as_messages_flow() -> None:
    async with admin_flow() as (flow, client):
        nodes = await get_json(client, "/admin/nodes")
        assert [n["id"] for n in nodes] == ["go", "work", "show"]  # the disabled one is not
        assert all(n["counters"] == {"in": 0, "out": 0, "errors": 0, "handler_seconds": 0}
                   for n in nodes)
        assert {n["state"] for n in nodes} == {"running"}

        for payload in ("a", "b", "boom"):
            flow.send("work", {"payload": payload})
        await flow.received("show", 2)
        await flow.settle()
        work = await get_json(client, "/admin/nodes/work")
        show = await get_json(client, "/admin/nodes/show")
    assert work["type"] == "function"
    assert work["flow"] == "adm"
    assert work["status"] == {"fill": "green", "shape": "dot", "text": "got boom"}
    counters = work["counters"]
    assert (counters["in"], counters["out"], counters["errors"]) == (3, 2, 1)
    assert counters["handler_seconds"] > 0
    assert show["counters"]["in"] == 2
    assert show["counters"]["out"] == 0
    assert show["status"] == {}


async def test_an_unknown_node_is_404() -> None:
    async with admin_flow() as (_, client):
        body = await get_json(client, "/admin/nodes/nope", status=404)
        # A disabled node does not run: it has no counters to show.
        await get_json(client, "/admin/nodes/off", status=404)
    assert body == {"error": "no node 'nope'"}


async def test_unknown_endpoints_are_404_and_wrong_methods_405() -> None:
    async with admin_flow(TOKEN) as (_, client):
        index = await get_json(client, "/admin")
        assert "POST /admin/inject/{id}" in index["endpoints"]
        for path in ("/admin/nope", "/admin/nodes/a/b", "/admin/inject", "/admin//flows"):
            await get_json(client, path, status=404)
        async with client.get("/admin/inject/go") as response:
            assert response.status == 405
            assert response.headers["Allow"] == "POST"
        async with client.post("/admin/flows", headers=AUTH) as response:
            assert response.status == 405
            assert response.headers["Allow"] == "GET"
        async with client.delete("/metrics") as response:
            assert response.status == 405
        # An unknown path is 404 for a POST without a token too (not 401/403).
        await post(client, "/admin/nope", status=404)


# -- inject and the token -------------------------------------------------------------------------


async def test_inject_without_a_configured_token_is_refused_403() -> None:
    async with admin_flow() as (flow, client):
        body = await post(client, "/admin/inject/go", status=403,
                          headers={"Authorization": "Bearer anything"})
        await flow.settle()
        assert flow.received_now("work") == []
    assert "read-only" in body["error"]


@pytest.mark.parametrize("authorization", [
    None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", "Bearer s3crét",
])
async def test_inject_with_a_missing_or_wrong_token_is_401(authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else None
    async with admin_flow(TOKEN) as (flow, client):
        async with client.post("/admin/inject/go", headers=headers) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        await flow.settle()
        assert flow.received_now("work") == []


async def test_inject_with_the_right_token_sends_the_configured_message() -> None:
    async with admin_flow(TOKEN) as (flow, client):
        body = await post(client, "/admin/inject/go", status=200, headers=AUTH)
        [msg] = await flow.received("show")
    assert body == {"injected": "go", "msgid": msg["_msgid"]}
    assert msg["payload"] == "hello"
    assert msg["topic"] == "greeting"


async def test_the_token_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWENGINE_ADMIN_TOKEN", "from-env")
    async with admin_flow() as (flow, client):
        await post(client, "/admin/inject/go", status=401, headers=AUTH)
        await post(client, "/admin/inject/go", status=200,
                   headers={"Authorization": "bearer from-env"})  # the scheme is case-blind
        [msg] = await flow.received("show")
    assert msg["payload"] == "hello"


async def test_inject_props_replace_the_configured_properties() -> None:
    async with admin_flow(TOKEN) as (flow, client):
        await post(client, "/admin/inject/go", status=200, headers=AUTH,
                   json={"props": {"payload": "custom", "extra.depth": 5}})
        [msg] = await flow.received("show")
    assert msg["payload"] == "custom"
    assert msg["extra"] == {"depth": 5}
    assert "topic" not in msg  # as Node-RED's __user_inject_props__: all or nothing


@pytest.mark.parametrize(("body", "status", "error"), [
    (b"{not json", 400, "the body must be JSON"),
    (b"\xff\xfe", 400, "the body must be JSON"),
    (b"[1, 2]", 400, "the body must be a JSON object"),
    (b'{"props": "payload"}', 400, "props must be an object: message path -> value"),
    (b'{"props": {"a..b": 1}}', 400, "Invalid property expression 'a..b': unexpected . at "
                                     "position 2"),
])
async def test_inject_refuses_a_bad_body(body: bytes, status: int, error: str) -> None:
    async with admin_flow(TOKEN) as (flow, client):
        answer = await post(client, "/admin/inject/go", status=status, headers=AUTH, data=body)
        await flow.settle()
        assert flow.received_now("work") == []
    assert answer == {"error": error}


async def test_inject_of_an_unknown_or_non_inject_node_is_404() -> None:
    async with admin_flow(TOKEN) as (flow, client):
        assert await post(client, "/admin/inject/nope", status=404, headers=AUTH) == {
            "error": "no inject node 'nope'"}
        await post(client, "/admin/inject/work", status=404, headers=AUTH)
        await flow.settle()
        assert flow.received_now("show") == []


# -- the events websocket -------------------------------------------------------------------------


async def next_event(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The data of the next event of ``kind`` (events of other kinds are skipped)."""
    while True:
        event = await ws.receive_json(timeout=2)
        assert set(event) == {"kind", "data"}
        if event["kind"] == kind:
            return event["data"]


async def test_events_stream_debug_output_status_and_errors() -> None:
    async with admin_flow() as (flow, client), client.ws_connect("/admin/events") as ws:
        flow.send("work", {"payload": "first"})
        status = await next_event(ws, "status")
        debug = await next_event(ws, "debug")
        flow.send("work", {"payload": "boom"})
        error = await next_event(ws, "error")
    assert status == {"node": "work", "flow": "adm",
                      "status": {"fill": "green", "shape": "dot", "text": "got first"}}
    assert debug["id"] == "show"
    assert debug["flow"] == "adm"
    assert (debug["property"], debug["format"], debug["msg"]) == ("payload", "string[5]", "first")
    assert error["node"] == "work"
    assert error["message"] == "ValueError: boom (work, line 3)"


async def test_events_without_a_websocket_upgrade_is_400() -> None:
    async with admin_flow() as (flow, client), client.get("/admin/events") as response:
        assert response.status == 400
        assert flow.runtime.http.admin.event_clients == 0


async def test_every_events_client_gets_every_event() -> None:
    async with admin_flow() as (flow, client):
        async with client.ws_connect("/admin/events") as one, \
                client.ws_connect("/admin/events") as two:
            assert flow.runtime.http.admin.event_clients == 2
            flow.send("show", {"payload": 1})
            assert (await next_event(one, "debug"))["msg"] == "1"
            assert (await next_event(two, "debug"))["msg"] == "1"
        await wait_for(lambda: flow.runtime.http.admin.event_clients == 0)


async def wait_for(condition: Any, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_client_that_does_not_read_never_blocks_the_runtime(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every event is either delivered, in order, or counted in a ``dropped`` notice; the
    server buffers at most EVENT_QUEUE_LIMIT events for the stalled client."""
    monkeypatch.setattr(admin, "EVENT_QUEUE_LIMIT", 20)
    total = 3000
    big = "x" * 20_000  # ~60 MB of events: far more than the socket buffers hold
    async with admin_flow() as (flow, client), client.ws_connect("/admin/events") as ws:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(total):
            flow.send("show", {"payload": f"{i:05d}{big}"})
            if i % 10 == 9:
                # Let the server's sender run, so that it fills the socket and then waits.
                await asyncio.sleep(0.001)
        await flow.received("show", total, timeout=20)
        await flow.settle()
        elapsed = loop.time() - started
        # Now read what the server kept for us.
        seen: list[int] = []
        dropped = 0
        while not seen or seen[-1] != total - 1:
            event = await ws.receive_json(timeout=5)
            if event["kind"] == "dropped":
                dropped += event["data"]["count"]
            elif event["kind"] == "debug":
                seen.append(int(event["data"]["msg"][:5]))
    assert elapsed < 15
    assert dropped > 0
    assert len(seen) + dropped == total
    assert seen == sorted(seen)


async def test_a_vanished_events_client_is_forgotten_and_others_carry_on() -> None:
    async with admin_flow() as (flow, client), client.ws_connect("/admin/events") as good:
        raw = await raw_websocket(flow.runtime.http.port, "/admin/events")
        await wait_for(lambda: flow.runtime.http.admin.event_clients == 2)
        # Vanish with a TCP reset, in the middle of a stream of events.
        for i in range(50):
            flow.send("show", {"payload": i})
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
        for i in range(50, 100):
            flow.send("show", {"payload": i})
        received = [int((await next_event(good, "debug"))["msg"]) for _ in range(100)]
        await wait_for(lambda: flow.runtime.http.admin.event_clients == 1)
        assert flow.runtime.http.admin.event_clients == 1
    assert received == list(range(100))


async def raw_websocket(port: int, path: str) -> socket.socket:
    """A bare websocket client socket after the handshake (it never reads again)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_the_server_stop_closes_event_streams_at_once() -> None:
    flow = FlowHarness.from_yaml(flow_text())
    flow.runtime.serve_http = True
    await flow.__aenter__()
    try:
        async with aiohttp.ClientSession() as client:
            ws = await client.ws_connect(f"{flow.runtime.http.url}/admin/events")
            loop = asyncio.get_running_loop()
            started = loop.time()
            await flow.__aexit__(None, None, None)
            # aiohttp would otherwise wait for the handler until its 2 s shutdown timeout.
            assert loop.time() - started < 1.0
            closing = await ws.receive(timeout=2)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.closed or (await ws.receive(timeout=2)).type is aiohttp.WSMsgType.CLOSED
    finally:
        if flow.runtime.started:
            await flow.__aexit__(None, None, None)


# -- /metrics -------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_exposition(text: str) -> dict[str, dict[str, Any]]:
    """A strict reader of the Prometheus text format (0.0.4): families with their HELP, TYPE
    and samples (label dict, value). Fails on anything the format does not allow."""
    assert text.endswith("\n")
    families: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for line in text.splitlines():
        assert line, "no blank lines expected"
        if line.startswith("# HELP "):
            name, help_text = line[7:].split(" ", 1)
            assert name not in families, f"family {name} twice"
            families[name] = {"help": help_text, "type": None, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert name == current and families[name]["type"] is None
            assert kind in ("counter", "gauge", "untyped", "summary", "histogram")
            families[name]["type"] = kind
        else:
            assert not line.startswith("#")
            match = _SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels_text, value = match.groups()
            assert name == current, f"{name} outside its family"
            labels: dict[str, str] = {}
            rest = labels_text or ""
            while rest:
                label = _LABEL.match(rest)
                assert label, f"bad labels in {line!r}"
                key = label.group(1)
                assert key not in labels
                labels[key] = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]),
                                     label.group(2))
                rest = rest[label.end():]
            number = float(value)
            assert not math.isnan(number)
            families[name]["samples"].append((labels, number))
    return families


PER_NODE = {"flowengine_node_messages_in_total": "in",
            "flowengine_node_messages_out_total": "out",
            "flowengine_node_errors_total": "errors",
            "flowengine_node_handler_seconds_total": "handler_seconds"}


async def test_metrics_are_prometheus_text_and_match_the_node_counters() -> None:
    async with admin_flow() as (flow, client):
        for payload in ("a", "b", "c", "boom"):
            flow.send("work", {"payload": payload})
        await flow.received("show", 3)
        await flow.settle()
        async with client.get("/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = await response.text()
        nodes = {n["id"]: n for n in await get_json(client, "/admin/nodes")}
    families = parse_exposition(text)
    assert set(families) == {*PER_NODE, "flowengine_messages_pending"}
    for name, counter in PER_NODE.items():
        family = families[name]
        assert family["type"] == "counter"
        assert family["help"]
        samples = {labels["node"]: (labels, value) for labels, value in family["samples"]}
        assert len(samples) == len(family["samples"]) == 3  # one per running node
        for node_id, (labels, value) in samples.items():
            assert labels == {"node": node_id, "type": nodes[node_id]["type"], "flow": "adm"}
            assert value == pytest.approx(nodes[node_id]["counters"][counter], abs=1e-5)
    work = {labels["node"]: value for labels, value in
            families["flowengine_node_messages_in_total"]["samples"]}
    assert work == {"go": 0, "work": 4, "show": 3}
    errors = {labels["node"]: value for labels, value in
              families["flowengine_node_errors_total"]["samples"]}
    assert errors == {"go": 0, "work": 1, "show": 0}
    assert families["flowengine_messages_pending"] == {
        "help": "Deliveries queued or running.", "type": "gauge", "samples": [({}, 0.0)]}


async def test_metrics_label_values_are_escaped() -> None:
    # Without `flow:` the file name is the flow name, and it may hold any of \ " and newline.
    text = flow_text().replace("flow: adm\n", "")
    name = 'say "hi" \\ to\nall'
    harness = FlowHarness.from_yaml(text, filename=f"{name}.yaml")
    async with serving(harness) as (_, client), client.get("/metrics") as response:
        exposition = await response.text()
    assert 'flow="say \\"hi\\" \\\\ to\\nall"' in exposition
    families = parse_exposition(exposition)
    flows = {labels["flow"] for labels, _ in
             families["flowengine_node_messages_in_total"]["samples"]}
    assert flows == {name}


# -- POST /admin/reload ---------------------------------------------------------------------------

MAIN = """\
    flow: main
    settings:
      http: {port: 0, host: 127.0.0.1, admin_token: TOKEN}
    include: [extra.yaml]
    nodes:
      kick:
        type: inject
        wires: [work]
      work:
        type: function
        code: |
          msg["payload"] = "v1:" + msg["payload"]
          return msg
        wires: [show]
      show:
        type: debug
        console: false
    """.replace("TOKEN", TOKEN)

EXTRA = """\
    flow: extra
    nodes:
      tick:
        type: inject
        payload: extra
        wires: [echo]
      echo:
        type: debug
        console: false
    """


@pytest.fixture
def flow_files(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "extra.yaml").write_text(textwrap.dedent(EXTRA))
    main = tmp_path / "main.yaml"
    main.write_text(textwrap.dedent(MAIN))
    yield main


def from_files(main: Path) -> contextlib.AbstractAsyncContextManager[
        tuple[FlowHarness, aiohttp.ClientSession]]:
    return serving(FlowHarness.from_files([main], registry=test_registry()))


async def test_reload_applies_the_changed_files(flow_files: Path) -> None:
    async with from_files(flow_files) as (flow, client):
        flow_files.write_text(flow_files.read_text().replace('"v1:"', '"v2:"'))
        summary = await post(client, "/admin/reload", status=200, headers=AUTH)
        assert summary == {"added": [], "changed": ["work"], "removed": [], "warnings": []}
        # The restarted node is a new instance: ask the runtime, not the harness's taps.
        async with client.ws_connect("/admin/events") as ws:
            flow.runtime.deliver("work", {"payload": "x"})
            debug = await next_event(ws, "debug")
        assert debug["msg"] == "v2:x"
        work = await get_json(client, "/admin/nodes/work")
        assert work["counters"]["in"] == 1  # counted from the restart
        flows = await get_json(client, "/admin/flows")
        assert [f["flow"] for f in flows] == ["main", "extra"]


async def test_reload_follows_the_include_list_again(flow_files: Path) -> None:
    async with from_files(flow_files) as (_, client):
        assert {n["id"] for n in await get_json(client, "/admin/nodes")} == {
            "kick", "work", "show", "tick", "echo"}
        flow_files.write_text(flow_files.read_text().replace("include: [extra.yaml]\n", ""))
        summary = await post(client, "/admin/reload", status=200, headers=AUTH)
        assert sorted(summary["removed"]) == ["echo", "tick"]
        assert {n["id"] for n in await get_json(client, "/admin/nodes")} == {"kick", "work", "show"}
        assert [f["flow"] for f in await get_json(client, "/admin/flows")] == ["main"]


async def test_reload_with_invalid_files_reports_the_errors_and_changes_nothing(
        flow_files: Path) -> None:
    extra = flow_files.parent / "extra.yaml"
    async with from_files(flow_files) as (flow, client):
        before = await get_json(client, "/admin/flows")
        extra.write_text(textwrap.dedent(EXTRA).replace("type: debug", "type: no-such-type"))
        answer = await post(client, "/admin/reload", status=400, headers=AUTH)
        assert answer["error"] == "the flow files have errors; nothing was changed"
        [error] = answer["errors"]
        assert error.startswith(f"{extra}:8:11: node 'echo', field 'type': unknown node type "
                                "'no-such-type'"), error
        assert await get_json(client, "/admin/flows") == before
        flow.send("work", {"payload": "still"})
        [msg] = await flow.received("show")
        assert msg["payload"] == "v1:still"


async def test_reload_needs_the_token(flow_files: Path) -> None:
    async with from_files(flow_files) as (_, client):
        flow_files.write_text(flow_files.read_text().replace('"v1:"', '"v2:"'))
        await post(client, "/admin/reload", status=401)
        await post(client, "/admin/reload", status=401,
                   headers={"Authorization": "Bearer nope"})
        nodes = {n["id"]: n for n in await get_json(client, "/admin/nodes")}
    assert nodes["work"]["state"] == "running"


async def test_reload_of_a_runtime_without_registry_or_files_is_409(flow_files: Path) -> None:
    harness = FlowHarness.from_files([flow_files])
    async with serving(harness, registry=False) as (_, client):
        answer = await post(client, "/admin/reload", status=409, headers=AUTH)
    assert answer == {"error": "this runtime has no node registry to load flows with"}


async def test_reload_from_files_directly(flow_files: Path) -> None:
    """The function behind the endpoint, on a Runtime constructed as flowrun does."""
    flowset = FlowHarness.from_files([flow_files]).flowset
    runtime = Runtime(flowset, registry=test_registry())
    await runtime.start()
    try:
        (flow_files.parent / "extra.yaml").write_text(
            textwrap.dedent(EXTRA) + "  more:\n    type: debug\n")
        summary = await admin.reload_from_files(runtime)
        assert summary["added"] == ["more"]
        assert summary["warnings"] == [f"{flow_files.parent / 'extra.yaml'}:10:3: warning: "
                                       "node 'more': no source reaches this node (nothing is "
                                       "wired into it)"]
        assert runtime.get_node("more") is not None
    finally:
        await runtime.stop()


async def test_concurrent_reloads_apply_one_after_the_other(flow_files: Path) -> None:
    async with from_files(flow_files) as (_, client):
        flow_files.write_text(flow_files.read_text().replace('"v1:"', '"v2:"'))
        first, second = await asyncio.gather(
            post(client, "/admin/reload", status=200, headers=AUTH),
            post(client, "/admin/reload", status=200, headers=AUTH))
    assert sorted([first["changed"], second["changed"]]) == [[], ["work"]]

