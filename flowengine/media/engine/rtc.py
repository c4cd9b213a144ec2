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
        self.frames = 0
        self.bytes = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)
            return
        codec, frame = item
        fmt = codec.name.lower()
        data = bytes(frame.data)
        self.frames += 1
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
