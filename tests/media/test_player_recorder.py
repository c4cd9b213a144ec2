"""PlayerEndpoint and RecorderEndpoint with real media made by the tests (PyAV), viewed by a
test aiortc peer or checked by reopening the recorded file with PyAV."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aioice.ice
import av
import pytest
from media_synthetic import HEIGHT, WIDTH, encode_frames, publish, view, write_video_file


@pytest.fixture
def loopback_ice(monkeypatch):
    # aioice never offers 127.0.0.1 (docs/reference/aiortc-notes.md pitfall 2):
    # the test peers need this patch.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def subscribe(client, obj: str, *events: str) -> None:
    for event in events:
        await client.result("subscribe", {"object": obj, "type": event})


@pytest.mark.parametrize(("codec", "name"), [("h264", "clip.mp4"), ("vp8", "clip.webm")])
async def test_player_file_to_webrtc_passes_encoded_media_through(
    loopback_ice, client, server, media_dir, codec, name
):
    write_video_file(media_dir / name, codec=codec, seconds=2.5)
    pipeline = await client.create("MediaPipeline")
    player = await client.create(
        "PlayerEndpoint", mediaPipeline=pipeline, uri=f"file://{media_dir}/{name}",
        useEncodedMedia=True,
    )  # fmt: skip
    viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(player, "connect", sink=viewer)
    await subscribe(client, player, "EndOfStream", "UriEndpointStateChanged")
    pc, counter = await view(client, viewer)
    try:
        await client.invoke(player, "play")
        assert (await client.event("UriEndpointStateChanged"))["data"]["state"] == "START"
        await counter.wait_for(20)
        assert counter.sizes == {(WIDTH, HEIGHT)}
        hub = server.media_set.objects[player].outputs["video"]
        assert hub.source_format == codec
        # The viewer negotiated the file's codec: nothing is encoded (the key-frame bridge
        # only follows the source).
        assert hub._transcoder.targets == set()
        assert await client.invoke(player, "isMediaTranscoding", mediaType="VIDEO") is False
        info = await client.invoke(player, "getVideoInfo")
        assert info["__type__"] == "VideoInfo" and 2000 <= info["duration"] <= 3000
        assert info["isSeekable"] is True
        assert await client.invoke(player, "getState") == "START"
        eos = await client.event("EndOfStream", timeout=10)
        assert eos["object"] == player
        assert await client.invoke(player, "getState") == "STOP"
        assert counter.count >= 45  # most of the 75 frames, in real time
    finally:
        counter.task.cancel()
        await pc.close()


async def test_player_transcodes_when_codecs_differ(loopback_ice, client, server, media_dir):
    """An MPEG-4 Part 2 file cannot be passed to WebRTC: it is decoded and encoded once."""
    path = media_dir / "clip.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        encode_frames(container, stream, 90)

    pipeline = await client.create("MediaPipeline")
    player = await client.create("PlayerEndpoint", mediaPipeline=pipeline, uri=str(path))
    viewers = [await client.create("WebRtcEndpoint", mediaPipeline=pipeline) for _ in range(2)]
    peers = []
    for viewer in viewers:
        await client.invoke(player, "connect", sink=viewer, mediaType="VIDEO")
        peers.append(await view(client, viewer))
    await subscribe(client, player, "MediaTranscodingStateChanged")
    try:
        await client.invoke(player, "play")
        for _, counter in peers:
            await counter.wait_for(15)
            assert counter.sizes == {(WIDTH, HEIGHT)}
        event = await client.event("MediaTranscodingStateChanged")
        assert event["data"]["state"] == "TRANSCODING"
        assert await client.invoke(player, "isMediaTranscoding", mediaType="VIDEO") is True
        hub = server.media_set.objects[player].outputs["video"]
        # One encoder for both viewers (they negotiated the same codec).
        assert len(hub._transcoder._encoders) == 1
    finally:
        for pc, counter in peers:
            counter.task.cancel()
            await pc.close()


async def test_player_pause_seek_and_stop(client, media_dir):
    write_video_file(media_dir / "long.mp4", seconds=4)
    pipeline = await client.create("MediaPipeline")
    player = await client.create("PlayerEndpoint", mediaPipeline=pipeline, uri="long.mp4")
    not_playing = await client.call(
        "invoke",
        {"object": player, "operation": "setPosition", "operationParams": {"position": 1000}},
    )
    assert not_playing["error"]["code"] == 40700
    await client.invoke(player, "play")
    await asyncio.sleep(0.5)
    await client.invoke(player, "pause")
    assert await client.invoke(player, "getState") == "PAUSE"
    paused_at = await client.invoke(player, "getPosition")
    await asyncio.sleep(0.4)
    assert await client.invoke(player, "getPosition") == paused_at
    await client.invoke(player, "setPosition", position=3000)
    await client.invoke(player, "play")
    await asyncio.sleep(0.4)
    assert await client.invoke(player, "getPosition") >= 2500
    await client.invoke(player, "stop")
    assert await client.invoke(player, "getState") == "STOP"
    await client.invoke(player, "stop")  # wrong state: not an error, as in KMS


def frames_in(path: Path) -> tuple[int, set[tuple[int, int]]]:
    with av.open(str(path)) as container:
        sizes = set()
        count = 0
        for frame in container.decode(video=0):
            count += 1
            sizes.add((frame.width, frame.height))
    return count, sizes


@pytest.mark.parametrize(
    ("profile", "name"), [("MP4_VIDEO_ONLY", "rec.mp4"), ("WEBM_VIDEO_ONLY", "rec.webm")]
)
async def test_recorder_of_a_webrtc_publisher(loopback_ice, client, media_dir, profile, name):
    pipeline = await client.create("MediaPipeline")
    publisher = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    recorder = await client.create(
        "RecorderEndpoint", mediaPipeline=pipeline, uri=f"file://{media_dir}/{name}",
        mediaProfile=profile,
    )  # fmt: skip
    await client.invoke(publisher, "connect", sink=recorder)
    await subscribe(client, recorder, "Recording", "Stopped")
    pc = await publish(client, publisher)
    try:
        await client.invoke(recorder, "record")
        assert (await client.event("Recording"))["object"] == recorder
        await asyncio.sleep(2)
        await client.invoke(recorder, "stopAndWait")
        assert (await client.event("Stopped"))["object"] == recorder
    finally:
        await pc.close()
    # Right after stopAndWait the file is complete and playable.
    count, sizes = frames_in(media_dir / name)
    assert sizes == {(WIDTH, HEIGHT)}
    assert count >= 20


async def test_recorder_mp4_with_audio_track_from_player_stops_on_end_of_stream(client, media_dir):
    write_video_file(media_dir / "in.webm", codec="vp8", seconds=1.5)
    pipeline = await client.create("MediaPipeline")
    player = await client.create("PlayerEndpoint", mediaPipeline=pipeline, uri="in.webm")
    recorder = await client.create(
        "RecorderEndpoint", mediaPipeline=pipeline, uri="out.mp4", mediaProfile="MP4",
        stopOnEndOfStream=True,
    )  # fmt: skip
    await client.invoke(player, "connect", sink=recorder)
    await subscribe(client, recorder, "Stopped")
    await client.invoke(recorder, "record")
    await client.invoke(player, "play")
    await client.event("Stopped", timeout=10)
    assert await client.invoke(recorder, "getState") == "STOP"
    count, sizes = frames_in(media_dir / "out.mp4")
    assert sizes == {(WIDTH, HEIGHT)} and count >= 30


async def test_releasing_a_recording_pipeline_finishes_the_file(
    loopback_ice, client, server, media_dir
):
    pipeline = await client.create("MediaPipeline")
    publisher = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    recorder = await client.create(
        "RecorderEndpoint", mediaPipeline=pipeline, uri="released.webm",
        mediaProfile="WEBM_VIDEO_ONLY",
    )  # fmt: skip
    await client.invoke(publisher, "connect", sink=recorder, mediaType="VIDEO")
    pc = await publish(client, publisher)
    try:
        await client.invoke(recorder, "record")
        await asyncio.sleep(1.5)
        await client.invoke(recorder, "stop")
        await client.result("release", {"object": pipeline})  # at once, as users do
    finally:
        await pc.close()
    count, _ = frames_in(media_dir / "released.webm")
    assert count >= 10
    assert server.media_set.objects == {}


@pytest.mark.parametrize(
    ("profile", "name", "kinds"),
    [
        ("WEBM", "av.webm", ["audio", "video"]),
        ("MP4_AUDIO_ONLY", "a.mp4", ["audio"]),
        ("WEBM_AUDIO_ONLY", "a.webm", ["audio"]),
    ],
)
async def test_recorder_profiles_with_audio(loopback_ice, client, media_dir, profile, name, kinds):
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack
    from media_synthetic import SyntheticVideo, trickle_from_server

    pipeline = await client.create("MediaPipeline")
    publisher = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    recorder = await client.create(
        "RecorderEndpoint", mediaPipeline=pipeline, uri=name, mediaProfile=profile
    )
    await client.invoke(publisher, "connect", sink=recorder)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(SyntheticVideo())
    await pc.setLocalDescription(await pc.createOffer())
    await subscribe(client, publisher, "IceCandidateFound", "IceGatheringDone")
    answer = await client.invoke(publisher, "processOffer", offer=pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await client.invoke(publisher, "gatherCandidates")
    await trickle_from_server(client, publisher, pc)
    try:
        await client.invoke(recorder, "record")
        await asyncio.sleep(2)
        await client.invoke(recorder, "stopAndWait")
    finally:
        await pc.close()
    with av.open(str(media_dir / name)) as container:
        assert sorted(s.type for s in container.streams) == kinds
        audio = sum(1 for _ in container.decode(audio=0))
    assert audio > 20
