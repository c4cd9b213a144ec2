"""Text that no UTF-8 string can hold (issue 12, point 1): a JSON escape such as ``"\\ud800"``
decodes to a lone surrogate, which every later step (a websocket frame, a database row, an HTTP
answer) fails on. The json node and websocket-in (``wholemsg``) refuse it where it enters, with
a clear error; valid escapes (a surrogate pair) still parse."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect

from flowengine.testing import FlowHarness, NodeHarness

pytestmark = pytest.mark.timeout(60)

LONE = ['{"id": "\\ud800"}', '{"name": "x\\udfffy"}', '["\\udbff"]', '{"\\ud800": 1}',
        b'{"id": "\\ud800"}']


@pytest.mark.parametrize("text", LONE, ids=[repr(t) for t in LONE])
async def test_the_json_node_refuses_a_lone_surrogate(text: str | bytes) -> None:
    async with NodeHarness("json") as h:
        h.send({"payload": text})
        await h.settle()
        assert h.output_now(0) == []
    [error] = h.errors
    assert "lone surrogate" in error["message"]
    assert "must be valid Unicode" in error["message"]


async def test_the_json_node_keeps_surrogate_pairs_and_big_numbers() -> None:
    async with NodeHarness("json") as h:
        h.send({"payload": '{"emoji": "\\ud83d\\ude00", "big": 123456789012345678901234567}'})
        [out] = await h.output(0)
    assert out["payload"]["emoji"] == "\U0001f600"
    assert h.errors == []


async def test_wholemsg_websocket_in_does_not_turn_a_lone_surrogate_into_a_message() -> None:
    flow = {"flow": "ws", "settings": {"http": {"port": 0, "host": "127.0.0.1"}}, "nodes": {
        "in": {"type": "websocket-in", "path": "/ws", "wholemsg": True, "wires": ["out"]},
        "out": {"type": "websocket-out", "path": "/ws"}}}
    async with FlowHarness.from_dict(flow) as h:
        h.watch_output("in")
        async with connect(f"ws://127.0.0.1:{h.runtime.http.port}/ws") as ws:
            await ws.send('{"payload": "\\ud800"}')
            await ws.send('{"payload": "fine"}')
            [raw, fine] = await h.output("in", count=2)
            # Not parsed: the frame stays the (valid UTF-8) text it was.
            assert raw["payload"] == '{"payload": "\\ud800"}'
            assert fine["payload"] == "fine"
            echoed = [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)]
            assert echoed == ['{"payload": "\\ud800"}', "fine"]
