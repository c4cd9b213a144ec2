"""The kurento-server config node and the kurento-client node in running flows: the embedded
media server as a child process of the runtime, a remote URL, a failed connection."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from kurento_helpers import MediaServerProcess, TcpRelay, free_port

from flowengine import FlowLoadError
from flowengine.kurento import KurentoClient
from flowengine.testing import FlowHarness

# A function node using the client the way the seed's flows do.
USE_CLIENT = """\
client = msg[prop] if "." not in prop else msg[prop.split(".")[0]][prop.split(".")[1]]
pipeline = await client.create("MediaPipeline")
endpoint = await pipeline.create("WebRtcEndpoint")
msg["payload"] = {"pipeline": pipeline.id, "endpoint": endpoint.id, "url": client.url,
                  "session": client.session_id}
await pipeline.release()
return msg
"""


def kurento_flow(server: dict[str, Any], *, prop: str = "kurento",
                 extra_config: dict[str, Any] | None = None,
                 extra_nodes: dict[str, Any] | None = None) -> FlowHarness:
    """``kms`` (kurento-server) -> ``get`` (kurento-client) -> ``use`` (function), plus a catch
    node ``on-error`` for ``get``."""
    return FlowHarness.from_dict({
        "flow": "kurento",
        "config": {"kms": {"type": "kurento-server", **server}, **(extra_config or {})},
        "nodes": {
            "get": {"type": "kurento-client", "server": "kms", "property": prop,
                    "wires": ["use"]},
            "use": {"type": "function", "code": f"prop = {prop!r}\n" + USE_CLIENT},
            "on-error": {"type": "catch", "scope": ["get"]},
            **(extra_nodes or {}),
        },
    })


async def run(h: FlowHarness, msg: dict[str, Any] | None = None) -> dict[str, Any]:
    count = len(h.output_now("use"))
    h.send("get", msg or {"payload": "go"})
    try:
        return (await h.output("use", count=count + 1, timeout=30))[-1]
    except TimeoutError:
        raise AssertionError(f"no output; errors: {h.errors}") from None


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def statuses(h: FlowHarness, node_id: str) -> list[dict[str, Any]]:
    return [e["status"] for e in h.statuses if e.get("node") == node_id]


async def test_embedded_server_starts_and_stops_with_the_runtime(tmp_path: Path) -> None:
    h = kurento_flow({"media_dir": str(tmp_path / "media")})
    async with h:
        server = h.node("kms")
        embedded = server.embedded  # type: ignore[attr-defined]
        assert embedded is not None and embedded.running
        pid = embedded.pid
        assert process_exists(pid)
        assert server.url.startswith("ws://127.0.0.1:")  # type: ignore[attr-defined]

        out = await run(h)
        assert isinstance(out["kurento"], KurentoClient)
        assert out["payload"]["url"] == server.url  # type: ignore[attr-defined]
        assert out["payload"]["pipeline"].endswith("_kurento.MediaPipeline")
        assert out["payload"]["endpoint"].startswith(out["payload"]["pipeline"] + "/")
        assert (tmp_path / "media").is_dir()
        assert {"fill": "green", "shape": "dot", "text": f"connected {server.url}"} \
            in statuses(h, "get")  # type: ignore[attr-defined]
    assert not process_exists(pid), "the media server outlived the runtime"
    assert out["kurento"].state.value == "closed"


async def test_remote_url_and_configurable_property(media_server: MediaServerProcess) -> None:
    async with kurento_flow({"url": media_server.url}, prop="media.client") as h:
        assert h.node("kms").embedded is None  # type: ignore[attr-defined]
        out = await run(h)
        assert "kurento" not in out
        client = out["media"]["client"]
        assert isinstance(client, KurentoClient) and client.url == media_server.url
        assert out["payload"]["url"] == media_server.url
        # Every message gets the same shared, connected client.
        again = await run(h)
        assert again["media"]["client"] is client
        assert again["payload"]["session"] == out["payload"]["session"]


async def test_servers_with_the_same_url_share_one_client(
        media_server: MediaServerProcess) -> None:
    h = kurento_flow({"url": media_server.url},
                     extra_config={"kms-2": {"type": "kurento-server", "url": media_server.url}},
                     extra_nodes={"get-2": {"type": "kurento-client", "server": "kms-2"}})
    async with h:
        h.send("get-2", {"payload": 1})
        [second] = await h.output("get-2", timeout=10)
        first = await run(h)
        assert first["kurento"] is second["kurento"]


async def test_failed_connection_is_a_catchable_error_naming_the_url() -> None:
    url = f"ws://127.0.0.1:{free_port()}/kurento"
    async with kurento_flow({"url": url, "timeout": "2s"}) as h:
        h.send("get", {"payload": "go", "topic": "t1"})
        [caught] = await h.output("on-error", timeout=10)
        assert url in caught["error"]["message"]
        assert caught["error"]["message"].startswith("KurentoConnectionError: cannot connect")
        assert caught["error"]["source"]["id"] == "get"
        assert caught["topic"] == "t1"
        assert h.output_now("use") == []
        shown = statuses(h, "get")
        assert shown and shown[-1]["fill"] == "red" and "disconnected" in shown[-1]["text"]


async def test_embedded_server_is_started_again_after_it_died(tmp_path: Path) -> None:
    async with kurento_flow({"media_dir": str(tmp_path / "media")}) as h:
        first = await run(h)
        embedded = h.node("kms").embedded  # type: ignore[attr-defined]
        old_pid = embedded.pid
        os.kill(old_pid, signal.SIGKILL)
        for _ in range(100):  # the client notices, the node starts the server again
            if embedded.running and embedded.pid != old_pid:
                break
            await asyncio.sleep(0.1)
        second = await run(h)
        assert embedded.pid != old_pid and process_exists(embedded.pid)
        assert second["payload"]["pipeline"].endswith("_kurento.MediaPipeline")
        # Same URL (the port is kept), but the old session died with the old server.
        assert second["payload"]["url"] == first["payload"]["url"]
        assert second["payload"]["session"] != first["payload"]["session"]
        new_pid = embedded.pid
    assert not process_exists(new_pid)


async def test_status_follows_the_connection(relay: TcpRelay) -> None:
    async with kurento_flow({"url": relay.url, "timeout": "5s"}) as h:
        first = await run(h)
        connected = {"fill": "green", "shape": "dot", "text": f"connected {relay.url}"}
        assert statuses(h, "get")[-1] == connected
        relay.drop()
        for _ in range(100):
            if statuses(h, "get")[-1] == connected and len(statuses(h, "get")) > 2:
                break
            await asyncio.sleep(0.05)
        shown = statuses(h, "get")
        assert {"fill": "yellow", "shape": "ring",
                "text": f"disconnected, reconnecting {relay.url}"} in shown
        assert shown[-1] == connected
        assert statuses(h, "kms")[-1] == connected  # the config node shows it too
        second = await run(h)
        assert second["payload"]["session"] == first["payload"]["session"]


# Keeps its pipeline (the test looks for it on the servers behind the router).
KEEP_PIPELINE = """\
pipeline = await msg["kurento"].create("MediaPipeline")
endpoint = await pipeline.create("WebRtcEndpoint")
msg["payload"] = {"pipeline": pipeline.id, "endpoint": endpoint.id}
return msg
"""


async def pipelines_on(url: str) -> list[str]:
    client = await KurentoClient.connect(url, timeout=10)
    try:
        manager = client.proxy("manager_ServerManager")
        return [getattr(p, "id", p) for p in await manager.invoke("getPipelines")]
    finally:
        await client.close()


async def test_a_list_of_servers_and_one_is_killed(tmp_path: Path) -> None:
    """``url`` naming two media servers (two processes on 127.0.0.1): the flows get one
    client, of the embedded router; new pipelines alternate between the two (the least
    loaded), a pipeline's endpoint goes where the pipeline is; when one server is killed, the
    flows go on with the other."""
    servers = [MediaServerProcess(tmp_path / f"kms-{i}", ("--workers", "1")) for i in range(2)]
    for server in servers:
        server.start()
    try:
        h = kurento_flow({"url": f"{servers[0].url}, {servers[1].url}",
                          "media_dir": str(tmp_path / "media")},
                         extra_nodes={"use": {"type": "function", "code": KEEP_PIPELINE}})
        async with h:
            embedded = h.node("kms").embedded  # type: ignore[attr-defined]
            assert embedded is not None and embedded.running  # the router
            made = [(await run(h))["payload"] for _ in range(4)]
            held = [set(await pipelines_on(s.url)) for s in servers]
            assert all(len(p) == 2 for p in held), held
            for item in made:
                assert item["endpoint"].startswith(item["pipeline"] + "/")
            servers[0].process.kill()  # type: ignore[union-attr]
            for _ in range(3):
                item = (await run(h))["payload"]
                assert item["pipeline"] in await pipelines_on(servers[1].url)
    finally:
        for server in servers:
            server.stop()


def test_url_must_be_embedded_or_a_websocket_url() -> None:
    with pytest.raises(FlowLoadError, match="url") as info:
        kurento_flow({"url": "http://127.0.0.1:8888/kurento"})
    assert "ws://" in str(info.value)
