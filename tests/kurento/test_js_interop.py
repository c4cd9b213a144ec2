"""The official JavaScript client (npm kurento-client 7.3.0) drives a full session against our
media server: create, invoke, subscribe/events, connect, getStats, errors, a dropped socket and
its reconnection, release. The Node script is js/session.js; the test relays its socket through
a TcpRelay so that it can cut the connection when the script asks for it.

The client comes from the ``kurento_js`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from kurento_helpers import TcpRelay

SCRIPT = Path(__file__).parent / "js" / "session.js"
SESSION_TIMEOUT = 90  # seconds for the whole Node session
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def run_session(node_modules: Path, relay: TcpRelay) -> tuple[list[dict[str, Any]],
                                                                     list[str]]:
    """Run session.js through ``relay``; drop the relayed connection when it asks. Returns the
    JSON steps it printed and every other output line."""
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    process = await asyncio.create_subprocess_exec(
        "node", str(SCRIPT), relay.url, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env)
    steps: list[dict[str, Any]] = []
    other: list[str] = []
    assert process.stdout is not None
    try:
        async with asyncio.timeout(SESSION_TIMEOUT):
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                try:
                    step = json.loads(line)
                except ValueError:
                    other.append(line)  # kurento-client's own console.log lines
                    continue
                if not isinstance(step, dict) or "step" not in step:
                    other.append(line)
                    continue
                steps.append(step)
                if step["step"] == "drop":
                    relay.drop()
            await process.wait()
    except TimeoutError:
        pytest.fail(f"the Node session did not finish within {SESSION_TIMEOUT}s; steps: "
                    f"{steps}; output: {other}")
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert process.returncode == 0, f"session.js failed: {steps[-1:]}; output: {other}"
    return steps, other


async def test_official_js_client_full_session(kurento_js: Path, relay: TcpRelay) -> None:
    steps, output = await run_session(kurento_js, relay)
    names = [s["step"] for s in steps if s["step"] != "socket-error"]
    assert names == ["connected", "created", "invoked", "events", "connected-elements", "stats",
                     "drop", "reconnected", "released", "done"]
    created = next(s for s in steps if s["step"] == "created")
    r = steps[-1]["results"]

    # connection: describe manager_ServerManager + getInfo passed the module check
    assert re.fullmatch(UUID, r["sessionId"])
    assert {"core", "elements", "filters"} <= set(r["modules"])
    # create
    assert re.fullmatch(UUID + "_kurento.MediaPipeline", r["pipelineId"])
    assert re.fullmatch(re.escape(r["pipelineId"]) + "/" + UUID + "_kurento.WebRtcEndpoint",
                        created["ep1"])
    # invoke: setters, getters, an enum property
    assert r["name"] == "js-ep1"
    assert r["stunServerAddress"] == "127.0.0.1"
    assert r["mediaState"] == "DISCONNECTED"
    # subscribe and events: one IceCandidateFound per candidate, then IceGatheringDone
    assert r["answerIsSdp"] is True
    assert r["candidates"], "no IceCandidateFound event reached the JS client"
    for candidate in r["candidates"]:
        assert candidate["candidate"].startswith("candidate:")
        assert isinstance(candidate["sdpMid"], str)
        assert isinstance(candidate["sdpMLineIndex"], int)
    # connect and connection queries
    assert r["sourceConnections"] == [{"source": created["ep1"], "sink": created["ep2"],
                                       "type": "VIDEO"}]
    # getStats
    assert r["statsTypes"], "getStats returned no stats"
    # errors keep Kurento's codes
    assert r["secondOffer"]["code"] == 40208
    assert r["secondOffer"]["type"] == "SDP_END_POINT_ALREADY_NEGOTIATED"
    # reconnection: same session, objects kept, events routed to the new socket
    assert relay.accepted >= 2, "the JS client never opened a second socket"
    assert r["sameSession"] is True
    assert r["sessionIdAfterReconnect"] == r["sessionId"]
    assert r["nameAfterReconnect"] == "js-ep1"
    assert r["candidatesAfterReconnect"] > 0
    # release cascades: the endpoint is gone
    assert r["afterRelease"]["code"] == 40101
    assert r["afterRelease"]["type"] == "MEDIA_OBJECT_NOT_FOUND"
    assert any("reconnect to server" in line for line in output)
