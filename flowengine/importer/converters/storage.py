"""Converters of contributed nodes that have an equivalent here: node-red-contrib-postgresql."""

from __future__ import annotations

from typing import Any

from flowengine.importer.converters import (
    Context,
    Converted,
    Unsupported,
    converts,
    truthy,
)
from flowengine.importer.values import EnvText, escape_text


@converts("postgresql")
def postgresql(n: dict[str, Any], cx: Context) -> Converted:
    """node-red-contrib-postgresql: query (with msg.params for $1..$n) on a config node."""
    config: dict[str, Any] = {}
    server = cx.use_config(n.get("postgreSQLConfig"))
    if server is None:
        raise Unsupported("its postgreSQLConfig configuration is missing")
    config["server"] = server
    query = n.get("query")
    if isinstance(query, str) and query.strip():
        if "{{" in query:
            raise Unsupported("a query built with {{mustache}} (use msg.params instead)")
        config["query"] = query
    if truthy(n.get("split")):
        cx.note("'split results into several messages' is not imported")
    return Converted("postgres", config)


@converts("postgreSQLConfig", config=True)
def postgresql_config(n: dict[str, Any], cx: Context) -> Converted:
    def field(name: str, default: str) -> str:
        value = n.get(name)
        if n.get(name + "FieldType") == "env" and isinstance(value, str) and value:
            return f"${{{value}:-{default}}}"
        return escape_text(str(value)) if value not in (None, "") else default

    host, port = field("host", "127.0.0.1"), field("port", "5432")
    database, user = field("database", "postgres"), field("user", "")
    password = field("password", "")
    credentials = user + (":" + password if password else "") + "@" if user else ""
    cx.note("the DSN is built from the host, port, database and user fields; a password kept "
            "in Node-RED's credentials is not in flows.json")
    return Converted("postgres-server", {"dsn": EnvText(
        f"postgresql://{credentials}{host}:{port}/{database}")})
