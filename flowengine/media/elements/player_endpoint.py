"""``PlayerEndpoint``: plays a file, http(s) (HLS included) or rtsp source into the pipeline.

States: STOP (nothing open) -play-> START -pause-> PAUSE -play-> START; ``stop`` from any state
goes to STOP and the next ``play`` starts from the beginning. At the end of the media the
player goes to STOP, emits ``EndOfStream`` and tells its sinks (a recorder with
``stopOnEndOfStream`` stops). An open or read failure is an ``Error`` event with Kurento's
error type (``play`` itself succeeds; the state stays, as in KMS: ``stop`` then ``play`` tries
again). Wrong-state calls are not errors (KMS only logs them).

``useEncodedMedia`` as in KMS: false (the default) decodes, and the output is encoded once per
format the sinks want, with a key frame whenever one needs it; true passes H.264, VP8 and Opus
through, and a sink joining between two key frames of the source gets one at once from the video
hub's key-frame bridge (:mod:`~flowengine.media.engine.hub`). Audio a browser cannot take (AAC)
is decoded in both modes and encoded to Opus once for all sinks.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.kurento.errors import PLAYER_SEEK_FAIL, KurentoError
from flowengine.kurento.jsonrpc import complex_value
from flowengine.media.elements.uri_endpoint import UriEndpointImpl, check_player_uri
from flowengine.media.engine.player import PlayerThread, probe_codecs


class PlayerEndpointImpl(UriEndpointImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["PlayerEndpoint"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.source = check_player_uri(self.uri, self.ctx.settings)
        self.network_cache: int = self.params.get("networkCache", 2000)
        self.use_encoded_media: bool = bool(self.params.get("useEncodedMedia"))
        self._player: PlayerThread | None = None
        self._video_info: dict[str, Any] = {
            "isSeekable": False, "seekableInit": 0, "seekableEnd": 0, "duration": 0,
        }  # fmt: skip

    async def start(self) -> None:
        """With encoded media, probe a local file's codecs (in the blocking pool) so that sinks
        negotiated before ``play`` can pick the same codec and get the media passed through."""
        if not self.use_encoded_media:
            return
        self.output_hub("video").bridge_keyframes = True
        if self.source.startswith("/"):
            codecs = await self.ctx.run_blocking(probe_codecs, self.source)
            for kind, codec in codecs.items():
                self.output_hub(kind).format_hint = codec

    # --- UriEndpoint / PlayerEndpoint methods -----------------------------------------------------

    def play(self) -> None:
        if self.state == "START":
            return
        if self.state == "PAUSE" and self._player is not None:
            self._player.resume()
        else:
            self._start_player()
        self._set_state("START")

    def pause(self) -> None:
        if self.state == "START" and self._player is not None:
            self._player.pause()
            self._set_state("PAUSE")

    def stop(self) -> None:
        self._stop_player()
        self._set_state("STOP")

    def _start_player(self) -> None:
        self._stop_player()
        player = PlayerThread(
            self.source,
            loop=asyncio.get_running_loop(),
            hubs={"video": self.output_hub("video"), "audio": self.output_hub("audio")},
            on_event=lambda name, data: self._on_player_event(player, name, data),
            decode=not self.use_encoded_media,
            network_cache_ms=self.network_cache,
            max_in_flight=self.ctx.settings.media_queue_frames * 2,
        )
        self._player = player
        player.start()

    def _stop_player(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player = None

    def _on_player_event(self, player: PlayerThread, name: str, data: dict[str, Any]) -> None:
        if player is not self._player or self.released:
            return  # a stopped player's last words
        if name == "opened":
            self._video_info = data
        elif name == "eos":
            self._player = None
            self._set_state("STOP")  # KMS: the state change, then the event
            self.emit("EndOfStream")
            for conn in list(self.sink_connections):
                hook = getattr(conn.sink, "on_upstream_end_of_stream", None)
                if hook is not None:
                    hook()
        elif name == "error":
            self._player = None
            extra = {"reason": data["reason"]} if data["reason"] else {}
            self.emit_error(data["description"], data["code"], data["type"], **extra)

    # --- properties -------------------------------------------------------------------------------

    def get_video_info(self) -> dict[str, Any]:
        return complex_value("VideoInfo", dict(self._video_info))

    def get_element_gstreamer_dot(self) -> str:
        return self.get_gstreamer_dot()

    def get_position(self) -> int:
        return self._player.position_ms if self._player is not None else 0

    def set_position(self, position: int) -> None:
        if self._player is None or not self._video_info.get("isSeekable"):
            raise KurentoError(PLAYER_SEEK_FAIL, "Seek fails")
        self._player.seek(max(0, int(position)))

    async def release(self) -> None:
        self._stop_player()
        await super().release()
