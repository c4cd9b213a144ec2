"""``MediaHub``: one output (audio or video) of an element, fanned out to any number of readers.

A producer (a WebRTC receiver, a player) ``push``es units; each reader asks for one format.
Readers of the producer's own format get the very same objects (pass-through: no decode, no
copy); readers of other formats are served by one shared :class:`Transcoder`, so a format is
decoded once and encoded once whatever the number of readers.

Key frames: a reader of encoded video can only start (or resume after a loss) at a key frame.
It asks for one when it joins, when its queue overflows and when its viewer sends a PLI/FIR
(:meth:`HubReader.request_keyframe`). Who makes it depends on the source:

* decoded frames (a player with ``useEncodedMedia`` false): the shared encoder of the reader's
  format makes its next frame a key frame;
* encoded media from a peer (a WebRTC publisher): the source is asked (``on_keyframe_request``:
  an RTCP PLI);
* encoded media that cannot make key frames (a player with ``useEncodedMedia`` true, whose file
  may hold one key frame in an hour): with ``bridge_keyframes`` the hub decodes the source all
  along, and a reader that needs a key frame is *bridged*: it gets a re-encode of the source
  in the source's own codec, starting with a key frame at once, until the source's next key
  frame, where it switches back to the untouched source units. Bridged readers of one format
  share one encoder.

Bounds: each reader holds at most ``queue_size`` units; when full the oldest are dropped (for
encoded video: everything queued, and the reader asks for a key frame).

Everything here runs on the event loop thread; only the transcoder has a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from flowengine.media.engine.transcode import Transcoder
from flowengine.media.engine.units import RAW, EncodedUnit, Unit, unit_format

if TYPE_CHECKING:
    from flowengine.media.engine.latency import ArrivalLog

log = logging.getLogger("flowengine.media.hub")

KEYFRAME_REQUEST_INTERVAL = 0.5
"""Seconds between two key-frame requests sent to a source (PLI storms help nobody)."""


class ReaderClosed(Exception):
    """The reader was closed (its hub went away or it was unsubscribed)."""


class HubReader:
    """A bounded queue of units in one format, fed by a hub."""

    def __init__(self, hub: MediaHub, fmt: str, queue_size: int):
        self.hub = hub
        self.fmt = fmt
        self.queue_size = queue_size
        self._queue: deque[Unit] = deque()
        self._ready = asyncio.Event()
        self.closed = False
        self.encoded_video = hub.kind == "video" and fmt != RAW
        self.need_keyframe = self.encoded_video
        self.bridged = False
        """Served by the hub's key-frame bridge until the source's next key frame."""
        self.dropped = 0

    def offer(self, unit: Unit) -> None:
        """A unit of the source, or of the transcoder for a format the source has not."""
        if self.closed:
            return
        if self.bridged:
            if not (isinstance(unit, EncodedUnit) and unit.keyframe):
                return  # the bridge serves this reader until the source's next key frame
            self.bridged = self.need_keyframe = False
            self.hub._update_targets()
        elif self.need_keyframe and isinstance(unit, EncodedUnit):
            if not unit.keyframe:
                self.request_keyframe()  # may bridge this reader: then the bridge serves it
                return
            self.need_keyframe = False
        self._enqueue(unit)

    def offer_bridged(self, unit: EncodedUnit) -> None:
        """A unit of the key-frame bridge (the source re-encoded in its own codec)."""
        if self.closed or not self.bridged:
            return
        if self.need_keyframe:
            if not unit.keyframe:
                self.hub.request_keyframe(self.fmt)  # (again, if the last request was lost)
                return
            self.need_keyframe = False
        self._enqueue(unit)

    def _enqueue(self, unit: Unit) -> None:
        if len(self._queue) >= self.queue_size:
            self.dropped += 1
            if self.encoded_video:
                # Dropping one encoded video frame breaks every frame until the next key frame.
                self._queue.clear()
                if not (isinstance(unit, EncodedUnit) and unit.keyframe):
                    self.request_keyframe()
                    return
            else:
                self._queue.popleft()
        self._queue.append(unit)
        self._ready.set()

    def request_keyframe(self, force: bool = False) -> None:
        """This reader needs a key frame (it joined, lost frames, or its viewer sent a PLI):
        bridged if the hub can, else asked from whoever makes the hub's key frames.
        ``force`` skips the rate limit of requests to the source."""
        if not self.encoded_video or self.closed:
            return
        self.need_keyframe = True
        if self.hub.can_bridge(self.fmt) and not self.bridged:
            self.bridged = True
            self._queue.clear()  # the bridge's key frame comes first
            self.hub._update_targets()
            force = True
        self.hub.request_keyframe(self.fmt, force)

    async def get(self) -> Unit:
        """The next unit; raises :class:`ReaderClosed` once closed."""
        while not self._queue:
            if self.closed:
                raise ReaderClosed
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.clear()
            self._ready.set()
            self.hub._remove(self)


class MediaHub:
    """See the module docstring. ``kind`` is ``"audio"`` or ``"video"``.

    ``on_keyframe_request`` is called (rate-limited) when a reader of the source's own format
    needs a key frame and the hub cannot make one: a WebRTC source sends a PLI to its peer.
    ``bridge_keyframes`` (set by a producer of encoded video that cannot make key frames)
    turns on the key-frame bridge.
    """

    def __init__(
        self,
        kind: str,
        *,
        name: str = "",
        queue_size: int = 60,
        on_keyframe_request: Callable[[], None] | None = None,
    ):
        self.kind = kind
        self.name = name
        self.queue_size = queue_size
        self.on_keyframe_request = on_keyframe_request
        self.bridge_keyframes = False
        self.readers: dict[str, list[HubReader]] = {}
        self.source_format: str | None = None
        self.format_hint: str | None = None
        """The format the producer is expected to push before it pushes anything (a player
        probes its file, a WebRTC receiver knows its negotiated codec): sinks negotiating
        early use it to pick the same codec and get pass-through."""
        self.last_push: float | None = None
        self.units_pushed = 0
        self.arrivals: ArrivalLog | None = None
        """Set while the pipeline's ``latencyStats`` is on: when each unit arrived."""
        self._transcoder: Transcoder | None = None
        self._last_keyframe_request: dict[str, float] = {}
        self._last_source_request = 0.0
        self.closed = False

    # --- producer side ----------------------------------------------------------------------------

    def push(self, unit: Unit) -> None:
        if self.closed:
            return
        fmt = unit_format(unit)
        if fmt != self.source_format:
            self.source_format = fmt
            self._update_targets()
        self.last_push = time.monotonic()
        self.units_pushed += 1
        if self.arrivals is not None:
            self.arrivals.record(unit)
        for reader in self.readers.get(fmt, ()):
            reader.offer(unit)
        bridging = self.bridge_keyframes and fmt != RAW
        if bridging or len(self.readers) > (fmt in self.readers):
            # Some reader wants another format, or the bridge follows the source.
            self._converter(bridging).feed(unit)

    def _converter(self, decode_always: bool) -> Transcoder:
        """The transcoder (its thread starts on first need)."""
        if self._transcoder is None:
            self._transcoder = Transcoder(
                self.kind,
                asyncio.get_running_loop(),
                self._deliver_converted,
                name=f"transcode-{self.kind}-{self.name}",
                on_keyframe_needed=self._ask_source,
            )
            self._update_targets()
        self._transcoder.decode_always = decode_always
        return self._transcoder

    @property
    def expected_format(self) -> str | None:
        """What readers should ask for to avoid transcoding (``None``: unknown)."""
        if self.source_format is not None and self.source_format != RAW:
            return self.source_format
        return self.format_hint

    @property
    def transcoding(self) -> bool:
        """Whether some reader is being served through a decode/encode (the bridge aside)."""
        return bool(
            self._transcoder is not None
            and self.source_format is not None
            and self._transcoder.targets - {self.source_format}
        )

    def is_flowing(self, within: float = 2.0) -> bool:
        return self.last_push is not None and time.monotonic() - self.last_push < within

    # --- reader side ------------------------------------------------------------------------------

    def subscribe(self, fmt: str) -> HubReader:
        """A new reader of ``fmt``. Readers of encoded video start at a key frame."""
        reader = HubReader(self, fmt, self.queue_size)
        if self.closed:
            reader.closed = True
            return reader
        self.readers.setdefault(fmt, []).append(reader)
        self._update_targets()
        if reader.need_keyframe:
            reader.request_keyframe(force=True)
        elif self.kind == "video" and fmt == RAW and self.source_format is not None:
            # A decoding reader (a recorder, a transcoder) needs a key frame too: the browser
            # sends one only when asked, and without it a recording may get no video at all.
            self.request_keyframe(self.source_format, force=True)
        return reader

    def _remove(self, reader: HubReader) -> None:
        readers = self.readers.get(reader.fmt)
        if readers and reader in readers:
            readers.remove(reader)
            if not readers:
                del self.readers[reader.fmt]
        self._update_targets()

    def can_bridge(self, fmt: str) -> bool:
        """Whether a reader of ``fmt`` needing a key frame can be bridged now."""
        return (
            self.bridge_keyframes
            and fmt == self.source_format
            and self._transcoder is not None
            and self._transcoder.decode_always
        )

    def _update_targets(self) -> None:
        """What the transcoder encodes: every format readers want but the source has not,
        and the source's own format while some reader of it is bridged."""
        if self._transcoder is None:
            return
        source = self.source_format
        targets = {fmt for fmt in self.readers if fmt != source}
        if any(r.bridged for r in self.readers.get(source or "", ())):
            targets.add(source)
        self._transcoder.targets = targets  # replaced, never mutated: the worker reads it

    def _deliver_converted(self, fmt: str, unit: Unit) -> None:
        if fmt == self.source_format:
            for reader in list(self.readers.get(fmt, ())):
                reader.offer_bridged(unit)
            return
        for reader in list(self.readers.get(fmt, ())):
            reader.offer(unit)

    def request_keyframe(self, fmt: str, force: bool = False) -> None:
        """A key frame for readers of ``fmt``, at most one request per format and
        KEYFRAME_REQUEST_INTERVAL unless ``force``: the transcoder's ``fmt`` encoder (a
        converted format, or the bridge) makes its next frame a key frame, and a source that
        produces ``fmt`` itself is asked (``on_keyframe_request``)."""
        now = time.monotonic()
        last = self._last_keyframe_request.get(fmt, 0.0)
        if not force and now - last < KEYFRAME_REQUEST_INTERVAL:
            return
        self._last_keyframe_request[fmt] = now
        if self._transcoder is not None:
            self._transcoder.force_keyframe(fmt)
        if self.source_format in (fmt, None) or (
            self.source_format != RAW and self._transcoder is None
        ):
            # The source makes the format itself, or must give the decoder a first key frame.
            self._ask_source(force)

    def _ask_source(self, force: bool = False) -> None:
        """``on_keyframe_request``, at most twice per KEYFRAME_REQUEST_INTERVAL unless
        ``force`` (the transcoder's decoder asks with each unit it cannot decode)."""
        now = time.monotonic()
        if not force and now - self._last_source_request < KEYFRAME_REQUEST_INTERVAL / 2:
            return
        self._last_source_request = now
        if self.on_keyframe_request is not None:
            try:
                self.on_keyframe_request()
            except Exception:
                log.debug("key frame request failed", exc_info=True)

    def close(self) -> None:
        self.closed = True
        for readers in list(self.readers.values()):
            for reader in list(readers):
                reader.close()
        if self._transcoder is not None:
            self._transcoder.close()
            self._transcoder = None
