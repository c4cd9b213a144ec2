"""The lean RTP send path of :class:`~flowengine.media.engine.tracks.HubTrack`'s senders.

Why: a source with N viewers is sent N times, so the server's capacity is its cost per sent
packet. aiortc's ``RTCRtpSender._run_rtp`` spent about 50 µs of CPU a packet (an ``RtpPacket``
object, header extensions through dataclasses and ``datetime`` twice a packet, the frame
re-packetised and copied into an ``av.Packet`` per viewer, four nested coroutines down to the
socket): about 100 viewers of one 640x480/30 source at 1.6 Mbit/s on the event-loop thread
(``bench/media/viewers.py``). A first lean loop per sender needed 21.6 µs (250 viewers); this
path (one pass over the viewers per frame) needs about half (``bench/README.md``):

* per frame, once for every viewer: the encoded unit's RTP payloads (H.264 packetisation is
  cached on the :class:`~flowengine.media.engine.units.EncodedUnit`; VP8 is packetised per
  sender, since its payload descriptor carries the sender's own picture id; audio units are
  one payload as they are);
* per frame and viewer, without a task: the hub calls :meth:`FastSender.deliver` (the track's
  sink) as it pushes the unit; the header-extension block comes from a template made by
  aiortc's own serializer (only the 3 abs-send-time bytes change); the frame's packets are
  written into one reused buffer, SRTP-protected in place and sent with one ``sendmmsg`` to the
  nominated ICE pair's socket (:mod:`~flowengine.media.engine.packet_batch`; through the pair's
  transport for a TURN relay, which wraps them in ChannelData);
* the retransmission history is one entry per frame.

Kept from aiortc: the sender object and its RTCP task (sender reports are made from the
counters updated here; receiver reports, PLI/FIR and REMB are handled as before), NACKs
through ``_retransmit`` (replaced per sender to read this history; RTX when negotiated) and
``stop()``. A track that delivers decoded frames (no codec negotiated) keeps aiortc's own loop.

aiortc internals used (pyproject pins aiortc to 1.16.x; ``PRIVATE_API`` in
``tests/media/test_rtp_sender.py`` names each): the sender's name-mangled private attributes,
``RTCDtlsTransport._state``/``_transport``/``_tx_srtp`` and its byte/packet counters, aioice's
``Connection._nominated``, and the H.264/VP8 packetisers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
import types
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from aiortc.codecs.h264 import PACKET_MAX as H264_PACKET_MAX
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpsender import RTCRtpSender, random_sequence_number
from aiortc.rtp import RtpPacket
from aiortc.utils import random32

from flowengine.media.engine.packet_batch import Route, batch
from flowengine.media.engine.units import EncodedUnit, Unit

log = logging.getLogger("flowengine.media.rtp")

HISTORY_FRAMES = 64
"""Frames kept for retransmission (aiortc keeps 128 packets: 21 frames of 6)."""
_NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)


def ntp_now() -> int:
    """The current time as a 64-bit NTP timestamp (aiortc's ``clock.current_ntp_time``,
    without going through ``datetime``)."""
    seconds, ns = divmod(time.time_ns(), 1_000_000_000)
    return ((seconds + _NTP_UNIX_OFFSET) << 32) | ((ns << 32) // 1_000_000_000)


def h264_payloads(unit: EncodedUnit) -> list[bytes]:
    """The RTP payloads of an Annex B access unit, made once per unit (all senders share them:
    H.264 payloads carry no per-sender state)."""
    payloads = unit.payloads
    if payloads is None:
        payloads = h264_packetize(H264Encoder._split_bitstream(unit.data))
        unit.payloads = payloads
    return payloads


def h264_packetize(nal_units: Iterable[bytes]) -> list[bytes]:
    """RFC 6184 payloads as aiortc makes them (single NAL units, STAP-A aggregates), except that
    a NAL unit too large for one packet is cut into FU-A fragments of the largest size, the last
    one smaller: equal sizes go to the kernel as one segmented message (aiortc balances them,
    which makes two sizes)."""
    payloads: list[bytes] = []
    units = iter(nal_units)
    unit = next(units, None)
    while unit is not None:
        if len(unit) > H264_PACKET_MAX:
            payloads.extend(_fu_a(unit))
            unit = next(units, None)
        else:
            packet, unit = H264Encoder._packetize_stap_a(unit, units)
            payloads.append(packet)
    return payloads


def _fu_a(unit: bytes) -> list[bytes]:
    indicator = (unit[0] & 0xE0) | 28  # F and NRI of the unit, type FU-A
    unit_type = unit[0] & 0x1F
    body = memoryview(unit)[1:]
    step = H264_PACKET_MAX - 2  # the FU indicator and FU header
    fragments = []
    for offset in range(0, len(body), step):
        start = 0x80 if offset == 0 else 0
        end = 0x40 if offset + step >= len(body) else 0
        fragments.append(bytes((indicator, start | end | unit_type)) + body[offset : offset + step])
    return fragments


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
    ext_map = sender._RTCRtpSender__rtp_header_extensions_map
    blocks = []
    for value in (0, 0xFFFFFF):
        probe = RtpPacket(payload_type=payload_type)
        probe.extensions.mid = sender._RTCRtpSender__mid
        probe.extensions.abs_send_time = value
        blocks.append(probe.serialize(ext_map)[12:])  # no CSRCs: the block follows the header
    low, high = blocks
    changed = [i for i in range(len(low)) if low[i] != high[i]]
    return low, (changed[0] if changed else -1)


class FastSender:
    """The send path of one aiortc sender whose track is a fast-sending ``HubTrack``:
    :meth:`deliver` is the track's sink, called by the hub with each unit (see the module
    docstring). ``done`` resolves when it stops sending (an ended track, a closed transport)."""

    def __init__(self, sender: RTCRtpSender, codec: Any, track: Any):
        self.sender = sender
        self.track = track
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.payload_type = codec.payloadType
        self.codec_name = codec.name.lower()
        self.sequence = random_sequence_number()
        self.origin = random32()
        self.picture_id = random.randint(0, (1 << 15) - 1)  # VP8, as aiortc's encoder starts
        self.extensions, self._abs_at = _extension_template(sender, self.payload_type)
        self.first_byte = 0x90 if self.extensions else 0x80  # version 2, X if extensions follow
        self.header = struct.Struct(f"!BBHII{len(self.extensions)}s")
        self.history: deque[tuple[int, int, list[bytes]]] = deque(maxlen=HISTORY_FRAMES)
        """(first sequence number, RTP timestamp, payloads) of the frames sent last."""
        self._pair: Any = None
        self._route: Route | None = None
        self._batch = batch()
        self.stopped = False

    def deliver(self, unit: Unit) -> None:
        """Send one unit (the sink of the track's hub reader; never raises). The hot path:
        run once per frame and viewer, so it reads aiortc's attributes directly."""
        if self.stopped:
            return
        try:
            sender = self.sender
            if not sender._enabled or not isinstance(unit, EncodedUnit):
                return
            timestamp = (self.origin + self.track.timestamp_of(unit)) & 0xFFFFFFFF
            codec_name = self.codec_name
            if codec_name == "h264":
                payloads = unit.payloads or h264_payloads(unit)
            elif codec_name == "vp8":
                payloads = Vp8Encoder._packetize(unit.data, self.picture_id)
                self.picture_id = (self.picture_id + 1) % (1 << 15)
            else:
                payloads = [unit.data]
            if not payloads:
                return
            dtls = sender._RTCRtpSender__transport
            if dtls._state != DtlsState.CONNECTED:
                raise ConnectionError("DTLS transport not connected")
            pair = dtls._transport._connection._nominated.get(1)
            if pair is None:
                raise ConnectionError("no nominated ICE pair")
            route = self._route
            if pair is not self._pair or route is None:
                route = self._route = Route(
                    pair.protocol.transport, pair.remote_addr, pair.local_candidate.type != "relay"
                )
                self._pair = pair
            now = ntp_now()
            ext = self.extensions
            abs_at = self._abs_at
            if abs_at >= 0:
                # One send time per frame: its packets leave within microseconds of each
                # other (the field's unit is 3.8 µs), and the clock costs a microsecond a call.
                abs_send_time = ((now >> 14) & 0xFFFFFF).to_bytes(3, "big")
                ext = ext[:abs_at] + abs_send_time + ext[abs_at + 3 :]
            sequence = self.sequence
            fields = (self.first_byte, self.payload_type, sequence, timestamp, sender._ssrc, ext)
            sent = self._batch.send_rtp(route, dtls._tx_srtp, self.header, fields, payloads)
            count = len(payloads)
            self.history.append((sequence, timestamp, payloads))
            self.sequence = (sequence + count) & 0xFFFF
            # The counters aiortc's RTCP sender reports and getStats read.
            sender._RTCRtpSender__ntp_timestamp = now
            sender._RTCRtpSender__rtp_timestamp = timestamp
            sender._RTCRtpSender__octet_count += sum(map(len, payloads))
            sender._RTCRtpSender__packet_count += count
            dtls._RTCDtlsTransport__tx_bytes += sent
            dtls._RTCDtlsTransport__tx_packets += count
        except ConnectionError:
            self.stop()
        except Exception:
            log.exception("RTP sender failed")
            self.stop()

    def stop(self) -> None:
        """Send nothing more; ``done`` resolves."""
        self.stopped = True
        if not self.done.done():
            self.done.set_result(None)

    def sent(self, sequence_number: int) -> tuple[int, int, bytes] | None:
        """``(marker, timestamp, payload)`` of a recently sent packet, else ``None``."""
        for first, timestamp, payloads in reversed(self.history):
            index = (sequence_number - first) & 0xFFFF
            if index < len(payloads):
                return (1 if index == len(payloads) - 1 else 0), timestamp, payloads[index]
        return None

    async def retransmit(self, sequence_number: int) -> None:
        """``sender._retransmit`` (aiortc calls it on NACK): the packet again from the
        history, in RTX when negotiated (RFC 4588: own SSRC and sequence, the original
        sequence number first)."""
        entry = self.sent(sequence_number)
        if entry is None:
            return
        marker, timestamp, payload = entry
        sender = self.sender
        rtx_type = sender._RTCRtpSender__rtx_payload_type
        if rtx_type is not None:
            rtx_sequence = sender._RTCRtpSender__rtx_sequence_number
            sender._RTCRtpSender__rtx_sequence_number = (rtx_sequence + 1) & 0xFFFF
            sent_type, sent_sequence, ssrc = rtx_type, rtx_sequence, sender._rtx_ssrc
            payload = struct.pack("!H", sequence_number) + payload
        else:
            sent_type, sent_sequence, ssrc = self.payload_type, sequence_number, sender._ssrc
        packet = RtpPacket(payload_type=sent_type, marker=marker, sequence_number=sent_sequence,
                           timestamp=timestamp, ssrc=ssrc, payload=payload)  # fmt: skip
        packet.extensions.mid = sender._RTCRtpSender__mid
        packet.extensions.abs_send_time = (ntp_now() >> 14) & 0xFFFFFF
        ext_map = sender._RTCRtpSender__rtp_header_extensions_map
        await sender.transport._send_rtp(packet.serialize(ext_map))


async def run_rtp(sender: RTCRtpSender, codec: Any) -> None:
    """``sender._run_rtp`` (see the module docstring). Ends like aiortc's: on cancellation,
    a closed transport or an ended track, then stops the track and sets ``rtp_exited``."""
    track = sender._RTCRtpSender__track
    if getattr(track, "fast_send", None) is None or not track.fast_send():
        # Decoded frames to encode per sender: aiortc's own loop.
        await RTCRtpSender._run_rtp(sender, codec)
        return
    sender._RTCRtpSender__rtp_started.set()
    out: FastSender | None = None
    try:
        out = FastSender(sender, codec, track)
        sender._retransmit = out.retransmit  # type: ignore[method-assign]
        if track.readyState == "live":
            track.once("ended", out.stop)
            track.attach(out.deliver)
            await out.done
    except (asyncio.CancelledError, ConnectionError):
        pass
    except Exception:
        # rtp_exited must be set whatever happens, or RTCRtpSender.stop() hangs.
        log.exception("RTP sender failed")
    if track.readyState == "live":
        track.detach()
    track = sender._RTCRtpSender__track
    if track:
        track.stop()
        sender._RTCRtpSender__track = None
    sender._RTCRtpSender__rtp_exited.set()
