"""``RecorderEndpoint``: records what is connected to it into a file of the media directory.

States and events as KMS's recorder (kms-elements ``kmsrecorderendpoint.c`` and
``RecorderEndpointImpl.cpp``): ``record`` goes to START (``UriEndpointStateChanged``, then
``Recording``); ``pause`` to PAUSE (``Paused``; also from a recorder that never recorded);
``record`` after ``pause`` resumes into the same file. ``stop`` answers at once and the state
stays as it is until the file is complete; then STOP and ``Stopped``. ``stopAndWait`` answers
then, and so does ``release`` of a recorder that was not stopped. A stopped recorder does not
record again (KMS: "Recorder is stopped"); wrong-state calls are not errors (KMS only logs
them).

The file grows while recording and is written without decoding when the source's codec fits
the profile: see :mod:`flowengine.media.engine.recorder`. When the file cannot be written (its
folder removed, the disk full) the recorder raises ``Error`` with Kurento's error type and
stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.kurento.errors import MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, KurentoError
from flowengine.media.elements.uri_endpoint import UriEndpointImpl, check_recorder_uri
from flowengine.media.engine.hub import MediaHub
from flowengine.media.engine.recorder import PROFILES, Recording

log = logging.getLogger("flowengine.media.recorder")


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
        self.recording: Recording | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._stopped = False

    # --- recording --------------------------------------------------------------------------------

    def record(self) -> None:
        if self._stopped or self._stopping is not None or self.state == "START":
            log.info("record ignored: the recorder is %s", self._describe())
            return
        if self.recording is not None:
            self.recording.resume()
        else:
            self.recording = Recording(
                self.path,
                self.profile,
                {kind: self.input_hub(kind) for kind in self.profile.kinds},
                on_error=self._on_write_error,
                max_pending=self.ctx.settings.media_queue_frames * 10,
            )
        self._set_state("START")
        self.emit("Recording")

    def pause(self) -> None:
        if self._stopped or self._stopping is not None or self.state == "PAUSE":
            log.info("pause ignored: the recorder is %s", self._describe())
            return
        if self.recording is not None:
            self.recording.pause()
        self._set_state("PAUSE")
        self.emit("Paused")

    def stop(self) -> None:
        """Stop taking media now; STOP and ``Stopped`` follow when the file is complete."""
        if self._stopped or self._stopping is not None or self.state == "STOP":
            log.info("stop ignored: the recorder is %s", self._describe())
            return
        if self.recording is None:  # paused before ever recording: nothing to finish
            self._stopped_now()
            return
        self._stopping = asyncio.ensure_future(self._finish(self.recording))

    async def stop_and_wait(self) -> None:
        self.stop()
        if self._stopping is not None:
            await asyncio.shield(self._stopping)

    async def _finish(self, recording: Recording) -> None:
        with contextlib.suppress(Exception):  # a write error was reported as it happened
            await recording.finish()
        self._stopped_now()

    def _stopped_now(self) -> None:
        self._stopped = True
        self._set_state("STOP")
        self.emit("Stopped")

    def _describe(self) -> str:
        if self._stopped:
            return "stopped"
        return "stopping" if self._stopping is not None else f"in state {self.state}"

    def _on_write_error(self, description: str, code: int, error_type: str) -> None:
        if self.released:
            return
        self.emit_error(description, code, error_type)
        self.stop()

    def on_upstream_end_of_stream(self) -> None:
        if self.stop_on_eos:
            self.stop()

    # --- inputs -----------------------------------------------------------------------------------

    def input_changed(self, kind: str, hub: MediaHub | None) -> None:
        if self.recording is not None and self._stopping is None:
            self.recording.follow(kind, hub)

    async def release(self) -> None:
        if self.recording is not None:
            with contextlib.suppress(Exception):
                await self.stop_and_wait()
        await super().release()
