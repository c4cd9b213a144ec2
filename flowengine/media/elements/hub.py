"""``Hub`` and ``HubPort``: the base of Composite, Dispatcher and DispatcherOneToMany.

As in KMS, a hub is a media object of the pipeline (not an element) and a ``HubPort`` is an
element whose parent is its hub (``create("HubPort", {hub})``; its id is under the hub's, and
releasing the hub releases its ports first). What is connected *to* a port is one input of the
hub; what a port sends to its sinks is whatever the hub decides for that port:

* the hub's own output hubs (a Composite's grid and mixes), or
* the input of another port, untouched (a Dispatcher's routes): the port hands out that hub
  itself, so routing costs nothing per frame, and a new route makes every sink of the port
  subscribe to the new source, which starts the sink at a key frame (asked from the source).

A subclass implements :meth:`HubImpl.port_output` and :meth:`HubImpl.port_input_changed`, and
calls :meth:`HubPortImpl.output_changed` when a port's output changes.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.media.elements.media_element import MediaElementImpl
from flowengine.media.elements.media_object import MediaObjectImpl
from flowengine.media.engine.hub import MediaHub

KINDS = ("audio", "video")


class HubImpl(MediaObjectImpl):
    """The abstract ``Hub``; keeps its live ports in creation order."""

    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["Hub"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.ports: list[HubPortImpl] = []
        self._port_numbers = itertools.count()

    def add_port(self, port: HubPortImpl) -> int:
        """Register a new port; returns its number (KMS's handler id: creation order)."""
        self.ports.append(port)
        return next(self._port_numbers)

    def remove_port(self, port: HubPortImpl) -> None:
        """A port is being released."""
        if port in self.ports:
            self.ports.remove(port)

    def port_output(self, port: HubPortImpl, kind: str) -> MediaHub | None:
        """What ``port`` sends for ``kind`` (``None``: nothing)."""
        return None

    def port_input_changed(self, port: HubPortImpl, kind: str, hub: MediaHub | None) -> None:
        """What is connected to ``port`` for ``kind`` is now ``hub``."""

    def port_data(self, port: HubPortImpl, message: str | bytes) -> None:
        """A data message reached ``port`` (dropped unless the hub handles data)."""

    def new_hub(self, kind: str, name: str) -> MediaHub:
        """An output hub of this hub (closed by its owner)."""
        return MediaHub(kind, name=name, queue_size=self.ctx.settings.media_queue_frames)

    def get_gstreamer_dot(self, details: str | None = None) -> str:
        lines = [f'digraph "{self.id}" {{']
        lines += [f'  "{port.id}" -> "{self.id}";' for port in self.ports]
        lines.append("}")
        return "\n".join(lines)

    def dump_gstreamer_dot(self, details: str | None = None) -> None:
        """KMS writes a .dot file on the server; nothing to write here."""


class HubPortImpl(MediaElementImpl):
    """``HubPort``: one input and one output of its hub (see the module docstring)."""

    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["HubPort"]

    def __init__(self, ctx: Any, parent: Any = None, params: dict[str, Any] | None = None):
        owner: HubImpl = (params or {})["hub"]
        super().__init__(ctx, parent=owner, params=params)
        self.owner = owner
        self.number = owner.add_port(self)

    def routed_hub(self, kind: str) -> MediaHub | None:
        return None if self.released else self.owner.port_output(self, kind)

    def input_changed(self, kind: str, hub: MediaHub | None) -> None:
        self.owner.port_input_changed(self, kind, hub)

    def receive_data(self, message: str | bytes) -> None:
        self.owner.port_data(self, message)

    async def release(self) -> None:
        await super().release()  # disconnects: the hub sees the port's inputs go first
        self.owner.remove_port(self)
