"""``Dispatcher`` and ``DispatcherOneToMany``: which port's input reaches which ports' outputs.

* ``Dispatcher.connect(source, sink)``: ``sink`` sends what is connected to ``source`` (audio and
  video), replacing what it sent before; a port can feed several. Ports of another hub give
  40004 ``Can not connect ports``, as KMS.
* ``DispatcherOneToMany.setSource(source)``: every port, ``source`` included and those created
  later, sends what is connected to ``source``; ``removeSource()``: they send nothing.

The media is passed as it is, without decoding (KMS's agnosticbins): a port hands out the source's
own hub, so a switch needs no renegotiation with the viewers and costs no CPU. On every switch
each sink of the affected ports subscribes to the new source, and an encoded video reader starts
at a key frame, which the hub asks the source for at once (a WebRTC publisher gets a PLI).
"""

from __future__ import annotations

from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.kurento.errors import CONNECT_ERROR, KurentoError
from flowengine.media.elements.hub import KINDS, HubImpl, HubPortImpl
from flowengine.media.engine.hub import MediaHub


class _RoutingHub(HubImpl):
    """Ports send the input of another port: :meth:`source_of` says which."""

    def source_of(self, port: HubPortImpl) -> HubPortImpl | None:
        raise NotImplementedError

    def port_output(self, port: HubPortImpl, kind: str) -> MediaHub | None:
        source = self.source_of(port)
        return source.input_hub(kind) if source is not None else None

    def port_input_changed(self, port: HubPortImpl, kind: str, hub: MediaHub | None) -> None:
        for each in list(self.ports):
            if self.source_of(each) is port:
                each.output_changed(kind)

    def _rerouted(self, ports: list[HubPortImpl]) -> None:
        for port in ports:
            for kind in KINDS:
                port.output_changed(kind)

    def _own(self, *ports: HubPortImpl) -> None:
        if any(port.owner is not self or port.released for port in ports):
            raise KurentoError(CONNECT_ERROR, "Can not connect ports")


class DispatcherImpl(_RoutingHub):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["Dispatcher"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.routes: dict[HubPortImpl, HubPortImpl] = {}
        """sink port -> source port"""

    def source_of(self, port: HubPortImpl) -> HubPortImpl | None:
        return self.routes.get(port)

    def connect(self, source: HubPortImpl, sink: HubPortImpl) -> None:
        self._own(source, sink)
        if self.routes.get(sink) is not source:
            self.routes[sink] = source
            self._rerouted([sink])

    def remove_port(self, port: HubPortImpl) -> None:
        super().remove_port(port)
        self.routes.pop(port, None)
        fed = [sink for sink, source in self.routes.items() if source is port]
        for sink in fed:
            del self.routes[sink]
        self._rerouted(fed)


class DispatcherOneToManyImpl(_RoutingHub):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["DispatcherOneToMany"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.main: HubPortImpl | None = None

    def source_of(self, port: HubPortImpl) -> HubPortImpl | None:
        return self.main

    def set_source(self, source: HubPortImpl) -> None:
        self._own(source)
        if source is not self.main:
            self.main = source
            self._rerouted(list(self.ports))

    def remove_source(self) -> None:
        if self.main is not None:
            self.main = None
            self._rerouted(list(self.ports))

    def remove_port(self, port: HubPortImpl) -> None:
        super().remove_port(port)
        if port is self.main:
            self.remove_source()
