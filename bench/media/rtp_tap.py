"""Counting viewers: aiortc peers that receive RTP without decrypting or decoding it.

A real viewer decodes (10-15 % of a core per 640x480/30 H.264 stream); a hundred of them on the
server's two cores would measure the viewers, not the server. Here each viewer is a complete
aiortc ``RTCPeerConnection`` (ICE, DTLS handshake, SRTP keys, RTCP) negotiated with the server
like any other, but the RTP packets that reach its UDP socket are counted right where aioice
receives them (:func:`install`) and go no further: no SRTP decryption, no jitter buffer, no
depacketisation, no decoding. That is possible because the RTP header (sequence number,
timestamp, marker bit) is sent in clear under SRTP. STUN (ICE consent), DTLS and RTCP take
aiortc's normal path.

What is counted per viewer (:class:`RtpTap`):
* packets, bytes, and lost packets (gaps in the extended sequence numbers);
* frames: packets with the marker bit (the last packet of a video frame);
* lag: for each frame, arrival time minus RTP time (90 kHz), relative to the smallest value
  seen since the viewer joined. It stays near zero while the server keeps real time and grows
  when frames queue up inside the server (docs/reference/aiortc-notes.md pitfall 9: "latency
  explodes rather than fps dropping").
"""

from __future__ import annotations

import time
from typing import Any

_RTCP_TYPES = range(72, 80)  # RTCP packet types 200-207 with the marker bit folded away


class RtpTap:
    """Counters of one viewer; :meth:`rtp` runs for every RTP packet it receives."""

    __slots__ = (
        "_base", "_cycles", "_last_seq", "_last_ts", "_ts_cycles", "bytes", "first_packet",
        "first_seq_ext", "frames", "lag_max", "lag_n", "lag_sum", "max_seq_ext", "packets",
    )  # fmt: skip

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.first_packet: float | None = None
        self.first_seq_ext: int | None = None
        self.max_seq_ext = 0
        self.lag_sum = 0.0
        self.lag_n = 0
        self.lag_max = 0.0
        self._last_seq = 0
        self._cycles = 0
        self._last_ts = 0
        self._ts_cycles = 0
        self._base: float | None = None

    def rtp(self, data: bytes) -> None:
        self.packets += 1
        self.bytes += len(data)
        seq = (data[2] << 8) | data[3]
        if self.first_seq_ext is None:
            self.first_packet = time.monotonic()
            self.first_seq_ext = self.max_seq_ext = seq
            self._last_seq = seq
            self._last_ts = int.from_bytes(data[4:8], "big")
        elif (seq - self._last_seq) & 0xFFFF < 0x8000:  # newer (not a late or repeated one)
            if seq < self._last_seq:
                self._cycles += 0x10000
            self._last_seq = seq
            self.max_seq_ext = self._cycles + seq
        if data[1] & 0x80:  # marker: the frame is complete
            self.frames += 1
            ts = int.from_bytes(data[4:8], "big")
            if ts < self._last_ts and self._last_ts - ts > 0x80000000:
                self._ts_cycles += 1 << 32
            self._last_ts = ts
            offset = time.monotonic() - (self._ts_cycles + ts) / 90_000
            if self._base is None or offset < self._base:
                self._base = offset
            lag = offset - self._base
            self.lag_sum += lag
            self.lag_n += 1
            if lag > self.lag_max:
                self.lag_max = lag

    @property
    def lost(self) -> int:
        if self.first_seq_ext is None:
            return 0
        return max(0, self.max_seq_ext - self.first_seq_ext + 1 - self.packets)

    def snapshot(self) -> list[float]:
        """``[packets, frames, bytes, lost, lag_sum, lag_n, lag_max]``; resets ``lag_max``."""
        out = [
            self.packets, self.frames, self.bytes, self.lost, self.lag_sum, self.lag_n,
            self.lag_max,
        ]  # fmt: skip
        self.lag_max = 0.0
        return out


_installed = False


def install() -> None:
    """Patch aioice's ``StunProtocol.datagram_received``: RTP for a tapped socket is counted
    by its :class:`RtpTap` and dropped; everything else goes the normal way."""
    global _installed
    if _installed:
        return
    from aioice.ice import StunProtocol

    original = StunProtocol.datagram_received

    def datagram_received(self: Any, data: bytes, addr: Any) -> None:
        tap = self.__dict__.get("bench_tap")
        if tap is not None and 127 < data[0] < 192 and (data[1] & 0x7F) not in _RTCP_TYPES:
            tap.rtp(data)
            return
        original(self, data, addr)

    StunProtocol.datagram_received = datagram_received
    _installed = True


def attach(pc: Any, tap: RtpTap) -> None:
    """Send the RTP arriving on ``pc``'s sockets to ``tap`` (call after setLocalDescription:
    the sockets exist once the candidates are gathered)."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        for protocol in connection._protocols:
            protocol.bench_tap = tap
