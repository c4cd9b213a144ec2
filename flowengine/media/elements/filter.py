"""``Filter``: an element that processes one kind of media and passes the rest through.

As KMS's ``filterelement``: the filtered kind (``filtered_kind``, video unless a subclass says
otherwise) goes through the filter, the other kind and DATA go through untouched (the element
hands out its source's own hub: nothing is decoded for them). Frames to filter are read decoded
(``raw``) from the hub that feeds the filter, so a source read by several filters is decoded
once; the filter runs in a :class:`~flowengine.media.engine.frame_worker.FrameWorker` thread
that works on the newest frames and drops what it cannot keep up with (KMS: a leaky queue of
one buffer; here three, see ``max_pending``), and its results go to the element's own hub,
which encodes them once per format wanted by the sinks.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.media.elements.media_element import MediaElementImpl
from flowengine.media.engine.frame_worker import FrameWorker, Process
from flowengine.media.engine.hub import HubReader, MediaHub, ReaderClosed
from flowengine.media.engine.units import RAW


class FilterImpl(MediaElementImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["Filter"]

    filtered_kind = "video"
    max_pending = 3
    """Frames waiting for the filter thread. KMS's leaky queue holds one; here decoded frames
    reach the filter in bursts (they come from the decoder's thread through the event loop),
    so one would drop frames that the filter has time for. Three is 0.1 s at 30 fps."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._worker: FrameWorker | None = None
        self._reader_task: asyncio.Task[None] | None = None

    def process(self, frame: Any) -> Any:
        """Filter one decoded frame (in the worker thread); ``None`` drops it."""
        raise NotImplementedError

    @property
    def frames_filtered(self) -> int:
        return self._worker.processed if self._worker is not None else 0

    @property
    def frames_dropped(self) -> int:
        return self._worker.dropped if self._worker is not None else 0

    # --- media ------------------------------------------------------------------------------------

    def routed_hub(self, kind: str) -> MediaHub | None:
        if kind == self.filtered_kind:
            return None
        return self.input_hub(kind)  # passed through untouched

    def input_changed(self, kind: str, hub: MediaHub | None) -> None:
        if kind != self.filtered_kind:
            self.output_changed(kind)
            return
        if self._reader_task is not None:
            self._reader_task.cancel()
            self._reader_task = None
        if hub is not None:
            self._reader_task = asyncio.ensure_future(self._read(hub.subscribe(RAW)))

    def _filter_worker(self) -> FrameWorker:
        if self._worker is None:
            process: Process = self.process
            self._worker = FrameWorker(
                process, self.output_hub(self.filtered_kind).push, asyncio.get_running_loop(),
                max_pending=self.max_pending, name=f"filter-{self.id.rsplit('/', 1)[-1][:8]}",
            )  # fmt: skip
        return self._worker

    async def _read(self, reader: HubReader) -> None:
        worker = self._filter_worker()
        try:
            while True:
                worker.offer(await reader.get())
        except ReaderClosed:
            return
        finally:
            reader.close()

    def receive_data(self, message: str | bytes) -> None:
        self.push_data(message)

    async def release(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        if self._worker is not None:
            self._worker.close()
        await super().release()
