"""A lean RTP send loop for the senders of :class:`~flowengine.media.engine.tracks.HubTrack`.

Why: a source with N viewers is sent N times, so the server's capacity is its cost per sent
packet. With aiortc's ``RTCRtpSender._run_rtp`` that was about 50 µs of CPU (kernel included:
an ``RtpPacket`` object, header extensions assembled through dataclasses and ``datetime`` twice
a packet, the frame re-packetised and copied into an ``av.Packet`` per viewer, four nested
coroutines down to the socket), which held one 640x480/30 source at 1.6 Mbit/s to about 100
viewers on the event-loop thread (``bench/media/viewers.py``). This loop needs about 20 µs
(250 viewers):

* per frame: the encoded unit's RTP payloads are made once and shared by every viewer (H.264
  packetisation is cached on the :class:`~flowengine.media.engine.units.EncodedUnit`; VP8 is
  packetised per sender, since its payload descriptor carries the sender's own picture id;
  audio units are one payload as they are);
* per frame: the header-extension block, from a template made by aiortc's own serializer
  (only the 3 abs-send-time bytes change, once per frame);
* per packet: one ``struct`` pack of the 12-byte header, SRTP ``protect`` and ``sendto`` on
  the nominated ICE pair's transport: the very call aioice's ``Connection.sendto`` ends in (a
  TURN relay's transport wraps it in ChannelData).

Kept from aiortc: the sender object and its RTCP task (sender reports are made from the
counters this loop updates; receiver reports, PLI/FIR and REMB are handled as before), NACKs
through ``_retransmit`` (replaced per sender to read this loop's history; RTX when negotiated)
and ``stop()``. A track that delivers decoded frames (no codec negotiated) keeps aiortc's own
loop.

aiortc internals used (pyproject pins aiortc to 1.16.x): the sender's name-mangled private
attributes, ``RTCDtlsTransport._state``/``_tx_srtp`` and its byte/packet counters, aioice's
``Connection._nominated``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
import types
from collections.abc import Callable
from typing import Any

from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpsender import RTCRtpSender, random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket
from aiortc.utils import random32

from flowengine.media.engine.units import EncodedUnit

log = logging.getLogger("flowengine.media.rtp")

_S = "_RTCRtpSender__"  # aiortc's private attribute prefix
_DTLS_TX_BYTES = "_RTCDtlsTransport__tx_bytes"
_DTLS_TX_PACKETS = "_RTCDtlsTransport__tx_packets"
_HEADER = struct.Struct("!BBHII")
_NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)


def ntp_now() -> int:
    """The current time as a 64-bit NTP timestamp (aiortc's ``clock.current_ntp_time``,
    without going through ``datetime``)."""
    seconds, ns = divmod(time.time_ns(), 1_000_000_000)
    return ((seconds + _NTP_UNIX_OFFSET) << 32) | ((ns << 32) // 1_000_000_000)


class OutgoingUnit:
    """What a fast-sending :class:`HubTrack` returns from ``recv()``: an encoded unit and its
    RTP timestamp on the track's own timeline (before the sender's random origin)."""

    __slots__ = ("timestamp", "unit")

    def __init__(self, unit: EncodedUnit, timestamp: int):
        self.unit = unit
        self.timestamp = timestamp


def h264_payloads(unit: EncodedUnit) -> list[bytes]:
    """The RTP payloads of an Annex B access unit, made once per unit (all senders share them:
    H.264 payloads carry no per-sender state)."""
    payloads = unit.payloads
    if payloads is None:
        payloads = H264Encoder._packetize(H264Encoder._split_bitstream(unit.data))
        unit.payloads = payloads
    return payloads


def install(sender: RTCRtpSender, on_keyframe_request: Callable[[], None] | None = None) -> None:
    """Make ``sender`` use :func:`run_rtp` (call before the sender starts; idempotent), and
    call ``on_keyframe_request`` the moment its receiver sends a PLI or FIR (aiortc would only
    flag its own encoder, which the lean loop does not use)."""
    if getattr(sender, "_flowengine_fast_rtp", False):
        return
    sender._run_rtp = types.MethodType(run_rtp, sender)  # type: ignore[method-assign]
    sender._flowengine_fast_rtp = True  # type: ignore[attr-defined]
    if on_keyframe_request is not None:
        flag_encoder = sender._send_keyframe

        def send_keyframe() -> None:
            flag_encoder()  # aiortc's own loop (decoded frames) still encodes a key frame
            on_keyframe_request()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def _extension_template(sender: RTCRtpSender, payload_type: int) -> tuple[bytes, int]:
    """The header-extension block aiortc would send, and the offset of the abs-send-time bytes
    in it (-1 when that extension was not negotiated)."""
    ext_map = getattr(sender, _S + "rtp_header_extensions_map")
    blocks = []
    for value in (0, 0xFFFFFF):
        probe = RtpPacket(payload_type=payload_type)
        probe.extensions.mid = getattr(sender, _S + "mid")
        probe.extensions.abs_send_time = value
        blocks.append(probe.serialize(ext_map)[12:])  # no CSRCs: the block follows the header
    low, high = blocks
    changed = [i for i in range(len(low)) if low[i] != high[i]]
    return low, (changed[0] if changed else -1)


async def run_rtp(sender: RTCRtpSender, codec: Any) -> None:
    """``sender._run_rtp`` (see the module docstring). Exits like aiortc's: on cancellation,
    a closed transport or an ended track, then stops the track and sets ``rtp_exited``."""
    track = getattr(sender, _S + "track")
    if getattr(track, "fast_send", None) is None or not track.fast_send():
        # Decoded frames to encode per sender: aiortc's own loop.
        await RTCRtpSender._run_rtp(sender, codec)
        return
    getattr(sender, _S + "rtp_started").set()
    payload_type = codec.payloadType
    codec_name = codec.name.lower()
    sequence = random_sequence_number()
    origin = random32()
    picture_id = random.randint(0, (1 << 15) - 1)  # VP8, as aiortc's encoder starts
    ssrc = sender._ssrc
    extensions, abs_at = _extension_template(sender, payload_type)
    first_byte = 0x90 if extensions else 0x80  # version 2, X bit when extensions follow
    history: dict[int, tuple[int, int, int, bytes]] = {}
    sender._retransmit = types.MethodType(  # type: ignore[method-assign]
        _retransmitter(history, payload_type), sender
    )
    try:
        while True:
            track = getattr(sender, _S + "track")
            if not track:
                await asyncio.sleep(0.02)
                continue
            data = await track.recv()
            if not sender._enabled or not isinstance(data, OutgoingUnit):
                continue
            unit = data.unit
            if codec_name == "h264":
                payloads = h264_payloads(unit)
            elif codec_name == "vp8":
                payloads = Vp8Encoder._packetize(unit.data, picture_id)
                picture_id = (picture_id + 1) % (1 << 15)
            else:
                payloads = [unit.data]
            if not payloads:
                continue
            dtls = sender.transport
            if dtls._state != DtlsState.CONNECTED:
                raise ConnectionError("DTLS transport not connected")
            pair = dtls.transport._connection._nominated.get(1)
            if pair is None:
                raise ConnectionError("no nominated ICE pair")
            sendto = pair.protocol.transport.sendto
            address = pair.remote_addr
            protect = dtls._tx_srtp.protect
            timestamp = (origin + data.timestamp) & 0xFFFFFFFF
            now = ntp_now()
            ext = extensions
            if abs_at >= 0:
                # One send time per frame: its packets leave within microseconds of each other
                # (the field's unit is 3.8 µs), and the clock costs a microsecond a call.
                abs_send_time = ((now >> 14) & 0xFFFFFF).to_bytes(3, "big")
                ext = extensions[:abs_at] + abs_send_time + extensions[abs_at + 3 :]
            last = len(payloads) - 1
            octets = sent = 0
            for i, payload in enumerate(payloads):
                marker = 0x80 if i == last else 0
                header = _HEADER.pack(first_byte, payload_type | marker, sequence, timestamp, ssrc)
                history[sequence % RTP_HISTORY_SIZE] = (sequence, marker, timestamp, payload)
                packet = protect(header + ext + payload)
                sendto(packet, address)
                octets += len(payload)
                sent += len(packet)
                sequence = (sequence + 1) & 0xFFFF
            # The counters aiortc's RTCP sender reports and getStats read.
            count = len(payloads)
            setattr(sender, _S + "ntp_timestamp", now)
            setattr(sender, _S + "rtp_timestamp", timestamp)
            setattr(sender, _S + "octet_count", getattr(sender, _S + "octet_count") + octets)
            setattr(sender, _S + "packet_count", getattr(sender, _S + "packet_count") + count)
            setattr(dtls, _DTLS_TX_BYTES, getattr(dtls, _DTLS_TX_BYTES) + sent)
            setattr(dtls, _DTLS_TX_PACKETS, getattr(dtls, _DTLS_TX_PACKETS) + count)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:
        # rtp_exited must be set whatever happens, or RTCRtpSender.stop() hangs.
        log.exception("RTP sender failed")
    track = getattr(sender, _S + "track")
    if track:
        track.stop()
        setattr(sender, _S + "track", None)
    getattr(sender, _S + "rtp_exited").set()


def _retransmitter(history: dict[int, tuple[int, int, int, bytes]], payload_type: int) -> Any:
    """``sender._retransmit`` reading :func:`run_rtp`'s history (aiortc calls it on NACK)."""

    async def retransmit(sender: RTCRtpSender, sequence_number: int) -> None:
        entry = history.get(sequence_number % RTP_HISTORY_SIZE)
        if entry is None or entry[0] != sequence_number:
            return
        _, marker, timestamp, payload = entry
        rtx_type = getattr(sender, _S + "rtx_payload_type")
        if rtx_type is not None:  # RFC 4588: own SSRC and sequence, original sequence first
            rtx_sequence = getattr(sender, _S + "rtx_sequence_number")
            setattr(sender, _S + "rtx_sequence_number", (rtx_sequence + 1) & 0xFFFF)
            sent_type, sent_sequence, ssrc = rtx_type, rtx_sequence, sender._rtx_ssrc
            payload = struct.pack("!H", sequence_number) + payload
        else:
            sent_type, sent_sequence, ssrc = payload_type, sequence_number, sender._ssrc
        packet = RtpPacket(payload_type=sent_type, marker=1 if marker else 0,
                           sequence_number=sent_sequence, timestamp=timestamp, ssrc=ssrc,
                           payload=payload)
        packet.extensions.mid = getattr(sender, _S + "mid")
        packet.extensions.abs_send_time = (ntp_now() >> 14) & 0xFFFFFF
        ext_map = getattr(sender, _S + "rtp_header_extensions_map")
        await sender.transport._send_rtp(packet.serialize(ext_map))

    return retransmit
