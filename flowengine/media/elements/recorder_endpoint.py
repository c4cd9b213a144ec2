"""``RecorderEndpoint``: records what is connected to it into a file of the media directory.

States: STOP -record-> START (``Recording``) -pause-> PAUSE (``Paused``) -record-> START;
``stop``/``stopAndWait`` -> STOP, and ``Stopped`` is emitted once the file is complete.
``stopAndWait`` answers only then; ``release`` of a recording recorder also finishes the file
first, so releasing right after ``stop`` never truncates it (Kurento users' pain #2). A new
``record`` after a stop writes the file again from the start.

Media: the recorder reads decoded frames (``raw``) from the hubs of its sources (one shared
decode per source), and a :class:`RecordingWriter` thread encodes them for the profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, ClassVar

from flowengine.kurento.errors import MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, KurentoError
from flowengine.media import model
from flowengine.media.elements.uri_endpoint import UriEndpointImpl, check_recorder_uri
from flowengine.media.engine.hub import HubReader, MediaHub, ReaderClosed
from flowengine.media.engine.recorder import PROFILES, RecordingWriter
from flowengine.media.engine.units import RAW


class RecorderEndpointImpl(UriEndpointImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["RecorderEndpoint"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.path = check_recorder_uri(self.uri, self.ctx.settings)
        profile_name = self.params.get("mediaProfile") or "WEBM"
        if profile_name == "KURENTO_SPLIT_RECORDER":
            raise KurentoError(
                MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, "Kurento Split Recorder not supported"
            )
        if profile_name not in PROFILES:
            raise KurentoError(
                MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, f"Media profile '{profile_name}' not supported"
            )
        self.profile_name = profile_name
        self.profile = PROFILES[profile_name]
        self.stop_on_eos: bool = bool(self.params.get("stopOnEndOfStream"))
        self._writer: RecordingWriter | None = None
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._started_at = 0.0
        self._paused_total = 0.0
        self._paused_at: float | None = None
        self._finishing: asyncio.Future[Any] | None = None

    # --- recording --------------------------------------------------------------------------------

    def record(self) -> None:
        if self.state == "START":
            return
        if self.state == "PAUSE" and self._writer is not None:
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
                self._paused_at = None
        else:
            self._writer = RecordingWriter(
                self.path, self.profile, max_pending=self.ctx.settings.media_queue_frames * 4
            )
            self._started_at = time.monotonic()
            self._paused_total = 0.0
            self._finishing = None
            for kind in self.profile.kinds:
                self._follow(kind, self.input_hub(kind))
        self._set_state("START")
        self.emit("Recording")

    def pause(self) -> None:
        if self.state == "START":
            self._paused_at = time.monotonic()
            self._set_state("PAUSE")
            self.emit("Paused")

    def stop(self) -> None:
        """Stop now; ``Stopped`` follows when the file is complete."""
        if self._writer is not None and self._finishing is None:
            self._finishing = asyncio.ensure_future(self._finish())
        self._set_state("STOP")

    async def stop_and_wait(self) -> None:
        self.stop()
        if self._finishing is not None:
            await asyncio.shield(self._finishing)

    async def _finish(self) -> None:
        writer, self._writer = self._writer, None
        for task in self._readers.values():
            task.cancel()
        self._readers.clear()
        if writer is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(writer.finish())
        self.emit("Stopped")

    def on_upstream_end_of_stream(self) -> None:
        if self.stop_on_eos and self.state != "STOP":
            self.stop()

    # --- inputs -----------------------------------------------------------------------------------

    def input_changed(self, kind: str, hub: MediaHub | None) -> None:
        if self._writer is not None and kind in self.profile.kinds:
            self._follow(kind, hub)

    def _follow(self, kind: str, hub: MediaHub | None) -> None:
        old = self._readers.pop(kind, None)
        if old is not None:
            old.cancel()
        if hub is not None:
            self._readers[kind] = asyncio.ensure_future(self._read(kind, hub.subscribe(RAW)))

    async def _read(self, kind: str, reader: HubReader) -> None:
        try:
            while True:
                frame = await reader.get()
                writer = self._writer
                if writer is None:
                    return
                if self.state != "START":
                    continue  # paused: frames are dropped, the clock stands still
                t = time.monotonic() - self._started_at - self._paused_total
                writer.put(kind, frame, t)
        except ReaderClosed:
            return
        finally:
            reader.close()

    async def release(self) -> None:
        if self._writer is not None or self._finishing is not None:
            self.stop()
            if self._finishing is not None:
                with contextlib.suppress(Exception):
                    await self._finishing
        for task in self._readers.values():
            task.cancel()
        await super().release()
