"""The embedded media server child process on its own (the node tests run it in flows)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowengine.kurento import EmbeddedMediaServer, EmbeddedMediaServerError, KurentoClient


async def test_start_reads_the_announced_port_and_stop_ends_the_process(tmp_path: Path) -> None:
    server = EmbeddedMediaServer(tmp_path / "media")
    await server.start()
    try:
        assert server.running and server.port > 0
        assert server.url == f"ws://127.0.0.1:{server.port}/kurento"
        async with await KurentoClient.connect(server.url) as client:
            await client.ping()
        pid = server.pid
        assert pid is not None
    finally:
        await server.stop()
    assert not server.running and server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    await server.stop()  # idempotent


async def test_a_child_that_exits_at_once_is_reported_with_its_output(tmp_path: Path) -> None:
    server = EmbeddedMediaServer(tmp_path / "media", extra_args=("--no-such-option",))
    with pytest.raises(EmbeddedMediaServerError) as info:
        await server.start()
    assert "exited with code 2" in str(info.value)
    assert "--no-such-option" in str(info.value)  # argparse's complaint, from the child
    assert not server.running
