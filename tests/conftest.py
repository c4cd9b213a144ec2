"""Fixtures shared by the test suite."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowengine.pg import EmbeddedPostgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL server for the whole session, on 127.0.0.1 at a free port, from the
    pgserver package's binaries (or a system install); stopped and deleted when the session
    ends. Its data is not under pytest's base folder: as root the server runs as another user
    that must traverse the parent folders, and a concurrent pytest session resets that base
    folder to mode 0700."""
    with tempfile.TemporaryDirectory(prefix="flowengine-test-pg-",
                                     ignore_cleanup_errors=True) as folder:
        server = EmbeddedPostgres(Path(folder) / "data")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: EmbeddedPostgres) -> str:
    """The session server's connection URL."""
    return postgres_server.dsn
