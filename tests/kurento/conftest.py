"""Fixtures for the Kurento tests (helpers in kurento_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kurento_helpers import MediaServerProcess, TcpRelay


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServerProcess]:
    """One media server for a test module."""
    server = MediaServerProcess(tmp_path_factory.mktemp("kurento") / "media")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_media_server(tmp_path: Path) -> Iterator[MediaServerProcess]:
    """A media server for one test (which may restart or stop it)."""
    server = MediaServerProcess(tmp_path / "media")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def relay(media_server: MediaServerProcess) -> AsyncIterator[TcpRelay]:
    """A relay to the module's media server."""
    relay = TcpRelay(media_server.port)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()
