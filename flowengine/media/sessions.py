"""Sessions and the object registry (KMS's ``MediaSet``;
docs/reference/kurento-protocol.md section 3).

* Every object is *ref'd* by one or more sessions (the creator, and any session that
  references it later: ``describe``, ``invoke``...). ``release`` destroys an object whatever
  its refs; a session that goes away only *unrefs* its objects, and an object no session refs
  any more is released.
* A session is bound to at most one connection and a connection to at most one session; events
  for a session go to its bound connection (and are dropped while it has none, as in KMS).
* Garbage collection: a session without a connection for ``gc_time`` seconds is closed: its
  subscriptions go and its objects are unref'd (so released unless shared).
* Releasing an object releases its children first (a pipeline's elements), then the object.

Invariants: ``objects`` holds exactly the live objects; ``refs[oid]`` exists for every live
object except the ServerManager singleton (which belongs to no session); a released object is
in no session's ``objects`` and has no event handler left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flowengine.kurento.errors import KurentoError, invalid_session, object_not_found
from flowengine.kurento.jsonrpc import event_notification

if TYPE_CHECKING:
    from flowengine.media.elements.media_object import MediaObjectImpl

log = logging.getLogger("flowengine.media")


class FrameSink(Protocol):
    """A connection as the registry sees it: it can queue one outgoing text frame."""

    def send_frame(self, frame: str) -> None:
        """Queue ``frame`` without blocking (the connection bounds its queue)."""


@dataclass
class Session:
    """One Kurento session. ``handlers`` maps (object id, event type) to subscription ids: KMS
    sends each event once per session however many subscriptions match."""

    id: str
    connection: FrameSink | None = None
    objects: set[str] = field(default_factory=set)
    handlers: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    subscriptions: dict[str, tuple[str, str]] = field(default_factory=dict)
    detached_since: float | None = None
    """Monotonic time the session lost (or never had) a connection; ``None`` while bound."""


class MediaSet:
    """The registry of sessions and media objects, and the event router."""

    def __init__(self, gc_time: float = 240.0, max_objects: int = 10_000):
        self.gc_time = gc_time
        self.max_objects = max_objects
        self.server_id = str(uuid.uuid4())
        self.objects: dict[str, MediaObjectImpl] = {}
        self.sessions: dict[str, Session] = {}
        self.refs: dict[str, set[str]] = {}
        self._bindings: dict[int, str] = {}  # id(connection) -> session id
        self.manager: MediaObjectImpl | None = None  # the ServerManager singleton
        self._releasing: set[str] = set()
        self.on_session_closed: list[Callable[[str], None]] = []
        """Called with the id of every closed session (the dispatcher drops its cache)."""

    # --- sessions ---------------------------------------------------------------------------------

    def new_session_id(self) -> str:
        return str(uuid.uuid4())

    def session(self, sid: str) -> Session:
        """The session ``sid``, created if unknown (KMS accepts any client-supplied id)."""
        session = self.sessions.get(sid)
        if session is None:
            session = Session(sid, detached_since=time.monotonic())
            self.sessions[sid] = session
        return session

    def keep_alive(self, sid: str) -> Session:
        """The existing session ``sid``, or 40007 ``Invalid session``."""
        session = self.sessions.get(sid)
        if session is None:
            raise invalid_session()
        return session

    def bound_session(self, connection: FrameSink) -> str | None:
        return self._bindings.get(id(connection))

    def bind(self, sid: str, connection: FrameSink) -> None:
        """Bind ``connection`` to session ``sid`` (dropping both sides' previous bindings)."""
        session = self.session(sid)
        previous_sid = self._bindings.get(id(connection))
        if previous_sid == sid and session.connection is connection:
            return
        if previous_sid is not None and previous_sid != sid:
            previous = self.sessions.get(previous_sid)
            if previous is not None and previous.connection is connection:
                previous.connection = None
                previous.detached_since = time.monotonic()
        if session.connection is not None and session.connection is not connection:
            log.debug("session %s moves to a new connection", sid)
            self._bindings.pop(id(session.connection), None)
        session.connection = connection
        session.detached_since = None
        self._bindings[id(connection)] = sid

    def connection_closed(self, connection: FrameSink) -> None:
        """The socket went away: its session starts counting towards GC; nothing is released."""
        sid = self._bindings.pop(id(connection), None)
        if sid is None:
            return
        session = self.sessions.get(sid)
        if session is not None and session.connection is connection:
            session.connection = None
            session.detached_since = time.monotonic()

    async def close_session(self, sid: str, release: bool = False) -> None:
        """Forget session ``sid``: unref its objects (or release them all with ``release``)."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        for callback in self.on_session_closed:
            callback(sid)
        if session.connection is not None:
            self._bindings.pop(id(session.connection), None)
        for oid in list(session.objects):
            if release:
                await self.release(oid)
            else:
                await self.unref(session, oid)

    async def collect(self, now: float | None = None) -> list[str]:
        """Close every session detached for at least ``gc_time``; return their ids."""
        now = time.monotonic() if now is None else now
        expired = [
            s.id
            for s in self.sessions.values()
            if s.connection is None
            and s.detached_since is not None
            and now - s.detached_since >= self.gc_time
        ]
        for sid in expired:
            log.info("session %s expired: releasing its objects", sid)
            await self.close_session(sid)
        return expired

    async def run_gc(self, interval: float) -> None:
        """The collector loop (a task owned by the server)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.collect()
            except Exception:  # the collector must survive one bad release
                log.exception("session garbage collection failed")

    # --- objects ----------------------------------------------------------------------------------

    def lookup(self, oid: str) -> MediaObjectImpl:
        """The live object ``oid`` or 40101 (no ref taken)."""
        obj = self.objects.get(oid)
        if obj is None:
            if self.manager is not None and oid == self.manager.id:
                return self.manager
            raise object_not_found(oid)
        return obj

    def get(self, sid: str, oid: str) -> MediaObjectImpl:
        """The live object ``oid``, ref'd into session ``sid`` (KMS ``getMediaObject``)."""
        obj = self.lookup(oid)
        if obj is not self.manager:
            self.ref(sid, oid)
        return obj

    def check_capacity(self) -> None:
        if len(self.objects) >= self.max_objects:
            raise KurentoError(40009, "Too many objects: the server limit is reached")

    def register(self, obj: MediaObjectImpl, sid: str) -> None:
        """Add a new object, ref'd by its creator's session, and announce it."""
        self.objects[obj.id] = obj
        self.refs[obj.id] = set()
        if obj.parent is not None:
            obj.parent.children.append(obj.id)
        self.ref(sid, obj.id)
        if self.manager is not None:
            self.emit(self.manager, "ObjectCreated", {"object": obj.id})

    def ref(self, sid: str, oid: str) -> None:
        if oid not in self.objects:
            raise object_not_found(oid)
        self.session(sid).objects.add(oid)
        self.refs[oid].add(sid)

    async def unref(self, session: Session | str, oid: str) -> None:
        """Remove ``oid`` from the session; release it when no session refs it any more."""
        if isinstance(session, str):
            session = self.sessions.get(session) or Session(session)
        session.objects.discard(oid)
        holders = self.refs.get(oid)
        if holders is None:
            return
        holders.discard(session.id)
        if not holders:
            await self.release(oid)

    async def release(self, oid: str) -> None:
        """Destroy ``oid`` and, first, its children. Unknown ids are not an error."""
        obj = self.objects.get(oid)
        if obj is None or oid in self._releasing:
            return
        self._releasing.add(oid)
        try:
            for child in list(obj.children):
                await self.release(child)
            try:
                await obj.release()
            except Exception:  # release must always complete; the object goes regardless
                log.exception("error while releasing %s", oid)
            self.objects.pop(oid, None)
            for sid in self.refs.pop(oid, set()):
                session = self.sessions.get(sid)
                if session is not None:
                    session.objects.discard(oid)
                    self._drop_handlers(session, oid)
            if obj.parent is not None:
                with contextlib.suppress(ValueError):
                    obj.parent.children.remove(oid)
        finally:
            self._releasing.discard(oid)
        if self.manager is not None:
            self.emit(self.manager, "ObjectDestroyed", {"objectId": oid})

    async def release_all(self) -> None:
        for oid in [o.id for o in self.objects.values() if o.parent is None]:
            await self.release(oid)
        for oid in list(self.objects):
            await self.release(oid)

    def pipelines(self) -> list[str]:
        return [oid for oid, o in self.objects.items() if o.remote_class.name == "MediaPipeline"]

    # --- events -----------------------------------------------------------------------------------

    def subscribe(self, sid: str, oid: str, event_type: str) -> str:
        session = self.session(sid)
        sub_id = str(uuid.uuid4())
        session.handlers.setdefault((oid, event_type), set()).add(sub_id)
        session.subscriptions[sub_id] = (oid, event_type)
        return sub_id

    def unsubscribe(self, sid: str, sub_id: str) -> None:
        """Unknown sessions or subscriptions are not an error (KMS ``removeEventHandler``)."""
        session = self.sessions.get(sid)
        if session is None:
            return
        key = session.subscriptions.pop(sub_id, None)
        if key is None:
            return
        subs = session.handlers.get(key)
        if subs is not None:
            subs.discard(sub_id)
            if not subs:
                del session.handlers[key]

    def _drop_handlers(self, session: Session, oid: str) -> None:
        for key in [k for k in session.handlers if k[0] == oid]:
            for sub_id in session.handlers.pop(key):
                session.subscriptions.pop(sub_id, None)

    def emit(self, obj: MediaObjectImpl, event_type: str, fields: dict[str, Any]) -> int:
        """Send event ``event_type`` of ``obj`` once to every subscribed, connected session.

        Returns how many connections it was queued for (for tests and logs).
        """
        frame: str | None = None
        sent = 0
        for session in self._subscribers(obj.id, event_type):
            if session.connection is None:
                continue  # KMS has no buffering: events of a detached session are lost
            if frame is None:
                frame = event_notification(
                    obj.id,
                    event_type,
                    fields,
                    timestamp_millis=int(time.time() * 1000),
                    tags=obj.event_tags(),
                ).encode()
            session.connection.send_frame(frame)
            sent += 1
        return sent

    def _subscribers(self, oid: str, event_type: str) -> Iterable[Session]:
        key = (oid, event_type)
        return [s for s in self.sessions.values() if key in s.handlers]
