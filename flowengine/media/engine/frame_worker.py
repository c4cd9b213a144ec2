"""``FrameWorker``: per-frame processing (a filter) in a thread of its own, never behind.

A filter element reads decoded frames from the hub that feeds it and ``offer``s them here; the
worker thread runs ``process(frame)`` and hands each result to ``deliver`` on the event loop (the
element's output hub, whose shared encoders serve the viewers).

Bound: at most ``max_pending`` frames wait; a new frame beyond that replaces the oldest waiting
one (KMS puts a leaky queue of one buffer before each filter). A slow filter therefore works on
the newest frames at a lower rate instead of falling behind, and ``dropped`` counts the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("flowengine.media.filter")

Process = Callable[[Any], Any]
"""Takes a decoded frame, returns the frame to send (or ``None`` to send nothing)."""


class FrameWorker:
    def __init__(
        self,
        process: Process,
        deliver: Callable[[Any], None],
        loop: asyncio.AbstractEventLoop,
        *,
        max_pending: int = 1,
        name: str = "media-filter",
    ):
        self.process = process
        self.deliver = deliver
        self.loop = loop
        self.max_pending = max_pending
        self.processed = 0
        self.dropped = 0
        self._pending: deque[Any] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, frame: Any) -> None:
        """Queue a frame (never blocks; replaces the oldest waiting one when full)."""
        with self._wake:
            if self._closed:
                return
            if len(self._pending) >= self.max_pending:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(frame)
            self._wake.notify()

    def close(self) -> None:
        """Stop: the thread ends after the frame it is processing, if any."""
        with self._wake:
            self._closed = True
            self._pending.clear()
            self._wake.notify()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                frame = self._pending.popleft()
            try:
                out = self.process(frame)
            except Exception:  # one bad frame must not stop the filter
                log.exception("filter failed on a frame")
                continue
            self.processed += 1
            if out is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                    self.loop.call_soon_threadsafe(self.deliver, out)
