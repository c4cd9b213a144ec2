"""``MediaElement``: connections by media type, fan-out, connection queries, flow states.

Connection rules (as KMS): ``a.connect(b)`` without a media type connects AUDIO, VIDEO and DATA;
a sink has at most one source per media type (connecting another source replaces the old
connection); a source may feed any number of sinks. Elements of different pipelines cannot be
connected (40004).

Media: an element's outputs are :class:`~flowengine.media.engine.hub.MediaHub` objects, one per
kind (``"audio"``, ``"video"``), created on demand. A sink reads its source's hub for that kind;
``input_changed`` tells a subclass when that hub changes. An element may instead hand out another
element's hub as its output (``routed_hub``: a filter's untouched audio, a hub port's route), and
calls ``output_changed`` when that choice changes, so that its sinks follow.

Data: an element that produces data messages (a WebRtcEndpoint's data channel) hands each to
:meth:`MediaElementImpl.push_data`, which gives it to every sink connected to it for DATA
(``receive_data``); an element without data support drops what it receives, as a KMS element
without a data pad.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.kurento.errors import (
    CONNECT_ERROR,
    MEDIA_OBJECT_ILLEGAL_PARAM_ERROR,
    KurentoError,
)
from flowengine.kurento.jsonrpc import complex_value
from flowengine.media.elements.media_object import MediaObjectImpl
from flowengine.media.engine.hub import MediaHub
from flowengine.media.engine.latency import ArrivalLog

MEDIA_TYPES = ("AUDIO", "VIDEO", "DATA")
KIND_OF = {"AUDIO": "audio", "VIDEO": "video"}
"""Kurento media type -> hub kind (DATA has no media hub)."""
DEFAULT = "default"


@dataclass(eq=False)
class ElementConnection:
    source: MediaElementImpl
    sink: MediaElementImpl
    media_type: str
    source_description: str = DEFAULT
    sink_description: str = DEFAULT

    def to_kurento(self) -> dict[str, Any]:
        return complex_value(
            "ElementConnectionData",
            {
                "source": self.source.id,
                "sink": self.sink.id,
                "type": self.media_type,
                "sourceDescription": self.source_description,
                "sinkDescription": self.sink_description,
            },
        )


class MediaElementImpl(MediaObjectImpl):
    """Base of all elements; see the module docstring."""

    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["MediaElement"]
    property_defaults: ClassVar[dict[str, Any]] = {
        "encoderBitrate": 0,
        "minEncoderBitrate": 0,
        "maxEncoderBitrate": 0,
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.outputs: dict[str, MediaHub] = {}
        self.sink_connections: list[ElementConnection] = []
        self.source_connections: dict[str, ElementConnection] = {}
        self.flow_in: dict[str, bool] = {}
        self.flow_out: dict[str, bool] = {}
        self.transcoding_state: dict[str, bool] = {}
        self.audio_caps: dict[str, Any] | None = None
        self.video_caps: dict[str, Any] | None = None
        self._routing = False

    # --- media plumbing ---------------------------------------------------------------------------

    def routed_hub(self, kind: str) -> MediaHub | None:
        """Hook: another element's hub that is this element's ``kind`` output (``None``: the
        element's own hub)."""
        return None

    def _current_route(self, kind: str) -> MediaHub | None:
        if self._routing:
            return None  # a loop of routes (a port routed to itself): the own, idle hub
        self._routing = True
        try:
            return self.routed_hub(kind)
        finally:
            self._routing = False

    def output_changed(self, kind: str) -> None:
        """Tell the sinks of ``kind`` that ``output_hub(kind)`` is another hub now."""
        media_type = "AUDIO" if kind == "audio" else "VIDEO"
        for conn in list(self.sink_connections):
            if conn.media_type == media_type and not conn.sink.released:
                conn.sink.input_changed(kind, self.output_hub(kind))

    def output_hub(self, kind: str) -> MediaHub:
        """This element's output of ``kind``: a routed hub, or its own, created on first use."""
        routed = self._current_route(kind)
        if routed is not None:
            return routed
        hub = self.outputs.get(kind)
        if hub is None:
            hub = MediaHub(
                kind,
                name=self.id.rsplit("/", 1)[-1][:8],
                queue_size=self.ctx.settings.media_queue_frames,
                on_keyframe_request=self.on_keyframe_request if kind == "video" else None,
            )
            if self.latency_stats():
                hub.arrivals = ArrivalLog()
            self.outputs[kind] = hub
        return hub

    def latency_stats(self) -> bool:
        """Whether the pipeline measures latencies (its ``latencyStats`` property)."""
        pipeline = self.pipeline
        return bool(pipeline is not None and pipeline.get_property("latencyStats"))

    def latency_stats_changed(self, enabled: bool) -> None:
        """The pipeline's ``latencyStats`` changed: time the arrivals of this element's
        outputs (see :mod:`~flowengine.media.engine.latency`), or stop."""
        for hub in self.outputs.values():
            if enabled and hub.arrivals is None:
                hub.arrivals = ArrivalLog()
            elif not enabled:
                hub.arrivals = None

    def input_hub(self, kind: str) -> MediaHub | None:
        """The hub currently feeding this element's ``kind`` input."""
        media_type = "AUDIO" if kind == "audio" else "VIDEO"
        conn = self.source_connections.get(media_type)
        return conn.source.output_hub(kind) if conn is not None else None

    def input_changed(self, kind: str, hub: MediaHub | None) -> None:
        """Hook: the ``kind`` input now comes from ``hub`` (``None``: disconnected)."""

    def on_keyframe_request(self) -> None:
        """Hook: a reader of this element's encoded video needs a key frame."""

    def push_data(self, message: str | bytes) -> None:
        """Give a data message (text or binary) to every sink connected for DATA."""
        for conn in list(self.sink_connections):
            if conn.media_type == "DATA" and not conn.sink.released:
                conn.sink.receive_data(message)

    def receive_data(self, message: str | bytes) -> None:
        """Hook: a data message reached this element's DATA input (dropped by default)."""

    # --- connect / disconnect ---------------------------------------------------------------------

    def _types(self, media_type: str | None) -> tuple[str, ...]:
        return MEDIA_TYPES if media_type is None else (media_type,)

    def connect(
        self,
        sink: MediaElementImpl,
        media_type: str | None = None,
        source_media_description: str | None = None,
        sink_media_description: str | None = None,
    ) -> None:
        if sink.pipeline is not self.pipeline:
            raise KurentoError(CONNECT_ERROR, "Media elements do not share pipeline")
        for mtype in self._types(media_type):
            existing = sink.source_connections.get(mtype)
            if existing is not None:
                if existing.source is self:
                    continue
                existing.source._drop_connection(existing, notify=True)
            conn = ElementConnection(
                self,
                sink,
                mtype,
                source_media_description or DEFAULT,
                sink_media_description or DEFAULT,
            )
            self.sink_connections.append(conn)
            sink.source_connections[mtype] = conn
            if mtype in KIND_OF:
                kind = KIND_OF[mtype]
                sink.input_changed(kind, self.output_hub(kind))
            self.emit(
                "ElementConnected",
                sink=sink.id,
                mediaType=mtype,
                sourceMediaDescription=conn.source_description,
                sinkMediaDescription=conn.sink_description,
            )

    def disconnect(
        self,
        sink: MediaElementImpl,
        media_type: str | None = None,
        source_media_description: str | None = None,
        sink_media_description: str | None = None,
    ) -> None:
        for conn in list(self.sink_connections):
            if conn.sink is sink and (media_type is None or conn.media_type == media_type):
                self._drop_connection(conn, notify=True)

    def _drop_connection(self, conn: ElementConnection, notify: bool) -> None:
        if conn in self.sink_connections:
            self.sink_connections.remove(conn)
        sink = conn.sink
        if sink.source_connections.get(conn.media_type) is conn:
            del sink.source_connections[conn.media_type]
            if conn.media_type in KIND_OF and not sink.released:
                sink.input_changed(KIND_OF[conn.media_type], None)
        if notify:
            self.emit(
                "ElementDisconnected",
                sink=sink.id,
                mediaType=conn.media_type,
                sourceMediaDescription=conn.source_description,
                sinkMediaDescription=conn.sink_description,
            )

    def get_source_connections(
        self, media_type: str | None = None, description: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            c.to_kurento()
            for c in self.source_connections.values()
            if (media_type is None or c.media_type == media_type)
            and (description is None or c.sink_description == description)
        ]

    def get_sink_connections(
        self, media_type: str | None = None, description: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            c.to_kurento()
            for c in self.sink_connections
            if (media_type is None or c.media_type == media_type)
            and (description is None or c.source_description == description)
        ]

    # --- formats, stats, flow ---------------------------------------------------------------------

    def set_audio_format(self, caps: dict[str, Any]) -> None:
        self.audio_caps = caps

    def set_video_format(self, caps: dict[str, Any]) -> None:
        self.video_caps = caps

    def get_stats(self, media_type: str | None = None) -> dict[str, Any]:
        now = int(time.time() * 1000)
        stats = {
            self.id: complex_value(
                "ElementStats",
                {"id": self.id, "type": "element", "timestampMillis": now, "inputLatency": []},
            )
        }
        stats.update(self.extra_stats(media_type, now))
        return stats

    def extra_stats(self, media_type: str | None, now: int) -> dict[str, Any]:
        """Hook: more entries for ``getStats`` (RTP stats of endpoints)."""
        return {}

    def is_media_flowing_in(self, media_type: str, sink_media_description: str = DEFAULT) -> bool:
        _no_data(media_type, "MediaFlowingIn")
        return self.flow_in.get(media_type, False)

    def is_media_flowing_out(
        self, media_type: str, source_media_description: str = DEFAULT
    ) -> bool:
        _no_data(media_type, "MediaFlowingOut")
        return self.flow_out.get(media_type, False)

    def is_media_transcoding(self, media_type: str, bin_name: str = DEFAULT) -> bool:
        _no_data(media_type, "MediaTranscoding")
        return self.transcoding_state.get(media_type, False)

    def check_flow(self) -> None:
        """Compare flow and transcoding states with the hubs; raise events on changes.

        Called periodically by the pipeline. Flowing out: this element's output hub got media
        in the last 2 s. Flowing in: the hub feeding this element did.
        """
        for mtype, kind in KIND_OF.items():
            out_hub = self._current_route(kind) or self.outputs.get(kind)
            flowing_out = out_hub is not None and out_hub.is_flowing()
            self._update_flow(self.flow_out, "MediaFlowOutStateChanged", mtype, flowing_out)
            in_hub = self.input_hub(kind)
            flowing_in = in_hub is not None and in_hub.is_flowing()
            self._update_flow(self.flow_in, "MediaFlowInStateChanged", mtype, flowing_in)
            transcoding = out_hub is not None and out_hub.transcoding
            if transcoding != self.transcoding_state.get(mtype, False):
                self.transcoding_state[mtype] = transcoding
                self.emit(
                    "MediaTranscodingStateChanged",
                    state="TRANSCODING" if transcoding else "NOT_TRANSCODING",
                    binName=DEFAULT,
                    mediaType=mtype,
                )

    def _update_flow(self, states: dict[str, bool], event: str, mtype: str, now: bool) -> None:
        before = states.get(mtype)
        if before is None and not now:
            states[mtype] = False  # the initial NOT_FLOWING is not an event
            return
        if before != now:
            states[mtype] = now
            self.emit(
                event, state="FLOWING" if now else "NOT_FLOWING", padName=DEFAULT, mediaType=mtype
            )

    def get_gstreamer_dot(self, details: str | None = None) -> str:
        lines = [f'digraph "{self.id}" {{']
        for conn in self.sink_connections:
            lines.append(f'  "{self.id}" -> "{conn.sink.id}" [label="{conn.media_type}"];')
        lines.append("}")
        return "\n".join(lines)

    def dump_gstreamer_dot(self, details: str | None = None) -> None:
        """KMS writes a .dot file on the server; nothing to write here."""

    # --- release ----------------------------------------------------------------------------------

    async def release(self) -> None:
        for conn in list(self.sink_connections):
            self._drop_connection(conn, notify=False)
        for conn in list(self.source_connections.values()):
            if not conn.source.released:
                conn.source._drop_connection(conn, notify=True)
        for hub in self.outputs.values():
            hub.close()
        await super().release()


def _no_data(media_type: str, what: str) -> None:
    """KMS answers the flow and transcoding queries for DATA with 40107."""
    if media_type == "DATA":
        raise KurentoError(
            MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, f"Media type DATA is not supported for {what}"
        )
