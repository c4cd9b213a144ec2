"""``HubTrack``: the aiortc track an element sends, reading whichever hub feeds it.

aiortc's ``RTCRtpSender`` calls ``recv()``: an ``av.Packet`` is packetised as is (pass-through),
an ``av.Frame`` is encoded by the sender. The element sets ``fmt`` to the codec negotiated for the
sender, so the track asks its hub for packets in exactly that codec (the hub converts, once, if
the source has another one).

Timestamps are rebased onto one continuous timeline per track: a new source (another element
connected in its place, a player looping or seeking) must not make the RTP timestamps jump
backwards at the receiver.

Once the endpoint gives the track its ``sender``, that sender runs the lean send loop of
:mod:`~flowengine.media.engine.rtp_sender`, and ``recv()`` returns encoded units as
:class:`~flowengine.media.engine.rtp_sender.OutgoingUnit` (no ``av.Packet`` copy per viewer).
"""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from flowengine.media.engine import rtp_sender
from flowengine.media.engine.hub import HubReader, MediaHub, ReaderClosed
from flowengine.media.engine.units import RAW, EncodedUnit, Unit, clock_for


class HubTrack(MediaStreamTrack):
    """An outgoing track whose source is a :class:`MediaHub` that may change at any time."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.fmt: str = RAW
        self._sender: Any = None
        self.frames_sent = 0
        self._hub: MediaHub | None = None
        self._reader: HubReader | None = None
        self._changed = asyncio.Event()
        self._offset: int | None = None
        self._last_out: int | None = None

    @property
    def hub(self) -> MediaHub | None:
        return self._hub

    @property
    def sender(self) -> Any:
        """The aiortc ``RTCRtpSender`` sending this track (set by the endpoint)."""
        return self._sender

    @sender.setter
    def sender(self, sender: Any) -> None:
        self._sender = sender
        if sender is not None:
            rtp_sender.install(sender, on_keyframe_request=self.request_keyframe)

    def request_keyframe(self) -> None:
        """A key frame for this track's receiver (its PLI or FIR, or ``requestKeyframe``):
        asked from whoever makes the hub's key frames (see :mod:`~.hub`). Before the track
        reads, its subscription asks anyway."""
        if self._reader is not None:
            self._reader.request_keyframe()

    def fast_send(self) -> bool:
        """Whether ``recv()`` gives encoded units to :func:`rtp_sender.run_rtp` (else
        packets or decoded frames for aiortc's own loop)."""
        return self.fmt != RAW and getattr(self._sender, "_flowengine_fast_rtp", False)

    def set_hub(self, hub: MediaHub | None) -> None:
        """Switch the source (``None``: nothing to send until another one is set)."""
        if hub is self._hub:
            return
        self._hub = hub
        if self._reader is not None:
            self._reader.close()  # wakes a pending recv(), which resubscribes
            self._reader = None
        self._changed.set()

    def set_format(self, fmt: str) -> None:
        if fmt != self.fmt:
            self.fmt = fmt
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._changed.set()

    async def recv(self) -> Any:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._reader is None or self._reader.closed:
                if self._hub is None or self._hub.closed:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                self._reader = self._hub.subscribe(self.fmt)
            try:
                unit = await self._reader.get()
            except ReaderClosed:
                self._reader = None
                continue
            self.frames_sent += 1
            return self._convert(unit)

    def _convert(self, unit: Unit) -> Any:
        clock = clock_for(self.kind, self.fmt)
        ts_in = _rescale(unit.pts or 0, unit.time_base, clock)
        step = clock // 30 if self.kind == "video" else clock // 50
        if self._offset is None or self._last_out is None:
            self._offset = -ts_in
        else:
            out = ts_in + self._offset
            # A jump backwards, or forwards by more than 2 s, is a new source: continue the
            # timeline one frame after the last timestamp sent.
            if out < self._last_out or out > self._last_out + 2 * clock:
                self._offset = self._last_out + step - ts_in
        pts = ts_in + self._offset
        self._last_out = pts
        if isinstance(unit, EncodedUnit):
            if self.fast_send():
                return rtp_sender.OutgoingUnit(unit, pts)
            return unit.to_packet(pts, Fraction(1, clock))
        unit.pts, unit.time_base = pts, Fraction(1, clock)
        return unit

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._changed.set()
        super().stop()


def _rescale(pts: int, time_base: Fraction | None, clock: int) -> int:
    """``int(pts * time_base * clock)`` in integers (Fraction arithmetic costs microseconds
    per frame and viewer)."""
    if not time_base:
        return 0
    num = pts * time_base.numerator * clock
    den = time_base.denominator
    return num // den if num >= 0 else -(-num // den)
