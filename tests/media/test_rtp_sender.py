"""The lean RTP send loop (:mod:`flowengine.media.engine.rtp_sender`) seen by real aiortc viewers.

A PlayerEndpoint passes a test-made H.264 file through to WebRtcEndpoints; each viewer is a
real aiortc ``RTCPeerConnection`` on 127.0.0.1. The server side is the real code throughout:
the tests only look at (and, for the NACK test, drop) what the viewer's ``RTCRtpReceiver`` is
handed by its DTLS transport, so that aiortc's own receiver reacts as it would to a lost packet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RtcpPacket, RtcpSrPacket, RtpPacket, is_rtcp
from media_synthetic import strip_candidates, trickle_from_server, write_video_file

from flowengine.media import MediaServer
from flowengine.media.engine.rtp_sender import FastSender

if TYPE_CHECKING:
    from conftest import RawClient

PlayerSetup = Callable[..., Awaitable[tuple[str, str, list[str]]]]


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice never offers 127.0.0.1 (docs/reference/aiortc-notes.md pitfall 2):
    # the test peers need this patch.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


class ViewerTap:
    """What a viewer's ``RTCRtpReceiver`` is handed, in arrival order.

    Wraps the receiver's ``_handle_rtp_packet``/``_handle_rtcp_packet`` (the calls its DTLS
    transport makes): media packets (the negotiated codec), RTX packets and sender reports are
    recorded before aiortc's receiver sees them.

    ``drop(header, n)`` may make one media datagram (``n`` media datagrams came before it) lost
    on the way in: it is taken away where the DTLS transport reads from ICE, before SRTP
    (dropping it after SRTP would make libsrtp reject the resent copy as a replay). Its header
    is kept in ``dropped`` (SRTP leaves the header in clear; its payload is ciphertext).
    """

    def __init__(
        self,
        transceiver: RTCRtpTransceiver,
        media_type: int,
        rtx_type: int | None,
        drop: Callable[[RtpPacket, int], bool] | None = None,
    ) -> None:
        self.media_type = media_type
        self.rtx_type = rtx_type
        self.media: list[RtpPacket] = []
        self.rtx: list[RtpPacket] = []
        self.dropped: list[RtpPacket] = []
        # (sender report, media packets received before it)
        self.reports: list[tuple[RtcpSrPacket, int]] = []
        receiver = transceiver.receiver
        self._rtp = receiver._handle_rtp_packet
        self._rtcp = receiver._handle_rtcp_packet
        receiver._handle_rtp_packet = self._on_rtp  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = self._on_rtcp  # type: ignore[method-assign]
        self._drop = drop
        self._seen = 0
        self.errors: list[Exception] = []  # raised by ``drop``: kept, not thrown into aiortc
        ice = receiver.transport.transport
        self._ice_recv = ice._recv
        ice._recv = self._on_datagram

    async def _on_datagram(self) -> bytes:
        while True:
            data = await self._ice_recv()
            if self._drop is None or self.dropped or not 127 < data[0] < 192 or is_rtcp(data):
                return data
            header = RtpPacket.parse(data)
            if header.payload_type != self.media_type:
                return data
            try:
                lose = self._drop(header, self._seen)
            except Exception as exc:
                self.errors.append(exc)
                lose = False
            if lose:
                self.dropped.append(header)
                continue  # lost: aiortc's receiver will NACK this sequence number
            self._seen += 1
            return data

    async def _on_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type == self.rtx_type:
            self.rtx.append(packet)
        elif packet.payload_type == self.media_type:
            self.media.append(packet)
        await self._rtp(packet, arrival_time_ms)

    async def _on_rtcp(self, packet: RtcpPacket) -> None:
        if isinstance(packet, RtcpSrPacket):
            self.reports.append((packet, len(self.media)))
        await self._rtcp(packet)

    async def settle(self, quiet: float = 0.4, timeout: float = 10) -> None:
        """Wait until no media packet has arrived for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        count = -1
        while count != len(self.media):
            assert loop.time() < deadline, "media kept flowing"
            count = len(self.media)
            await asyncio.sleep(quiet)


def h264_preferences(rtx: bool) -> list[Any]:
    """The viewer's codec preferences: H.264 only, with or without RTX (so the answer has the
    RTX payload type or not)."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in codecs if c.mimeType == "video/H264"]
    return h264 + ([c for c in codecs if c.mimeType == "video/rtx"] if rtx else [])


async def connect_viewer(
    client: RawClient,
    endpoint: str,
    *,
    rtx: bool = True,
    drop: Callable[[RtpPacket, int], bool] | None = None,
) -> tuple[RTCPeerConnection, ViewerTap]:
    """A receive-only aiortc peer negotiated with ``endpoint`` (H.264), its receiver tapped
    before any media can arrive, and connected (ICE and DTLS) when this returns."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    transceiver.setCodecPreferences(h264_preferences(rtx))
    await pc.setLocalDescription(await pc.createOffer())
    for event in ("IceCandidateFound", "IceGatheringDone"):
        await client.result("subscribe", {"object": endpoint, "type": event})
    answer = await client.invoke(endpoint, "processOffer", offer=pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(strip_candidates(answer), "answer"))
    codecs = transceiver._codecs  # negotiated, in the answer's order
    media_type = codecs[0].payloadType
    assert codecs[0].mimeType == "video/H264"
    rtx_types = [c.payloadType for c in codecs if c.mimeType == "video/rtx"]
    assert bool(rtx_types) == rtx
    tap = ViewerTap(transceiver, media_type, rtx_types[0] if rtx_types else None, drop)
    await client.invoke(endpoint, "gatherCandidates")
    await trickle_from_server(client, endpoint, pc)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while pc.connectionState != "connected":
        assert loop.time() < deadline, f"viewer not connected: {pc.connectionState}"
        await asyncio.sleep(0.05)
    return pc, tap


@pytest.fixture
async def player_to_viewers(
    loopback_ice: None, client: RawClient, server: MediaServer, media_dir: Path
) -> AsyncIterator[PlayerSetup]:
    """``await setup(n)``: an H.264 file player connected to ``n`` new WebRtcEndpoints
    (returns pipeline, player and viewer ids); the pipeline is released after the test."""
    pipelines: list[str] = []

    async def setup(viewers: int) -> tuple[str, str, list[str]]:
        path = write_video_file(media_dir / "clip.mp4", codec="h264", seconds=2.5)
        pipeline = await client.create("MediaPipeline")
        pipelines.append(pipeline)
        player = await client.create(
            "PlayerEndpoint", mediaPipeline=pipeline, uri=str(path), useEncodedMedia=True
        )
        endpoints = []
        for _ in range(viewers):
            endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
            await client.invoke(player, "connect", sink=endpoint, mediaType="VIDEO")
            endpoints.append(endpoint)
        await client.result("subscribe", {"object": player, "type": "EndOfStream"})
        return pipeline, player, endpoints

    yield setup
    for pipeline in pipelines:
        await client.result("release", {"object": pipeline})
    assert server.media_set.objects == {}


def resent(tap: ViewerTap, rtx: bool) -> list[RtpPacket]:
    """The copies of the dropped packet the viewer got since (RTX: by the original sequence
    number that leads the payload)."""
    if not tap.dropped:
        return []
    seq = tap.dropped[0].sequence_number
    if rtx:
        return [p for p in tap.rtx if p.payload[:2] == seq.to_bytes(2, "big")]
    return [p for p in tap.media if p.sequence_number == seq]


def server_sender(server: MediaServer, endpoint: str) -> RTCRtpSender:
    """The aiortc sender of an endpoint's video track (running the lean loop)."""
    track = server.media_set.objects[endpoint].tracks["video"]
    sender = track.sender
    assert getattr(sender, "_flowengine_fast_rtp", False), "the lean loop is not installed"
    return sender


def sent_history(sender: RTCRtpSender) -> list[tuple[int, int, int, bytes]]:
    """The send path's retransmission history (sequence, marker, timestamp, payload), oldest
    first, read from the ``FastSender`` whose ``retransmit`` is the sender's ``_retransmit``."""
    out = sender._retransmit.__self__
    assert isinstance(out, FastSender)
    entries = []
    for first, timestamp, payloads in out.history:
        last = len(payloads) - 1
        entries += [
            ((first + i) & 0xFFFF, int(i == last), timestamp, payload)
            for i, payload in enumerate(payloads)
        ]
    return entries


@pytest.mark.parametrize("rtx", [True, False], ids=["rtx", "no-rtx"])
async def test_nack_is_answered_from_the_loops_history(
    player_to_viewers: PlayerSetup, client: RawClient, server: MediaServer, rtx: bool
) -> None:
    """A media packet lost on the way to the viewer (aiortc's receiver then sends a real RTCP
    NACK) is sent again, once, from the loop's history: the same sequence number, RTP
    timestamp, marker and payload bytes the loop first sent; wrapped in RTX (the sender's RTX
    SSRC and payload type, the original sequence number leading the payload) when RTX was
    negotiated, as the original packet (same SSRC and payload type) otherwise."""
    _pipeline, player, (endpoint,) = await player_to_viewers(1)
    first_sent: dict[int, tuple[int, int, int, bytes]] = {}

    def drop(header: RtpPacket, seen: int) -> bool:
        if seen != 30:
            return False
        # What the loop sent under this number, read the moment it arrives.
        entries = sent_history(server_sender(server, endpoint))
        first_sent.update((e[0], e) for e in entries if e[0] == header.sequence_number)
        return True

    pc, tap = await connect_viewer(client, endpoint, rtx=rtx, drop=drop)
    try:
        await client.invoke(player, "play")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not resent(tap, rtx):
            assert not tap.errors, tap.errors
            assert loop.time() < deadline, f"nothing resent (dropped: {tap.dropped})"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a second NACK would bring a second copy: there is none
        (lost,) = tap.dropped
        (again,) = resent(tap, rtx)
        seq, marker, timestamp, payload = first_sent[lost.sequence_number]
        assert (seq, bool(marker), timestamp) == (lost.sequence_number, lost.marker, lost.timestamp)
        assert len(payload) > 100
        media_ssrc = tap.media[0].ssrc
        assert lost.ssrc == media_ssrc
        if rtx:
            assert tap.rtx == [again]
            assert again.ssrc == server_sender(server, endpoint)._rtx_ssrc != media_ssrc
            assert again.payload_type == tap.rtx_type
            assert again.payload == seq.to_bytes(2, "big") + payload
            # The lost number itself never arrived as a media packet.
            assert seq not in {p.sequence_number for p in tap.media}
        else:
            assert tap.rtx == []
            assert again.ssrc == media_ssrc
            assert again.payload_type == lost.payload_type == tap.media_type
            assert again.payload == payload
        assert again.timestamp == timestamp
        assert again.marker == lost.marker
        assert again.extensions.mid == "0" and again.extensions.abs_send_time is not None
    finally:
        await pc.close()


async def test_two_viewers_share_the_h264_payloads(
    player_to_viewers: PlayerSetup, client: RawClient, server: MediaServer
) -> None:
    """Two viewers of one H.264 source get byte-identical payloads for the same frames, each
    stream with its own SSRC, sequence numbers and RTP timestamp origin; on the server, both
    senders' histories hold the very same payload objects (packetised once per encoded unit
    and cached on it, not once per viewer)."""
    _pipeline, player, endpoints = await player_to_viewers(2)
    viewers = [await connect_viewer(client, endpoint) for endpoint in endpoints]
    try:
        await client.invoke(player, "play")
        await client.event("EndOfStream", timeout=10)
        for _, tap in viewers:
            await tap.settle()
        (_, a), (_, b) = viewers
        payloads_a = [p.payload for p in a.media]
        payloads_b = [p.payload for p in b.media]
        # The later viewer may have started a little later: its packets are the other's tail.
        shorter, longer = sorted((payloads_a, payloads_b), key=len)
        assert len(shorter) >= 60, (len(payloads_a), len(payloads_b))
        assert longer[len(longer) - len(shorter) :] == shorter

        assert a.media[0].ssrc != b.media[0].ssrc
        assert len({p.ssrc for p in a.media}) == len({p.ssrc for p in b.media}) == 1
        tail_a, tail_b = a.media[-len(shorter) :], b.media[-len(shorter) :]
        seq_offsets = {
            (x.sequence_number - y.sequence_number) & 0xFFFF
            for x, y in zip(tail_a, tail_b, strict=True)
        }
        ts_offsets = {
            (x.timestamp - y.timestamp) & 0xFFFFFFFF for x, y in zip(tail_a, tail_b, strict=True)
        }
        assert len(seq_offsets) == 1 and len(ts_offsets) == 1  # consecutive on both streams
        assert seq_offsets != {0}  # random origins (1 in 65536 to fail by chance)
        assert [x.marker for x in tail_a] == [y.marker for y in tail_b]

        history_a = sent_history(server_sender(server, endpoints[0]))
        history_b = sent_history(server_sender(server, endpoints[1]))
        n = min(len(history_a), len(history_b))
        assert n >= 60
        assert all(x[3] is y[3] for x, y in zip(history_a[-n:], history_b[-n:], strict=True)), (
            "the viewers' payloads are equal copies, not one shared packetisation"
        )
        assert [x[3] for x in history_a[-n:]] == payloads_a[-n:]
    finally:
        for pc, _ in viewers:
            await pc.close()


async def test_sender_reports_count_what_the_loop_sent(
    player_to_viewers: PlayerSetup, client: RawClient, server: MediaServer
) -> None:
    """aiortc's RTCP task reports the counters this loop keeps: each sender report's packet
    and octet counts equal the media packets (and their payload bytes) the viewer had got
    before it, its RTP timestamp is the last frame's, and the counts grow; getStats reads
    the same counters at the end."""
    _pipeline, player, (endpoint,) = await player_to_viewers(1)
    pc, tap = await connect_viewer(client, endpoint)
    try:
        await client.invoke(player, "play")
        await client.event("EndOfStream", timeout=10)
        await tap.settle()
        reports = [(sr, n) for sr, n in tap.reports if sr.sender_info.packet_count > 0]
        assert len(reports) >= 2, tap.reports
        for sr, n in reports:
            info = sr.sender_info
            assert sr.ssrc == tap.media[0].ssrc
            assert info.packet_count == n
            assert info.octet_count == sum(len(p.payload) for p in tap.media[:n])
            assert info.rtp_timestamp == tap.media[n - 1].timestamp
        counts = [sr.sender_info.packet_count for sr, _ in reports]
        assert counts == sorted(counts) and counts[-1] > counts[0]

        stats = await client.invoke(endpoint, "getStats", mediaType="VIDEO")
        (outbound,) = [s for s in stats.values() if s["type"] == "outboundrtp"]
        assert outbound["packetsSent"] == len(tap.media)
        assert outbound["bytesSent"] == sum(len(p.payload) for p in tap.media)
    finally:
        await pc.close()


# Every private attribute of aiortc, aioice and pylibsrtp the send path uses, by the object
# that must have it (pyproject pins aiortc to 1.16.x; a new version must pass this first).
PRIVATE_API: dict[str, tuple[str, ...]] = {
    "RTCRtpSender": (
        "_run_rtp", "_send_keyframe", "_retransmit", "_enabled", "_ssrc", "_rtx_ssrc",
        "_RTCRtpSender__transport", "_RTCRtpSender__track", "_RTCRtpSender__mid",
        "_RTCRtpSender__rtp_started", "_RTCRtpSender__rtp_exited",
        "_RTCRtpSender__rtp_header_extensions_map", "_RTCRtpSender__rtx_payload_type",
        "_RTCRtpSender__rtx_sequence_number", "_RTCRtpSender__ntp_timestamp",
        "_RTCRtpSender__rtp_timestamp", "_RTCRtpSender__octet_count",
        "_RTCRtpSender__packet_count",
    ),
    "RTCDtlsTransport": (
        "_state", "_transport", "_tx_srtp", "_send_rtp",
        "_RTCDtlsTransport__tx_bytes", "_RTCDtlsTransport__tx_packets",
    ),
    "RTCIceTransport": ("_connection",),
    "Connection": ("_nominated",),
    "H264Encoder": ("_split_bitstream", "_packetize_stap_a"),
    "Vp8Encoder": ("_packetize",),
    "Session": ("_srtp",),
    "pylibsrtp": ("_binding",),
}  # fmt: skip

SEND_PATH = ("rtp_sender.py", "packet_batch.py")


def private_names_used() -> set[str]:
    """Private names the send path's modules reach in other packages: attributes of anything
    but ``self``, names given to ``getattr``, and names imported."""
    import ast

    from flowengine.media import engine

    found: set[str] = set()
    own = {"_flowengine_fast_rtp"}  # set by rtp_sender.install on the sender, not aiortc's
    for name in SEND_PATH:
        tree = ast.parse((Path(engine.__file__).parent / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                base = node.value
                if not (isinstance(base, ast.Name) and base.id == "self"):
                    found.add(node.attr)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr":
                arg = node.args[1] if len(node.args) > 1 else None
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("_"):
                    found.add(arg.value)
            elif isinstance(node, ast.ImportFrom):
                found.update(a.name for a in node.names if a.name.startswith("_"))
    return found - own


async def test_private_api_is_pinned(
    player_to_viewers: PlayerSetup, client: RawClient, server: MediaServer
) -> None:
    """Each private name the send path uses is listed in PRIVATE_API, and exists on the real
    objects of a connected viewer (the sender, its DTLS and ICE transports, aioice's
    connection, the SRTP session) and in the classes and modules named."""
    import pylibsrtp
    from aiortc.codecs.h264 import H264Encoder
    from aiortc.codecs.vpx import Vp8Encoder

    listed = {name for names in PRIVATE_API.values() for name in names}
    unlisted = private_names_used() - listed
    assert not unlisted, f"private names used but not pinned in PRIVATE_API: {unlisted}"
    _pipeline, player, (endpoint,) = await player_to_viewers(1)
    pc, tap = await connect_viewer(client, endpoint)
    try:
        await client.invoke(player, "play")
        while not tap.media:
            await asyncio.sleep(0.05)
        sender = server_sender(server, endpoint)
        dtls = sender.transport
        owners = {
            "RTCRtpSender": sender,
            "RTCDtlsTransport": dtls,
            "RTCIceTransport": dtls.transport,
            "Connection": dtls.transport._connection,
            "H264Encoder": H264Encoder,
            "Vp8Encoder": Vp8Encoder,
            "Session": dtls._tx_srtp,
            "pylibsrtp": pylibsrtp,
        }
        missing = [
            f"{owner}.{name}"
            for owner, names in PRIVATE_API.items()
            for name in names
            if not hasattr(owners[owner], name)
        ]
        assert not missing, missing
        assert hasattr(pylibsrtp._binding.lib, "srtp_protect")
    finally:
        await pc.close()
