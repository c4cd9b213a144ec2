"""The context store interface (Node-RED `context/index.js` store plugin API,
docs/reference/nodered-runtime.md §3.4).

A store holds one dict per *scope*. Scope ids follow Node-RED:

- node context: ``"<node_id>:<flow_name>"``
- flow context: ``"<flow_name>"``
- global context: ``"global"``

A ``key`` is a property expression (``a.b[0]``, ``a["b c"]``) resolved with
:class:`flowengine.paths.Path` inside the scope's dict. Stores are synchronous for
reads and writes (a node calls ``context.get`` in the middle of a handler), and
asynchronous only for the I/O around them: ``open``, ``flush`` and ``close``.

Stores know nothing about "``None`` deletes", lists of keys, ``$parent`` or store
prefixes: :class:`flowengine.context.Context` handles those and calls the store
with one plain expression at a time.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any

from flowengine.paths import MISSING, MsgRef, Path, PathError

#: Parsed property expressions are cached because the same few keys are read on
#: every message; the cache is bounded (LRU) so arbitrary keys cannot grow it.
PATH_CACHE_SIZE = 4096

GLOBAL_SCOPE = "global"


@functools.lru_cache(maxsize=PATH_CACHE_SIZE)
def parse_key(key: str) -> Path:
    """Parse a context key into a :class:`Path` (cached).

    Raises ``PathError`` (a ``ValueError``) for a malformed expression or one with a
    nested ``[msg.x]`` reference: a context call has no message to resolve it in.
    """
    # Path strips a leading "msg." as message expressions do; context keys are plain
    # object expressions (Node-RED's getObjectProperty), so "msg.a" must keep its
    # "msg" segment. Path strips exactly one "msg." prefix, hence the doubling.
    path = Path("msg." + key) if key.startswith("msg.") else Path(key)
    if any(isinstance(segment, MsgRef) for segment in path.segments):
        raise PathError(f"Invalid context key {key!r}: message references are not allowed")
    return path


class ContextStore(ABC):
    """Abstract context store: one dict per scope, addressed by property expressions.

    ``get`` returns :data:`flowengine.paths.MISSING` (falsy, JS ``undefined``) for an
    absent key so that a stored ``None`` stays distinguishable from "not there".
    """

    @abstractmethod
    def get(self, scope: str, key: str) -> Any:
        """Return the value at ``key`` in ``scope``, or ``MISSING``."""

    @abstractmethod
    def set(self, scope: str, key: str, value: Any) -> bool:
        """Store ``value`` at ``key`` (creating intermediate containers).

        Returns ``False`` when the path cannot be set (e.g. under a string).
        """

    @abstractmethod
    def delete(self, scope: str, key: str) -> bool:
        """Remove ``key`` from ``scope``; returns whether something was removed."""

    @abstractmethod
    def keys(self, scope: str) -> list[str]:
        """Top-level keys of ``scope`` (empty list for an unknown scope)."""

    @abstractmethod
    def delete_scope(self, scope: str) -> None:
        """Drop a whole scope (used when a node or flow goes away)."""

    @abstractmethod
    def scopes(self) -> list[str]:
        """Ids of every scope that currently holds data."""

    async def open(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Prepare the store (load persisted data). Called once by the manager at start."""

    async def flush(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Persist pending writes, if the store persists anything."""

    async def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Persist everything and release resources; a clean stop must lose nothing."""


class DictStore(ContextStore):
    """Shared implementation over ``dict[scope, dict]``, keeping **references**.

    No copy is made on ``get`` or ``set`` (as Node-RED's memory store): mutating an
    object obtained from ``get`` changes the stored value. Subclasses are told about
    every change through :meth:`_changed`.
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    def _check_usable(self) -> None:
        """Hook for subclasses that refuse access in some states (e.g. not open)."""

    def _changed(self, scope: str) -> None:
        """Hook called after ``scope`` was modified (or removed)."""

    def get(self, scope: str, key: str) -> Any:
        self._check_usable()
        path = parse_key(key)
        data = self._data.get(scope)
        if data is None:
            return MISSING
        return path.get(data)

    def set(self, scope: str, key: str, value: Any) -> bool:
        self._check_usable()
        path = parse_key(key)
        data = self._data.get(scope)
        created = data is None
        if data is None:
            data = {}
        ok = bool(path.set(data, value))
        if ok:
            if created:
                self._data[scope] = data
            self._changed(scope)
        return ok

    def delete(self, scope: str, key: str) -> bool:
        self._check_usable()
        path = parse_key(key)
        data = self._data.get(scope)
        if data is None:
            return False
        removed = bool(path.delete(data))
        if removed:
            self._changed(scope)
        return removed

    def keys(self, scope: str) -> list[str]:
        self._check_usable()
        return list(self._data.get(scope, ()))

    def delete_scope(self, scope: str) -> None:
        self._check_usable()
        if self._data.pop(scope, None) is not None:
            self._changed(scope)

    def scopes(self) -> list[str]:
        self._check_usable()
        return list(self._data)
