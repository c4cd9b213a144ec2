"""``postgres-server``: a PostgreSQL database shared by ``postgres`` nodes (a config node).

``dsn: embedded`` (the default, also an empty dsn) runs PostgreSQL from the data directory as a
child process of the runtime (:mod:`flowengine.pg.embedded`): started in ``on_start``, stopped
in ``on_close``, and started again as soon as it exits behind our back (killed, crashed), with
one warning; it dies with the runtime. Any other dsn is a ``postgresql://`` URL.

The node holds one asyncpg pool (:class:`flowengine.pg.Database`). Its public API for node
types, declared as :class:`flowengine.config_nodes.PostgresServer`, is :meth:`run`,
:attr:`address` and :attr:`shared_status` (a node attached to it shows the connection state as
its status).
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import Sequence
from typing import Any

from flowengine import ConfigError, Node
from flowengine import schema as s
from flowengine.pg import (
    Database,
    EmbeddedPostgres,
    PostgresError,
    Result,
    Statement,
    describe_dsn,
)
from flowengine.shared_status import SharedStatus, shorten

EMBEDDED = "embedded"


class PostgresServerNode(Node):
    type = "postgres-server"
    category = "storage"
    is_config = True
    inputs = 0
    outputs = 0
    description = ("A PostgreSQL database for postgres nodes: a `postgresql://` URL, or "
                   "`embedded` (the default) to run PostgreSQL from `data_dir` for as long as "
                   "the flows run. Holds a connection pool that reconnects after the server "
                   "went away; its status (and that of its postgres nodes) shows whether it is "
                   "connected, with the server's address.")
    example = textwrap.dedent("""\
        db:
          type: postgres-server
          dsn: embedded   # or a URL, e.g. ${DATABASE_URL:-embedded}
          data_dir: data/postgres
          pool_max: 5
        """)
    schema = s.obj({
        "dsn": s.string(EMBEDDED, "A `postgresql://user:password@host:port/database` URL, or "
                        "`embedded` (also an empty value): run PostgreSQL locally (the pgserver "
                        "package's build) on 127.0.0.1."),
        "data_dir": s.folder("postgres", "Embedded only: the PostgreSQL data directory."),
        "port": s.integer(0, "Embedded only: the TCP port on 127.0.0.1; 0 picks a free one.",
                          minimum=0, maximum=65535),
        "pool_min": s.integer(1, "Connections the pool keeps open.", minimum=0),
        "pool_max": s.integer(10, "Most connections open at once (and so statements running "
                              "at once).", minimum=1),
        "connect_timeout": s.duration("10s", "How long opening a connection may take."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        dsn = config["dsn"].strip()
        self.is_embedded = dsn in ("", EMBEDDED)
        if not self.is_embedded and not dsn.startswith(("postgresql://", "postgres://")):
            raise ConfigError("expected `embedded` or a URL starting with postgresql://", "dsn")
        if config["pool_min"] > config["pool_max"]:
            raise ConfigError(f"pool_min ({config['pool_min']}) is larger than pool_max "
                              f"({config['pool_max']})", "pool_min")
        self._dsn = dsn
        self._connect_timeout = config["connect_timeout"]
        #: The embedded server (``dsn: embedded``) once started, else None.
        self.embedded: EmbeddedPostgres | None = None
        self._db: Database | None = None
        self._start_error = ""
        self._closing = False
        self._revive_lock = asyncio.Lock()
        self._restarting: asyncio.Task[None] | None = None
        self.shared_status = SharedStatus(self)
        self._was_disconnected = False

    # -- public API for postgres nodes ------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port/database`` of the server (no credentials)."""
        if self._db is not None:
            return self._db.address
        return EMBEDDED if self.is_embedded else describe_dsn(self._dsn)

    async def run(self, statements: Sequence[Statement],
                  transaction: bool = False) -> list[Result]:
        """Run statements on one pooled connection (see :meth:`flowengine.pg.Database.run`).
        Raises :class:`flowengine.pg.PostgresError`, which carries the SQLSTATE."""
        if self._db is None:
            raise PostgresError(f"no database: {self._start_error or 'not started'}", "08001")
        if self.embedded is not None and not self.embedded.running:
            await self._revive()
        return await self._db.run(statements, transaction)


    # -- lifecycle --------------------------------------------------------------------------------

    async def on_start(self) -> None:
        self._closing, self._start_error = False, ""
        dsn = self._dsn
        if self.is_embedded:
            self.embedded = EmbeddedPostgres(self.config["data_dir"], port=self.config["port"])
            loop = asyncio.get_running_loop()
            self.embedded.on_exit = lambda code: loop.call_soon_threadsafe(self._exited, code)
            self.shared_status.show("yellow", "ring", "starting embedded PostgreSQL")
            try:
                # initdb and the server start block for a second or more: not on the loop.
                await asyncio.to_thread(self.embedded.start)
            except Exception as exc:
                self._start_error = f"embedded PostgreSQL did not start: {exc}"
                self.shared_status.show("red", "ring", "embedded PostgreSQL did not start")
                raise
            dsn = self.embedded.dsn
        self._db = Database(dsn, min_size=self.config["pool_min"],
                            max_size=self.config["pool_max"],
                            connect_timeout=self._connect_timeout, on_state=self._on_state)
        self.shared_status.show("yellow", "ring", f"connecting {self._db.address}")
        with contextlib.suppress(PostgresError):
            # Not fatal (the status and a warning say so): the flows start, and each message
            # tries to connect again.
            await self._db.connect()

    async def on_close(self, removed: bool) -> None:
        self._closing = True
        restarting, self._restarting = self._restarting, None
        if restarting is not None and not restarting.done():
            with contextlib.suppress(Exception):
                await restarting  # a start under way: let it finish, then stop the server
        db, self._db = self._db, None
        if db is not None:
            await db.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
        self.shared_status.show("", "", "")

    # -- internals --------------------------------------------------------------------------------

    def _exited(self, code: int) -> None:
        """The embedded server exited without on_close (on the loop, from its watcher)."""
        if self._closing:
            return
        task = asyncio.get_running_loop().create_task(self._restart(code))
        self._restarting = task  # kept: a task without a reference may be collected

    async def _restart(self, code: int) -> None:
        with contextlib.suppress(PostgresError):  # reported by _revive
            await self._revive(f"exit code {code}")
        if self._db is not None and self.embedded is not None and self.embedded.running:
            # Reconnect now (the pool's connections to the dead server are dropped), so the
            # status turns green and the next message finds a working pool.
            with contextlib.suppress(PostgresError):
                await self._db.run([Statement("SELECT 1")])

    async def _revive(self, why: str = "") -> None:
        """Start the embedded server again after it stopped behind our back."""
        assert self.embedded is not None
        async with self._revive_lock:
            if self.embedded.running or self._closing:
                return
            reason = f"embedded server stopped ({why or 'not running'}); restarting it"
            if self._db is not None:
                self._db.mark_disconnected(reason)  # the one warning (see _on_state)
            else:
                self.warn(f"{self.embedded.address}: {reason}")
            try:
                await asyncio.to_thread(self.embedded.start)
            except Exception as exc:
                self.error(f"embedded PostgreSQL did not restart: {exc}")
                raise PostgresError(f"embedded PostgreSQL did not restart: {exc}",
                                    "08001") from exc

    def _on_state(self, connected: bool, reason: str) -> None:
        """The pool's connection state changed: status, and one log line per change."""
        address = self.address
        if connected:
            self.shared_status.show("green", "dot", f"connected {address}")
            if self._was_disconnected:
                self.log(f"connected to {address} again")
            return
        self._was_disconnected = True
        self.warn(f"database {address} unavailable: {reason}")
        self.shared_status.show("red", "ring", f"disconnected {address}: {shorten(reason)}")

