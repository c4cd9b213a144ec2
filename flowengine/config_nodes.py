"""Public API: what the built-in config nodes offer the node types that use them.

A node finds its config node with ``self.runtime.get_node(self.config["server"])`` (the loader
has checked the reference's type) and uses it through these interfaces, never through the config
node's class, so a plugin can use a ``postgres-server`` or ``kurento-server`` as the built-in
nodes do. Attach to ``shared_status`` in ``on_start`` and detach in ``on_close`` to show the
connection's state as the node's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # only names for the type checker: a postgres node need not load Kurento
    from flowengine.kurento import KurentoClient
    from flowengine.pg import Result, Statement
    from flowengine.shared_status import SharedStatus


class PostgresServer(Protocol):
    """A ``postgres-server`` config node: one pooled PostgreSQL database."""

    shared_status: SharedStatus

    @property
    def address(self) -> str:
        """``host:port/database`` of the server (no credentials)."""
        ...

    async def run(self, statements: Sequence[Statement],
                  transaction: bool = False) -> list[Result]:
        """Run statements on one pooled connection, all or none with ``transaction``; raises
        :class:`flowengine.pg.PostgresError`, which carries the SQLSTATE."""
        ...


class KurentoServer(Protocol):
    """A ``kurento-server`` config node: the Kurento client shared by every node naming it."""

    shared_status: SharedStatus

    @property
    def url(self) -> str:
        """The server's WebSocket URL (``embedded`` until the embedded server has started)."""
        ...

    async def client(self) -> KurentoClient:
        """The connected client; connects (and starts the embedded server) when needed and
        raises :class:`flowengine.kurento.KurentoConnectionError` naming the URL."""
        ...
