"""Python proxies of Kurento media objects (kurento-protocol.md sections 4.4-4.7, 8 and 9.1).

A :class:`MediaObject` stands for one object on the media server, known by its id. It holds no
state of its own beyond the id: every method call is one ``invoke`` on the server::

    pipeline = await client.create("MediaPipeline")
    ep = await pipeline.create("WebRtcEndpoint", recvonly=False)
    answer = await ep.process_offer(offer)  # == await ep.invoke("processOffer", offer=offer)
    await ep.set_stun_server_address("10.0.0.1")    # property setter: setStunServerAddress
    state = await ep.get_media_state()              # property getter: getMediaState
    await player.connect(ep, media_type="VIDEO")
    await pipeline.release()

Names: a Python call ``ep.process_offer`` and Kurento's own ``ep.processOffer`` are the same
operation. snake_case becomes camelCase, with Kurento's irregular names (``getICECandidatePairs``,
``externalIPv4``) looked up in :data:`IRREGULAR_NAMES`. Keyword arguments are converted the same
way (``media_type=`` -> ``mediaType``). Positional arguments need the operation's parameter names,
which :data:`SIGNATURES` lists for the methods of the Kurento object model; a setter
``set_<prop>(value)`` sends ``{"<prop>": value}``. Proxies given as arguments are sent as their
ids; dicts (complex types such as ``IceCandidate``) are sent with Kurento's field names, with
``__module__``/``__type__`` added where the parameter's type is known (:data:`PARAM_TYPES`), as
the JavaScript client does. Results are returned as the server sent them, except the object
references of :data:`OBJECT_RESULTS`, which become proxies.

Events: ``ep.on("IceCandidateFound", callback)`` (sync or async callback, called with the
event's ``data`` dict), ``await ep.once("IceGatheringDone")``, ``ep.off(...)``. The first
listener of an event subscribes on the server, the last one removed unsubscribes; ``release``
drops every listener of the object (and of its children, for a pipeline).
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any

from flowengine.kurento.errors import KurentoError

if TYPE_CHECKING:
    from flowengine.kurento.client import KurentoClient

EventCallback = Callable[[dict[str, Any]], Any]
"""An event listener: called with the event's ``data``; may return an awaitable."""

SERVER_MANAGER_ID = "manager_ServerManager"
"""The id of the ServerManager singleton (section 4.3)."""

# Parameter names, in order, of the object model's operations (section 8). Only needed to map
# positional arguments; keyword arguments work for any operation.
SIGNATURES: dict[str, tuple[str, ...]] = {
    # MediaObject
    "addTag": ("key", "value"),
    "removeTag": ("key",),
    "getTag": ("key",),
    # MediaElement
    "connect": ("sink", "mediaType", "sourceMediaDescription", "sinkMediaDescription"),
    "disconnect": ("sink", "mediaType", "sourceMediaDescription", "sinkMediaDescription"),
    "getSourceConnections": ("mediaType", "description"),
    "getSinkConnections": ("mediaType", "description"),
    "setAudioFormat": ("caps",),
    "setVideoFormat": ("caps",),
    "getStats": ("mediaType",),
    "isMediaFlowingIn": ("mediaType", "sinkMediaDescription"),
    "isMediaFlowingOut": ("mediaType", "sourceMediaDescription"),
    "isMediaTranscoding": ("mediaType", "binName"),
    "getGstreamerDot": ("details",),
    "dumpGstreamerDot": ("details",),
    # SdpEndpoint
    "generateOffer": ("options",),
    "processOffer": ("offer",),
    "processAnswer": ("answer",),
    # WebRtcEndpoint
    "addIceCandidate": ("candidate",),
    "createDataChannel": ("label", "ordered", "maxPacketLifeTime", "maxRetransmits", "protocol"),
    "closeDataChannel": ("channelId",),
    # DispatcherOneToMany (Dispatcher.connect(source, sink): pass them by name)
    "setSource": ("source",),
    # FaceOverlayFilter, GStreamerFilter
    "setOverlayedImage": (
        "uri", "offsetXPercent", "offsetYPercent", "widthPercent", "heightPercent",
    ),
    "setElementProperty": ("propertyName", "propertyValue"),
    # ServerManager
    "getKmd": ("moduleName",),
    "getUsedCpu": ("interval",),
}

PARAM_TYPES: dict[tuple[str, str], str] = {
    ("addIceCandidate", "candidate"): "IceCandidate",
    ("generateOffer", "options"): "OfferOptions",
    ("setAudioFormat", "caps"): "AudioCaps",
    ("setVideoFormat", "caps"): "VideoCaps",
    ("setRembParams", "rembParams"): "RembParams",
}
"""Complex parameter types: a dict given without ``__type__`` gets the Kurento type tags."""

OBJECT_RESULTS: dict[str, bool] = {
    "getMediaPipeline": False,
    "getParent": False,
    "getChildren": True,
    "getPipelines": True,
}
"""Operations whose result is an object id (False) or a list of ids (True): returned as proxies."""

IRREGULAR_NAMES: dict[str, str] = {
    "get_ice_candidate_pairs": "getICECandidatePairs",
    "ice_candidate_pairs": "ICECandidatePairs",
    "get_external_ipv4": "getExternalIPv4",
    "set_external_ipv4": "setExternalIPv4",
    "external_ipv4": "externalIPv4",
    "get_external_ipv6": "getExternalIPv6",
    "set_external_ipv6": "setExternalIPv6",
    "external_ipv6": "externalIPv6",
}
"""snake_case names whose Kurento spelling the plain conversion would get wrong."""

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def camel_name(name: str) -> str:
    """Kurento's name for a Python name: ``process_offer`` -> ``processOffer``; names that are
    already camelCase (or have no underscore) are returned unchanged."""
    if name in IRREGULAR_NAMES:
        return IRREGULAR_NAMES[name]
    if not _SNAKE.match(name):
        return name
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def object_type(object_id: str) -> str:
    """The class name in an object id: ``<pipe>/<uuid>_kurento.WebRtcEndpoint`` ->
    ``WebRtcEndpoint``, ``manager_ServerManager`` -> ``ServerManager`` (section 4.4)."""
    last = object_id.rsplit("/", 1)[-1]
    tail = last.rsplit("_", 1)[-1]
    return tail.rsplit(".", 1)[-1]


def to_wire(value: Any) -> Any:
    """A Python argument as JSON: proxies become ids, enums their values, tuples lists."""
    if isinstance(value, MediaObject):
        return value.id
    if isinstance(value, enum.Enum):
        return to_wire(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


def wire_params(operation: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``operationParams`` of a call: positional arguments named from :data:`SIGNATURES`
    (or the property, for a one-argument setter), keyword names converted to camelCase, ``None``
    values left out (Kurento's optional parameters are absent, not null)."""
    params: dict[str, Any] = {}
    if args:
        names = SIGNATURES.get(operation)
        if names is None and operation.startswith("set") and len(operation) > 3 and len(args) == 1:
            prop = operation[3:]
            names = (prop[:1].lower() + prop[1:],)
        if names is None:
            raise TypeError(
                f"'{operation}' takes keyword arguments only (its parameter names "
                f"are not known to this client): pass them by name"
            )
        if len(args) > len(names):
            raise TypeError(
                f"'{operation}' takes at most {len(names)} positional argument(s) "
                f"({', '.join(names)}), {len(args)} given"
            )
        params.update(zip(names, args, strict=False))
    for key, value in kwargs.items():
        name = camel_name(key)
        if name in params:
            raise TypeError(f"'{operation}' got parameter '{name}' twice")
        params[name] = value
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        value = to_wire(value)
        tag = PARAM_TYPES.get((operation, name))
        if tag and isinstance(value, dict) and "__type__" not in value:
            value = {**value, "__module__": "kurento", "__type__": tag}
        out[name] = value
    return out


class Subscription:
    """What :meth:`MediaObject.on` returns. Awaiting it waits until the server confirmed the
    subscription (and raises the server's error if it refused, e.g. 40106 for an event the
    object does not have); :meth:`cancel` removes the listener again."""

    def __init__(
        self,
        target: MediaObject,
        event: str,
        callback: EventCallback,
        confirmed: asyncio.Future[str | None],
    ):
        self.target = target
        self.event = event
        self.callback = callback
        self._confirmed = confirmed

    def __await__(self) -> Generator[Any, None, Subscription]:
        # shield: a caller cancelled while waiting must not cancel the shared subscribe request.
        yield from asyncio.shield(self._confirmed).__await__()
        return self

    @property
    def subscription_id(self) -> str | None:
        """The server's subscription id once confirmed, else None."""
        if (
            self._confirmed.done()
            and not self._confirmed.cancelled()
            and self._confirmed.exception() is None
        ):
            return self._confirmed.result()
        return None

    def cancel(self) -> None:
        """Remove this listener (the last one removed unsubscribes on the server)."""
        self.target.off(self.event, self.callback)


class MediaObject:
    """A proxy of one media object on the server; see the module docstring.

    Attributes: ``id`` (the server's object id), ``type`` (the class name, e.g.
    ``"WebRtcEndpoint"``), ``client`` (the :class:`~flowengine.kurento.KurentoClient`).
    Two proxies are equal when they name the same object on the same client. Proxies made
    before the client lost its session (:class:`~flowengine.kurento.SessionLostError`) raise
    that error on every call.
    """

    def __init__(
        self, client: KurentoClient, object_id: str, type_name: str | None = None, *, epoch: int = 0
    ):
        self.client = client
        self.id = object_id
        self.type = type_name or object_type(object_id)
        self._epoch = epoch

    # -- calls ----------------------------------------------------------------------------------

    async def invoke(
        self,
        operation: str,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Invoke an operation by its Kurento name with named parameters; returns
        ``result.value`` (None for void operations). ``timeout`` overrides the client's
        request timeout (e.g. for ``stopAndWait``)."""
        name = camel_name(operation)
        merged = {**(params or {}), **kwargs}
        return await self._call(name, wire_params(name, (), merged), timeout)

    async def _call(self, operation: str, params: dict[str, Any], timeout: float | None) -> Any:
        self.client._check_epoch(self)
        request: dict[str, Any] = {"object": self.id, "operation": operation}
        if params:  # the JS client leaves operationParams out when there are none
            request["operationParams"] = params
        result = await self.client._request("invoke", request, timeout, self)
        value = result.get("value") if isinstance(result, dict) else None
        many = OBJECT_RESULTS.get(operation)
        if many is None or value is None:
            return value
        if many:
            return [self.client.proxy(v) for v in value if isinstance(v, str)]
        return self.client.proxy(value) if isinstance(value, str) else value

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        operation = camel_name(name)

        async def method(*args: Any, **kwargs: Any) -> Any:
            return await self._call(operation, wire_params(operation, args, kwargs), None)

        method.__name__ = name
        method.__qualname__ = f"{self.type}.{name}"
        method.__doc__ = f"Invoke '{operation}' on {self.type} {self.id}."
        return method

    async def create(self, type_name: str, **params: Any) -> MediaObject:
        """Create an element in this object's pipeline (``mediaPipeline`` is filled in), or a
        ``HubPort`` of this hub (``hub`` is filled in)."""
        base = type_name.rsplit(".", 1)[-1]
        owner = {"hub": self.id} if base == "HubPort" else {"mediaPipeline": self.pipeline_id}
        return await self.client.create(type_name, **owner, **params)

    async def connect(
        self,
        sink: MediaObject | str,
        media_type: str | None = None,
        source_media_description: str | None = None,
        sink_media_description: str | None = None,
    ) -> None:
        """Send this element's media to ``sink``: all media types when ``media_type`` is None,
        else ``"AUDIO"``, ``"VIDEO"`` or ``"DATA"``."""
        await self._call(
            "connect",
            wire_params(
                "connect", (sink, media_type, source_media_description, sink_media_description), {}
            ),
            None,
        )

    async def disconnect(
        self,
        sink: MediaObject | str,
        media_type: str | None = None,
        source_media_description: str | None = None,
        sink_media_description: str | None = None,
    ) -> None:
        """Undo :meth:`connect` (all media types when ``media_type`` is None)."""
        await self._call(
            "disconnect",
            wire_params(
                "disconnect",
                (sink, media_type, source_media_description, sink_media_description),
                {},
            ),
            None,
        )

    async def release(self) -> None:
        """Release the object on the server (a pipeline releases its elements) and drop every
        listener of it and of its children. Releasing twice is not an error, nor releasing an
        object whose session the server lost (it is gone already)."""
        if self._epoch != self.client._epoch:
            return
        self.client._check_epoch(self)  # a closed client
        try:
            await self.client._request("release", {"object": self.id}, None, self)
        except KurentoError:
            if self._epoch != self.client._epoch:
                return  # the session was lost while the request waited for a connection
            raise
        self.client._forget(self.id)

    # -- events ---------------------------------------------------------------------------------

    def on(self, event: str, callback: EventCallback) -> Subscription:
        """Call ``callback(data)`` for every ``event`` of this object from now on. A coroutine
        callback runs as a task. Await the returned :class:`Subscription` to be sure the server
        subscribed (do so before e.g. ``gather_candidates``; the subscribe request is sent
        before any later call either way)."""
        self.client._check_epoch(self)
        confirmed = self.client._add_listener(self, event, callback)
        return Subscription(self, event, callback, confirmed)

    def off(self, event: str, callback: EventCallback | None = None) -> None:
        """Remove ``callback`` (every listener of ``event`` when None); the last one removed
        sends ``unsubscribe``."""
        self.client._remove_listener(self.id, event, callback)

    def once(self, event: str, timeout: float | None = None) -> Awaitable[dict[str, Any]]:
        """The ``data`` of the next ``event`` of this object. Listening starts when ``once`` is
        called, so ``done = ep.once("IceGatheringDone")`` before ``gather_candidates()`` and
        ``await done`` afterwards misses nothing. ``timeout`` in seconds (TimeoutError)."""
        self.client._check_epoch(self)
        return self.client._wait_event(self, event, timeout)

    # -- identity -------------------------------------------------------------------------------

    @property
    def pipeline_id(self) -> str:
        """The id of the pipeline this object belongs to (its own id for a pipeline)."""
        return self.id.split("/", 1)[0]

    async def __aenter__(self) -> MediaObject:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """``async with await client.create("MediaPipeline") as pipeline:`` releases it on exit
        (a pipeline left behind stays on the server for minutes after the socket closes)."""
        await self.release()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MediaObject) and other.id == self.id and other.client is self.client
        )

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<{self.type} {self.id}>"
