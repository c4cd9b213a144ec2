"""The shared server's websockets under hostile peers (issue 12, points 1 and 3): a peer that
pings without reading is closed once its queue is full, as a slow reader is (pongs count
against the same bound); text that has no UTF-8 form reaches every peer (with U+FFFD), and a
broadcast goes on past a peer it cannot reach."""

from __future__ import annotations

import asyncio
import logging

import pytest
from demokit import wait_until
from rawws import PING, RawWebSocket
from websockets.asyncio.client import connect

from flowengine.testing import FlowHarness

pytestmark = pytest.mark.timeout(60)

HTTP = {"http": {"port": 0, "host": "127.0.0.1"}}


def echo_flow() -> FlowHarness:
    return FlowHarness.from_dict({"flow": "ws", "settings": HTTP, "nodes": {
        "in": {"type": "websocket-in", "path": "/ws", "wires": ["out"]},
        "out": {"type": "websocket-out", "path": "/ws"}}})


async def test_a_peer_that_pings_without_reading_is_closed_with_1008(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flowengine")
    async with echo_flow() as h:
        listener = h.node("in")._endpoint
        listener.write_limit, listener.max_queue = 16 * 1024, 64
        port = h.runtime.http.port
        flooder = await RawWebSocket.open(port, "/ws", rcvbuf=4096)
        async with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as bystander:
            await wait_until(lambda: len(listener.sessions) == 2, "both peers")
            payload = b"p" * 125
            for sent in range(1, 200_001):
                flooder.send(PING, payload)
                if sent % 200 == 0:
                    await flooder.writer.drain()
                    await asyncio.sleep(0.005)
                    if len(listener.sessions) == 1:
                        break
            # Closed long before 200 000 pongs (25 MB) were buffered for it.
            await wait_until(lambda: len(listener.sessions) == 1, "the flooder closed")
            assert sent < 200_000
            # The close frame waits behind the pongs the peer never read: it is dropped.
            assert await flooder.close_code() in (1008, None)
            [closed] = [r.getMessage() for r in caplog.records if "1008" in r.getMessage()]
            assert "messages waiting to be sent" in closed
            await bystander.send("still served")
            assert await asyncio.wait_for(bystander.recv(), 5) == "still served"
        flooder.abort()


async def test_text_without_utf8_form_is_sent_to_every_peer_with_a_replacement() -> None:
    async with echo_flow() as h:
        url = f"ws://127.0.0.1:{h.runtime.http.port}/ws"
        async with connect(url) as a, connect(url) as b, connect(url) as c:
            await wait_until(lambda: len(h.node("in")._endpoint.sessions) == 3, "three peers")
            h.send("out", {"payload": "name \ud800 here"})        # a broadcast
            for ws in (a, b, c):
                assert await asyncio.wait_for(ws.recv(), 5) == "name \ufffd here"
            h.send("out", {"payload": {"id": "error", "request": "\udfff"}})
            for ws in (a, b, c):
                assert await asyncio.wait_for(ws.recv(), 5) == \
                    '{"id":"error","request":"\ufffd"}'
