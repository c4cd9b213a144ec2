"""Data channels through the media server with aiortc peers (issue 10 point 4), as KMS 7.3 does
them (kms-elements ``kmswebrtcsession.c``, ``kmswebrtcdatasessionbin.c``,
``WebRtcEndpointImpl.cpp``; docs/media-server.md "Data channels"):

* with ``useDataChannels`` a WebRtcEndpoint connected to itself echoes every message, in order,
  text as text and binary as binary; connected endpoints relay along DATA connections only;
* ``DataChannelOpened``/``DataChannelClosed`` (twice each, as KMS 7.3 raises them) carry the SCTP
  stream id; one channel per endpoint is wired, another one is closed at once;
* ``createDataChannel``/``closeDataChannel`` and their errors; data stats in ``getStats``;
* without ``useDataChannels`` the answer rejects the ``m=application`` section (port 0).

The peers offer their data section first (Chromium puts it last): it is then the BUNDLE tag,
which the server's candidates must name.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_to_sdp
from media_synthetic import SyntheticVideo, add_kurento_candidate, strip_candidates

MESSAGES: list[str | bytes] = [
    "Hello Kurento!", "", "ünïcødé ✓ 🎥", b"\x00\x01\x02\xff", b"", "x" * 20_000,
    bytes(range(256)) * 200, *[f"message {i}" for i in range(50)],
]  # fmt: skip
"""Text, binary, empty ones of both kinds, large ones (51 200 bytes: under aiortc's 64 KiB
message limit) and a run that shows the order."""


@pytest.fixture
def loopback_ice(monkeypatch):
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def until(what: str, check: Callable[[], Any], timeout: float = 10) -> None:
    """Wait until ``check()`` is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)


class Events:
    """Every event of the client, kept (``client.event()`` would drop the ones it skips)."""

    def __init__(self, client):
        self.client = client
        self.seen: list[dict[str, Any]] = []

    async def subscribe(self, endpoint: str, *types: str) -> None:
        for event in types:
            await self.client.result("subscribe", {"object": endpoint, "type": event})

    def of(self, endpoint: str, event_type: str) -> list[dict[str, Any]]:
        self._drain()
        return [e["data"] for e in self.seen
                if e["object"] == endpoint and e["type"] == event_type]  # fmt: skip

    def _drain(self) -> None:
        while not self.client.events.empty():
            self.seen.append(self.client.events.get_nowait()["params"]["value"])

    async def wait(self, endpoint: str, event_type: str, count: int = 1) -> list[dict[str, Any]]:
        await until(f"{count} {event_type} of {endpoint}",
                    lambda: len(self.of(endpoint, event_type)) >= count)  # fmt: skip
        return self.of(endpoint, event_type)


class Peer:
    """A test peer: its data channels, and every message each one received."""

    def __init__(self, video: bool = True, channel: str | None = "TestChannel0"):
        # The data section first (aiortc offers it first with this option, and only for a
        # channel created after the offer: see negotiate).
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], alwaysNegotiateDataChannels=True)
        )
        self.received: dict[str, list[str | bytes]] = {}
        self.remote_channels: list[Any] = []
        self.label = channel
        self.channel: Any = None
        if video:
            self.pc.addTrack(SyntheticVideo())
        self.pc.on("datachannel", self._remote_channel)

    def open_channel(self, label: str, **options: Any) -> Any:
        channel = self.pc.createDataChannel(label, **options)
        channel.on("message", lambda m: self.received.setdefault(label, []).append(m))
        return channel

    def _remote_channel(self, channel: Any) -> None:
        self.remote_channels.append(channel)
        channel.on("message", lambda m: self.received.setdefault(channel.label, []).append(m))

    def candidates(self) -> list[dict[str, Any]]:
        sctp = self.pc.sctp
        transport = (sctp.transport if sctp is not None
                     else self.pc.getTransceivers()[0].sender.transport).transport  # fmt: skip
        mid = sctp.mid if sctp is not None else self.pc.getTransceivers()[0].mid
        return [
            {"candidate": "candidate:" + candidate_to_sdp(c), "sdpMid": mid, "sdpMLineIndex": 0}
            for c in transport.iceGatherer.getLocalCandidates()
        ]

    async def negotiate(self, client, events: Events, endpoint: str) -> str:
        """Offer, answer and trickle ICE both ways (as the tutorial); returns the answer as the
        server gave it."""
        await events.subscribe(endpoint, "IceCandidateFound", "IceGatheringDone")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        if self.label is not None:
            self.channel = self.open_channel(self.label)
        answer = await client.invoke(
            endpoint, "processOffer", offer=strip_candidates(self.pc.localDescription.sdp)
        )
        await self.pc.setRemoteDescription(RTCSessionDescription(aiortc_view(answer), "answer"))
        for candidate in self.candidates():
            await client.invoke(endpoint, "addIceCandidate", candidate=candidate)
        await client.invoke(endpoint, "gatherCandidates")
        await events.wait(endpoint, "IceGatheringDone")
        for found in events.of(endpoint, "IceCandidateFound"):
            await add_kurento_candidate(self.pc, found["candidate"])
        return answer

    async def wait_open(self, channel: Any) -> None:
        await until(f"{channel.label} open", lambda: channel.readyState == "open")

    async def wait_messages(self, label: str, count: int) -> list:
        got = lambda: self.received.get(label, [])  # noqa: E731
        await until(f"{count} messages on {label}", lambda: len(got()) >= count)
        return got()

    async def close(self) -> None:
        await self.pc.close()


def aiortc_view(answer: str) -> str:
    """``answer`` as aiortc takes it: aiortc refuses a rejected section (port 0) for its missing
    ICE and DTLS attributes, so one gets those of the next section (browsers need no such
    help). The peer then treats the section as accepted; the server never starts SCTP."""
    sections = answer.split("\r\nm=")
    for i, section in enumerate(sections):
        if section.startswith("application 0 ") and i + 1 < len(sections):
            borrowed = [line for line in sections[i + 1].split("\r\n")
                        if line.startswith(("a=ice-", "a=fingerprint", "a=setup"))]  # fmt: skip
            sections[i] = "\r\n".join([section.rstrip("\r\n"), *borrowed])
    return "\r\nm=".join(sections)


async def data_endpoint(client, pipeline: str, **params: Any) -> str:
    return await client.create(
        "WebRtcEndpoint", mediaPipeline=pipeline, useDataChannels=True, **params
    )


def ids(events: list[dict[str, Any]]) -> list[int]:
    return [e["channelId"] for e in events]


def typed(messages: list[str | bytes]) -> list[tuple[str, str | bytes]]:
    return [(type(m).__name__, m) for m in messages]


async def test_loopback_echoes_text_and_binary_in_order(loopback_ice, client):
    events = Events(client)
    pipeline = await client.create("MediaPipeline")
    endpoint = await data_endpoint(client, pipeline)
    await events.subscribe(endpoint, "DataChannelOpened", "DataChannelClosed")
    await client.invoke(endpoint, "connect", sink=endpoint)  # the tutorial's loopback
    peer = Peer()
    try:
        answer = await peer.negotiate(client, events, endpoint)
        assert re.search(r"m=application [1-9]\d* UDP/DTLS/SCTP webrtc-datachannel", answer)
        # The data section is the first m-line (the BUNDLE tag): candidates must name it.
        found = events.of(endpoint, "IceCandidateFound")
        assert found and {(c["candidate"]["sdpMid"], c["candidate"]["sdpMLineIndex"])
                          for c in found} == {("0", 0)}  # fmt: skip
        await peer.wait_open(peer.channel)
        opened = await events.wait(endpoint, "DataChannelOpened", 2)
        assert ids(opened) == [peer.channel.id] * 2  # KMS 7.3 raises it twice
        for message in MESSAGES:
            peer.channel.send(message)
        echoed = await peer.wait_messages("TestChannel0", len(MESSAGES))
        assert typed(echoed) == typed(MESSAGES)

        stats = await client.invoke(endpoint, "getStats")
        session = [s for s in stats.values() if s["type"] == "session"]
        channels = [s for s in stats.values() if s["type"] == "datachannel"]
        assert [(s["__type__"], s["dataChannelsOpened"], s["dataChannelsClosed"])
                for s in session] == [("RTCPeerConnectionStats", 1, 0)]  # fmt: skip
        size = sum(len(m.encode() if isinstance(m, str) else m) for m in MESSAGES)
        assert [(c["__type__"], c["label"], c["datachannelid"], c["state"],
                 c["messagesReceived"], c["messagesSent"], c["bytesReceived"], c["bytesSent"])
                for c in channels] == [("RTCDataChannelStats", "TestChannel0", peer.channel.id,
                                        "open", len(MESSAGES), len(MESSAGES), size, size)]
        data_only = await client.invoke(endpoint, "getStats", mediaType="DATA")
        assert {s["type"] for s in data_only.values()} == {"endpoint", "session", "datachannel"}
        video_only = await client.invoke(endpoint, "getStats", mediaType="VIDEO")
        assert not {"session", "datachannel"} & {s["type"] for s in video_only.values()}

        # The tutorial's Close and Open buttons: the channel closes, a new one is wired.
        channel_id = peer.channel.id
        peer.channel.close()
        assert ids(await events.wait(endpoint, "DataChannelClosed", 2)) == [channel_id] * 2
        again = peer.open_channel("TestChannel1")
        await peer.wait_open(again)
        assert ids(await events.wait(endpoint, "DataChannelOpened", 4))[2:] == [again.id] * 2
        again.send("after reopening")
        again.send(b"\x01binary")
        assert typed(await peer.wait_messages("TestChannel1", 2)) == typed(
            ["after reopening", b"\x01binary"])  # fmt: skip
    finally:
        await peer.close()
        await client.result("release", {"object": pipeline})


async def test_endpoints_relay_along_data_connections_only(loopback_ice, client):
    events = Events(client)
    pipeline = await client.create("MediaPipeline")
    a = await data_endpoint(client, pipeline)
    b = await data_endpoint(client, pipeline)
    await client.invoke(a, "connect", sink=b)  # no media type: AUDIO, VIDEO and DATA
    peer_a, peer_b = Peer(channel="from-a"), Peer(video=False, channel="from-b")
    try:
        for peer, endpoint in ((peer_a, a), (peer_b, b)):
            await events.subscribe(endpoint, "DataChannelOpened")
            await peer.negotiate(client, events, endpoint)
            await peer.wait_open(peer.channel)
            await events.wait(endpoint, "DataChannelOpened", 2)
        for i in range(20):
            peer_a.channel.send(f"a{i}")
            peer_b.channel.send(f"b{i}")
        assert await peer_b.wait_messages("from-b", 20) == [f"a{i}" for i in range(20)]
        await asyncio.sleep(0.5)
        assert "from-a" not in peer_a.received  # b feeds nobody

        await client.invoke(b, "connect", sink=a, mediaType="DATA")
        await client.invoke(a, "disconnect", sink=b, mediaType="DATA")
        peer_b.channel.send(b"b to a")
        peer_a.channel.send("a to nobody")
        assert await peer_a.wait_messages("from-a", 1) == [b"b to a"]
        await asyncio.sleep(0.5)
        assert len(peer_b.received["from-b"]) == 20
        sinks = await client.invoke(b, "getSinkConnections")
        assert [(c["sink"], c["type"]) for c in sinks] == [(a, "DATA")]
        for query in ("MediaFlowingIn", "MediaFlowingOut", "MediaTranscoding"):
            error = (await client.call("invoke", {"object": a, "operation": f"is{query}",
                                                  "operationParams": {"mediaType": "DATA"}}))[
                "error"]  # fmt: skip
            assert (error["code"], error["message"]) == (
                40107, f"Media type DATA is not supported for {query}")  # fmt: skip
    finally:
        await peer_a.close()
        await peer_b.close()
        await client.result("release", {"object": pipeline})


async def test_server_created_channel_and_second_remote_channel(loopback_ice, client):
    events = Events(client)
    pipeline = await client.create("MediaPipeline")
    endpoint = await data_endpoint(client, pipeline)
    response = await client.call("invoke", {"object": endpoint, "operation": "createDataChannel"})
    assert response["error"]["code"] == 40111  # not negotiated yet
    assert response["error"]["message"] == "Data channels are not supported"
    await events.subscribe(endpoint, "DataChannelOpened", "DataChannelClosed")
    await client.invoke(endpoint, "connect", sink=endpoint)
    peer = Peer(channel=None, video=False)
    try:
        await peer.negotiate(client, events, endpoint)
        # Created before the association is up: it opens once it is (KMS keeps it pending).
        await client.invoke(endpoint, "createDataChannel", label="from server", ordered=False,
                            maxRetransmits=3, protocol="chat")  # fmt: skip
        opened = await events.wait(endpoint, "DataChannelOpened", 2)
        await until("the server's channel", lambda: peer.remote_channels)
        server_channel = peer.remote_channels[0]
        await peer.wait_open(server_channel)
        assert (server_channel.label, server_channel.protocol, server_channel.ordered,
                server_channel.maxRetransmits) == ("from server", "chat", False, 3)  # fmt: skip
        assert ids(opened) == [server_channel.id] * 2
        server_channel.send("echo me")
        assert await peer.wait_messages("from server", 1) == ["echo me"]

        # A second channel is closed at once, without events; the first stays wired.
        extra = peer.open_channel("second")
        await until("the second channel closed", lambda: extra.readyState == "closed")
        server_channel.send("still wired")
        assert (await peer.wait_messages("from server", 2))[1] == "still wired"
        stats = await client.invoke(endpoint, "getStats", mediaType="DATA")
        session = next(s for s in stats.values() if s["type"] == "session")
        assert (session["dataChannelsOpened"], session["dataChannelsClosed"]) == (2, 1)

        bad = await client.call("invoke", {"object": endpoint, "operation": "createDataChannel",
                                           "operationParams": {"maxPacketLifeTime": 100,
                                                               "maxRetransmits": 2}})  # fmt: skip
        assert (bad["error"]["code"], bad["error"]["message"]) == (40107, "Syntax error")
        await client.invoke(endpoint, "closeDataChannel", channelId=12345)  # unknown: ignored
        await client.invoke(endpoint, "closeDataChannel", channelId=server_channel.id)
        assert ids(await events.wait(endpoint, "DataChannelClosed", 2)) == [
            server_channel.id] * 2  # fmt: skip
        await until("the server's channel closed", lambda: server_channel.readyState == "closed")
        assert len(events.of(endpoint, "DataChannelOpened")) == 2
    finally:
        await peer.close()
        await client.result("release", {"object": pipeline})


async def test_without_use_data_channels_the_data_section_is_rejected(loopback_ice, client):
    events = Events(client)
    pipeline = await client.create("MediaPipeline")
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await events.subscribe(endpoint, "DataChannelOpened", "MediaFlowInStateChanged")
    await client.invoke(endpoint, "connect", sink=endpoint)
    peer = Peer()
    try:
        answer = await peer.negotiate(client, events, endpoint)
        section = answer[answer.index("m=application"):].split("\r\nm=")[0]
        assert section.splitlines()[0] == "m=application 0 UDP/DTLS/SCTP webrtc-datachannel"
        assert {line.split(":")[0] for line in section.splitlines()[1:]} <= {"c=IN IP4 0.0.0.0",
                                                                            "a=mid"}
        bundle = next(line for line in answer.splitlines() if line.startswith("a=group:BUNDLE"))
        assert bundle.split()[1:] == ["1"]  # only the video section
        found = events.of(endpoint, "IceCandidateFound")
        assert found and {c["candidate"]["sdpMid"] for c in found} == {"1"}
        # Media flows; the data channel never opens and no data event comes.
        await events.wait(endpoint, "MediaFlowInStateChanged")
        await asyncio.sleep(1.0)
        assert peer.channel.readyState == "connecting"
        assert events.of(endpoint, "DataChannelOpened") == []
        for operation, params in (("createDataChannel", {}), ("closeDataChannel",
                                                              {"channelId": 0})):  # fmt: skip
            error = (await client.call("invoke", {"object": endpoint, "operation": operation,
                                                  "operationParams": params}))["error"]
            assert (error["code"], error["message"]) == (40111, "Data channels are not supported")
        stats = await client.invoke(endpoint, "getStats")
        assert not {"session", "datachannel"} & {s["type"] for s in stats.values()}
    finally:
        await peer.close()
        await client.result("release", {"object": pipeline})


async def test_generate_offer_offers_data_channels_when_enabled(loopback_ice, client):
    pipeline = await client.create("MediaPipeline")
    with_data = await data_endpoint(client, pipeline)
    without = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    offer = await client.invoke(with_data, "generateOffer")
    # Audio, video, then data: KMS adds its media handlers in that order.
    assert [line.split()[0] for line in offer.splitlines() if line.startswith("m=")] == [
        "m=audio", "m=video", "m=application"]  # fmt: skip
    assert "m=application" not in await client.invoke(without, "generateOffer")
    events = Events(client)
    await events.subscribe(with_data, "DataChannelOpened", "IceCandidateFound",
                           "IceGatheringDone")  # fmt: skip
    await client.invoke(with_data, "connect", sink=with_data)
    peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    echoed: list[str | bytes] = []
    channels: list[Any] = []
    peer.on("datachannel", channels.append)
    try:
        await peer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await peer.setLocalDescription(await peer.createAnswer())
        await client.invoke(with_data, "processAnswer",
                            answer=strip_candidates(peer.localDescription.sdp))  # fmt: skip
        await client.invoke(with_data, "gatherCandidates")
        await events.wait(with_data, "IceGatheringDone")
        for found in events.of(with_data, "IceCandidateFound"):
            await add_kurento_candidate(peer, found["candidate"])
        channel = peer.createDataChannel("answerer's")
        channel.on("message", echoed.append)
        await until("the answerer's channel open", lambda: channel.readyState == "open")
        await events.wait(with_data, "DataChannelOpened", 2)
        channel.send("offered by the server")
        await until("the echo", lambda: echoed)
        assert echoed == ["offered by the server"]
    finally:
        await peer.close()
        await client.result("release", {"object": pipeline})
