"""Named context stores and the choice of one for a call (Node-RED `getContextStorage`).

An unknown store name falls back to the default store with a warning logged once
per name (Node-RED's ``context.unknown-store``), so a typo in ``#:(fiel)::x``
does not stop a flow but is visible in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from flowengine.context.store import ContextStore

logger = logging.getLogger(__name__)


class StoreSet:
    """The configured stores by name, with one of them the default.

    Args:
        stores: store name -> store. Must contain ``default``.
        default: name of the default store.
    """

    def __init__(self, stores: Mapping[str, ContextStore], default: str) -> None:
        if default not in stores:
            raise ValueError(f"default context store {default!r} is not configured")
        self._stores = dict(stores)
        self.default = default
        # Names already warned about; bounded by the number of distinct wrong
        # names written in the flows.
        self._warned: set[str] = set()

    @property
    def names(self) -> list[str]:
        """Names of the configured stores, in configuration order."""
        return list(self._stores)

    def __iter__(self) -> Iterator[ContextStore]:
        return iter(self._stores.values())

    def named(self, name: str) -> ContextStore:
        """The store called ``name``; ``KeyError`` if there is none."""
        return self._stores[name]

    def resolve(self, name: str | None) -> ContextStore:
        """The store to use for a call naming ``name`` (``None``/empty: the default)."""
        if not name:
            return self._stores[self.default]
        store = self._stores.get(name)
        if store is not None:
            return store
        if name not in self._warned:
            self._warned.add(name)
            logger.warning(
                "unknown context store %r, using the default store %r", name, self.default
            )
        return self._stores[self.default]
