"""Real WebRTC through the server: aiortc peers of the test publish and view on 127.0.0.1.

Loopback candidates: aioice never offers 127.0.0.1 (docs/reference/aiortc-notes.md pitfall 2), so
the test peers get it by monkeypatching ``aioice.ice.get_host_addresses`` (the ``loopback_ice``
fixture). The server needs no patch: listening on 127.0.0.1, it offers ICE host candidates on
127.0.0.1 only (``MediaServerSettings.ice_addresses``). Every peer has an empty
``RTCConfiguration``: no STUN server is ever contacted (pitfall 1).
"""

from __future__ import annotations

import asyncio

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from media_synthetic import (
    HEIGHT,
    WIDTH,
    FrameCounter,
    SyntheticVideo,
    local_candidates,
    publish,
    strip_candidates,
    trickle_from_server,
    view,
)


@pytest.fixture
def loopback_ice(monkeypatch):
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def new_peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def test_publisher_to_viewer_pass_through(loopback_ice, client, server):
    pipeline = await client.create("MediaPipeline")
    publisher = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(publisher, "connect", sink=viewer)
    for endpoint in (publisher, viewer):
        for event in ("IceCandidateFound", "IceGatheringDone"):
            await client.result("subscribe", {"object": endpoint, "type": event})
    for event in ("MediaFlowOutStateChanged", "ConnectionStateChanged"):
        await client.result("subscribe", {"object": publisher, "type": event})
    await client.result("subscribe", {"object": viewer, "type": "MediaFlowInStateChanged"})

    # Publisher: the test's peer offers; its candidates go through addIceCandidate *before*
    # processOffer (the server must buffer them: pitfall 4), none travel in the SDP.
    pub_pc = new_peer()
    pub_pc.addTrack(SyntheticVideo())
    await pub_pc.setLocalDescription(await pub_pc.createOffer())
    for candidate in local_candidates(pub_pc):
        await client.invoke(publisher, "addIceCandidate", candidate=candidate)
    answer = await client.invoke(
        publisher, "processOffer", offer=strip_candidates(pub_pc.localDescription.sdp)
    )
    assert "a=candidate" not in answer
    await pub_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await client.invoke(publisher, "gatherCandidates")
    found = await trickle_from_server(client, publisher, pub_pc)
    assert found and all(" 127.0.0.1 " in c["candidate"] for c in found)
    assert all(c["__type__"] == "IceCandidate" and c["sdpMid"] == "0" for c in found)

    # Viewer: receive-only peer, server candidates by events again.
    view_pc = new_peer()
    view_pc.addTransceiver("video", direction="recvonly")
    tracks: asyncio.Queue = asyncio.Queue()
    view_pc.on("track", tracks.put_nowait)
    await view_pc.setLocalDescription(await view_pc.createOffer())
    answer = await client.invoke(
        viewer, "processOffer", offer=strip_candidates(view_pc.localDescription.sdp)
    )
    assert "a=sendonly" in answer
    await view_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    for candidate in local_candidates(view_pc):
        await client.invoke(viewer, "addIceCandidate", candidate=candidate)
    await client.invoke(viewer, "gatherCandidates")
    await trickle_from_server(client, viewer, view_pc)

    counter = FrameCounter(await asyncio.wait_for(tracks.get(), 10))
    try:
        await counter.wait_for(30)
        assert counter.sizes == {(WIDTH, HEIGHT)}
        assert len(counter.lumas) > 5  # moving pictures, not one frame repeated

        # Encoded media went through untouched: nothing decoded or encoded on the server.
        assert await client.invoke(publisher, "isMediaTranscoding", mediaType="VIDEO") is False
        hub = server.media_set.objects[publisher].outputs["video"]
        assert hub._transcoder is None and hub.source_format in ("vp8", "h264")

        assert await client.invoke(publisher, "getConnectionState") == "CONNECTED"
        assert await client.invoke(publisher, "getMediaState") == "CONNECTED"
        flowing = await client.event("MediaFlowOutStateChanged")
        assert flowing["object"] == publisher
        assert flowing["data"]["state"] == "FLOWING" and flowing["data"]["mediaType"] == "VIDEO"
        flowing_in = await client.event("MediaFlowInStateChanged")
        assert flowing_in["object"] == viewer and flowing_in["data"]["state"] == "FLOWING"
        assert await client.invoke(viewer, "isMediaFlowingIn", mediaType="VIDEO") is True

        stats = await client.invoke(publisher, "getStats", mediaType="VIDEO")
        inbound = [s for s in stats.values() if s["type"] == "inboundrtp"]
        assert inbound and inbound[0]["packetsReceived"] > 0 and inbound[0]["bytesReceived"] > 0
        out_stats = await client.invoke(viewer, "getStats")
        outbound = [s for s in out_stats.values() if s["type"] == "outboundrtp"]
        assert outbound and outbound[0]["packetsSent"] > 0
        pairs = await client.invoke(publisher, "getICECandidatePairs")
        assert pairs and "127.0.0.1" in pairs[0]["localCandidate"]
    finally:
        counter.task.cancel()
        await pub_pc.close()
        await view_pc.close()
    await client.result("release", {"object": pipeline})
    assert server.media_set.objects == {}


async def test_many_viewers_share_one_source_without_transcoding(loopback_ice, client, server):
    """Fan-out: three viewers of one publisher, each getting frames, one hub, no decoding."""
    pipeline = await client.create("MediaPipeline")
    publisher = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    pub_pc = new_peer()
    pub_pc.addTrack(SyntheticVideo())
    await pub_pc.setLocalDescription(await pub_pc.createOffer())
    answer = await client.invoke(publisher, "processOffer", offer=pub_pc.localDescription.sdp)
    await pub_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await client.result("subscribe", {"object": publisher, "type": "IceCandidateFound"})
    await client.result("subscribe", {"object": publisher, "type": "IceGatheringDone"})
    await client.invoke(publisher, "gatherCandidates")
    await trickle_from_server(client, publisher, pub_pc)

    peers, counters = [], []
    for _ in range(3):
        viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline, sendonly=True)
        await client.invoke(publisher, "connect", sink=viewer, mediaType="VIDEO")
        pc = new_peer()
        pc.addTransceiver("video", direction="recvonly")
        tracks: asyncio.Queue = asyncio.Queue()
        pc.on("track", tracks.put_nowait)
        await pc.setLocalDescription(await pc.createOffer())
        # Non-trickle peer: its candidates are in the offer; the server's come as events.
        await client.result("subscribe", {"object": viewer, "type": "IceCandidateFound"})
        await client.result("subscribe", {"object": viewer, "type": "IceGatheringDone"})
        answer = await client.invoke(viewer, "processOffer", offer=pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await client.invoke(viewer, "gatherCandidates")
        await trickle_from_server(client, viewer, pc)
        peers.append(pc)
        counters.append(FrameCounter(await asyncio.wait_for(tracks.get(), 10)))
    try:
        for counter in counters:
            await counter.wait_for(20)
        sinks = await client.invoke(publisher, "getSinkConnections", mediaType="VIDEO")
        assert len(sinks) == 3
        hub = server.media_set.objects[publisher].outputs["video"]
        assert hub._transcoder is None
        assert len(hub.readers[hub.source_format]) == 3
    finally:
        for counter in counters:
            counter.task.cancel()
        for pc in [pub_pc, *peers]:
            await pc.close()


async def test_audio_and_video_pass_through_and_recording_both(
    loopback_ice, client, server, media_dir
):
    from aiortc.mediastreams import AudioStreamTrack
    from media_synthetic import FrameCounter

    pipeline = await client.create("MediaPipeline")
    publisher = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    recorder = await client.create(
        "RecorderEndpoint", mediaPipeline=pipeline, uri="both.mp4", mediaProfile="MP4"
    )
    await client.invoke(publisher, "connect", sink=viewer)
    await client.invoke(publisher, "connect", sink=recorder)

    pub_pc = new_peer()
    pub_pc.addTrack(AudioStreamTrack())
    pub_pc.addTrack(SyntheticVideo())
    await pub_pc.setLocalDescription(await pub_pc.createOffer())
    answer = await client.invoke(publisher, "processOffer", offer=pub_pc.localDescription.sdp)
    await pub_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    for event in ("IceCandidateFound", "IceGatheringDone"):
        await client.result("subscribe", {"object": publisher, "type": event})
        await client.result("subscribe", {"object": viewer, "type": event})
    await client.invoke(publisher, "gatherCandidates")
    await trickle_from_server(client, publisher, pub_pc)

    view_pc = new_peer()
    view_pc.addTransceiver("audio", direction="recvonly")
    view_pc.addTransceiver("video", direction="recvonly")
    tracks: asyncio.Queue = asyncio.Queue()
    view_pc.on("track", tracks.put_nowait)
    await view_pc.setLocalDescription(await view_pc.createOffer())
    answer = await client.invoke(viewer, "processOffer", offer=view_pc.localDescription.sdp)
    await view_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await client.invoke(viewer, "gatherCandidates")
    await trickle_from_server(client, viewer, view_pc)
    received = {}
    for _ in range(2):
        track = await asyncio.wait_for(tracks.get(), 10)
        received[track.kind] = FrameCounter(track)
    try:
        await client.invoke(recorder, "record")
        await received["video"].wait_for(30)
        await received["audio"].wait_for(50)  # 20 ms Opus frames
        audio_hub = server.media_set.objects[publisher].outputs["audio"]
        assert audio_hub.source_format == "opus"
        assert audio_hub.readers.get("opus")  # the viewer reads Opus as it came
        assert "raw" in audio_hub.readers  # the recorder reads it decoded (shared decode)
        await client.invoke(recorder, "stopAndWait")
    finally:
        for counter in received.values():
            counter.task.cancel()
        await pub_pc.close()
        await view_pc.close()
    import av

    with av.open(str(media_dir / "both.mp4")) as container:
        kinds = sorted(s.type for s in container.streams)
        assert kinds == ["audio", "video"]
        audio_frames = sum(1 for _ in container.decode(audio=0))
    with av.open(str(media_dir / "both.mp4")) as container:
        video_frames = sum(1 for _ in container.decode(video=0))
    assert audio_frames > 20 and video_frames > 20


async def test_server_generates_the_offer_and_processes_the_answer(loopback_ice, client):
    pipeline = await client.create("MediaPipeline")
    publisher = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(publisher, "connect", sink=viewer, mediaType="VIDEO")
    pub_pc = await publish(client, publisher)

    view_pc = new_peer()
    tracks: asyncio.Queue = asyncio.Queue()
    view_pc.on("track", tracks.put_nowait)
    for event in ("IceCandidateFound", "IceGatheringDone"):
        await client.result("subscribe", {"object": viewer, "type": event})
    await client.invoke(viewer, "gatherCandidates")  # before negotiation: candidates follow
    offer = await client.invoke(
        viewer, "generateOffer", options={"offerToReceiveAudio": False, "__type__": "OfferOptions"}
    )
    assert "a=candidate" not in offer
    # W3C semantics: not receiving audio still sends it (the endpoint is not recvonly).
    audio, video = offer.split("m=audio")[1].split("m=video")
    assert "a=sendonly" in audio and "a=sendrecv" in video
    await view_pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await trickle_from_server(client, viewer, view_pc)
    await view_pc.setLocalDescription(await view_pc.createAnswer())
    for candidate in local_candidates(view_pc):
        await client.invoke(viewer, "addIceCandidate", candidate=candidate)
    await client.invoke(viewer, "processAnswer", answer=view_pc.localDescription.sdp)
    twice = await client.call(
        "invoke",
        {"object": viewer, "operation": "processAnswer", "operationParams": {"answer": "v=0"}},
    )
    assert twice["error"]["code"] == 40210
    track = await asyncio.wait_for(tracks.get(), 10)
    while track.kind != "video":  # the audio m-line comes first
        track = await asyncio.wait_for(tracks.get(), 10)
    counter = FrameCounter(track)
    try:
        await counter.wait_for(20)
        assert counter.sizes == {(WIDTH, HEIGHT)}
    finally:
        counter.task.cancel()
        await pub_pc.close()
        await view_pc.close()


async def test_h264_publisher_viewer_gets_h264_passed_through(loopback_ice, client, server):
    """The viewer offers VP8 first; the server answers with its source's codec (H.264) so
    the packets are forwarded as they came (codec preference before setRemoteDescription:
    docs/reference/aiortc-notes.md pitfall 3)."""
    from aiortc import RTCRtpSender

    pipeline = await client.create("MediaPipeline")
    publisher = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(publisher, "connect", sink=viewer, mediaType="VIDEO")

    pub_pc = new_peer()
    transceiver = pub_pc.addTransceiver(SyntheticVideo(), direction="sendonly")
    h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
    transceiver.setCodecPreferences(h264)
    await pub_pc.setLocalDescription(await pub_pc.createOffer())
    for event in ("IceCandidateFound", "IceGatheringDone"):
        await client.result("subscribe", {"object": publisher, "type": event})
    answer = await client.invoke(publisher, "processOffer", offer=pub_pc.localDescription.sdp)
    await pub_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await client.invoke(publisher, "gatherCandidates")
    await trickle_from_server(client, publisher, pub_pc)

    view_pc, counter = await view(client, viewer)
    try:
        await counter.wait_for(30)
        assert counter.sizes == {(WIDTH, HEIGHT)}
        hub = server.media_set.objects[publisher].outputs["video"]
        assert hub.source_format == "h264"
        assert hub._transcoder is None
        assert list(hub.readers) == ["h264"]
        answer_sdp = await client.invoke(viewer, "getLocalSessionDescriptor")
        video = answer_sdp.split("m=video")[1]
        first_payload = video.split("\r\n")[0].split()[2]
        assert f"a=rtpmap:{first_payload} H264/90000" in video
    finally:
        counter.task.cancel()
        await pub_pc.close()
        await view_pc.close()
