"""Fuzzed signaling (issue 12: "no client can hurt another"). Hypothesis sends thousands of
hostile frames over six sockets: protocol messages with wrong, missing and extreme fields (lone
surrogates, 400-digit numbers, NaN, null candidates, internal URLs, other sockets' sessions),
invalid JSON, deep nesting, binary frames. Throughout, one well-behaved client publishes and
watches its own webcam session: after every batch its `sessions` request is answered with its
session, it never gets an error, and its video keeps flowing. Every error a fuzzing socket gets
is a documented one (never "internal error"), and when the fuzzing sockets close nothing of
theirs is left on the media server.

Bounded by ``EXAMPLES`` batches of 4 to ``BATCH`` frames (about 3 000 frames, under a minute);
``FUZZ_EXAMPLES`` in the environment changes the number of batches.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from demokit import DemoApp, SignalingClient, peer_offer, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(600),
              pytest.mark.usefixtures("loopback_ice")]

SOCKETS = 6
BATCH = 12
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
GOOD = "GOOD"  # replaced by the well-behaved client's session id

STATS: dict[str, Any] = {"batches": 0, "frames": 0, "errors": 0, "reconnects": 0}


@pytest.fixture(scope="module")
def demo_env() -> dict[str, str]:
    return {"PLAYER_ALLOW": ""}  # no internal source may be fetched, whatever is played


# -- what the fuzzing sockets send ----------------------------------------------------------------

lone = st.sampled_from(["\ud800", "\udfff", "a\udbffb", "\udc00x"])
texts = st.text(max_size=30) | lone | st.sampled_from(["", " ", "x" * 200])
numbers = (st.integers() | st.integers(min_value=-10 ** 400, max_value=10 ** 400)
           | st.floats(allow_nan=True, allow_infinity=True) | st.booleans())
scalars = st.none() | numbers | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(texts, inner, max_size=4), max_leaves=12)
session_ids = st.sampled_from([GOOD, "s1", "s2", "fuzz-0", "a/b", "x" * 65]) | texts | numbers
urls = st.sampled_from([
    "file:///etc/passwd", "file:///nonexistent.mp4", "http://127.0.0.1:9/x.m3u8",
    "http://169.254.169.254/latest/meta-data/", "rtsp://10.0.0.1/cam", "https://[::1]/a",
    "http://localhost:1/a", "ftp://x/y", "rtsp://", "http://"]) | texts
candidates = st.fixed_dictionaries({}, optional={
    "candidate": texts | st.just("candidate:1 1 udp 2122260223 127.0.0.1 9 typ host"),
    "sdpMid": st.none() | texts | numbers, "sdpMLineIndex": st.none() | numbers | texts,
}) | values
stats = st.fixed_dictionaries({}, optional={
    name: st.none() | numbers | texts
    for name in ("frameRate", "width", "height", "bitrate", "packetsLost")}) | values
message = st.fixed_dictionaries(
    {"id": st.sampled_from(["start", "play", "viewer", "onIceCandidate", "stop", "record",
                            "stopRecord", "sessions", "recordings", "stats"]) | texts
     | numbers},
    optional={"sessionId": session_ids, "kind": st.sampled_from(["webcam", "screen"]) | texts,
              "sdpOffer": st.just("v=0\r\n") | texts | values, "url": urls,
              "source": session_ids, "candidate": candidates, "stats": stats,
              "name": texts | values, "profile": st.sampled_from(["MP4", "AVI"]) | values,
              "round": numbers, "extra": values})


def as_frame(value: Any) -> str:
    return json.dumps(value).replace(f'"{GOOD}"', '"GOOD_ID"')  # NaN stays: invalid JSON


frames = (message.map(as_frame)
          | values.map(json.dumps)
          | st.text(max_size=100)                                   # not JSON, mostly
          | st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n)
          | st.binary(max_size=64))                                  # a binary frame
batches = st.lists(st.tuples(st.integers(0, SOCKETS - 1), frames), min_size=4, max_size=BATCH)


# -- the test -------------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def arena(demo_app: DemoApp) -> AsyncIterator[dict[str, Any]]:
    """The well-behaved client (a webcam session watched by itself) and six fuzzing sockets,
    for the whole module (the last test checks what the fuzzing left)."""
    good = await demo_app.connect()
    source = await good.publish(name="good")
    _, frames_seen = await good.watch(source)
    await frames_seen.wait_for(5)
    state: dict[str, Any] = {"good": good, "source": source, "frames": frames_seen,
                             "fuzzers": [await demo_app.connect() for _ in range(SOCKETS)]}
    yield state
    for client in [good, *state["fuzzers"]]:
        await client.close()


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=batches)
async def test_fuzzing_sockets_never_hurt_a_well_behaved_client(
        demo_app: DemoApp, arena: dict[str, Any], batch: list[tuple[int, Any]]) -> None:
    good: SignalingClient = arena["good"]
    source: str = arena["source"]
    fuzzers: list[SignalingClient] = arena["fuzzers"]
    for index, frame in batch:
        client = fuzzers[index]
        if client.ws is None or client.ws.closed:
            client = fuzzers[index] = await demo_app.connect()
            STATS["reconnects"] += 1
        if isinstance(frame, bytes):
            await client.ws.send_bytes(frame)
        else:
            await client.send(frame.replace("GOOD_ID", source))
    STATS["batches"] += 1
    STATS["frames"] += len(batch)
    # The well-behaved client is served at once and keeps its session.
    listed = await good.request({"id": "sessions"}, "sessions")
    mine = [s for s in listed["sessions"] if s["sessionId"] == source]
    assert mine and mine[0]["owner"] == good.connection_id, listed
    assert good.messages("error") == []


async def test_a_lone_surrogate_is_refused_where_it_enters(demo_app: DemoApp,
                                                           arena: dict[str, Any]) -> None:
    """Issue 12, point 1: a session named "\\ud800" (valid JSON) used to stop the sessions
    answers and broadcasts for every client, /api/sessions and the dashboard; an id with a lone
    surrogate got no error reply at all."""
    client = await demo_app.connect()
    try:
        offer = await peer_offer()
        start = '{"id": "start", "name": "\\ud800", "sdpOffer": ' + json.dumps(offer) + "}"
        for frame in (start,
                      '{"id": "\\ud800"}', '{"id": "stop", "sessionId": "\\udfff"}'):
            error = await client.error_for(frame, timeout=10)
            assert set(error) == {"id", "message"}, error  # nothing echoed
            assert error["message"].startswith("invalid JSON: lone surrogate \\u"), error
            assert error["message"].endswith("in a string: text must be valid Unicode")
        for session in demo_app.global_context("sessions").values():
            session["name"].encode()  # every name has a UTF-8 form (raises otherwise)
        listed = await arena["good"].request({"id": "sessions"}, "sessions")
        assert arena["source"] in [s["sessionId"] for s in listed["sessions"]]
        async with aiohttp.ClientSession() as http:
            async with http.get(demo_app.url + "/api/sessions",
                                timeout=aiohttp.ClientTimeout(total=10)) as response:
                assert response.status == 200
            async with http.ws_connect(demo_app.url + "/dashboard-events") as dashboard:
                snapshot = json.loads((await dashboard.receive(timeout=10)).data)
        assert snapshot["id"] == "snapshot"
        assert arena["source"] in [s["sessionId"] for s in snapshot["sessions"]]
    finally:
        await client.close()




async def test_nothing_was_hurt_by_the_fuzzing(demo_app: DemoApp, arena: dict[str, Any]
                                               ) -> None:
    fuzz_state = arena
    good: SignalingClient = fuzz_state["good"]
    source = fuzz_state["source"]
    before = fuzz_state["frames"].count
    await fuzz_state["frames"].wait_for(before + 30)  # its video still flows
    errors = [m["message"] for c in fuzz_state["fuzzers"] for m in c.messages("error")]
    STATS["errors"] = len(errors)
    internal = [e for e in errors if e.startswith("internal error")]
    assert internal == [], internal[:10]
    assert STATS["frames"] >= min(EXAMPLES, 300) * 2
    async with aiohttp.ClientSession() as http, \
            http.get(demo_app.url + "/api/sessions") as response:
        assert response.status == 200
        live = (await response.json())["sessions"]
    assert [s["sessionId"] for s in live if s["kind"] != "viewer"] == [source]
    for client in fuzz_state["fuzzers"]:
        await client.close()
    await wait_until(lambda: set(demo_app.global_context("sessions")) == {
        source, *[s["sessionId"] for s in live if s["source"] == source]},
        "the fuzzing sockets' sessions to be released")
    assert len(await demo_app.pipelines()) == 1
    assert good.messages("error") == []
    print(f"\nsignaling fuzz: {STATS['batches']} batches, {STATS['frames']} frames over "
          f"{SOCKETS} sockets, {STATS['errors']} error replies (0 internal), "
          f"{STATS['reconnects']} sockets reopened, 0 failures")
