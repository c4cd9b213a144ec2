"""The postgres and postgres-server nodes against a real PostgreSQL server.

Most tests use the session server (``postgres_dsn`` in conftest.py); the embedded-mode tests
and the restart test start servers of their own. Tables are named after the test, so tests do
not see each other's rows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from flowengine import FlowLoadError
from flowengine.pg import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    bind_named,
    count_statements,
    named_placeholders,
)
from flowengine.testing import FlowHarness, capture_logs

CONNECTION_SQLSTATE = re.compile(r"\(SQLSTATE (08\d\d\d|57P0\d)\)$")


def pg_flow(dsn: str, server: dict[str, Any] | None = None, **node: Any) -> FlowHarness:
    """A flow with a postgres-server ``db``, a postgres node ``query`` and a catch node
    ``on-error`` for the query node's errors."""
    return FlowHarness.from_dict({
        "flow": "pg",
        "config": {"db": {"type": "postgres-server", "dsn": dsn, **(server or {})}},
        "nodes": {
            "query": {"type": "postgres", "server": "db", **node},
            "on-error": {"type": "catch", "scope": ["query"]},
        },
    })


async def run_flow(h: FlowHarness, msg: dict[str, Any]) -> dict[str, Any]:
    """Send ``msg`` to the query node and return its output message."""
    count = len(h.output_now("query"))
    h.send("query", msg)
    try:
        return (await h.output("query", count=count + 1))[-1]
    except TimeoutError:
        raise AssertionError(f"no output; errors: {h.errors}") from None


async def run_failing(h: FlowHarness, msg: dict[str, Any]) -> dict[str, Any]:
    """Send ``msg`` to the query node and return what the catch node sends for it."""
    count = len(h.output_now("on-error"))
    h.send("query", msg)
    return (await h.output("on-error", count=count + 1))[-1]


async def sql(dsn: str, text: str, *args: Any) -> list[asyncpg.Record]:
    """Run SQL outside the flow (setup and checks)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(text, *args)
    finally:
        await conn.close()


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A private folder in the system temp folder, used for data directories instead of
    pytest's: when the tests run as root, the server runs as another user that must traverse
    the parents, and concurrent pytest sessions reset pytest's base folder to mode 0700."""
    with tempfile.TemporaryDirectory(prefix="flowengine-test-pg-",
                                     ignore_cleanup_errors=True) as folder:
        yield Path(folder)


@pytest.fixture
def table(request: pytest.FixtureRequest) -> str:
    """A table name of this test's own."""
    return "t_" + re.sub(r"\W", "_", request.node.name).lower()[:50]


@pytest.fixture
async def people(postgres_dsn: str, table: str) -> str:
    """A fresh table (id primary key, name) with three rows."""
    await sql(postgres_dsn, f"DROP TABLE IF EXISTS {table}")
    await sql(postgres_dsn, f"CREATE TABLE {table} (id int PRIMARY KEY, name text NOT NULL)")
    await sql(postgres_dsn, f"INSERT INTO {table} VALUES (1, 'ann'), (2, 'bob'), (3, 'cid')")
    return table


def watched(h: FlowHarness) -> FlowHarness:
    h.watch_output("query")
    h.watch_output("on-error")
    return h


# -- queries and parameters -----------------------------------------------------------------------

async def test_select_with_positional_params(postgres_dsn: str, people: str) -> None:
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        out = await run_flow(h, {"query": f"SELECT id, name FROM {people} WHERE id >= $1 "
                                          "AND name <> $2 ORDER BY id",
                                 "params": [2, "cid"], "topic": "kept"})
    assert out["payload"] == [{"id": 2, "name": "bob"}]
    assert out["rowCount"] == 1
    assert out["topic"] == "kept"


async def test_select_with_named_params(postgres_dsn: str, people: str) -> None:
    # A repeated name is one parameter; the ':id' in the string literal and the '::text' cast
    # stay SQL text; keys the query does not use are ignored.
    query = (f"SELECT id, name::text AS name, ':id' AS literal FROM {people} "
             "WHERE id = :id OR name = :name OR id = :id + 10 ORDER BY id")
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        out = await run_flow(h, {"query": query,
                                 "params": {"id": 1, "name": "cid", "unused": True}})
    assert out["payload"] == [{"id": 1, "name": "ann", "literal": ":id"},
                              {"id": 3, "name": "cid", "literal": ":id"}]
    assert out["rowCount"] == 2


async def test_named_values_are_never_put_into_the_sql(postgres_dsn: str, people: str) -> None:
    hostile = f"x'; DROP TABLE {people}; --"
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        out = await run_flow(h, {"query": f"SELECT count(*) AS n FROM {people} "
                                          "WHERE name = :name", "params": {"name": hostile}})
    assert out["payload"] == [{"n": 0}]
    assert (await sql(postgres_dsn, f"SELECT count(*) AS n FROM {people}"))[0]["n"] == 3


async def test_configured_query_takes_msg_params(postgres_dsn: str, people: str) -> None:
    async with pg_flow(postgres_dsn, query=f"SELECT name FROM {people} WHERE id = :id") as h:
        watched(h)
        out = await run_flow(h, {"query": "SELECT 'ignored'", "params": {"id": 3}})
    assert out["payload"] == [{"name": "cid"}]


async def test_insert_update_and_empty_select_statuses(postgres_dsn: str, people: str) -> None:
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        inserted = await run_flow(h, {"query": f"INSERT INTO {people} VALUES ($1, $2)",
                                      "params": [4, "dee"]})
        updated = await run_flow(h, {"query": f"UPDATE {people} SET name = upper(name) "
                                              "WHERE id > :min", "params": {"min": 2}})
        empty = await run_flow(h, {"query": f"SELECT * FROM {people} WHERE id = 99"})
        created = await run_flow(h, {"query": f"CREATE INDEX ON {people} (name)"})
    assert (inserted["payload"], inserted["rowCount"]) == ("INSERT 0 1", 1)
    assert (updated["payload"], updated["rowCount"]) == ("UPDATE 2", 2)
    assert (empty["payload"], empty["rowCount"]) == ([], 0)
    assert (created["payload"], created["rowCount"]) == ("CREATE INDEX", None)
    rows = await sql(postgres_dsn, f"SELECT name FROM {people} ORDER BY id")
    assert [r["name"] for r in rows] == ["ann", "bob", "CID", "DEE"]


async def test_insert_returning_gives_rows(postgres_dsn: str, people: str) -> None:
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        out = await run_flow(h, {"query": f"INSERT INTO {people} VALUES (:id, :name) "
                                          "RETURNING id, name", "params": {"id": 7, "name": "eve"}})
    assert out["payload"] == [{"id": 7, "name": "eve"}]
    assert out["rowCount"] == 1


async def test_a_script_without_params_runs_every_statement(postgres_dsn: str,
                                                            table: str) -> None:
    script = (f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (a int);"
              f" -- a comment; with a semicolon\n INSERT INTO {table} VALUES (1), (2);")
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        out = await run_flow(h, {"query": script})
    assert out["payload"] == "INSERT 0 2"  # the last statement's status
    assert (await sql(postgres_dsn, f"SELECT count(*) AS n FROM {table}"))[0]["n"] == 2


async def test_jsonb_and_json_round_trip(postgres_dsn: str, table: str) -> None:
    await sql(postgres_dsn, f"DROP TABLE IF EXISTS {table}")
    await sql(postgres_dsn, f"CREATE TABLE {table} (id int, doc jsonb, raw json, u uuid)")
    doc = {"name": "cam 1", "tags": ["a", "b"], "fps": 29.97, "live": True, "none": None,
           "nested": {"ü": [1, {"x": 2}]}}
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        await run_flow(h, {"query": f"INSERT INTO {table} VALUES (:id, :doc, :raw, :u)",
                           "params": {"id": 1, "doc": doc, "raw": doc,
                                      "u": "a8098c1a-f86e-11da-bd1a-00112444be1e"}})
        # A text parameter is JSON text already (as in node-postgres), not a JSON string.
        await run_flow(h, {"query": f"INSERT INTO {table} (id, doc) VALUES ($1, $2)",
                           "params": [2, '{"from": "text"}']})
        out = await run_flow(h, {"query": f"SELECT id, doc, raw, u, doc->'tags' AS tags, "
                                          f"doc->>'name' AS name FROM {table} ORDER BY id"})
    first, second = out["payload"]
    assert first == {"id": 1, "doc": doc, "raw": doc, "tags": ["a", "b"], "name": "cam 1",
                     "u": "a8098c1a-f86e-11da-bd1a-00112444be1e"}
    assert second["doc"] == {"from": "text"}
    # Stored as real JSON: queryable with PostgreSQL's operators.
    rows = await sql(postgres_dsn, f"SELECT doc->'nested'->'ü'->1->>'x' AS x FROM {table} "
                                   "WHERE id = 1")
    assert rows[0]["x"] == "2"


async def test_many_concurrent_messages_share_a_small_pool(postgres_dsn: str,
                                                           table: str) -> None:
    await sql(postgres_dsn, f"DROP TABLE IF EXISTS {table}")
    await sql(postgres_dsn, f"CREATE TABLE {table} (n int PRIMARY KEY)")
    async with pg_flow(postgres_dsn, {"pool_max": 3}) as h:
        watched(h)
        for n in range(200):
            h.send("query", {"query": f"INSERT INTO {table} VALUES ($1) RETURNING n",
                             "params": [n]})
        outputs = await h.output("query", count=200, timeout=20)
    assert sorted(m["payload"][0]["n"] for m in outputs) == list(range(200))
    assert (await sql(postgres_dsn, f"SELECT count(*) AS c FROM {table}"))[0]["c"] == 200


# -- transactions ---------------------------------------------------------------------------------

async def test_transaction_is_all_or_nothing(postgres_dsn: str, people: str) -> None:
    async with pg_flow(postgres_dsn, transaction=True) as h:
        watched(h)
        ok = await run_flow(h, {"queries": [
            {"query": f"INSERT INTO {people} VALUES ($1, $2)", "params": [10, "x"]},
            {"query": f"UPDATE {people} SET name = :name WHERE id = :id",
             "params": {"id": 10, "name": "y"}},
            {"query": f"SELECT name FROM {people} WHERE id = 10"}]})
        failed = await run_failing(h, {"queries": [
            {"query": f"INSERT INTO {people} VALUES ($1, $2)", "params": [11, "first"]},
            {"query": f"INSERT INTO {people} VALUES ($1, $2)", "params": [1, "duplicate"]}]})
    assert ok["payload"] == ["INSERT 0 1", "UPDATE 1", [{"name": "y"}]]
    assert ok["rowCount"] == [1, 1, 1]
    assert failed["error"]["message"].endswith("(SQLSTATE 23505)")
    # The first insert of the failed message was rolled back with the second.
    rows = await sql(postgres_dsn, f"SELECT id FROM {people} ORDER BY id")
    assert [r["id"] for r in rows] == [1, 2, 3, 10]


async def test_without_transaction_each_statement_commits(postgres_dsn: str,
                                                          people: str) -> None:
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        failed = await run_failing(h, {"query": [
            f"INSERT INTO {people} VALUES (11, 'first')",
            f"INSERT INTO {people} VALUES (1, 'duplicate')",
            f"INSERT INTO {people} VALUES (12, 'never')"]})
    assert "(SQLSTATE 23505)" in failed["error"]["message"]
    rows = await sql(postgres_dsn, f"SELECT id FROM {people} ORDER BY id")
    assert [r["id"] for r in rows] == [1, 2, 3, 11]


async def test_a_list_of_queries_with_a_transaction(postgres_dsn: str, table: str) -> None:
    await sql(postgres_dsn, f"DROP TABLE IF EXISTS {table}")
    async with pg_flow(postgres_dsn, transaction=True) as h:
        watched(h)
        out = await run_flow(h, {"query": [f"CREATE TABLE {table} (a int)",
                                           f"INSERT INTO {table} VALUES (1)",
                                           f"SELECT a FROM {table}"]})
    assert out["payload"] == ["CREATE TABLE", "INSERT 0 1", [{"a": 1}]]
    assert out["rowCount"] == [None, 1, 1]


# -- errors ---------------------------------------------------------------------------------------

async def test_unique_violation_reaches_catch_with_sqlstate_23505(postgres_dsn: str,
                                                                 people: str) -> None:
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        caught = await run_failing(h, {"query": f"INSERT INTO {people} VALUES ($1, $2)",
                                       "params": [1, "again"], "topic": "kept"})
        assert h.output_now("query") == []
    assert caught["error"]["message"] == (
        f'PostgresError: duplicate key value violates unique constraint "{people}_pkey": '
        "Key (id)=(1) already exists. (SQLSTATE 23505)")
    assert caught["error"]["type"] == "PostgresError"
    assert caught["error"]["source"]["id"] == "query"
    assert caught["topic"] == "kept"


async def test_syntax_error_reaches_catch_with_sqlstate_42601(postgres_dsn: str) -> None:
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        caught = await run_failing(h, {"query": "SELEC 1"})
        # The connection is still good for the next message.
        out = await run_flow(h, {"query": "SELECT 1 AS one"})
    assert caught["error"]["message"] == (
        'PostgresError: syntax error at or near "SELEC" (SQLSTATE 42601)')
    assert out["payload"] == [{"one": 1}]


async def test_not_null_and_bad_parameter_errors(postgres_dsn: str, people: str) -> None:
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        not_null = await run_failing(h, {"query": f"INSERT INTO {people} VALUES ($1, $2)",
                                         "params": [5, None]})
        wrong_type = await run_failing(h, {"query": f"SELECT * FROM {people} WHERE id = $1",
                                           "params": ["one"]})
        missing = await run_failing(h, {"query": f"SELECT * FROM {people} WHERE id = :id",
                                        "params": {"ident": 1}})
    assert not_null["error"]["message"].endswith("(SQLSTATE 23502)")
    # Found by the driver before the server saw it; asyncpg classes it as a data exception.
    assert wrong_type["error"]["message"].startswith(
        "PostgresError: invalid input for query argument $1: 'one'")
    assert wrong_type["error"]["message"].endswith("(SQLSTATE 22000)")
    assert missing["error"]["message"] == (
        "ValueError: msg.params has no value for the placeholder :id")


@pytest.mark.parametrize(("msg", "expected"), [
    ({"payload": 1}, "ValueError: no query: set `query` on the node, or msg.query"),
    ({"query": "SELECT 1", "params": "1"}, "ValueError: msg.params must be a list"),
    ({"query": ["SELECT 1"], "params": [1]}, "ValueError: msg.params cannot go with a list"),
    ({"queries": []}, "ValueError: msg.queries must be a non-empty list"),
    ({"queries": [{"params": [1]}]}, "ValueError: msg.queries[0] must be {query, params}"),
    ({"query": "SELECT :n::int, ':x'"},
     "ValueError: the query has the placeholder :n but msg.params is missing"),
    ({"queries": [{"query": "SELECT 1"}, {"query": "SELECT :id"}]},
     "ValueError: the query has the placeholder :id but msg.queries[1].params is missing"),
])
async def test_bad_messages_are_catchable_errors(postgres_dsn: str, msg: dict[str, Any],
                                                 expected: str) -> None:
    async with pg_flow(postgres_dsn) as h:
        watched(h)
        caught = await run_failing(h, msg)
    assert caught["error"]["message"].startswith(expected)


async def test_load_errors() -> None:
    with pytest.raises(FlowLoadError) as info:
        pg_flow("mysql://localhost/db")
    assert "field 'dsn': expected `embedded` or a URL starting with postgresql://" in str(
        info.value)
    with pytest.raises(FlowLoadError) as info:
        pg_flow("embedded", {"pool_min": 5, "pool_max": 2})
    assert "field 'pool_min': pool_min (5) is larger than pool_max (2)" in str(info.value)


# -- the connection: status, outage, restart ------------------------------------------------------

def statuses(h: FlowHarness, node_id: str) -> list[str]:
    return [e["status"].get("text", "") for e in h.statuses if e["node"] == node_id]


async def test_status_shows_the_address_without_password(postgres_server: EmbeddedPostgres
                                                         ) -> None:
    async with pg_flow(postgres_server.dsn) as h:
        watched(h)
        await run_flow(h, {"query": "SELECT 1"})
        config_status = h.node("db").last_status
        query_status = h.node("query").last_status
    address = f"127.0.0.1:{postgres_server.port}/postgres"
    assert config_status == {"fill": "green", "shape": "dot", "text": f"connected {address}"}
    assert query_status == config_status
    password = postgres_server.dsn.split(":")[2].split("@")[0]
    assert not any(password in text for text in statuses(h, "db") + statuses(h, "query"))


async def test_server_restart_while_the_flow_runs(data_root: Path) -> None:
    server = EmbeddedPostgres(data_root / "data")
    await asyncio.to_thread(server.start)
    logs = capture_logs(logging.WARNING)
    try:
        async with pg_flow(server.dsn, {"connect_timeout": "2s"}) as h:
            watched(h)
            before = await run_flow(h, {"query": "SELECT 1 AS n"})
            await asyncio.to_thread(server.stop)
            # Messages during the outage fail, each one catchably, with a connection SQLSTATE.
            gap = [await run_failing(h, {"query": "SELECT 2 AS n", "round": i})
                   for i in range(3)]
            down_status = h.node("query").last_status
            await asyncio.to_thread(server.start)  # same data, same port
            after = await run_flow(h, {"query": "SELECT 3 AS n"})
            up_status = h.node("query").last_status
    finally:
        await asyncio.to_thread(server.stop)
    assert before["payload"] == [{"n": 1}]
    assert [m["round"] for m in gap] == [0, 1, 2]
    for caught in gap:
        assert CONNECTION_SQLSTATE.search(caught["error"]["message"]), caught["error"]
        assert caught["error"]["type"] == "PostgresError"
    address = f"127.0.0.1:{server.port}/postgres"
    assert down_status is not None and down_status["fill"] == "red"
    assert down_status["text"].startswith(f"disconnected {address}: ")
    assert after["payload"] == [{"n": 3}]
    assert up_status == {"fill": "green", "shape": "dot", "text": f"connected {address}"}
    # The gap shows in the status history, and is logged once, not once per message.
    texts = statuses(h, "query")
    assert [t.split(" ")[0] for t in texts if t.startswith(("connected", "disconnected"))] == [
        "connected", "disconnected", "connected"]
    unavailable = [r for r in logs if "unavailable" in r.getMessage()]
    assert len(unavailable) == 1


async def test_server_down_at_start_connects_later(data_root: Path) -> None:
    server = EmbeddedPostgres(data_root / "data")
    await asyncio.to_thread(server.start)
    dsn = server.dsn
    await asyncio.to_thread(server.stop)
    try:
        async with pg_flow(dsn, {"connect_timeout": "2s"}) as h:
            watched(h)
            caught = await run_failing(h, {"query": "SELECT 1"})
            await asyncio.to_thread(server.start)
            out = await run_flow(h, {"query": "SELECT 1 AS one"})
    finally:
        await asyncio.to_thread(server.stop)
    assert caught["error"]["message"].endswith("(SQLSTATE 08001)")
    assert out["payload"] == [{"one": 1}]


# -- embedded mode --------------------------------------------------------------------------------

def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_embedded_server_starts_and_stops_with_the_flow(data_root: Path) -> None:
    data_dir = data_root / "pg"
    async with pg_flow("embedded", {"data_dir": str(data_dir)}) as h:
        watched(h)
        created = await run_flow(h, {"query": "CREATE TABLE kept (a int); "
                                              "INSERT INTO kept VALUES (42)"})
        server = h.node("db").embedded  # type: ignore[attr-defined]
        pid = server.pid
        assert pid is not None and not _gone(pid)
        status = h.node("query").last_status
    assert created["payload"] == "INSERT 0 1"
    assert status == {"fill": "green", "shape": "dot",
                      "text": f"connected 127.0.0.1:{server.port}/postgres"}
    assert (data_dir / "PG_VERSION").is_file()
    assert _gone(pid)  # stopped with the runtime
    assert not (data_dir / "postmaster.pid").exists()
    # The data stays: a new runtime on the same data_dir sees the table.
    async with pg_flow("", {"data_dir": str(data_dir)}) as h:
        watched(h)
        out = await run_flow(h, {"query": "SELECT a FROM kept"})
        pid = h.node("db").embedded.pid  # type: ignore[attr-defined]
    assert out["payload"] == [{"a": 42}]
    assert _gone(pid)


async def test_embedded_server_that_died_is_restarted(data_root: Path) -> None:
    async with pg_flow("embedded", {"data_dir": str(data_root / "pg")}) as h:
        watched(h)
        await run_flow(h, {"query": "SELECT 1"})
        server = h.node("db").embedded  # type: ignore[attr-defined]
        old_pid = server.pid
        os.kill(old_pid, signal.SIGINT)  # someone stops the server behind our back
        for _ in range(200):
            if not server.running:
                break
            await asyncio.sleep(0.05)
        out = await run_flow(h, {"query": "SELECT 2 AS n"})
        new_pid = server.pid
    assert out["payload"] == [{"n": 2}]
    assert new_pid != old_pid
    assert _gone(new_pid)
    assert h.errors == []


async def test_embedded_default_data_dir_follows_the_data_dir_setting(data_root: Path) -> None:
    h = FlowHarness.from_dict({
        "flow": "pg", "settings": {"data_dir": str(data_root / "state")},
        "config": {"db": {"type": "postgres-server"}},
        "nodes": {"query": {"type": "postgres", "server": "db"}}})
    async with h:
        h.watch_output("query")
        h.send("query", {"query": "SELECT current_database() AS db"})
        [out] = await h.output("query")
    assert out["payload"] == [{"db": "postgres"}]
    assert (data_root / "state" / "postgres" / "PG_VERSION").is_file()


async def test_embedded_server_that_cannot_start(data_root: Path) -> None:
    data_dir = data_root / "pg"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("mine")
    logs = capture_logs(logging.ERROR)
    async with pg_flow("embedded", {"data_dir": str(data_dir)}) as h:
        watched(h)
        caught = await run_failing(h, {"query": "SELECT 1"})
        status = h.node("query").last_status
    message = caught["error"]["message"]
    assert message.startswith("PostgresError: no database: embedded PostgreSQL did not start: ")
    assert f"{data_dir} is not empty and holds no PostgreSQL cluster" in message
    assert message.endswith("(SQLSTATE 08001)")
    assert status == {"fill": "red", "shape": "ring", "text": "embedded PostgreSQL did not start"}
    assert (data_dir / "notes.txt").read_text() == "mine"  # nothing of ours was touched
    assert [r.getMessage() for r in logs if "failed to start" in r.getMessage()]


# -- the embedded server manager --------------------------------------------------------------

def test_a_server_left_by_a_dead_runtime_is_stopped_first(data_root: Path) -> None:
    first = EmbeddedPostgres(data_root / "data")
    first.start()
    orphan = first.pid
    # Pretend the runtime that started it died: the owner file names a finished process.
    finished = subprocess.Popen(["true"])
    finished.wait()
    (data_root / "data" / "flowengine.owner").write_text(f"{finished.pid}\n")
    second = EmbeddedPostgres(data_root / "data", port=first.port)
    try:
        second.start()
        assert not first.running and second.running and second.pid != orphan
    finally:
        second.stop()
        first.stop()
    assert second.pid is None


def test_a_server_whose_owner_lives_is_left_alone(data_root: Path) -> None:
    first = EmbeddedPostgres(data_root / "data")
    first.start()
    owner = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(EmbeddedPostgresError, match=r"in this process"):
            EmbeddedPostgres(data_root / "data").start()
        (data_root / "data" / "flowengine.owner").write_text(f"{owner.pid}\n")
        with pytest.raises(EmbeddedPostgresError, match=rf"started by process {owner.pid}"):
            EmbeddedPostgres(data_root / "data").start()
        assert first.running
    finally:
        owner.kill()
        owner.wait()
        first.stop()


SYSTEM_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))


@pytest.mark.skipif(not SYSTEM_BINARIES, reason="no system PostgreSQL installed")
async def test_system_binaries_and_version_mismatch(data_root: Path,
                                                    postgres_server: EmbeddedPostgres) -> None:
    bin_dir = SYSTEM_BINARIES[-1].parent
    version = bin_dir.parent.name
    with EmbeddedPostgres(data_root / "data", bin_dir=bin_dir) as server:
        rows = await sql(server.dsn, "SHOW server_version")
    assert rows[0]["server_version"].split(".")[0] == version
    # A data directory of another major version is refused with a clear message.
    other = (postgres_server.data_dir / "PG_VERSION").read_text().strip()
    if other != version:
        with pytest.raises(EmbeddedPostgresError, match=rf"created by PostgreSQL {other} but"):
            EmbeddedPostgres(postgres_server.data_dir, bin_dir=bin_dir).start()


# -- SQL text helpers (no server) ----------------------------------------------------------------

@pytest.mark.parametrize(("sql_text", "params", "expected_sql", "expected_args"), [
    ("SELECT :a, :b, :a", {"a": 1, "b": 2}, "SELECT $1, $2, $1", [1, 2]),
    ("SELECT x::int, :v::text", {"v": "5"}, "SELECT x::int, $1::text", ["5"]),
    ("SELECT ':a', E'\\':a', \":a\", $$ :a $$, $t$ :a $t$ WHERE y = :a",
     {"a": 9}, "SELECT ':a', E'\\':a', \":a\", $$ :a $$, $t$ :a $t$ WHERE y = $1", [9]),
    ("SELECT 1 -- :a\n, /* :a /* nested :a */ :a */ :b", {"b": 2},
     "SELECT 1 -- :a\n, /* :a /* nested :a */ :a */ $1", [2]),
    ("SELECT arr[1:n], arr[lo:hi], f(x := 1) FROM t WHERE a=:a", {"a": 0},
     "SELECT arr[1:n], arr[lo:hi], f(x := 1) FROM t WHERE a=$1", [0]),
    ("SELECT 'it''s :a' || :a", {"a": "x"}, "SELECT 'it''s :a' || $1", ["x"]),
])
def test_bind_named(sql_text: str, params: dict[str, Any], expected_sql: str,
                    expected_args: list[Any]) -> None:
    assert bind_named(sql_text, params) == (expected_sql, expected_args)


def test_named_placeholders() -> None:
    assert named_placeholders("SELECT :b, ':c', x::int, :a, :b -- :d") == ["b", "a"]
    assert named_placeholders("SELECT $1, arr[1:2]") == []


def test_bind_named_reports_a_missing_value() -> None:
    with pytest.raises(ValueError, match=r"no value for the placeholder :b"):
        bind_named("SELECT :a, :b", {"a": 1})


@pytest.mark.parametrize(("sql_text", "count"), [
    ("SELECT 1", 1),
    ("SELECT 1;", 1),
    ("SELECT 1; SELECT 2", 2),
    ("SELECT ';'; -- ; comment ;\n", 1),
    ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql; SELECT f()", 2),
    ("/* ; */ ;; ", 0),
    ("SELECT \"a;b\" FROM t; SELECT E'\\';'", 2),
])
def test_count_statements(sql_text: str, count: int) -> None:
    assert count_statements(sql_text) == count
