"""``flowrun flows/kurento.yaml`` as a user runs it: the flows validate; the command starts the
embedded media server and PostgreSQL, prints what it started and the URL to open, serves the
web app and the API, and stops cleanly on Ctrl-C; a second start on the same data applies no
migration again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import FLOW_FILE, REPO, free_port
from e2ekit import descendants

pytestmark = pytest.mark.timeout(180)

START_TIMEOUT = 90.0


def flowrun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowengine.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_flows_validate() -> None:
    result = flowrun("validate", str(FLOW_FILE.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 14 flow(s)" in result.stdout + result.stderr
    assert "warning" not in (result.stdout + result.stderr).replace("0 warning(s)", "")


def test_flow_tests_pass() -> None:
    result = flowrun("test", "flows/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout and "FAIL" not in result.stdout


class Running:
    """``flowrun flows/kurento.yaml`` in the background, its output in a file."""

    def __init__(self, data_dir: Path, port: int, *args: str,
                 environ: dict[str, str] | None = None):
        self.port = port
        self.log = data_dir.parent / f"flowrun-{port}.log"
        env = {k: v for k, v in os.environ.items()
               if k not in ("KMS_URL", "DATABASE_URL", "ORION_URL", "TURN_URL", "MEDIA_DIR")}
        env.update({"PORT": str(port), "FLOWENGINE_DATA": str(data_dir),
                    "PYTHONUNBUFFERED": "1", **(environ or {})})
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flowengine.cli", "flows/kurento.yaml", *args], cwd=REPO,
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"flowrun exited ({self.process.returncode}):\n"
                                     f"{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {START_TIMEOUT}s:\n{self.output()}")
            time.sleep(0.2)

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return r.status, r.read()

    def stop(self) -> int:
        """Ctrl-C; the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError(f"flowrun did not stop on SIGINT:\n{self.output()}") from None


def test_flowrun_starts_everything_prints_the_url_and_stops_cleanly(data_root: Path) -> None:
    data_dir = data_root / "data"
    port = free_port()
    run = Running(data_dir, port)
    try:
        run.wait_for(f"open http://127.0.0.1:{port}/")
        run.wait_for("database ready")
        out = run.output()
        assert "Kurento application started" in out
        assert "  media server: embedded, ws://127.0.0.1:" in out
        assert f"  recordings:   {data_dir / 'media'}" in out
        assert "  database:     embedded PostgreSQL" in out
        assert "  Orion:        not used (ORION_URL not set)" in out
        assert "  TURN:         not used (TURN_URL not set)" in out
        assert "database schema: applied 001_init" in out
        status, body = run.get("/api/host")
        host = json.loads(body)
        assert status == 200 and host["url"] == f"http://127.0.0.1:{port}/"
        assert host["mediaServer"].startswith("embedded (ws://127.0.0.1:")
        if (REPO / "examples" / "webapp" / "index.html").is_file():
            status, body = run.get("/")
            assert status == 200 and b"<html" in body.lower()
        status, body = run.get("/api/sessions")
        assert status == 200 and json.loads(body) == {"sessions": [], "recent": []}
        started = descendants(run.process.pid)
        assert len(started) >= 2  # the media server, PostgreSQL (and its workers)
    finally:
        code = run.stop()
    assert code == 0, run.output()
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    leftover = [pid for pid in started if Path(f"/proc/{pid}").exists()]
    assert leftover == [], "an embedded server outlived flowrun"

    # The same data again: the schema is there, nothing is applied twice.
    again = Running(data_dir, free_port())
    try:
        again.wait_for("database ready")
        assert "database schema up to date (2 migration(s))" in again.output()
        assert "applied 001_init" not in again.output()
    finally:
        assert again.stop() == 0, again.output()


def test_the_port_option_reaches_everything_the_port_variable_does(data_root: Path) -> None:
    """`--port` wins over PORT (and settings.http.port) everywhere: the server, the banner, the
    host log line and /api/host read the one port the server bound."""
    port, other = free_port(), free_port()
    run = Running(data_root / "data-port", port, "--port", str(port),
                  environ={"PORT": str(other)})
    try:
        run.wait_for("database ready")
        out = run.output()
        assert (f"http server listening on 127.0.0.1:{port}, this machine only "
                "(settings.http.host or flowrun --host 0.0.0.0 to accept other machines)") in out
        assert f"open http://127.0.0.1:{port}/\n" in out
        host_line = next(line for line in out.splitlines() if "[host/remember-host]" in line)
        assert host_line.endswith("the web app listens on 127.0.0.1 only (settings.http.host "
                                  "or flowrun --host 0.0.0.0 to change it)"), host_line
        status, body = run.get("/api/host")
        host = json.loads(body)
        assert status == 200
        assert (host["url"], host["listening"]) == (f"http://127.0.0.1:{port}/",
                                                    f"127.0.0.1:{port}")
        assert str(other) not in out.replace(f"127.0.0.1:{port}", "")
    finally:
        assert run.stop() == 0, run.output()
