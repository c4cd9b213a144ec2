"""PostgreSQL support for the ``postgres-server`` and ``postgres`` nodes.

- :mod:`flowengine.pg.client`: the asyncpg pool, statements, transactions, errors, reconnection;
- :mod:`flowengine.pg.sql`: named placeholders and statement counting (no I/O);
- :mod:`flowengine.pg.embedded`: the embedded server behind ``dsn: embedded``.
"""

from flowengine.pg.client import Database, PostgresError, Result, Statement, describe_dsn
from flowengine.pg.embedded import EmbeddedPostgres, EmbeddedPostgresError, find_binaries
from flowengine.pg.sql import bind_named, count_statements, named_placeholders

__all__ = [
    "Database",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "PostgresError",
    "Result",
    "Statement",
    "bind_named",
    "count_statements",
    "describe_dsn",
    "find_binaries",
    "named_placeholders",
]
