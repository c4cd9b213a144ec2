"""``MediaObject``: the base of every remote object (ids, parent, name, tags, events, release).

Operations reach Python methods by name: an invoke of ``addTag`` calls ``add_tag(key=...,
value=...)`` (camelCase Kurento names become snake_case, params too). A property accessor such
as ``getMediaState`` calls ``get_media_state()`` when the class defines it, and otherwise reads
the value stored by the generic setter (or the property's default in ``property_defaults``).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from flowengine.kurento import model
from flowengine.kurento.errors import MEDIA_OBJECT_TAG_KEY_NOT_FOUND, KurentoError
from flowengine.kurento.jsonrpc import complex_value

if TYPE_CHECKING:
    from flowengine.media.context import ServerContext
    from flowengine.media.elements.media_pipeline import MediaPipelineImpl

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``processOffer`` -> ``process_offer``, ``ICECandidatePairs`` -> ``ice_candidate_pairs``."""
    return _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name)).lower()


class MediaObjectImpl:
    """Server-side implementation of ``kurento.MediaObject``.

    Subclasses set ``remote_class`` (their :mod:`~flowengine.kurento.model` declaration) and
    implement operations as snake_case methods (sync or async). ``release()`` must be
    idempotent and must not raise for an object that never started media.
    """

    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["MediaObject"]
    property_defaults: ClassVar[dict[str, Any]] = {"sendTagsInEvents": False}

    def __init__(
        self,
        ctx: ServerContext,
        parent: MediaObjectImpl | None = None,
        params: dict[str, Any] | None = None,
        object_id: str | None = None,
    ):
        self.ctx = ctx
        self.parent = parent
        self.params = params or {}
        self.id = object_id or self._make_id(parent)
        self.children: list[str] = []
        self.tags: dict[str, str] = {}
        self.creation_time = int(time.time())
        self.released = False
        self._props: dict[str, Any] = {}

    def _make_id(self, parent: MediaObjectImpl | None) -> str:
        # <uuid>_kurento.<Type>, nested under the parent's id
        # (docs/reference/kurento-protocol.md 4.4).
        own = f"{uuid.uuid4()}_{self.remote_class.qualified_name}"
        return f"{parent.id}/{own}" if parent is not None else own

    @property
    def pipeline(self) -> MediaPipelineImpl | None:
        obj: MediaObjectImpl | None = self
        while obj is not None:
            if obj.remote_class.name == "MediaPipeline":
                return obj  # type: ignore[return-value]
            obj = obj.parent
        return None

    async def start(self) -> None:
        """Called once after registration (create): validate resources, start media."""

    async def release(self) -> None:
        """Free every resource. Children are released by the registry before this runs."""
        self.released = True

    # --- events -----------------------------------------------------------------------------------

    def emit(self, event_type: str, **fields: Any) -> None:
        """Raise a Kurento event (fields by their Kurento names)."""
        if not self.released:
            self.ctx.media_set.emit(self, event_type, fields)

    def emit_error(self, description: str, error_code: int, error_type: str, **extra: Any) -> None:
        """The ``Error`` event: its ``type`` field is the error type, not the event name.
        ``extra`` fields go with it (the embedded server's own, e.g. a player's ``reason``)."""
        self.emit("Error", description=description, errorCode=error_code, type=error_type,
                  **extra)

    def event_tags(self) -> list[dict[str, str]]:
        if not self.get_property("sendTagsInEvents"):
            return []
        return [complex_value("Tag", {"key": k, "value": v}) for k, v in self.tags.items()]

    # --- properties -------------------------------------------------------------------------------

    def get_property(self, name: str) -> Any:
        getter = getattr(self, "get_" + snake(name), None)
        if getter is not None:
            return getter()
        if name in self._props:
            return self._props[name]
        return self.property_defaults_for(name)

    def property_defaults_for(self, name: str) -> Any:
        for cls in type(self).__mro__:
            defaults = cls.__dict__.get("property_defaults", {})
            if name in defaults:
                return defaults[name]
        return None

    def set_property(self, name: str, value: Any) -> None:
        setter = getattr(self, "set_" + snake(name), None)
        if setter is not None:
            setter(value)
        else:
            self._props[name] = value

    # MediaObject properties
    def get_media_pipeline(self) -> str | None:
        pipeline = self.pipeline
        return pipeline.id if pipeline is not None else None

    def get_parent(self) -> str | None:
        return self.parent.id if self.parent is not None else None

    def get_id(self) -> str:
        return self.id

    def get_children(self) -> list[str]:
        return list(self.children)

    def get_name(self) -> str:
        return self._props.get("name", self.id)

    def get_creation_time(self) -> int:
        return self.creation_time

    # --- methods ----------------------------------------------------------------------------------

    def add_tag(self, key: str, value: str) -> None:
        self.tags[key] = value

    def remove_tag(self, key: str) -> None:
        self.tags.pop(key, None)

    def get_tag(self, key: str) -> str:
        if key not in self.tags:
            raise KurentoError(MEDIA_OBJECT_TAG_KEY_NOT_FOUND, "Tag key not found")
        return self.tags[key]

    def get_tags(self) -> list[dict[str, str]]:
        return [complex_value("Tag", {"key": k, "value": v}) for k, v in self.tags.items()]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"
