"""The Kurento methods of the server (docs/reference/kurento-protocol.md
section 4) over the sans-I/O layer.

:class:`Dispatcher` takes a parsed request and the connection it came on and returns the
response. It applies the session rules of section 3: a ``sessionId`` missing from a request on
a bound connection is injected, a missing one elsewhere is generated (``getOrCreateSessionId``),
and after a successful request the connection is bound to the ``sessionId`` of the result.
Responses are cached per ``(sessionId, id)`` for ``request_cache_ttl`` seconds, so a repeated id
gets the first answer without running again, as in KMS.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from flowengine.kurento import errors, model
from flowengine.kurento.errors import KurentoError
from flowengine.kurento.jsonrpc import (
    InvalidFrame,
    Notification,
    Request,
    Response,
    error_response,
    notification_not_allowed,
    parse_request,
)
from flowengine.media.context import ServerContext
from flowengine.media.elements.media_object import MediaObjectImpl, snake
from flowengine.media.marshal import bind, method_not_found, unmarshal
from flowengine.media.sessions import FrameSink

log = logging.getLogger("flowengine.media")

Factory = Callable[..., MediaObjectImpl]
Method = Callable[[dict[str, Any] | None], Awaitable[Any]]


class RequestCache:
    """Responses by ``(sessionId, str(id))``, each kept ``ttl`` seconds, at most ``size``."""

    def __init__(self, ttl: float, size: int):
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[tuple[str, str], tuple[float, Response]] = OrderedDict()

    def get(self, sid: str, request_id: Any) -> Response | None:
        if self.ttl <= 0:
            return None
        key = (sid, str(request_id))
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl:
            del self._entries[key]
            return None
        return entry[1]

    def drop_session(self, sid: str) -> None:
        """Forget the answers of a closed session (a new session may reuse its id)."""
        for key in [k for k in self._entries if k[0] == sid]:
            del self._entries[key]

    def put(self, sid: str, request_id: Any, response: Response) -> None:
        if self.ttl <= 0:
            return
        now = time.monotonic()
        self._entries[(sid, str(request_id))] = (now, response)
        while self._entries:
            key, (stamp, _) = next(iter(self._entries.items()))
            if len(self._entries) <= self.size and now - stamp <= self.ttl:
                break
            del self._entries[key]


# --- param helpers --------------------------------------------------------------------------------


def _need_params(params: dict[str, Any] | None) -> dict[str, Any]:
    if params is None:
        raise errors.params_required()
    return params


def string_param(params: dict[str, Any], name: str) -> str:
    """The string parameter ``name`` (a Kurento error when it is missing or not a string)."""
    value = params.get(name)
    if value is None:
        raise errors.param_required(name)
    if not isinstance(value, str):
        raise errors.param_type(name, "a string")
    return value


def _object_or_none(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is not None and not isinstance(value, dict):
        raise errors.param_type(name, "an object")
    return value


def unknown_method(request_id: Any) -> Response:
    """The answer to a method the server does not have."""
    return error_response(request_id, KurentoError(errors.METHOD_NOT_FOUND, "Method not found."))


def method_failed(method: str, request_id: Any, exc: Exception) -> Response:
    """The answer to a method that raised: a :class:`KurentoError` as it is, anything else
    logged (a bug) and answered as KMS does."""
    if isinstance(exc, KurentoError):
        return error_response(request_id, exc)
    log.error("%s failed", method, exc_info=exc)
    return error_response(request_id, KurentoError(
        errors.INTERNAL_ERROR, f"Unexpected error while processing method: {exc}"))


class FrameHandler:
    """The session rules of section 3 around the methods of a server (:class:`Dispatcher`) or
    of a router (:class:`flowengine.media.cluster.router.Router`): a ``sessionId`` missing from
    a request on a bound connection is injected, responses are cached per ``(sessionId, id)``,
    and after a successful request the connection is bound to the result's ``sessionId``.
    Subclasses set ``cache`` and give the hooks."""

    cache: RequestCache

    async def handle_frame(self, frame: str | bytes, connection: FrameSink) -> str:
        """Parse, run and answer one incoming frame; returns the frame to send back."""
        try:
            message = parse_request(frame)
        except InvalidFrame as exc:
            return exc.response.encode()
        if isinstance(message, Notification):
            # KMS runs it, then cannot answer a request without id.
            await self.handle(Request(None, message.method, message.params), connection)
            return notification_not_allowed().encode()
        return (await self.handle(message, connection)).encode()

    async def handle(self, request: Request, connection: FrameSink | None) -> Response:
        """Run ``request`` with session injection, caching and binding."""
        params = request.params
        bound = self.bound_session(connection) if connection is not None else None
        if bound is not None and (params is None or "sessionId" not in params):
            params = {**(params or {}), "sessionId": bound}
        sid = params.get("sessionId") if params is not None else None
        # Requests without id (notifications) are never answered, so never cached.
        cacheable = isinstance(sid, str) and request.id is not None
        if cacheable:
            cached = self.cache.get(sid, request.id)
            if cached is not None:
                return Response(request.id, cached.result, cached.error)
        response = await self.run(request.method, params, request.id, connection)
        if cacheable:
            self.cache.put(sid, request.id, response)
        if connection is not None and not response.is_error:
            new_sid = response.session_id
            if new_sid is not None:
                self.bind(new_sid, connection)
        return response

    def bound_session(self, connection: FrameSink) -> str | None:
        """The session ``connection`` is bound to."""
        raise NotImplementedError

    def bind(self, sid: str, connection: FrameSink) -> None:
        """Bind ``connection`` to session ``sid``."""
        raise NotImplementedError

    async def run(
        self, method: str, params: dict[str, Any] | None, request_id: Any, connection: Any
    ) -> Response:
        """Run one method: a result or an error response."""
        raise NotImplementedError


class Dispatcher(FrameHandler):
    """Runs requests against one server's :class:`ServerContext`.

    ``factories`` maps a remote class name to the implementation to instantiate for
    ``create`` (``impl(ctx, parent=..., params=...)``).
    """

    def __init__(self, ctx: ServerContext, factories: dict[str, Factory]):
        self.ctx = ctx
        self.media_set = ctx.media_set
        self.factories = factories
        self.cache = RequestCache(ctx.settings.request_cache_ttl, ctx.settings.request_cache_size)
        self.media_set.on_session_closed.append(self.cache.drop_session)
        self.methods: dict[str, Method] = {
            "ping": self.ping,
            "connect": self.connect,
            "describe": self.describe,
            "create": self.create,
            "invoke": self.invoke,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "release": self.release,
            "transaction": self.transaction,
            "closeSession": self.close_session,
            "keepAlive": self.keep_alive,
            "ref": self.ref,
            "unref": self.unref,
        }

    # --- FrameHandler ---------------------------------------------------------------------------

    def bound_session(self, connection: FrameSink) -> str | None:
        return self.media_set.bound_session(connection)

    def bind(self, sid: str, connection: FrameSink) -> None:
        self.media_set.bind(sid, connection)

    async def run(
        self, method: str, params: dict[str, Any] | None, request_id: Any, connection: Any
    ) -> Response:
        return await self.execute(method, params, request_id)

    async def execute(
        self, method: str, params: dict[str, Any] | None, request_id: Any
    ) -> Response:
        """Run one method (no session binding): a result or an error response."""
        handler = self.methods.get(method)
        if handler is None:
            return unknown_method(request_id)
        try:
            return Response(request_id, result=await handler(params))
        except Exception as exc:
            return method_failed(method, request_id, exc)

    # --- sessions ---------------------------------------------------------------------------------

    def _session_id(self, params: dict[str, Any] | None) -> str:
        """The request's session (a new one when it names none, as KMS's
        getOrCreateSessionId)."""
        sid = params.get("sessionId") if params is not None else None
        if sid is None:
            sid = self.media_set.new_session_id()
        elif not isinstance(sid, str):
            raise errors.param_type("sessionId", "a string")
        self.media_set.session(sid)
        return sid

    def _resolver(self, sid: str) -> Callable[[str], MediaObjectImpl]:
        return lambda oid: self.media_set.get(sid, oid)

    # --- methods ----------------------------------------------------------------------------------

    async def ping(self, params: dict[str, Any] | None) -> dict[str, Any]:
        result: dict[str, Any] = {"value": "pong"}  # "interval" is ignored, as by KMS
        sid = params.get("sessionId") if params else None
        if isinstance(sid, str):
            result["sessionId"] = sid
        return result

    async def connect(self, params: dict[str, Any] | None) -> dict[str, Any]:
        sid = params.get("sessionId") if params else None
        if sid is not None:
            if not isinstance(sid, str):
                raise errors.param_type("sessionId", "a string")
            self.media_set.keep_alive(sid)
        else:
            sid = self.media_set.new_session_id()
            self.media_set.session(sid)
        return {"serverId": self.media_set.server_id, "sessionId": sid}

    async def keep_alive(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        sid = string_param(params, "sessionId")
        self.media_set.keep_alive(sid)
        return {"sessionId": sid}

    async def close_session(self, params: dict[str, Any] | None) -> None:
        params = _need_params(params)
        sid = string_param(params, "sessionId")
        await self.media_set.close_session(sid, release=params.get("release") is True)
        return None

    async def describe(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        oid = string_param(params, "object")
        sid = self._session_id(params)
        obj = self.media_set.get(sid, oid)
        return {**model.describe(obj.remote_class).to_result(), "sessionId": sid}

    async def create(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        type_name = string_param(params, "type")
        sid = self._session_id(params)
        ctor_params = _object_or_none(params, "constructorParams")
        cls = model.resolve_factory(type_name)
        if cls is None or cls.name not in self.factories:
            raise KurentoError(
                errors.MEDIA_OBJECT_NOT_AVAILABLE, f"Factory '{type_name}' not found"
            )
        self.media_set.check_capacity()
        values = bind(cls.constructor, ctor_params, self._resolver(sid))
        parent = values.get("mediaPipeline")
        obj = self.factories[cls.name](self.ctx, parent=parent, params=values)
        try:
            check_access = getattr(obj, "check_access", None)  # a player's URI host (SSRF)
            if check_access is not None:
                await check_access()
            await obj.start()
        except BaseException:
            await obj.release()
            raise
        self.media_set.register(obj, sid)
        return {"value": obj.id, "sessionId": sid}

    async def invoke(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        oid = string_param(params, "object")
        operation = string_param(params, "operation")
        sid = self._session_id(params)
        op_params = _object_or_none(params, "operationParams")
        obj = self.media_set.get(sid, oid)
        result: dict[str, Any] = {"sessionId": sid}
        method = model.find_method(obj.remote_class, operation)
        if method is not None:
            if op_params is None and any(not p.optional for p in method.params):
                raise errors.marshall_error("'operationParams' is required")
            values = bind(method.params, op_params, self._resolver(sid))
            impl = getattr(obj, snake(operation), None)
            if impl is None:
                raise KurentoError(
                    errors.MEDIA_OBJECT_OPERATION_NOT_SUPPORTED,
                    f"Operation '{operation}' is not supported by this server",
                )
            value = impl(**{snake(k): v for k, v in values.items()})
            if inspect.isawaitable(value):
                value = await value
            if method.returns is not None:
                result["value"] = _to_wire(value)
            return result
        accessor = model.find_accessor(obj.remote_class, operation)
        if accessor is None:
            raise method_not_found(operation, op_params)
        prop, kind = accessor
        if kind == "get":
            value = obj.get_property(prop.name)
            if inspect.isawaitable(value):
                value = await value
            result["value"] = _to_wire(value)
            return result
        if op_params is None:
            raise errors.marshall_error("'operationParams' is required")
        if prop.name not in op_params:
            raise method_not_found(operation, op_params)
        value = unmarshal(op_params[prop.name], prop.type, prop.name, self._resolver(sid))
        outcome = obj.set_property(prop.name, value)
        if inspect.isawaitable(outcome):
            await outcome
        return result

    async def subscribe(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        oid = string_param(params, "object")
        event_type = string_param(params, "type")
        sid = self._session_id(params)
        obj = self.media_set.get(sid, oid)
        if model.find_event(obj.remote_class, event_type) is None:
            raise KurentoError(
                errors.MEDIA_OBJECT_EVENT_NOT_SUPPORTED, f"Event '{event_type}' not supported"
            )
        return {"value": self.media_set.subscribe(sid, obj.id, event_type), "sessionId": sid}

    async def unsubscribe(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        string_param(params, "object")
        sub_id = string_param(params, "subscription")
        sid = string_param(params, "sessionId")
        self.media_set.unsubscribe(sid, sub_id)
        return {"sessionId": sid}

    async def release(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        oid = string_param(params, "object")
        sid = self._session_id(params)
        await self.media_set.release(oid)
        return {"sessionId": sid}

    async def ref(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        oid = string_param(params, "object")
        sid = self._session_id(params)
        self.media_set.get(sid, oid)
        return {"sessionId": sid}

    async def unref(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = _need_params(params)
        oid = string_param(params, "object")
        sid = self._session_id(params)
        await self.media_set.unref(sid, oid)
        return {"sessionId": sid}

    async def transaction(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Run ``operations`` in order; stop at the first failure (section 4.8)."""
        params = _need_params(params)
        operations = transaction_operations(params)
        sid = self._session_id(params)
        prefix = uuid.uuid4()

        async def step(index: int, method: str, op_params: dict[str, Any]) -> Response:
            request = Request(f"{prefix}_{index}", method)
            cached = self.cache.get(sid, request.id)
            response = cached or await self.execute(request.method, op_params, request.id)
            self.cache.put(sid, request.id, response)
            return response

        responses = await run_transaction(operations, sid, step)
        return {"sessionId": sid, "value": [r.to_dict() for r in responses]}


def transaction_operations(params: dict[str, Any]) -> list[Any]:
    """The ``operations`` of a ``transaction`` request (an array, or a Kurento error)."""
    operations = params.get("operations")
    if operations is None:
        raise errors.param_required("operations")
    if not isinstance(operations, list):
        raise errors.param_type("operations", "an array")
    return operations


async def run_transaction(
    operations: list[Any],
    sid: str,
    step: Callable[[int, str, dict[str, Any]], Awaitable[Response]],
) -> list[Response]:
    """Run a transaction's operations in order through ``step(index, method, params)``, each
    ``"newref:N"`` replaced by the N-th result, ``sessionId`` set; stop at the first failure.
    The responses carry the operations' indexes as ids (section 4.8)."""
    responses: list[Response] = []
    for index, op in enumerate(operations):
        if not isinstance(op, dict) or op.get("id") != index:
            raise KurentoError(
                errors.MALFORMED_TRANSACTION, f"Id of request '{index}' should be '{index}'"
            )
        op_params = _replace_newrefs(op.get("params"), responses)
        if op_params is not None and not isinstance(op_params, dict):
            raise KurentoError(errors.MALFORMED_TRANSACTION, "Invalid operation params")
        method = op.get("method")
        op_params = {**(op_params or {}), "sessionId": sid}
        response = await step(index, method if isinstance(method, str) else "", op_params)
        response = Response(index, response.result, response.error)
        responses.append(response)
        if response.is_error:
            break
    return responses


def _replace_newrefs(value: Any, responses: list[Response]) -> Any:
    """Replace every ``"newref:N"`` by the value of the N-th response (section 4.8)."""
    if isinstance(value, str) and value.startswith("newref:"):
        try:
            index = int(value[len("newref:") :])
            target = responses[index]
        except (ValueError, IndexError):
            raise KurentoError(
                errors.MALFORMED_TRANSACTION, f"Invalid reference '{value}'"
            ) from None
        if target.is_error or not isinstance(target.value, str):
            raise KurentoError(errors.MALFORMED_TRANSACTION, f"Invalid reference '{value}'")
        return target.value
    if isinstance(value, dict):
        return {k: _replace_newrefs(v, responses) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_newrefs(v, responses) for v in value]
    return value


def _to_wire(value: Any) -> Any:
    """Object references as ids; everything else is already JSON-ready."""
    if isinstance(value, MediaObjectImpl):
        return value.id
    if isinstance(value, list):
        return [_to_wire(v) for v in value]
    return value
