"""Dependencies killed mid-session (issue 12, points 2 and 10). The embedded media server is
killed (SIGKILL) while a webcam session is watched and recorded: the publisher and the viewer
are told (`stopped`, reason `media-error`), nothing is listed as live any more, the session rows
are closed with that reason, no unplayable recording is listed or served, and a new session
works on the restarted server. The embedded PostgreSQL is killed while a session runs: the
session goes on, requests that need the database are answered (an error at worst, never
silence), the server is back at once, and what follows is stored."""

from __future__ import annotations

import asyncio
import os
import signal

import av
import pytest
from demokit import DemoApp, SignalingClient, wait_until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300),
              pytest.mark.usefixtures("loopback_ice")]


def decodable(path) -> bool:
    try:
        with av.open(str(path)) as container:
            return any(True for _ in container.decode(video=0))
    except (av.error.FFmpegError, OSError):
        return False


async def answer_or_error(client: SignalingClient, request: dict, answer: str) -> dict:
    """The answer to ``request``, or the error it got: never nothing."""
    before = len(client.received)
    await client.send(request)

    def found() -> dict | None:
        return next((m for m in client.received[before:] if m.get("id") in (answer, "error")),
                    None)
    return await wait_until(found, f"an answer to {request}", timeout=30)


async def test_media_server_killed_mid_session(demo_app: DemoApp, clients) -> None:
    publisher, watcher = await clients(), await clients()
    source = await publisher.publish(name="doomed")
    viewer, frames = await watcher.watch(source)
    await frames.wait_for(10)
    recording = await publisher.request({"id": "record", "sessionId": source}, "recording")
    await asyncio.sleep(1.5)

    kms = demo_app.harness.node("kms").embedded  # type: ignore[attr-defined]
    old_pid = kms.pid
    os.kill(old_pid, signal.SIGKILL)

    ended = await publisher.expect("stopped", timeout=60, sessionId=source)
    assert ended["reason"] == "media-error"
    assert (await watcher.expect("stopped", sessionId=viewer))["reason"] == "media-error"
    assert demo_app.global_context("sessions") == {}
    await wait_until(lambda: any(m["sessions"] == [] for m in watcher.messages("sessions")),
                     "an empty sessions list broadcast")
    status, api = await demo_app.get("/api/sessions")
    assert status == 200 and api["sessions"] == []
    rows = await demo_app.rows_eventually(
        2, "SELECT session_id, end_reason FROM sessions WHERE session_id = ANY($1) "
           "AND ended_at IS NOT NULL", [source, viewer])
    assert {r["end_reason"] for r in rows} == {"media-error"}

    # Nothing broken is listed or served: the killed recording only if it plays.
    status, listed = await demo_app.get("/api/recordings")
    assert status == 200
    for entry in listed["recordings"]:
        assert decodable(demo_app.media_dir / entry["file"]), entry
    if recording["file"] not in [r["file"] for r in listed["recordings"]]:
        status, _ = await demo_app.get(f"/recordings/{recording['file']}")
        assert status == 404

    # Recovery: the restarted media server serves a new session.
    assert kms.running and kms.pid != old_pid
    again = await publisher.publish(name="after")
    _, frames = await watcher.watch(again)
    await frames.wait_for(5)
    await publisher.request({"id": "stop", "sessionId": again}, "stopped")


async def test_postgres_killed_mid_session(demo_app: DemoApp, clients) -> None:
    publisher = await clients()
    source = await publisher.publish(name="steady")
    db = demo_app.harness.node("db")
    server = db.embedded  # type: ignore[attr-defined]
    old_pid = server.pid
    os.kill(old_pid, signal.SIGKILL)

    # The session is not hurt; a request that needs the database is answered anyway.
    listed = await publisher.request({"id": "sessions"}, "sessions")
    assert [s["sessionId"] for s in listed["sessions"]] == [source]
    reply = await answer_or_error(publisher, {"id": "recordings"}, "recordings")
    assert reply["id"] in ("recordings", "error")

    # Back at once, by itself.
    await wait_until(lambda: server.running and server.pid != old_pid
                     and db.last_status.get("fill") == "green", "PostgreSQL restarted",
                     timeout=60)
    await publisher.request({"id": "stop", "sessionId": source}, "stopped")
    later = await publisher.publish(name="later")
    await publisher.request({"id": "stop", "sessionId": later}, "stopped")
    rows = await demo_app.rows_eventually(
        1, "SELECT end_reason FROM sessions WHERE session_id = $1 AND ended_at IS NOT NULL",
        later)
    assert rows == [{"end_reason": "stop"}]
    status, api = await demo_app.get("/api/sessions")
    assert status == 200 and later in [r["sessionId"] for r in api["recent"]]
