"""``python -m flowengine.media``: a real child process on 127.0.0.1, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys

import aiohttp


async def test_module_entry_point_serves_and_stops_cleanly(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowengine.media", "--host", "127.0.0.1", "--port", "0",
        "--media-dir", str(tmp_path / "media"), "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"ws://127\.0\.0\.1:(\d+)/kurento", line)
        assert match, line
        async with aiohttp.ClientSession() as http, http.ws_connect(match.group(0)) as ws:
            await ws.send_str('{"jsonrpc":"2.0","method":"ping","id":0}')
            assert json.loads((await ws.receive(timeout=5)).data)["result"] == {"value": "pong"}
        assert (tmp_path / "media").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
    assert code == 0


def test_main_rejects_a_port_in_use(capsys, tmp_path):
    import socket

    from flowengine.media import main

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["--port", str(port), "--media-dir", str(tmp_path)]) == 1
    assert "media server:" in capsys.readouterr().out
