"""Python proxies of Kurento media objects
(docs/reference/kurento-protocol.md sections 4.4-4.7, 8 and 9.1).

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
operation. snake_case becomes camelCase, with the object model's own spelling where the plain
conversion would get it wrong (``getICECandidatePairs``, ``externalIPv4``: :data:`KURENTO_NAMES`).
Keyword arguments are converted the same way (``media_type=`` -> ``mediaType``). Positional
arguments need the operation's parameter names, which :data:`SIGNATURES` lists for the methods of
the Kurento object model; a setter ``set_<prop>(value)`` sends ``{"<prop>": value}``. Proxies
given as arguments are sent as their ids; dicts (complex types such as ``IceCandidate``) are sent
with Kurento's field names, with ``__module__``/``__type__`` added where the parameter's type is
known (:data:`PARAM_TYPES`), as the JavaScript client does. Results are returned as the server
sent them, except the object references of :data:`OBJECT_RESULTS`, which become proxies. These
tables are derived from :mod:`flowengine.kurento.model`, the object model the media server
implements; operations outside it (modules of a real KMS) work by keyword arguments.

A proxy reaches its client only through :class:`ProxyHost`.

Events: ``ep.on("IceCandidateFound", callback)`` (sync or async callback, called with the
event's ``data`` dict), ``await ep.once("IceGatheringDone")``, ``ep.off(...)``. The first
listener of an event subscribes on the server, the last one removed unsubscribes; ``release``
drops every listener of the object (and of its children, for a pipeline).
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from typing import Any, Protocol

from flowengine.kurento import model
from flowengine.kurento.errors import KurentoError
from flowengine.kurento.jsonrpc import complex_value

EventCallback = Callable[[dict[str, Any]], Any]
"""An event listener: called with the event's ``data``; may return an awaitable."""


class ProxyHost(Protocol):
    """What a :class:`MediaObject` needs of its client, and all it uses of it;
    :class:`~flowengine.kurento.KurentoClient` implements it."""

    epoch: int
    """Counts the sessions the client lost: proxies made in an older epoch are dead."""

    def proxy(self, object_id: str) -> MediaObject:
        """The proxy of ``object_id`` (no request is made)."""
        ...

    async def create(self, type_name: str, **params: Any) -> MediaObject:
        """Create a media object with these constructor params; its proxy."""
        ...

    def check_proxy(self, proxy: MediaObject) -> None:
        """Raise when the client is closed or ``proxy``'s session was lost."""
        ...

    async def object_request(
        self, target: MediaObject, method: str, params: dict[str, Any], timeout: float | None
    ) -> Any:
        """One request about ``target``, which fails if its session is lost before it is sent;
        the ``result`` (``timeout`` None: the client's)."""
        ...

    def forget(self, object_id: str) -> None:
        """The object was released: drop its proxy and listeners, and its children's."""
        ...

    def listen(
        self, target: MediaObject, event: str, callback: EventCallback
    ) -> asyncio.Future[str | None]:
        """Add a listener; the future gives the server's subscription id."""
        ...

    def unlisten(self, object_id: str, event: str, callback: EventCallback | None) -> None:
        """Remove a listener (every listener of ``event`` when ``callback`` is None)."""
        ...

    def next_event(
        self, target: MediaObject, event: str, timeout: float | None
    ) -> Awaitable[dict[str, Any]]:
        """The ``data`` of the next ``event`` of ``target``."""
        ...


# --- the client's tables, derived from the object model (flowengine.kurento.model) ---------------


def _operations() -> Iterator[tuple[str, tuple[model.Param, ...], str | None]]:
    """``(operation, params, result type)`` of every method and property accessor of the
    model, classes in declaration order (ancestors first)."""
    for cls in model.CLASSES.values():
        for method in cls.methods:
            yield method.name, method.params, method.returns
        for prop in cls.properties:
            yield prop.getter, (), prop.type
            if prop.settable:
                yield prop.setter, (model.Param(prop.name, prop.type),), None


def _signatures() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for cls in model.CLASSES.values():
        for method in cls.methods:
            if method.params:
                # Declared again with other params by a later class (Dispatcher.connect(source,
                # sink) after MediaElement.connect): the first declaration wins.
                out.setdefault(method.name, tuple(p.name for p in method.params))
    return out


SIGNATURES: dict[str, tuple[str, ...]] = _signatures()
"""Parameter names, in order, of the model's methods that take any. Only needed to map
positional arguments; keyword arguments work for any operation. A one-argument setter
``set<Prop>(value)`` names its argument after the property without this table."""

PARAM_TYPES: dict[tuple[str, str], str] = {
    (operation, param.name): param.type
    for operation, params, _ in _operations()
    for param in params
    if param.type in model.COMPLEX_TYPES
}
"""Complex parameter types: a dict given without ``__type__`` gets the Kurento type tags."""

OBJECT_RESULTS: dict[str, bool] = {
    operation: result.endswith("[]")
    for operation, _, result in _operations()
    if result is not None and result.removesuffix("[]") in model.CLASSES
}
"""Operations whose result is an object id (False) or a list of ids (True): returned as proxies."""

def _names() -> Iterator[str]:
    for operation, params, _ in _operations():
        yield operation
        yield from (p.name for p in params)
    for cls in model.CLASSES.values():
        yield from (p.name for p in cls.constructor)
        yield from (p.name for p in cls.properties)


KURENTO_NAMES: dict[str, str] = {name.lower(): name for name in _names()}
"""Every operation, parameter and property name of the model by its folded spelling (lower case, no
underscores): a snake_case name finds Kurento's spelling here whatever the plain conversion would
make of its acronyms (``get_ice_candidate_pairs`` -> ``getICECandidatePairs``, ``external_ipv4``
-> ``externalIPv4``)."""

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def camel_name(name: str) -> str:
    """Kurento's name for a Python name: ``process_offer`` -> ``processOffer``, the model's own
    spelling where it has one (:data:`KURENTO_NAMES`); names that are already camelCase (or have
    no underscore) are returned unchanged."""
    if not _SNAKE.match(name):
        return name
    known = KURENTO_NAMES.get(name.replace("_", ""))
    if known is not None:
        return known
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
            value = complex_value(tag, value, model.COMPLEX_TYPES[tag].module)
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
    ``"WebRtcEndpoint"``), ``client`` (the :class:`~flowengine.kurento.KurentoClient`, seen as
    its :class:`ProxyHost`), ``epoch`` (the client's :attr:`ProxyHost.epoch` when the proxy was
    made). Two proxies are equal when they name the same object on the same client. Proxies made
    before the client lost its session (:class:`~flowengine.kurento.SessionLostError`) raise
    that error on every call.
    """

    def __init__(
        self, client: ProxyHost, object_id: str, type_name: str | None = None, *, epoch: int = 0
    ):
        self.client = client
        self.id = object_id
        self.type = type_name or object_type(object_id)
        self.epoch = epoch

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
        self.client.check_proxy(self)
        request: dict[str, Any] = {"object": self.id, "operation": operation}
        if params:  # the JS client leaves operationParams out when there are none
            request["operationParams"] = params
        result = await self.client.object_request(self, "invoke", request, timeout)
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
        if self.epoch != self.client.epoch:
            return
        self.client.check_proxy(self)  # a closed client
        try:
            await self.client.object_request(self, "release", {"object": self.id}, None)
        except KurentoError:
            if self.epoch != self.client.epoch:
                return  # the session was lost while the request waited for a connection
            raise
        self.client.forget(self.id)

    # -- events ---------------------------------------------------------------------------------

    def on(self, event: str, callback: EventCallback) -> Subscription:
        """Call ``callback(data)`` for every ``event`` of this object from now on. A coroutine
        callback runs as a task. Await the returned :class:`Subscription` to be sure the server
        subscribed (do so before e.g. ``gather_candidates``; the subscribe request is sent
        before any later call either way)."""
        self.client.check_proxy(self)
        confirmed = self.client.listen(self, event, callback)
        return Subscription(self, event, callback, confirmed)

    def off(self, event: str, callback: EventCallback | None = None) -> None:
        """Remove ``callback`` (every listener of ``event`` when None); the last one removed
        sends ``unsubscribe``."""
        self.client.unlisten(self.id, event, callback)

    def once(self, event: str, timeout: float | None = None) -> Awaitable[dict[str, Any]]:
        """The ``data`` of the next ``event`` of this object. Listening starts when ``once`` is
        called, so ``done = ep.once("IceGatheringDone")`` before ``gather_candidates()`` and
        ``await done`` afterwards misses nothing. ``timeout`` in seconds (TimeoutError)."""
        self.client.check_proxy(self)
        return self.client.next_event(self, event, timeout)

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
