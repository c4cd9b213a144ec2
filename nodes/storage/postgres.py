"""``postgres``: run SQL on a ``postgres-server`` database, with parameters, never string-built.

The statement comes from the node's ``query``, else from the message: ``msg.query`` (a text, or
a list of texts without parameters) or ``msg.queries`` (a list of ``{query, params}``).
``msg.params`` is a list for ``$1..$n`` or a dict for ``:name`` placeholders, which are turned
into ``$n`` with the values passed separately (:func:`flowengine.pg.bind_named`).

The output is the input message with ``payload`` (rows as a list of dicts, or the command status
such as ``"INSERT 0 1"`` for statements that return no rows) and ``rowCount`` (rows returned or
affected; None for commands without a count). Several statements give lists of both, in order.

Errors (SQL, constraint, connection) are raised as :class:`flowengine.pg.PostgresError`, so
they reach catch nodes with the SQLSTATE in the text: ``... (SQLSTATE 23505)``.
"""

from __future__ import annotations

import textwrap
from typing import Any, cast

from flowengine import MISSING, Node
from flowengine import schema as s
from flowengine.config_nodes import PostgresServer
from flowengine.pg import Statement, bind_named, named_placeholders


class PostgresNode(Node):
    type = "postgres"
    category = "storage"
    description = ("Runs SQL on a postgres-server database: the node's `query`, else msg.query "
                   "(a text, or a list of texts) or msg.queries ([{query, params}]). "
                   "msg.params is a list for $1..$n or a dict for :name placeholders; values "
                   "are sent apart from the SQL, never put into it. Sends msg.payload = the "
                   "rows (a list of dicts; json/jsonb columns decoded) or the command status "
                   "(\"INSERT 0 1\"), and msg.rowCount; lists of both for several statements. "
                   "With `transaction: true` the statements of a message run all or none. "
                   "Errors reach catch nodes with the SQLSTATE in msg.error.message.")
    example = textwrap.dedent("""\
        save-stats:
          type: postgres
          server: db
          query: >-
            INSERT INTO stats (session, fps, bitrate)
            VALUES (:session, :fps, :bitrate)
          wires: [next]
        """)
    schema = s.obj({
        "server": s.config_ref("postgres-server", description="The database."),
        "query": s.string(description="The SQL to run; without it, msg.query or msg.queries "
                          "give it."),
        "transaction": s.boolean(False, "Run all statements of a message in one transaction: "
                                 "all or none. Otherwise each commits on its own and the "
                                 "first failure stops the rest."),
    }, required=["server"])

    def configure(self, config: dict[str, Any]) -> None:
        self._query: str | None = config.get("query")
        self._transaction: bool = config["transaction"]
        self._server: PostgresServer | None = None

    def on_start(self) -> None:
        # Config nodes have started by now (and the loader checked the reference's type).
        server = cast(PostgresServer, self.runtime.get_node(self.config["server"]))
        self._server = server
        server.shared_status.attach(self)

    def on_close(self, removed: bool) -> None:
        if self._server is not None:
            self._server.shared_status.detach(self)

    async def on_input(self, msg: dict[str, Any]) -> dict[str, Any]:
        statements, several = self._statements(msg)
        assert self._server is not None
        results = await self._server.run(statements, self._transaction)
        if several:
            msg["payload"] = [r.payload for r in results]
            msg["rowCount"] = [r.row_count for r in results]
        else:
            msg["payload"] = results[0].payload
            msg["rowCount"] = results[0].row_count
        return msg

    def _statements(self, msg: dict[str, Any]) -> tuple[list[Statement], bool]:
        """The statements a message asks for, and whether there may be several."""
        params = msg.get("params")
        if self._query is not None:
            return [_statement(self._query, params, "msg.params")], False
        queries = msg.get("queries")
        if queries is not None:
            if not isinstance(queries, list) or not queries:
                raise ValueError("msg.queries must be a non-empty list of {query, params}")
            statements = []
            for i, entry in enumerate(queries):
                item = {"query": entry} if isinstance(entry, str) else entry
                if not isinstance(item, dict) or not isinstance(item.get("query"), str):
                    raise ValueError(f"msg.queries[{i}] must be {{query, params}} or a text")
                statements.append(_statement(item["query"], item.get("params"),
                                             f"msg.queries[{i}].params"))
            return statements, True
        query = msg.get("query")
        if isinstance(query, str):
            return [_statement(query, params, "msg.params")], False
        if isinstance(query, list) and query and all(isinstance(q, str) for q in query):
            if params is not None:
                raise ValueError("msg.params cannot go with a list of queries: use "
                                 "msg.queries = [{query, params}, ...]")
            return [Statement(q) for q in query], True
        raise ValueError("no query: set `query` on the node, or msg.query (a text or a list "
                         "of texts) or msg.queries (a list of {query, params})")


def _statement(sql: str, params: Any, where: str) -> Statement:
    if params is None or params is MISSING:
        names = named_placeholders(sql)
        if names:  # the server would only say "syntax error at or near ':'"
            raise ValueError(f"the query has the placeholder :{names[0]} but {where} is "
                             "missing")
        return Statement(sql)
    if isinstance(params, dict):
        text, values = bind_named(sql, params)
        return Statement(text, tuple(values))
    if isinstance(params, list | tuple):
        return Statement(sql, tuple(params))
    raise ValueError(f"{where} must be a list (for $1, $2...) or a dict (for :name), "
                     f"not {type(params).__name__}")
