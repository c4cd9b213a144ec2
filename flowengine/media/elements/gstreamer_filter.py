"""``GStreamerFilter``: one GStreamer element given as a ``gst-launch`` command; this server
runs the subset of elements listed in :mod:`~flowengine.media.engine.gst_command` (with
PyAV/FFmpeg and numpy) and refuses others at ``create`` with KMS's error, naming the subset.

``filterType`` as KMS: ``AUTODETECT`` filters the kind the element works on (``volume``: audio,
the others: video), ``VIDEO``/``AUDIO`` must match it (else 40001 ``Given command is not valid,
pad templates don't match``). The other kind and DATA pass through untouched.
``setElementProperty(name, value)`` changes a property while the filter runs, with KMS's
conversions and errors.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.kurento.errors import MARSHALL_ERROR, NOT_IMPLEMENTED, KurentoError
from flowengine.media.elements.filter import FilterImpl
from flowengine.media.engine.gst_command import CommandError, Processor, parse, processor


class GStreamerFilterImpl(FilterImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["GStreamerFilter"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.command: str = self.params["command"]
        try:
            self.element = parse(self.command)
        except CommandError as exc:
            raise KurentoError(MARSHALL_ERROR, exc.message) from None
        wanted = self.params.get("filterType") or "AUTODETECT"
        if wanted != "AUTODETECT" and wanted.lower() != self.element.kind:
            raise KurentoError(
                MARSHALL_ERROR, "Given command is not valid, pad templates don't match"
            )
        self.filtered_kind = self.element.kind
        if self.filtered_kind == "audio":
            self.max_pending = 10  # 200 ms: dropping audio is heard
        self._processor: Processor = processor(self.element)

    def process(self, frame: Any) -> Any:
        return self._processor(frame)

    def get_command(self) -> str:
        return self.command

    def set_element_property(self, property_name: str, property_value: str) -> None:
        try:
            self.element.set_from_api(property_name, property_value)
        except CommandError as exc:
            code = NOT_IMPLEMENTED if exc.not_implemented else MARSHALL_ERROR
            raise KurentoError(code, exc.message) from None
        self._processor = processor(self.element)  # the worker picks it up at its next frame
