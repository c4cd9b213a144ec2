"""A PostgreSQL database as the postgres nodes use it: one asyncpg pool, statements run alone or
in one transaction, errors carrying their SQLSTATE, and reconnection after a lost server.

Reconnection: a lost connection (server restart, network loss) discards the whole pool, and the
next :meth:`Database.run` creates a new one (as when the server was down at start). So a message
that meets a lost connection fails with a :class:`PostgresError` (SQLSTATE class 08 or 57P), and
the next one connects again. Nothing is retried: a statement whose connection broke may or may
not have run. (A pool kept across the loss would have asyncpg retry its minimum connections in
the background, logging a traceback each time, for as long as the server is away.)

Type codecs set on every connection: ``json``/``jsonb`` values are Python objects both ways
(a ``str`` parameter is taken as JSON text already, as node-postgres does); ``uuid`` values are
strings (asyncpg's default is ``uuid.UUID``, which messages would have to convert everywhere).
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import inspect
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from flowengine.pg.sql import count_statements

log = logging.getLogger("flowengine.pg")

# SQLSTATEs that mean the connection is gone: class 08 (connection exception) and the
# operator-intervention codes sent when a server shuts down, crashes or is still starting.
CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")
CONNECT_FAILED = "08001"  # sqlclient_unable_to_establish_sqlconnection
CONNECTION_LOST = "08006"  # connection_failure
CONNECTION_CLOSED = "08003"  # connection_does_not_exist


class PostgresError(Exception):
    """A failed statement or connection. ``sqlstate`` (also as ``code``, the attribute Node-RED
    copies into ``msg.error``) is PostgreSQL's five-character error code, e.g. ``"23505"``;
    it is None for the few driver errors that have none (a pool closing). The text is
    ``message: detail (SQLSTATE code)``, e.g. ``duplicate key value violates unique constraint
    "t_pkey": Key (id)=(1) already exists. (SQLSTATE 23505)``."""

    def __init__(self, message: str, sqlstate: str | None = None, detail: str | None = None):
        text = f"{message}: {detail}" if detail else message
        super().__init__(f"{text} (SQLSTATE {sqlstate})" if sqlstate else text)
        self.sqlstate = sqlstate
        self.code = sqlstate
        self.detail = detail

    @property
    def connection_lost(self) -> bool:
        """True when the error means the server could not be reached or the connection died."""
        return self.sqlstate is not None and self.sqlstate.startswith(CONNECTION_STATES)


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its ``$1..$n`` arguments. Without arguments, the text may hold
    several statements separated by ``;``; they then run as a script."""

    sql: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Result:
    """What a statement gave: ``rows`` (None when the statement returns no rows) and the command
    status, e.g. ``"INSERT 0 1"``, ``"SELECT 2"``, ``"CREATE TABLE"``."""

    rows: list[dict[str, Any]] | None
    status: str

    @property
    def payload(self) -> list[dict[str, Any]] | str:
        """The rows of a query that returns rows, else the command status."""
        return self.rows if self.rows is not None else self.status

    @property
    def row_count(self) -> int | None:
        """The number of rows returned or affected (the status's last number), or None for a
        command without a count (``CREATE TABLE``)."""
        last = self.status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else None


def describe_dsn(dsn: str) -> str:
    """``host:port/database`` of a connection URL, without user or password."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["localhost"])[0]
    port = parts.port or (query.get("port") or ["5432"])[0]
    database = parts.path.lstrip("/") or (query.get("dbname") or [""])[0]
    return f"{host}:{port}/{database}" if database else f"{host}:{port}"


class Database:
    """An asyncpg pool on ``dsn`` with connection-state reporting.

    ``on_state(connected, text)`` is called when the state changes: after the first success
    (and each success following a failure) with ``True``, and with ``False`` and the reason
    when the server cannot be reached or a connection is lost.
    """

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10,
                 connect_timeout: float = 10.0,
                 on_state: Callable[[bool, str], None] | None = None):
        self.dsn = dsn
        self.address = describe_dsn(dsn)
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self.connected: bool | None = None  # None: not tried yet
        self._on_state = on_state
        self._pool: asyncpg.Pool | None = None
        self._pool_lock: asyncio.Lock | None = None

    async def connect(self) -> None:
        """Create the pool now (otherwise the first :meth:`run` does). Raises PostgresError."""
        await self._get_pool()

    async def run(self, statements: Sequence[Statement],
                  transaction: bool = False) -> list[Result]:
        """Run the statements in order on one connection; with ``transaction`` all of them or
        none. Raises :class:`PostgresError` at the first failure."""
        pool = await self._get_pool()
        try:
            conn = await pool.acquire()
        except Exception as exc:
            raise self._failed(exc, connecting=True) from exc
        try:
            if transaction:
                async with conn.transaction():
                    results = [await _run_one(conn, s) for s in statements]
            else:
                results = [await _run_one(conn, s) for s in statements]
        except Exception as exc:
            raise self._failed(exc, connecting=False) from exc
        finally:
            try:
                await pool.release(conn)
            except Exception as exc:  # a broken connection: the pool has dropped it already
                log.debug("releasing a connection to %s failed: %s", self.address, exc)
        self._set_state(True, "")
        return results

    def mark_disconnected(self, reason: str) -> None:
        """Record that the server went away (noticed by the owner, e.g. an embedded server that
        died); the next successful :meth:`run` reports the connection again."""
        self._discard_pool()
        self._set_state(False, reason)

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def close(self, timeout: float = 5.0) -> None:
        """Close the pool, waiting up to ``timeout`` for busy connections, then cut them."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout)
        except Exception:
            pool.terminate()

    # -- internals --------------------------------------------------------------------------------

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if self._pool_lock is None:
            self._pool_lock = asyncio.Lock()
        async with self._pool_lock:  # concurrent messages must not create a pool each
            if self._pool is None:
                pool = asyncpg.create_pool(self.dsn, **_POOL_SIZE(self.min_size),
                                           max_size=self.max_size, init=_init_connection,
                                           timeout=self.connect_timeout)
                try:
                    await pool
                except Exception as exc:
                    pool.terminate()  # connections opened before the failure
                    raise self._failed(exc, connecting=True) from exc
                self._pool = pool
                self._set_state(True, "")
        return self._pool

    def _failed(self, exc: BaseException, connecting: bool) -> PostgresError:
        """The PostgresError for a driver exception; reports a lost connection."""
        error = self._translate(exc, connecting)
        if error.connection_lost:
            self._discard_pool()
            self._set_state(False, str(exc) or type(exc).__name__)
        return error

    def _translate(self, exc: BaseException, connecting: bool) -> PostgresError:
        if isinstance(exc, PostgresError):
            return exc
        if isinstance(exc, asyncpg.PostgresError):
            # str(exc) would add DETAIL and HINT on more lines; keep the text on one line.
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            return PostgresError(message, exc.sqlstate, getattr(exc, "detail", None))
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, OSError | TimeoutError):
            if connecting:
                return PostgresError(f"could not connect to {self.address}: {reason}",
                                     CONNECT_FAILED)
            return PostgresError(f"connection to {self.address} lost: {reason}",
                                 CONNECTION_LOST)
        if isinstance(exc, asyncpg.InterfaceError) and "closed" in reason:
            return PostgresError(f"connection to {self.address} closed: {reason}",
                                 CONNECTION_CLOSED)
        return PostgresError(reason)  # found by the driver (bad argument type, ...)

    def _set_state(self, connected: bool, reason: str) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        if self._on_state is not None:
            self._on_state(connected, reason)


def _pool_size(opened: int) -> dict[str, int]:
    """Open ``opened`` connections at first, but keep no floor: asyncpg restores a floor in the
    background after a lost server, with a traceback at every try (we reconnect on demand)."""
    return {"min_size": 0, "init_size": opened}


def _old_pool_size(opened: int) -> dict[str, int]:
    return {"min_size": opened}  # asyncpg before init_size: no background floor either


_POOL_SIZE = (_pool_size if "init_size" in inspect.signature(asyncpg.create_pool).parameters
              else _old_pool_size)


async def _run_one(conn: Any, statement: Statement) -> Result:
    if not statement.args and count_statements(statement.sql) > 1:
        # A script (migrations): the simple query protocol runs several statements; only the
        # last one's status comes back.
        return Result(None, await conn.execute(statement.sql))
    # A prepared statement tells whether the query returns rows (SELECT with no match: [])
    # or not (INSERT: its status), which a plain fetch() cannot.
    prepared = await conn.prepare(statement.sql)
    records = await prepared.fetch(*statement.args)
    status = prepared.get_statusmsg()
    if not prepared.get_attributes():
        return Result(None, status)
    return Result([dict(record) for record in records], status)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=_encode_json,
                                  decoder=json.loads, format="text")
    await conn.set_type_codec("uuid", schema="pg_catalog", encoder=str, decoder=str,
                              format="text")


def _encode_json(value: Any) -> str:
    if isinstance(value, str):
        return value  # already JSON text, as node-postgres takes it
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"a {type(value).__name__} has no JSON form")
