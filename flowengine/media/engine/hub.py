"""``MediaHub``: one output (audio or video) of an element, fanned out to any number of readers.

A producer (a WebRTC receiver, a player) ``push``es units; each reader asks for one format.
Readers of the producer's own format get the very same objects (pass-through: no decode, no
copy); readers of other formats are served by one shared :class:`Transcoder`, so a format is
decoded once and encoded once whatever the number of readers.

Bounds: each reader holds at most ``queue_size`` units; when full the oldest are dropped, and a
reader of encoded video then waits for the next key frame (and asks the source for one), since
a decoder cannot resume from a delta frame.

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
        self.need_keyframe = hub.kind == "video" and fmt != RAW
        self.dropped = 0

    def offer(self, unit: Unit) -> None:
        if self.closed:
            return
        if self.need_keyframe and isinstance(unit, EncodedUnit):
            if not unit.keyframe:
                self.hub.request_keyframe(self.fmt)
                return
            self.need_keyframe = False
        if len(self._queue) >= self.queue_size:
            self.dropped += 1
            if self.fmt != RAW and self.hub.kind == "video":
                # Dropping one encoded video frame breaks every frame until the next key frame.
                self._queue.clear()
                self.need_keyframe = True
                self.hub.request_keyframe(self.fmt)
                if not (isinstance(unit, EncodedUnit) and unit.keyframe):
                    return
                self.need_keyframe = False
            else:
                self._queue.popleft()
        self._queue.append(unit)
        self._ready.set()

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
    needs a key frame; a WebRTC source sends a PLI to its peer, a file source cannot help.
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
        self._last_keyframe_request = 0.0
        self.closed = False

    # --- producer side ----------------------------------------------------------------------------

    def push(self, unit: Unit) -> None:
        if self.closed:
            return
        fmt = unit_format(unit)
        self.source_format = fmt
        self.last_push = time.monotonic()
        self.units_pushed += 1
        if self.arrivals is not None:
            self.arrivals.record(unit)
        for reader in self.readers.get(fmt, ()):
            reader.offer(unit)
        if len(self.readers) > (fmt in self.readers):
            # Some reader wants another format: convert (the thread starts on first need).
            if self._transcoder is None:
                self._transcoder = Transcoder(
                    self.kind,
                    asyncio.get_running_loop(),
                    self._deliver_converted,
                    name=f"transcode-{self.kind}-{self.name}",
                )
                self._transcoder.targets = set(self.readers)
            self._transcoder.feed(unit)

    @property
    def expected_format(self) -> str | None:
        """What readers should ask for to avoid transcoding (``None``: unknown)."""
        if self.source_format is not None and self.source_format != RAW:
            return self.source_format
        return self.format_hint

    @property
    def transcoding(self) -> bool:
        """Whether some reader is being served through a decode/encode."""
        return bool(
            self._transcoder is not None
            and self.source_format is not None
            and self._transcoder.targets - {self.source_format}
        )

    def is_flowing(self, within: float = 2.0) -> bool:
        return self.last_push is not None and time.monotonic() - self.last_push < within

    # --- reader side ------------------------------------------------------------------------------

    def subscribe(self, fmt: str) -> HubReader:
        """A new reader of ``fmt``. Readers of encoded video start at the next key frame."""
        if self.closed:
            reader = HubReader(self, fmt, self.queue_size)
            reader.closed = True
            return reader
        reader = HubReader(self, fmt, self.queue_size)
        self.readers.setdefault(fmt, []).append(reader)
        self._update_targets()
        if reader.need_keyframe:
            self.request_keyframe(fmt, force=True)
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

    def _update_targets(self) -> None:
        # Every wanted format goes to the transcoder; it skips the source's own format, so a
        # source that changes codec keeps its readers served.
        if self._transcoder is not None:
            self._transcoder.targets = set(self.readers)

    def _deliver_converted(self, fmt: str, unit: Unit) -> None:
        if fmt == self.source_format:
            return  # the source now produces this format itself
        for reader in self.readers.get(fmt, ()):
            reader.offer(unit)

    def request_keyframe(self, fmt: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_keyframe_request < KEYFRAME_REQUEST_INTERVAL:
            return
        self._last_keyframe_request = now
        source_has_it = fmt == self.source_format or self.source_format is None
        if source_has_it and self.on_keyframe_request is not None:
            try:
                self.on_keyframe_request()
            except Exception:
                log.debug("key frame request failed", exc_info=True)
        if self._transcoder is not None:
            self._transcoder.force_keyframe(fmt)

    def close(self) -> None:
        self.closed = True
        for readers in list(self.readers.values()):
            for reader in list(readers):
                reader.close()
        if self._transcoder is not None:
            self._transcoder.close()
            self._transcoder = None
