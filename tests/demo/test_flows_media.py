"""The Kurento application's flows with real media: aiortc peers publish and watch through the
/signaling protocol (flows/README.md) against the embedded media server; recordings are
checked with PyAV, releases on the media server itself, rows in PostgreSQL.

Every test closes its clients at the end; the ``clients`` fixture then waits until the media
server holds no pipeline, so each test also checks that nothing is left behind.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from conftest import DemoApp, free_port, wait_until
from media_synthetic import HEIGHT, WIDTH, write_video_file

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120),
              pytest.mark.usefixtures("loopback_ice")]


async def test_webcam_is_published_and_watched_by_another_client(demo_app: DemoApp,
                                                                   clients) -> None:
    publisher, viewer = await clients(), await clients()
    source = await publisher.publish("webcam", name="cam 1")
    # The publisher trickled its candidates right behind the start request: they waited in
    # the session's queue until the endpoint existed, then were added (else no media flows).
    watching, frames = await viewer.watch(source)
    await frames.wait_for(20)
    assert frames.sizes == {(WIDTH, HEIGHT)}
    assert len(frames.lumas) > 5  # moving pictures

    # Both got the server's candidates (trickle ICE towards the browser).
    for client, sid in ((publisher, source), (viewer, watching)):
        found = client.messages("iceCandidate", sessionId=sid)
        assert found and all(" 127.0.0.1 " in m["candidate"]["candidate"] for m in found)
        assert set(found[0]["candidate"]) == {"candidate", "sdpMid", "sdpMLineIndex"}

    listed = await publisher.request({"id": "sessions"}, "sessions")
    by_id = {s["sessionId"]: s for s in listed["sessions"]}
    assert by_id[source] == {"sessionId": source, "kind": "webcam", "name": "cam 1",
                             "owner": publisher.connection_id,
                             "startedAt": by_id[source]["startedAt"], "viewers": 1,
                             "recording": False, "ended": False, "url": None, "source": None}
    assert by_id[watching]["kind"] == "viewer" and by_id[watching]["source"] == source
    # Every client was told about the new sessions without asking.
    await wait_until(lambda: any(len(m["sessions"]) == 2 for m in viewer.messages("sessions")),
                     "the sessions broadcast")

    # One pipeline on the media server (the viewer's endpoint is in the source's pipeline).
    assert len(await demo_app.pipelines()) == 1
    rows = await demo_app.rows_eventually(
        2, "SELECT session_id, kind, name, owner, source, ended_at FROM sessions "
        "WHERE session_id = ANY($1) ORDER BY id", [source, watching])
    assert [(r["session_id"], r["kind"], r["source"], r["ended_at"]) for r in rows] == [
        (source, "webcam", None, None), (watching, "viewer", source, None)]
    assert rows[0]["name"] == "cam 1" and rows[0]["owner"] == publisher.connection_id


async def test_session_id_chosen_by_the_server(demo_app: DemoApp, clients) -> None:
    client = await clients()
    sid = await client.publish("screen", own_id=False)
    assert len(sid) == 16 and int(sid, 16) >= 0
    viewer = await clients()
    _, frames = await viewer.watch(sid)
    await frames.wait_for(10)
    listed = await client.request({"id": "sessions"}, "sessions")
    assert [s["kind"] for s in listed["sessions"] if s["sessionId"] == sid] == ["screen"]


async def test_stop_releases_the_session_its_viewers_and_every_media_object(
        demo_app: DemoApp, clients) -> None:
    publisher, viewer = await clients(), await clients()
    source = await publisher.publish()
    watching, frames = await viewer.watch(source)
    await frames.wait_for(5)
    assert len(await demo_app.pipelines()) == 1

    stopped = await publisher.request({"id": "stop", "sessionId": source}, "stopped")
    assert stopped == {"id": "stopped", "sessionId": source, "reason": "stop"}
    told = await viewer.expect("stopped", sessionId=watching)
    assert told["reason"] == "source-stopped"
    assert await demo_app.pipelines() == []
    assert demo_app.global_context("sessions") == {}
    rows = await demo_app.rows_eventually(
        2, "SELECT session_id, end_reason FROM sessions WHERE session_id = ANY($1) "
        "AND ended_at IS NOT NULL ORDER BY id", [source, watching])
    assert [(r["session_id"], r["end_reason"]) for r in rows] == [
        (source, "stop"), (watching, "source-stopped")]
    # A stopped session is gone: stopping it again is an error for that client only.
    error = await publisher.error_for({"id": "stop", "sessionId": source})
    assert error["message"] == f"unknown session '{source}'"
    assert viewer.messages("error") == []


async def test_closed_socket_releases_its_pipelines_only(demo_app: DemoApp, clients) -> None:
    leaving, staying, watcher = await clients(), await clients(), await clients()
    gone = await leaving.publish()
    kept = await staying.publish()
    watching, frames = await watcher.watch(gone)
    assert len(await demo_app.pipelines()) == 2
    before = set(await demo_app.pipelines())

    await leaving.close()  # the tab is closed
    told = await watcher.expect("stopped", sessionId=watching)
    assert told["reason"] == "source-stopped"
    remaining = await wait_until(lambda: _one_pipeline(demo_app), "the pipeline release")
    assert set(remaining) < before
    assert set(demo_app.global_context("sessions")) == {kept}
    # The other publisher's session still works: it can be watched.
    _, frames = await watcher.watch(kept)
    await frames.wait_for(10)
    rows = await demo_app.rows_eventually(
        1, "SELECT end_reason FROM sessions WHERE session_id = $1 AND ended_at IS NOT NULL",
        gone)
    assert rows == [{"end_reason": "disconnected"}]


async def _one_pipeline(app: DemoApp) -> list[str] | None:
    pipelines = await app.pipelines()
    return pipelines if len(pipelines) == 1 else None


async def test_record_then_stop_gives_a_file_with_frames(demo_app: DemoApp, clients) -> None:
    publisher, other = await clients(), await clients()
    source = await publisher.publish()
    watching, frames = await other.watch(source)
    await frames.wait_for(5)

    # Recording a viewer's session records its source.
    started = await other.request({"id": "record", "sessionId": watching}, "recording")
    assert started["sessionId"] == source and started["profile"] == "MP4_VIDEO_ONLY"
    assert started["file"].startswith(f"rec-{source}-") and started["file"].endswith(".mp4")
    twice = await publisher.error_for({"id": "record", "sessionId": source})
    assert twice["message"] == f"session '{source}' is already recording"
    await wait_until(lambda: any(s["recording"] for m in other.messages("sessions")
                                 for s in m["sessions"] if s["sessionId"] == source),
                     "the sessions list showing the recording")
    await asyncio.sleep(2.5)

    await publisher.send({"id": "stopRecord", "sessionId": source})
    finished = await publisher.expect("recordingStopped", sessionId=source)
    also = await other.expect("recordingStopped", sessionId=source)  # every client hears it
    assert also == finished
    path = demo_app.media_dir / finished["file"]
    assert finished["file"] == started["file"]
    assert finished["size"] == path.stat().st_size > 1000
    assert finished["url"] == f"/recordings/{finished['file']}"
    assert _video_frames(path) >= 30  # about 2.5 s at 30 fps

    status, body = await demo_app.get(finished["url"])
    assert status == 200 and body == path.read_bytes()
    rows = await demo_app.rows_eventually(
        1, "SELECT session_id, profile, size FROM recordings WHERE file = $1", finished["file"])
    assert rows == [{"session_id": source, "profile": "MP4_VIDEO_ONLY",
                     "size": finished["size"]}]
    status, listed = await demo_app.get("/api/recordings")
    assert status == 200 and listed["recordings"][0]["file"] == finished["file"]
    listed = await other.request({"id": "recordings"}, "recordings")
    assert finished["file"] in [r["file"] for r in listed["recordings"]]
    not_recording = await publisher.error_for({"id": "stopRecord", "sessionId": source})
    assert not_recording["message"] == f"session '{source}' is not recording"


async def test_stopping_a_recording_session_finishes_its_file(demo_app: DemoApp,
                                                              clients) -> None:
    publisher = await clients()
    source = await publisher.publish()
    started = await publisher.request({"id": "record", "sessionId": source}, "recording")
    await asyncio.sleep(1.5)
    await publisher.request({"id": "stop", "sessionId": source}, "stopped")
    finished = await publisher.expect("recordingStopped", sessionId=source)
    assert finished["file"] == started["file"]
    assert _video_frames(demo_app.media_dir / finished["file"]) > 10
    assert await demo_app.pipelines() == []


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_player_plays_a_file_and_reports_its_end(demo_app: DemoApp, clients) -> None:
    movie = write_video_file(demo_app.media_dir / "movie.mp4", seconds=4.0)
    client, watcher = await clients(), await clients()
    player, frames = await client.play(movie.as_uri())
    await frames.wait_for(20)
    assert frames.sizes == {(WIDTH, HEIGHT)}
    # A player session can be watched like a webcam.
    _, more = await watcher.watch(player)
    await more.wait_for(5)
    assert client.messages("playEnd") == []
    end = await client.expect("playEnd", sessionId=player)
    assert end == {"id": "playEnd", "sessionId": player}
    listed = await client.request({"id": "sessions"}, "sessions")
    entry = next(s for s in listed["sessions"] if s["sessionId"] == player)
    assert entry["kind"] == "player" and entry["url"] == movie.as_uri()  # kept until stop
    await client.request({"id": "stop", "sessionId": player}, "stopped")
    assert await demo_app.pipelines() == []


async def test_player_url_that_fails_to_open_is_an_error_to_that_client_only(
        demo_app: DemoApp, clients) -> None:
    bystander, client = await clients(), await clients()
    kept = await bystander.publish()
    dead = f"http://127.0.0.1:{_closed_port()}/live/index.m3u8"
    before = len(await demo_app.pipelines())
    await client.send({"id": "play", "url": dead, "sdpOffer": await _recvonly_offer(),
                       "sessionId": "broken-source"})
    error = await client.expect("error")
    assert error["message"].startswith("cannot play URL")
    assert error["sessionId"] == "broken-source"
    # The half-built pipeline is gone; the other client's session is untouched.
    await wait_until(lambda: _count_is(demo_app, before), "the failed pipeline's release")
    assert set(demo_app.global_context("sessions")) == {kept}
    assert bystander.messages("error") == []
    # A URL the media server refuses outright (outside its media folder).
    refused = await client.error_for({"id": "play", "url": "file:///etc/passwd",
                                      "sdpOffer": await _recvonly_offer()})
    assert refused["message"] == ("cannot play URL: only files inside the media folder "
                                  "(MEDIA_DIR) can be played")
    assert len(await demo_app.pipelines()) == before


async def _count_is(app: DemoApp, count: int) -> bool:
    return len(await app.pipelines()) == count


def _closed_port() -> int:
    return free_port()  # nothing listens there


async def _recvonly_offer() -> str:
    """A browser-like receive-only offer (never connected)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp
