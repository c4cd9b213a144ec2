"""Stopping flowrun during recordings (issue 12, point 8). SIGTERM: the browsers' sockets are
closed first, their sessions end (reason `shutdown`) while the flows still run, so a recording
in progress is finished, stored and listed, and every process flowrun started is gone. SIGKILL:
the embedded media server and PostgreSQL die with flowrun (no orphan), the next start works on
the same data, and nothing broken is listed: every session row is closed, every listed
recording plays."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import av
import pytest
from demokit import SignalingClient
from e2ekit import DemoServer, descendants, http_json, start_demo

pytestmark = [pytest.mark.timeout(400), pytest.mark.usefixtures("loopback_ice")]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def plays(path: Path) -> bool:
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0)) > 0
    except (av.error.FFmpegError, OSError):
        return False


def started_demo(workdir: Path) -> DemoServer:
    """flowrun on ``workdir``, once the database and the recordings folder are ready."""
    demo = start_demo(workdir)
    deadline = time.monotonic() + 90
    while not all(text in demo.output()
                  for text in ("Kurento application started", "database ready")):
        if time.monotonic() > deadline:
            demo.stop()
            raise AssertionError(demo.tail())
        time.sleep(0.2)
    return demo


async def record_for_a_while(demo: DemoServer) -> tuple[SignalingClient, str, str]:
    """A webcam session (an aiortc peer) recording for 2 s: (client, session, file)."""
    client = SignalingClient(demo.url.replace("http://", "ws://") + "/signaling")
    await client.open()
    source = await client.publish(name="recorded")
    started = await client.request({"id": "record", "sessionId": source}, "recording")
    await asyncio.sleep(2)
    return client, source, started["file"]


def wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


async def test_sigterm_stores_the_recording_in_progress(tmp_path: Path) -> None:
    demo = started_demo(tmp_path)
    try:
        started = descendants(demo.process.pid)
        client, source, file = await record_for_a_while(demo)
        demo.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(demo.process.wait, 60)
        await client.close()
        assert code == 0, demo.tail()
        assert wait_gone(started) == [], "a process outlived flowrun"
    finally:
        demo.stop()
    again = started_demo(tmp_path)
    try:
        listed = http_json(again.url + "/api/recordings")["recordings"]
        assert file in [r["file"] for r in listed], (listed, demo.tail())
        assert plays(again.media_dir / file)
        recent = http_json(again.url + "/api/sessions")["recent"]
        [row] = [r for r in recent if r["sessionId"] == source]
        assert row["endReason"] == "shutdown" and row["endedAt"]
    finally:
        again.stop()


async def test_sigkill_leaves_no_orphan_and_nothing_broken_listed(tmp_path: Path) -> None:
    demo = started_demo(tmp_path)
    try:
        client, source, _ = await record_for_a_while(demo)
        started = descendants(demo.process.pid)
        assert len(started) >= 2  # the media server, PostgreSQL and its workers
        os.kill(demo.process.pid, signal.SIGKILL)  # flowrun alone: its children are not told
        demo.process.wait()
        await client.close()
        assert wait_gone(started) == [], "the embedded servers outlived a killed flowrun"
    finally:
        demo.stop()
    again = started_demo(tmp_path)  # the same data: no orphan in the way
    try:
        for entry in http_json(again.url + "/api/recordings")["recordings"]:
            assert plays(again.media_dir / entry["file"]), entry
        recent = http_json(again.url + "/api/sessions")["recent"]
        [row] = [r for r in recent if r["sessionId"] == source]
        assert row["endedAt"] and row["endReason"] == "restart"
    finally:
        again.stop()
