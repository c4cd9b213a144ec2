"""The batch send of :mod:`flowengine.media.engine.packet_batch` on real UDP sockets.

A frame's packets go from an asyncio datagram endpoint to a plain UDP socket on 127.0.0.1, SRTP-
protected with one pylibsrtp session and decrypted by the receiving one (the same key), so the
test sees exactly what a viewer's SRTP layer would: every datagram, its header and payload.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pylibsrtp import Policy, Session

from flowengine.media.engine import packet_batch
from flowengine.media.engine.packet_batch import PacketBatch, Route, sockaddr

KEY = os.urandom(30)
EXTENSIONS = bytes.fromhex("bede0001" "10300000")  # a one-byte header extension block
HEADER = struct.Struct(f"!BBHII{len(EXTENSIONS)}s")


def session(direction: int) -> Session:
    return Session(Policy(key=KEY, ssrc_type=direction))


class Viewer:
    """A UDP socket that decrypts what it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2)
        self.srtp = session(Policy.SSRC_ANY_INBOUND)

    def receive(self, count: int) -> list[bytes]:
        return [self.srtp.unprotect(self.sock.recv(4096)) for _ in range(count)]

    def pending(self) -> int:
        self.sock.setblocking(False)
        n = 0
        try:
            while True:
                self.sock.recv(4096)
                n += 1
        except BlockingIOError:
            return n
        finally:
            self.sock.settimeout(2)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Any, Viewer]]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    viewer = Viewer()
    yield transport, viewer
    transport.close()
    viewer.sock.close()


def expected(payloads: list[bytes], sequence: int) -> list[bytes]:
    last = len(payloads) - 1
    return [
        HEADER.pack(0x90, 96 | (0x80 if i == last else 0), (sequence + i) & 0xFFFF, 1234, 77,
                    EXTENSIONS) + payload
        for i, payload in enumerate(payloads)
    ]  # fmt: skip


FRAMES = {
    # FU-A-like: equal sizes and a smaller last one (one segmented message)
    "equal": [os.urandom(1300)] * 5 + [os.urandom(700)],
    # aiortc's balanced fragments: two sizes, the larger first
    "balanced": [os.urandom(1101)] * 3 + [os.urandom(1100)] * 3,
    # sizes that grow: no run longer than one
    "growing": [os.urandom(n) for n in (20, 200, 900, 1250)],
    "single": [os.urandom(30)],
    # more packets than slots, so several batches
    "long": [os.urandom(1000 + i % 3) for i in range(150)],
}


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("segments", [True, False], ids=["segmented", "datagrams"])
async def test_frame_arrives_as_sent(
    endpoint: tuple[Any, Viewer], frame: str, segments: bool
) -> None:
    """Every packet of the frame arrives once, in order, decrypts, and carries its header
    (sequence numbers counting up across the 65535 wrap, the marker on the last), its
    extensions and its payload; the bytes counted are the protected datagrams'."""
    transport, viewer = endpoint
    payloads = FRAMES[frame]
    route = Route(transport, viewer.sock.getsockname(), direct=True)
    assert route.fd >= 0
    route.segments = segments and route.segments
    sequence = 65530
    sent = PacketBatch().send_rtp(
        route, session(Policy.SSRC_ANY_OUTBOUND), HEADER,
        (0x90, 96, sequence, 1234, 77, EXTENSIONS), payloads,
    )  # fmt: skip
    got = viewer.receive(len(payloads))
    assert got == expected(payloads, sequence)
    assert viewer.pending() == 0
    assert sent == sum(len(p) for p in expected(payloads, sequence)) + 10 * len(payloads)


async def test_through_the_transport_without_a_socket(endpoint: tuple[Any, Viewer]) -> None:
    """A route whose transport has no socket of its own (a TURN relay's) gets every packet
    through the transport's ``sendto``, protected the same way."""
    transport, viewer = endpoint

    class Relay:  # what aioice's TurnTransport offers: sendto, no socket
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return default

        def get_write_buffer_size(self) -> int:
            return 0

        def sendto(self, data: bytes, address: tuple[str, int]) -> None:
            self.sent.append(data)
            transport.sendto(data, address)

    relay = Relay()
    route = Route(relay, viewer.sock.getsockname(), direct=True)
    assert route.fd == -1
    payloads = FRAMES["equal"]
    PacketBatch().send_rtp(route, session(Policy.SSRC_ANY_OUTBOUND), HEADER,
                           (0x90, 96, 1, 1234, 77, EXTENSIONS), payloads)  # fmt: skip
    assert len(relay.sent) == len(payloads)
    assert viewer.receive(len(payloads)) == expected(payloads, 1)


async def test_a_full_socket_hands_the_rest_to_the_transport(
    endpoint: tuple[Any, Viewer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the kernel takes only part of the batch (a full send buffer), the rest goes
    through the asyncio transport, in order; and a refused segmentation offload turns it off
    for the route, the frame then going out datagram by datagram."""
    transport, viewer = endpoint
    real = packet_batch._sendmmsg
    calls: list[int] = []

    def partial(fd: int, msgs: Any, count: int, flags: int) -> int:
        calls.append(count)
        return real(fd, msgs, 1, flags)  # the kernel took the first message only

    monkeypatch.setattr(packet_batch, "_sendmmsg", partial)
    route = Route(transport, viewer.sock.getsockname(), direct=True)
    route.segments = False
    payloads = FRAMES["growing"]
    PacketBatch().send_rtp(route, session(Policy.SSRC_ANY_OUTBOUND), HEADER,
                           (0x90, 96, 7, 1234, 77, EXTENSIONS), payloads)  # fmt: skip
    await asyncio.sleep(0.05)  # the transport writes at once, or when writable
    assert calls == [len(payloads)]
    assert viewer.receive(len(payloads)) == expected(payloads, 7)

    def refuse_segments(fd: int, msgs: Any, count: int, flags: int) -> int:
        if any(msgs[m].msg_hdr.msg_controllen for m in range(count)):
            packet_batch._ffi.errno = 5  # EIO: what a device without checksum offload gives
            return -1
        return real(fd, msgs, count, flags)

    monkeypatch.setattr(packet_batch, "_sendmmsg", refuse_segments)
    viewer.srtp = session(Policy.SSRC_ANY_INBOUND)  # a new stream: the same numbers again
    route = Route(transport, viewer.sock.getsockname(), direct=True)
    payloads = FRAMES["equal"]
    PacketBatch().send_rtp(route, session(Policy.SSRC_ANY_OUTBOUND), HEADER,
                           (0x90, 96, 9, 1234, 77, EXTENSIONS), payloads)  # fmt: skip
    assert route.segments is False
    assert viewer.receive(len(payloads)) == expected(payloads, 9)


def test_sockaddr_layouts() -> None:
    """The socket addresses handed to the kernel: IPv4 and IPv6 (a scope id by number)."""
    v4 = sockaddr(("127.0.0.1", 5004))
    assert len(v4) == 16 and v4[2:4] == (5004).to_bytes(2, "big") and v4[4:8] == bytes(
        [127, 0, 0, 1]
    )
    v6 = sockaddr(("fe80::1%3", 5004))
    assert len(v6) == 28 and v6[8:24] == socket.inet_pton(socket.AF_INET6, "fe80::1")
    assert int.from_bytes(v6[24:28], "little") == 3
