"""The embedded PostgreSQL under bad luck (issue 12, points 8 and 10): killed behind the
runtime's back it is started again at once, without waiting for the next statement, with one
warning and no traceback; and it dies with the process that started it, even by SIGKILL, even
when it was started from a worker thread (as ``asyncio.to_thread`` does)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowengine.testing import FlowHarness

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def data_root() -> Iterator[Path]:
    """Outside pytest's base folder (see tests/conftest.py: the server may run as another user)."""
    with tempfile.TemporaryDirectory(prefix="flowengine-test-pg-",
                                     ignore_cleanup_errors=True) as folder:
        yield Path(folder)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def test_a_killed_server_is_restarted_at_once_with_one_warning(
        data_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    flow = FlowHarness.from_dict({
        "flow": "pg", "config": {"db": {"type": "postgres-server", "dsn": "embedded",
                                        "data_dir": str(data_root / "pg")}},
        "nodes": {"query": {"type": "postgres", "server": "db"}}})
    async with flow as h:
        h.watch_output("query")
        server = h.node("db").embedded  # type: ignore[attr-defined]
        old = server.pid
        caplog.clear()
        os.kill(old, signal.SIGKILL)
        # No message is sent: the watcher alone brings it back.
        deadline = time.monotonic() + 30
        while not (server.running and server.pid != old
                   and h.node("query").last_status.get("fill") == "green"):
            assert time.monotonic() < deadline, "not restarted"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        h.send("query", {"query": "SELECT 2 AS n"})
        [out] = await h.output("query")
        assert out["payload"] == [{"n": 2}]
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and "flowengine.pg" not in r.name]
    assert len(warnings) == 1, warnings
    assert "embedded server stopped (exit code -9); restarting it" in warnings[0]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert h.errors == []


CHILD = textwrap.dedent("""\
    import asyncio, sys, time
    from flowengine.pg import EmbeddedPostgres

    async def main():
        server = EmbeddedPostgres(sys.argv[1])
        await asyncio.to_thread(server.start)   # from a worker thread, as the node does
        print(server.pid, flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
    """)


def test_the_server_dies_with_a_runtime_killed_by_sigkill(data_root: Path) -> None:
    runtime = subprocess.Popen([sys.executable, "-c", CHILD, str(data_root / "pg")],
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pid = int(runtime.stdout.readline())  # type: ignore[union-attr]
        time.sleep(1)
        assert alive(pid)  # the worker thread that started it finished long ago
        runtime.kill()
        runtime.wait()
        deadline = time.monotonic() + 30
        while alive(pid):
            assert time.monotonic() < deadline, "PostgreSQL outlived the killed runtime"
            time.sleep(0.1)
        assert not (data_root / "pg" / "postmaster.pid").exists()  # a clean (fast) shutdown
    finally:
        if runtime.poll() is None:
            runtime.kill()
