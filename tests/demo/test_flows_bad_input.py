"""Bad input to the /signaling protocol (issue 5, "Bad input"): every case is an {id: error}
to the client that sent it, and nothing else changes: the other client's session keeps its
pipeline and gets no message, no half-built pipeline stays on the media server, and the
offending socket keeps working.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio
from conftest import DemoApp, SignalingClient, wait_until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120),
              pytest.mark.usefixtures("loopback_ice")]

OFFER = "v=0\r\n"  # never reaches the media server in the cases that use it


@pytest_asyncio.fixture(loop_scope="module")
async def pair(demo_app: DemoApp, clients) -> tuple[SignalingClient, SignalingClient, str]:
    """(client, bystander, the bystander's webcam session)."""
    bystander = await clients()
    kept = await bystander.publish()
    return await clients(), bystander, kept


async def check_nothing_else_changed(app: DemoApp, client: SignalingClient,
                                     bystander: SignalingClient, kept: str) -> None:
    assert set(app.global_context("sessions")) == {kept}
    assert len(await app.pipelines()) == 1
    assert bystander.messages("error") == []
    # The socket that sent bad input still works.
    listed = await client.request({"id": "sessions"}, "sessions")
    assert [s["sessionId"] for s in listed["sessions"]] == [kept]


CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("unknown id", {"id": "dance"},
     {"id": "error", "request": "dance", "message": "unknown message id 'dance'"}),
    ("not JSON", "{not json", {"message": {"startswith": "invalid JSON: "}}),
    ("a JSON list", "[1, 2]", {"message": "a message must be a JSON object with an id"}),
    ("a JSON string", '"start"', {"message": "a message must be a JSON object with an id"}),
    ("no id", {"sessionId": "x"}, {"message": "a message must be a JSON object with an id"}),
    ("id not a string", {"id": 7}, {"message": "a message must be a JSON object with an id"}),
    ("deeply nested JSON", "[" * 5000 + "]" * 5000,
     {"message": "message nested too deeply (more than 32 levels)"}),
    ("nesting inside strings does not count", json.dumps({"id": "x", "s": "[" * 100}),
     {"message": "unknown message id 'x'"}),
    ("stop without sessionId", {"id": "stop"},
     {"request": "stop", "message": "missing sessionId"}),
    ("stop of an unknown session", {"id": "stop", "sessionId": "nope"},
     {"request": "stop", "sessionId": "nope", "message": "unknown session 'nope'"}),
    ("sessionId not a string", {"id": "stop", "sessionId": ["x"]},
     {"message": "invalid sessionId"}),
    ("candidate for an unknown session",
     {"id": "onIceCandidate", "sessionId": "nope", "candidate": {"candidate": "c"}},
     {"request": "onIceCandidate", "message": "unknown session 'nope'"}),
    ("candidate for another client's session",
     {"id": "onIceCandidate", "sessionId": "KEPT", "candidate": {"candidate": "c"}},
     {"message": "session 'KEPT' belongs to another connection"}),
    ("viewer of a session that does not exist",
     {"id": "viewer", "source": "ghost", "sdpOffer": OFFER},
     {"request": "viewer", "message": "unknown session 'ghost'"}),
    ("viewer without source", {"id": "viewer", "sdpOffer": OFFER},
     {"message": "missing source"}),
    ("viewer without offer", {"id": "viewer", "source": "KEPT"},
     {"message": "missing sdpOffer"}),
    ("start without offer", {"id": "start", "kind": "webcam"}, {"message": "missing sdpOffer"}),
    ("start of an unknown kind", {"id": "start", "kind": "hologram", "sdpOffer": OFFER},
     {"message": "kind must be webcam, screen or group"}),
    ("start with an invalid sessionId", {"id": "start", "sessionId": "a/b", "sdpOffer": OFFER},
     {"message": "invalid sessionId: 1 to 64 characters A-Z a-z 0-9 _ -"}),
    ("start with a sessionId in use", {"id": "start", "sessionId": "KEPT", "sdpOffer": OFFER},
     {"message": "session 'KEPT' already exists"}),
    ("play of a URL scheme not allowed", {"id": "play", "url": "ftp://x/y", "sdpOffer": OFFER},
     {"message": "url must be an http(s)://, rtsp(s):// or file:// URL"}),
    ("record of an unknown session", {"id": "record", "sessionId": "nope"},
     {"request": "record", "message": "unknown session 'nope'"}),
    ("record with an unknown profile",
     {"id": "record", "sessionId": "KEPT", "profile": "AVI"},
     {"message": "profile must be MP4 or MP4_VIDEO_ONLY"}),
    ("stopRecord of a session not recording", {"id": "stopRecord", "sessionId": "KEPT"},
     {"message": "session 'KEPT' is not recording"}),
    ("stats for another client's session",
     {"id": "stats", "sessionId": "KEPT", "stats": {"frameRate": 30}},
     {"message": "session 'KEPT' belongs to another connection"}),
]


@pytest.mark.parametrize(("case", "request_", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_bad_request_is_an_error_to_that_client_only(
        demo_app: DemoApp, pair, case: str, request_: Any, expected: dict[str, Any]) -> None:
    client, bystander, kept = pair
    text = request_ if isinstance(request_, str) else json.dumps(request_)
    error = await client.error_for(text.replace("KEPT", kept))
    for key, value in expected.items():
        value = value.replace("KEPT", kept) if isinstance(value, str) else value
        if isinstance(value, dict):
            assert error[key].startswith(value["startswith"]), error
        else:
            assert error[key] == value, error
    assert set(error) <= {"id", "message", "request", "sessionId"}
    await check_nothing_else_changed(demo_app, client, bystander, kept)


async def test_stats_figures_must_be_numbers(demo_app: DemoApp, pair) -> None:
    client, bystander, _ = pair
    own = await client.publish()
    for bad in ({"frameRate": "fast"}, {"width": True}, {"bitrate": 1e300},
                {"frameRate": 10 ** 400}, {"height": -(10 ** 400)}):
        error = await client.error_for({"id": "stats", "sessionId": own, "stats": bad})
        field = next(iter(bad))
        assert error["message"] == f"stats.{field} must be a number or null"
    error = await client.error_for({"id": "stats", "sessionId": own, "stats": [30]})
    assert error["message"] == "stats must be {frameRate, width, height, bitrate, packetsLost}"
    assert bystander.messages("error") == []


async def test_candidate_must_be_a_candidate(demo_app: DemoApp, pair) -> None:
    client, bystander, _ = pair
    own = await client.publish()
    for bad in (None, "candidate:1 1 udp 1 127.0.0.1 9 typ host", {"sdpMid": "0"},
                {"candidate": "c", "sdpMLineIndex": "0"},
                {"candidate": "c", "sdpMid": None, "sdpMLineIndex": 0},   # Kurento needs both
                {"candidate": "c", "sdpMid": "0", "sdpMLineIndex": None},
                {"candidate": "c", "sdpMid": "0", "sdpMLineIndex": -1}):
        error = await client.error_for({"id": "onIceCandidate", "sessionId": own,
                                        "candidate": bad})
        assert error["message"] == "candidate must be {candidate, sdpMid, sdpMLineIndex}"
    assert bystander.messages("error") == []


async def test_message_too_large_is_an_error_and_a_huge_frame_closes_only_that_socket(
        demo_app: DemoApp, pair, clients) -> None:
    client, bystander, kept = pair
    big = json.dumps({"id": "start", "sdpOffer": "x" * 70_000})
    error = await client.error_for(big)
    assert error["message"] == f"message too large ({len(big)} bytes, at most 65536)"
    await check_nothing_else_changed(demo_app, client, bystander, kept)

    # Above the websocket's 1 MiB limit the socket is closed (1009), and its sessions released.
    reckless = await clients()
    own = await reckless.publish()
    assert len(await demo_app.pipelines()) == 2
    await reckless.send(json.dumps({"id": "start", "sdpOffer": "x" * (2 * 1024 * 1024)}))
    await wait_until(lambda: reckless.close_code is not None, "the socket to close")
    assert reckless.close_code == 1009
    await wait_until(lambda: own not in demo_app.global_context("sessions"),
                     "the closed socket's session release")
    await check_nothing_else_changed(demo_app, client, bystander, kept)


async def test_binary_frame_is_an_error(demo_app: DemoApp, pair) -> None:
    client, bystander, kept = pair
    before = len(client.messages("error"))
    assert client.ws is not None
    await client.ws.send_bytes(b'{"id": "sessions"}')
    await wait_until(lambda: len(client.messages("error")) > before, "the error")
    assert client.messages("error")[-1]["message"] == \
        "binary frames are not accepted: send JSON text"
    await check_nothing_else_changed(demo_app, client, bystander, kept)


async def test_offer_the_media_server_rejects_leaves_no_pipeline(demo_app: DemoApp,
                                                                 pair) -> None:
    client, bystander, kept = pair
    error = await client.error_for({"id": "start", "sessionId": "bad-offer",
                                    "sdpOffer": "this is not SDP"})
    assert error["request"] == "start" and error["sessionId"] == "bad-offer"
    assert error["message"].startswith("media server error: ")
    await check_nothing_else_changed(demo_app, client, bystander, kept)
    # The id is free again.
    assert "bad-offer" not in demo_app.global_context("sessions")


async def test_stop_of_another_clients_session_is_refused(demo_app: DemoApp, pair) -> None:
    client, bystander, kept = pair
    error = await client.error_for({"id": "stop", "sessionId": kept})
    assert error == {"id": "error", "request": "stop", "sessionId": kept,
                     "message": f"session '{kept}' belongs to another connection"}
    await check_nothing_else_changed(demo_app, client, bystander, kept)
