"""The context object a node uses (Node-RED `context/index.js createContext`,
docs/reference/nodered-runtime.md §3.1-§3.2).

Node-RED's JavaScript API translated to Python:

- ``get(key)`` of a missing key returns ``None`` (or the ``default`` argument)
  where JavaScript gives ``undefined``;
- ``set(key, None)`` deletes the key, standing in for ``set(key, undefined)``;
  :meth:`Context.delete` does the same explicitly;
- no callback forms: every call is synchronous (stores keep their data in memory).

Keys are property expressions (``"a.b[0]"``, ``'a["b c"]'``) or a list of them.
A key may name its store, ``"#:(file)::counter"``; a ``store`` argument given to
the call takes precedence over the name in the key, as in Node-RED. A key starting
with ``$parent.`` addresses the parent context (a flow's parent is the global
context; node and global contexts have none, so there it reads as missing and
writes nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from flowengine.context.store import ContextStore, DictStore, parse_key
from flowengine.context.storeset import StoreSet
from flowengine.paths import MISSING

INVALID_KEY = "Invalid context key"

_STORE_PREFIX = re.compile(r"^#:\((\S+?)\)::(.*)$")
_PARENT = "$parent"
_PARENT_DOT = "$parent."

Key = str | Sequence[str]


def _check_key_list(key: Sequence[Any]) -> list[str]:
    keys = list(key)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise ValueError(INVALID_KEY)
    return keys


def _is_key_list(key: Any) -> bool:
    return isinstance(key, list | tuple)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_plain_keys: dict[str, bool] = {}  # memo of _is_plain; bounded below


def _is_plain(key: Any) -> bool:
    """True for a key that is one identifier: no path, store prefix or ``$parent``."""
    known = _plain_keys.get(key) if type(key) is str else False
    if known is None:
        known = _PLAIN_KEY.fullmatch(key) is not None
        if len(_plain_keys) < 4096:
            _plain_keys[key] = known
    return known


class Context:
    """One context scope (node, flow or global) as seen by a node.

    Instances are made and cached by :class:`flowengine.context.ContextManager`;
    they hold no data themselves, only the scope id and the way to the stores.

    Args:
        scope: scope id in the stores (``"<node>:<flow>"``, ``"<flow>"``, ``"global"``).
        stores: the configured stores.
        parent: the context ``$parent.`` refers to (a flow's parent is global).
        seed: read-only fallback values, returned by ``get`` when the store has
            nothing for the key (global context seeded from settings). Seed keys
            are not listed by ``keys()`` (Node-RED's default
            ``exportGlobalContextKeys: false``).
    """

    def __init__(
        self,
        scope: str,
        stores: StoreSet,
        *,
        parent: Context | None = None,
        seed: Mapping[str, Any] | None = None,
    ) -> None:
        self.scope = scope
        self.parent = parent
        self._stores = stores
        self._seed = seed
        default = stores.resolve(None)
        # The fast path below reads the default store's dict directly (same package).
        self._dict_store = default if isinstance(default, DictStore) else None

    def __repr__(self) -> str:
        return f"Context({self.scope!r})"

    # -- public API ---------------------------------------------------------------

    def get(self, key: Key, store: str | None = None, default: Any = None) -> Any:
        """Read ``key``; a list of keys gives a list of values.

        A missing key (or a missing part of its path) gives ``default``.
        Raises ``ValueError("Invalid context key")`` for an empty or non-string key,
        and :class:`flowengine.paths.PathError` (a ``ValueError``) for a malformed
        expression.
        """
        dict_store = self._dict_store
        if store is None and dict_store is not None and _is_plain(key):
            # Fast path: a plain key in the default in-memory dict (function nodes read
            # context on every message).
            dict_store._check_usable()
            data = dict_store._data.get(self.scope)
            value = data.get(key, MISSING) if data is not None else MISSING
            if value is MISSING and self._seed is not None:
                value = self._seed.get(key, MISSING)
            return default if value is MISSING else value
        if _is_key_list(key):
            return [self._get_one(k, store, default) for k in _check_key_list(key)]
        return self._get_one(key, store, default)

    def set(self, key: Key, value: Any, store: str | None = None) -> None:
        """Write ``value`` at ``key``, creating intermediate dicts/lists.

        ``None`` deletes the key. With a list of keys, ``value`` is a list of values
        taken in order: missing values are stored as ``None`` (Node-RED pads with
        ``null``), extra values are ignored, and a value that is not a list or tuple
        goes to the first key while the others get ``None``.
        """
        dict_store = self._dict_store
        if store is None and dict_store is not None and value is not None and _is_plain(key):
            dict_store._check_usable()
            data = dict_store._data.get(self.scope)
            if data is None:
                data = dict_store._data[self.scope] = {}
            data[key] = value
            dict_store._changed(self.scope)
            return
        if _is_key_list(key):
            keys = _check_key_list(key)
            values = list(value) if isinstance(value, list | tuple) else [value]
            for i, k in enumerate(keys):
                if i < len(values):
                    self._set_one(k, values[i], store)
                else:
                    self._set_one(k, None, store, pad=True)
            return
        self._set_one(key, value, store)

    def delete(self, key: Key, store: str | None = None) -> None:
        """Remove ``key`` (or every key of a list); missing keys are ignored."""
        keys = _check_key_list(key) if _is_key_list(key) else [key]
        for k in keys:
            ctx, store_name, expr = self._resolve(k, store)
            if ctx is not None:
                ctx._store(store_name).delete(ctx.scope, expr)

    def keys(self, store: str | None = None) -> list[str]:
        """Top-level keys of this scope in ``store`` (default store if ``None``)."""
        return self._store(store).keys(self.scope)

    # -- internals ---------------------------------------------------------------

    def _store(self, name: str | None) -> ContextStore:
        return self._stores.resolve(name)

    def _resolve(self, key: Any, store: str | None) -> tuple[Context | None, str | None, str]:
        """Split a single key into (context to use, store name, expression).

        The context is ``None`` when ``$parent.`` leads past the root: reads then
        give the default and writes do nothing, as in Node-RED.
        """
        if not isinstance(key, str) or not key:
            raise ValueError(INVALID_KEY)
        if store is not None and not isinstance(store, str):
            raise ValueError(f"Invalid context store name {store!r}")
        match = _STORE_PREFIX.match(key)
        if match:
            key = match.group(2)
            store = store or match.group(1)
            if not key:
                raise ValueError(INVALID_KEY)
        ctx: Context | None = self
        while key == _PARENT or key.startswith(_PARENT_DOT):
            key = key[len(_PARENT_DOT) :]
            ctx = ctx.parent if ctx is not None else None
            if ctx is None or not key:
                return None, store, key
        return ctx, store, key

    def _get_one(self, key: Any, store: str | None, default: Any) -> Any:
        ctx, store_name, expr = self._resolve(key, store)
        if ctx is None:
            return default
        value = ctx._store(store_name).get(ctx.scope, expr)
        if value is MISSING and ctx._seed is not None:
            value = parse_key(expr).get(ctx._seed)
        return default if value is MISSING else value

    def _set_one(self, key: Any, value: Any, store: str | None, *, pad: bool = False) -> None:
        ctx, store_name, expr = self._resolve(key, store)
        if ctx is None:
            return
        target = ctx._store(store_name)
        if value is None and not pad:
            target.delete(ctx.scope, expr)
        else:
            target.set(ctx.scope, expr, value)
