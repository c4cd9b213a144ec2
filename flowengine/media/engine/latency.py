"""End-to-end latency of media through a pipeline, as KMS measures it with ``latencyStats``.

KMS (kms-core ``kmsbasertpendpoint.c``, ``kmsbasertpsession.c``, ``kmsstats.c``): while the
pipeline's ``latencyStats`` is true, a buffer is stamped with the time it enters the pipeline
(at an RTP endpoint's depayloader, or a player's output) and, when an RTP endpoint sends it to
the network, that endpoint updates the average for its sink pad (``sink_video_default``,
``sink_audio_default``) with ``now - stamp``: ``avg = 0.25 * t + 0.75 * avg``, starting at 0,
in nanoseconds. ``getStats`` reports it in ``EndpointStats.E2ELatency`` (MediaLatencyStat[]).

Here the stamp is the time a unit is pushed into a :class:`~flowengine.media.engine.hub.MediaHub`
(after a WebRTC receiver reassembled the frame, or when a player produced it): an
:class:`ArrivalLog` on the hub keeps the arrival time of its recent units by presentation time.
The sample is taken by a :class:`TimedHubTrack` when the endpoint's RTP sender takes the unit to
packetise and send it (nothing awaits between the two). A unit that went through the hub's
transcoder keeps its presentation time, so the sample includes decoding and encoding.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from flowengine.kurento.jsonrpc import complex_value
from flowengine.media.engine.tracks import HubTrack
from flowengine.media.engine.units import Unit

ALPHA = 0.25
"""KMS_STATS_ALPHA: the weight of a new sample in the running average."""

ARRIVALS_KEPT = 256
"""Units per hub whose arrival time is kept (about 8 s of 30 fps video or 5 s of audio)."""


def _bucket(unit: Unit) -> int | None:
    """The unit's presentation time in whole milliseconds (a transcoded unit's is its source's,
    rounded to the 90 kHz clock: a neighbouring bucket at most)."""
    pts, time_base = unit.pts, unit.time_base
    if pts is None or not time_base:
        return None
    return round(pts * time_base.numerator * 1000 / time_base.denominator)


class ArrivalLog:
    """When the recent units of one hub arrived (monotonic ns), by presentation time. Units are
    at least a few milliseconds apart, so a millisecond bucket names one unit; a looping source
    that repeats presentation times finds its newest arrival."""

    def __init__(self, size: int = ARRIVALS_KEPT):
        self._size = size
        self._order: deque[tuple[int, int]] = deque()
        self._by_bucket: dict[int, int] = {}

    def record(self, unit: Unit) -> None:
        bucket = _bucket(unit)
        if bucket is None:
            return
        at = time.monotonic_ns()
        self._by_bucket[bucket] = at
        self._order.append((bucket, at))
        if len(self._order) > self._size:
            old, old_at = self._order.popleft()
            if self._by_bucket.get(old) == old_at:
                del self._by_bucket[old]

    def arrival(self, unit: Unit) -> int | None:
        """The arrival time of ``unit`` (or of the unit it was transcoded from)."""
        bucket = _bucket(unit)
        if bucket is None:
            return None
        found = self._by_bucket.get(bucket)
        if found is None:
            found = self._by_bucket.get(bucket - 1) or self._by_bucket.get(bucket + 1)
        return found


class LatencyStat:
    """The running average of one sink pad of an endpoint (KMS's StreamE2EAvgStat)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.avg = 0.0

    @property
    def name(self) -> str:
        return f"sink_{self.kind}_default"

    def add(self, nanoseconds: int) -> None:
        self.avg = nanoseconds * ALPHA + self.avg * (1 - ALPHA)

    def to_kurento(self) -> dict[str, Any]:
        return complex_value(
            "MediaLatencyStat",
            {"name": self.name, "type": self.kind.upper(), "avg": float(int(self.avg))},
        )


class TimedHubTrack(HubTrack):
    """A :class:`HubTrack` that samples the end-to-end latency of what it sends: when its RTP
    sender takes a unit (``timestamp_of`` runs between the two, with the unit as the hub gave
    it)."""

    def __init__(self, kind: str, stat: LatencyStat):
        super().__init__(kind)
        self.stat = stat

    def timestamp_of(self, unit: Unit) -> int:
        hub = self.hub
        arrivals = hub.arrivals if hub is not None else None
        if arrivals is not None:
            arrived = arrivals.arrival(unit)
            if arrived is not None:
                self.stat.add(time.monotonic_ns() - arrived)
        return super().timestamp_of(unit)
