"""``flowrun`` run and validate: exit codes, what is printed, and signals on a real process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowengine.cli import EXIT_INVALID, EXIT_OK, main

GOOD = """\
    flow: hello
    nodes:
      tick:
        type: inject
        payload: hello
        once: true
        once_delay: 10ms
        wires: [shout]
      shout:
        type: function
        code: |
          msg["payload"] = msg["payload"].upper()
          return msg
        wires: [show]
      show:
        type: debug
    """


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """main() points flowengine's log handler at this test's stderr; put the old one back."""
    logger = logging.getLogger("flowengine")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# -- validate -------------------------------------------------------------------------------------


def test_validate_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "hello.yaml", GOOD)
    assert main(["validate", str(path)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == "ok: 1 flow(s), 3 nodes, 0 warning(s)\n"
    assert err == ""


def test_validate_prints_warnings_and_still_passes(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "w.yaml", """\
        flow: w
        nodes:
          show:
            type: debug
        """)
    assert main(["validate", str(path)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == "ok: 1 flow(s), 1 nodes, 1 warning(s)\n"
    assert err == (f"{path}:3:3: warning: node 'show': no source reaches this node (nothing is "
                   "wired into it)\n")


def test_validate_prints_every_error_of_every_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    first = write(tmp_path / "a.yaml", """\
        flow: a
        nodes:
          tick:
            type: inject
            wires: [shwo]
          show:
            type: debug
            colour: red
        """)
    second = write(tmp_path / "b.yaml", """\
        flow: b
        nodes:
          fn:
            type: function
            code: "return ("
        """)
    good = write(tmp_path / "c.yaml", "flow: c\n")
    assert main(["validate", str(tmp_path)]) == EXIT_INVALID
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{first}:5:13: node 'tick', field 'wires[0]': wire to unknown node 'shwo' "
        "(did you mean 'show'?)",
        f"{first}:8:5: node 'show', field 'colour': unknown field 'colour' (expected one of: "
        "active, complete, console, expression, max_length, property, status)",
        f"{second}:5:11: node 'fn', field 'code': SyntaxError: '(' was never closed "
        "(line 1 of the code)",
        "flowrun: 3 errors in 2 files",
    ]
    assert str(good) not in err


def test_validate_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == EXIT_INVALID
    assert capsys.readouterr().err.splitlines() == [
        f"{missing}:1:1: cannot read flow file: No such file or directory",
        "flowrun: 1 error in 1 file"]


def test_run_with_errors_starts_nothing(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bad.yaml", GOOD.replace("type: debug", "type: debgu"))
    assert main([str(path)]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{path}:16:11: node 'show', field 'type': unknown node type 'debgu' "
        "(did you mean 'debug'?)",
        "flowrun: 1 error in 1 file; nothing started"]
    assert "running" not in err


# -- a real flowrun process -----------------------------------------------------------------------


class Flowrun:
    """``python -m flowengine.cli ARGS`` with its stderr collected line by line."""

    def __init__(self, *args: str, cwd: Path):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "flowengine.cli", *args], cwd=cwd,
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not seen on stderr:\n" + "\n".join(self.lines))

    def stop(self, sig: signal.Signals, timeout: float = 20.0) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_flowrun_runs_until_a_signal_and_stops_cleanly(tmp_path: Path,
                                                       sig: signal.Signals) -> None:
    path = write(tmp_path / "hello.yaml", GOOD)
    run = Flowrun("--port", "0", str(path), cwd=tmp_path)
    try:
        line = run.wait_for("show : payload : HELLO")
        assert "[hello/show msg=" in line
        assert run.stop(sig) == EXIT_OK
    finally:
        run.kill()
    assert "flowrun: stopping" in run.lines
    assert run.lines[-1].endswith("INFO    stopped")


def test_flowrun_watch_applies_an_edit(tmp_path: Path) -> None:
    path = write(tmp_path / "hello.yaml", GOOD)
    run = Flowrun("--watch", "--port", "0", str(path), cwd=tmp_path)
    try:
        run.wait_for("show : payload : HELLO")
        path.write_text(textwrap.dedent(GOOD).replace(".upper()", ".title() + '!'"))
        # (The runtime logs its own count line too; the watcher's names the ids.)
        run.wait_for("reloaded: 0 added, 1 changed, 0 removed (changed: shout)")
        path.write_text(textwrap.dedent(GOOD).replace("once: true", "once: maybe"))
        assert run.wait_for("not reloaded:").endswith(
            "not reloaded: 1 error; the running flows are unchanged")
        assert any(line.endswith(f"{path}:6:11: node 'tick', field 'once': 'maybe' is not of "
                                 "type 'boolean'") for line in run.lines)
        assert run.stop(signal.SIGINT) == EXIT_OK
    finally:
        run.kill()
    assert run.lines[-1].endswith("INFO    stopped")
