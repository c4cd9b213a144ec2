"""Context stores and scopes for one runtime (Node-RED `context/index.js`,
docs/reference/nodered-runtime.md §3).

Built from the ``context`` section of the runtime settings::

    context:
      default: memory            # name of the default store (default "memory")
      stores:                    # optional extra stores
        file: {module: file, dir: .flowengine/context, flush_interval: 30}

A store called ``memory`` always exists. ``module`` is ``memory`` or ``file``;
``file`` takes ``dir`` (default ``.flowengine/context``, relative paths resolved
against ``base_dir``) and ``flush_interval`` (seconds, default 30).

Lifetime (docs/reference/nodered-runtime.md §3.3): memory context is lost when the process stops;
when no extra store is configured a restarted node also loses its node context
(:meth:`ContextManager.delete_node_context`); after a deploy
:meth:`ContextManager.clean` drops the scopes of nodes and flows that are gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path as FsPath
from typing import Any

from flowengine.context.context import Context
from flowengine.context.filestore import DEFAULT_FLUSH_INTERVAL, FileStore
from flowengine.context.memory import MemoryStore
from flowengine.context.store import GLOBAL_SCOPE, ContextStore
from flowengine.context.storeset import StoreSet

logger = logging.getLogger(__name__)

MEMORY = "memory"
DEFAULT_FILE_DIR = ".flowengine/context"
STORE_NAME = re.compile(r"^[A-Za-z0-9_]+$")

_STORE_OPTIONS: dict[str, set[str]] = {
    "memory": {"module"},
    "file": {"module", "dir", "flush_interval"},
}


def _build_store(name: str, spec: Any, base_dir: FsPath) -> ContextStore:
    where = f"settings context.stores.{name}"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a mapping with a 'module', got {spec!r}")
    module = spec.get("module")
    if module not in _STORE_OPTIONS:
        raise ValueError(f"{where}.module must be 'memory' or 'file', got {module!r}")
    unknown = set(spec) - _STORE_OPTIONS[module]
    if unknown:
        raise ValueError(
            f"{where}: unknown option(s) {', '.join(sorted(map(str, unknown)))} "
            f"for module {module!r} (allowed: {', '.join(sorted(_STORE_OPTIONS[module]))})"
        )
    if module == "memory":
        return MemoryStore()
    directory = spec.get("dir", DEFAULT_FILE_DIR)
    if not isinstance(directory, str | os.PathLike) or not str(directory):
        raise ValueError(f"{where}.dir must be a non-empty path, got {directory!r}")
    interval = spec.get("flush_interval", DEFAULT_FLUSH_INTERVAL)
    try:
        return FileStore(base_dir / directory, flush_interval=interval)
    except ValueError as exc:
        raise ValueError(f"{where}.flush_interval: {exc}") from None


def _check_id(kind: str, value: Any) -> str:
    # ":" separates node id and flow name in scope ids, so neither may contain it.
    if not isinstance(value, str) or not value or ":" in value:
        raise ValueError(f"invalid {kind} for context: {value!r} (non-empty, no ':')")
    return value


def _check_flow_name(flow: Any) -> None:
    _check_id("flow name", flow)
    if flow == GLOBAL_SCOPE:
        raise ValueError("a flow cannot be named 'global' while context is used: "
                         "that name is the global context's scope")


class ContextManager:
    """Owns the context stores and hands out :class:`Context` objects.

    Args:
        config: the ``context`` section of the settings (``None`` for defaults).
        base_dir: directory that relative store paths are resolved against.
        global_seed: values the global context returns for keys no store holds
            (Node-RED's ``functionGlobalContext``); kept by reference, not copied.

    Raises:
        ValueError: invalid settings, with the offending setting named.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        base_dir: str | os.PathLike[str] = ".",
        global_seed: Mapping[str, Any] | None = None,
    ) -> None:
        config = {} if config is None else config
        if not isinstance(config, Mapping):
            raise ValueError(f"settings context must be a mapping, got {config!r}")
        unknown = set(config) - {"default", "stores"}
        if unknown:
            raise ValueError(
                f"settings context: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                "(allowed: default, stores)"
            )
        specs = config.get("stores")
        if specs is None:  # "stores:" left empty in YAML
            specs = {}
        if not isinstance(specs, Mapping):
            raise ValueError(f"settings context.stores must be a mapping, got {specs!r}")
        base = FsPath(base_dir)
        stores: dict[str, ContextStore] = {MEMORY: MemoryStore()}
        for name, spec in specs.items():
            if not isinstance(name, str) or not STORE_NAME.match(name):
                raise ValueError(
                    f"invalid context store name {name!r}: use letters, digits and '_'"
                )
            store = _build_store(name, spec, base)
            if name == MEMORY and not isinstance(store, MemoryStore):
                raise ValueError("context store 'memory' is built in and must stay module memory")
            stores[name] = store
        default = config.get("default", MEMORY)
        if not isinstance(default, str) or default not in stores:
            raise ValueError(
                f"settings context.default names no configured store: {default!r} "
                f"(stores: {', '.join(stores)})"
            )
        self._stores = StoreSet(stores, default)
        # As in Node-RED, node context survives a node restart only when the user
        # configured stores; with the plain memory default it is dropped.
        self._has_configured_store = bool(specs)
        self._global = Context(GLOBAL_SCOPE, self._stores, seed=global_seed)
        # Cached contexts: one per node and flow currently known; clean() and
        # delete_node_context() drop the entries of ids that went away.
        self._flows: dict[str, Context] = {}
        self._nodes: dict[tuple[str, str], Context] = {}
        self._opened: list[ContextStore] = []

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any] | None,
        *,
        base_dir: str | os.PathLike[str] = ".",
        global_seed: Mapping[str, Any] | None = None,
    ) -> ContextManager:
        """Build from the whole runtime settings dict (reads its ``context`` key)."""
        return cls((settings or {}).get("context"), base_dir=base_dir, global_seed=global_seed)

    # -- stores -------------------------------------------------------------------

    @property
    def default_store(self) -> str:
        """Name of the default store."""
        return self._stores.default

    @property
    def store_names(self) -> list[str]:
        """Names of all stores (``memory`` first)."""
        return self._stores.names

    def store(self, name: str) -> ContextStore:
        """The store called ``name``; ``KeyError`` if not configured."""
        return self._stores.named(name)

    async def start(self) -> None:
        """Open every store (persistent stores load their data here)."""
        for store in self._stores:
            if store in self._opened:
                continue
            try:
                await store.open()
            except BaseException:
                # Close what was opened; the open error is the one worth raising.
                with contextlib.suppress(Exception):
                    await self.stop()
                raise
            self._opened.append(store)

    async def stop(self) -> None:
        """Close every opened store (persistent ones flush); raises the first error."""
        first: BaseException | None = None
        while self._opened:
            store = self._opened.pop()
            try:
                await store.close()
            except Exception as exc:  # close the others before reporting
                logger.exception("closing a context store failed")
                first = first or exc
        if first is not None:
            raise first

    async def flush(self) -> None:
        """Flush every store now (e.g. before a planned restart)."""
        for store in self._opened:
            await store.flush()

    def _usable_stores(self) -> list[ContextStore]:
        # Memory stores work without open(); others only between start and stop.
        return [s for s in self._stores if s in self._opened or isinstance(s, MemoryStore)]

    # -- contexts -------------------------------------------------------------------

    def global_context(self) -> Context:
        """The global context (scope ``"global"``)."""
        return self._global

    def flow_context(self, flow: str, parent: str | None = None) -> Context:
        """The context of flow ``flow``; its ``$parent`` is the global context.

        ``parent`` names a containing flow instead (a subflow instance's
        ``$parent`` is the flow it sits in). The first call for a flow fixes it.
        """
        ctx = self._flows.get(flow)
        if ctx is None:
            _check_flow_name(flow)
            parent_ctx = self._global if parent is None else self.flow_context(parent)
            ctx = self._flows[flow] = Context(flow, self._stores, parent=parent_ctx)
        return ctx

    def node_context(self, node_id: str, flow: str) -> Context:
        """The context of node ``node_id`` in ``flow`` (scope ``"<node_id>:<flow>"``)."""
        key = (node_id, flow)
        ctx = self._nodes.get(key)
        if ctx is None:
            _check_id("node id", node_id)
            _check_flow_name(flow)  # node scopes embed it
            ctx = self._nodes[key] = Context(f"{node_id}:{flow}", self._stores)
        return ctx

    def delete_node_context(self, node_id: str, flow: str) -> None:
        """Forget a stopped node's context, only when no store is configured.

        Node-RED keeps node context across a node restart once ``contextStorage``
        is configured, and drops it with the plain memory default.
        """
        if self._has_configured_store:
            return
        self._nodes.pop((node_id, flow), None)
        self._stores.named(MEMORY).delete_scope(f"{node_id}:{flow}")

    def clean(self, active: Iterable[str | tuple[str, str]]) -> None:
        """Delete, in every store, the scopes of nodes and flows no longer present.

        ``active`` holds ``(node_id, flow)`` pairs for nodes and plain strings for
        flow names. The global scope is always kept.
        """
        nodes: set[tuple[str, str]] = set()
        flows: set[str] = set()
        for item in active:
            if isinstance(item, tuple):
                nodes.add(item)
            else:
                flows.add(item)
        for store in self._usable_stores():
            for scope in store.scopes():
                if scope == GLOBAL_SCOPE:
                    continue
                node_id, sep, flow = scope.partition(":")
                alive = (node_id, flow) in nodes if sep else scope in flows
                if not alive:
                    store.delete_scope(scope)
        self._nodes = {k: v for k, v in self._nodes.items() if k in nodes}
        self._flows = {k: v for k, v in self._flows.items() if k in flows}
