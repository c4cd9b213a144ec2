"""aiortc helpers for the WebRTC endpoint: encoded-media taps, SDP and candidate formats, stats.

Receiving without decoding: aiortc's ``RTCRtpReceiver`` re-assembles encoded frames and puts
``(codec, frame)`` on a private ``queue.Queue`` that its decoder thread reads. :func:`tap_receiver`
swaps that queue (before the receiver starts) for a :class:`TapQueue` that pushes each encoded
frame into a :class:`MediaHub` instead; the decoder thread then idles until it is told to stop.
Decoding, when some reader needs it, happens once in the hub's transcoder.
"""

from __future__ import annotations

import queue
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from aiortc import RTCIceCandidate, RTCRtpReceiver
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from flowengine.media.engine.hub import MediaHub
from flowengine.media.engine.units import EncodedUnit, is_video_keyframe

_DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"


class TapQueue(queue.Queue):
    """Stands in for a receiver's decoder queue: encoded frames go to ``hub``.

    Only ``put(None)`` (the receiver stopping) reaches the real queue, so the receiver's idle
    decoder thread exits. ``put`` runs on the event loop (aiortc calls it from its RTP handler).
    """

    def __init__(self, hub: MediaHub, kind: str):
        super().__init__()
        self.hub = hub
        self.kind = kind
        self.bytes = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)
            return
        codec, frame = item
        fmt = codec.name.lower()
        data = bytes(frame.data)
        self.bytes += len(data)
        keyframe = is_video_keyframe(fmt, data) if self.kind == "video" else True
        self.hub.push(
            EncodedUnit(fmt, data, frame.timestamp, Fraction(1, codec.clockRate), keyframe)
        )


def tap_receiver(receiver: RTCRtpReceiver, hub: MediaHub, kind: str) -> TapQueue:
    """Route ``receiver``'s encoded frames to ``hub`` (idempotent; call before it starts)."""
    current = getattr(receiver, _DECODER_QUEUE_ATTR, None)
    if isinstance(current, TapQueue):
        return current
    tap = TapQueue(hub, kind)
    setattr(receiver, _DECODER_QUEUE_ATTR, tap)
    return tap


_CANDIDATE_LINE = re.compile(r"^a=(candidate:.*|end-of-candidates)$")


def strip_candidates(sdp: str) -> str:
    """The SDP without ``a=candidate`` and ``a=end-of-candidates`` lines (trickle ICE, as KMS:
    candidates go out one by one as ``IceCandidateFound`` events)."""
    lines = [line for line in sdp.split("\r\n") if not _CANDIDATE_LINE.match(line)]
    return "\r\n".join(lines)


@dataclass(frozen=True)
class MediaSection:
    """One ``m=`` section of an SDP: its kind, port (0: rejected) and ``a=mid``."""

    kind: str
    port: int
    mid: str | None


def media_sections(sdp: str) -> list[MediaSection]:
    """The ``m=`` sections of ``sdp`` in order."""
    sections: list[MediaSection] = []
    kind, port, mid = None, 0, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            if kind is not None:
                sections.append(MediaSection(kind, port, mid))
            fields = line[2:].split()
            kind, mid = fields[0], None
            port = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        elif line.startswith("a=mid:") and kind is not None:
            mid = line[6:].strip()
    if kind is not None:
        sections.append(MediaSection(kind, port, mid))
    return sections


def application_accepted(sdp: str) -> bool:
    """Whether ``sdp`` has an ``m=application`` section that is not rejected (port 0)."""
    return any(s.kind == "application" and s.port != 0 for s in media_sections(sdp))


def reject_application(answer: str) -> str:
    """``answer`` with its ``m=application`` section rejected as KMS rejects a media it does
    not support (kmssdprejectmediahandler.c: port 0, the offer's protocol and formats, only
    ``a=mid``), and its mid out of the BUNDLE group."""
    lines = answer.split("\r\n")
    out: list[str] = []
    rejected_mid: str | None = None
    in_application = False
    for line in lines:
        if line.startswith("m="):
            in_application = line.startswith("m=application")
            if in_application:
                fields = line.split()
                fields[1] = "0"
                out.append(" ".join(fields))
                out.append("c=IN IP4 0.0.0.0")
                continue
        if in_application:
            if line.startswith("a=mid:"):
                rejected_mid = line[6:].strip()
                out.append(line)
            continue
        out.append(line)
    if rejected_mid is not None:
        out = [_without_bundle_mid(line, rejected_mid) for line in out]
    if out and out[-1] != "":
        out.append("")
    return "\r\n".join(out)


def _without_bundle_mid(line: str, mid: str) -> str:
    if not line.startswith("a=group:BUNDLE"):
        return line
    fields = line.split()
    return " ".join([fields[0], *[f for f in fields[1:] if f != mid]])


def candidate_to_kurento(
    candidate: RTCIceCandidate, sdp_mid: str | None, mline: int, address: str | None = None
) -> dict[str, Any]:
    """A Kurento ``IceCandidate`` (``candidate:...`` string, sdpMid, sdpMLineIndex).

    ``address`` replaces the IP of a host candidate (``externalIPv4``/``externalIPv6``).
    """
    if address and candidate.type == "host":
        candidate = RTCIceCandidate(
            component=candidate.component,
            foundation=candidate.foundation,
            ip=address,
            port=candidate.port,
            priority=candidate.priority,
            protocol=candidate.protocol,
            type=candidate.type,
            tcpType=candidate.tcpType,
        )
    return {
        "__module__": "kurento",
        "__type__": "IceCandidate",
        "candidate": "candidate:" + candidate_to_sdp(candidate),
        "sdpMid": sdp_mid if sdp_mid is not None else str(mline),
        "sdpMLineIndex": mline,
    }


def candidate_from_kurento(value: dict[str, Any]) -> RTCIceCandidate | None:
    """Parse a Kurento/browser ``IceCandidate``; ``None`` for the empty end-of-candidates one.

    Raises ``ValueError`` when the candidate line cannot be parsed.
    """
    text = (value.get("candidate") or "").strip()
    if not text:
        return None
    text = text.removeprefix("a=").removeprefix("candidate:")
    try:
        candidate = candidate_from_sdp(text)
    except (AssertionError, IndexError, ValueError) as exc:
        raise ValueError(str(exc) or "invalid candidate") from None
    candidate.sdpMid = value.get("sdpMid")
    candidate.sdpMLineIndex = value.get("sdpMLineIndex")
    return candidate
