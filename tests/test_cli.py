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


# -- the command line as a newcomer meets it (a real process each time) ---------------------------


def flowrun(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``flowrun ARGS`` in a child process: exit code, stdout, stderr."""
    return subprocess.run([sys.executable, "-m", "flowengine.cli", *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=60)


ROOT = Path(__file__).resolve().parents[1]
ALL_COMMANDS = ("run", "validate", "test", "nodes", "graph", "docs", "import", "media-server")


def test_help_lists_every_command_in_plain_text() -> None:
    result = flowrun("--help")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.split("commands:\n")[1].split("\n\n")[0]
              .splitlines()]
    assert listed == list(ALL_COMMANDS)
    for markup in ("::", "``", ":data:", ":func:"):  # reST from docstrings
        assert markup not in result.stdout
    assert "examples:\n  flowrun flows/kurento.yaml" in result.stdout
    # No arguments at all: the same help, and a failure status for scripts.
    bare = flowrun()
    assert bare.returncode == 2 and bare.stdout == result.stdout


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_every_command_help_reads_like_a_manual_page(command: str) -> None:
    result = flowrun(command, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"usage: flowrun {command} ")
    description = text.split("\n\n")[1]
    assert len(description.split()) >= 15, description  # says what the command does
    examples = text.split("examples:\n")[1].splitlines()
    assert examples and all("flowrun " in line for line in examples[:1]), examples
    assert "exit status:" in text
    for markup in ("::", "``"):
        assert markup not in text


def test_nodes_suggests_the_closest_type_names() -> None:
    result = flowrun("nodes", "swich")
    assert result.returncode == 2
    assert result.stderr == "flowrun: unknown node type 'swich' (did you mean 'switch'?)\n"
    far = flowrun("nodes", "rate-meter")
    assert far.returncode == 2
    assert far.stderr == ("flowrun: unknown node type 'rate-meter': no installed package "
                          "provides it (`flowrun nodes` lists the known types; add a plugin "
                          "with pip install or --nodes DIR)\n")


TESTED = """\
    flow: {name}
    nodes:
      {name}-in:
        type: inject
        wires: [{name}-shout]
      {name}-shout:
        type: function
        code: |
          msg["payload"] = msg["payload"].upper()
          return msg
        wires: [{name}-out]
      {name}-out:
        type: debug
    tests:
      - name: shouts in {name}
        send: [{{node: {name}-shout, msg: {{payload: hi}}}}]
        expect: [{{node: {name}-out, msg: {{payload: HI}}}}]
    """
BROKEN = "flow: {name}\nnodes:\n  x:\n    type: no-such-type\n"


def test_folders_are_searched_recursively(tmp_path: Path) -> None:
    (tmp_path / "app" / "group" / "deeper").mkdir(parents=True)
    write(tmp_path / "app" / "main.yaml", TESTED.format(name="main"))
    write(tmp_path / "app" / "group" / "deeper" / "part.yml", TESTED.format(name="part"))
    (tmp_path / "app" / "group" / "notes.txt").write_text("not a flow")
    # Skipped: hidden folders (editors, tools, .flowengine data), node_modules, hidden files.
    for skipped in (".cache", "node_modules", "group/.git"):
        (tmp_path / "app" / skipped).mkdir(parents=True)
        (tmp_path / "app" / skipped / "x.yaml").write_text(BROKEN.format(name="skipped"))
    (tmp_path / "app" / ".draft.yaml").write_text(BROKEN.format(name="draft"))

    checked = flowrun("validate", "app", cwd=tmp_path)
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0, "ok: 2 flow(s), 6 nodes, 0 warning(s)\n", "")
    tested = flowrun("test", "app", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.splitlines() == [
        line for line in tested.stdout.splitlines() if line.startswith("PASS")
        or line == "2 passed, 0 failed"]
    assert "shouts in main" in tested.stdout and "shouts in part" in tested.stdout


def test_the_examples_folder_is_searched(tmp_path: Path) -> None:
    tested = flowrun("test", "examples/")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "examples/flows/hello.yaml::" in tested.stdout
    passed = int(tested.stdout.splitlines()[-1].split()[0])
    assert passed >= 10, tested.stdout
    # The plugin example's flow needs its node type: named with --nodes, everything validates.
    checked = flowrun("validate", "--nodes", "examples/plugins/flowengine_example_nodes",
                      "examples/")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: 4 flow(s)")


def test_a_path_without_flow_files_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "webapp"
    empty.mkdir()
    (empty / "index.html").write_text("<html></html>")
    hint = (f"{empty}:1:1: no flow file (*.yaml, *.yml) in this folder or its subfolders "
            "(hidden folders and node_modules are skipped)")
    checked = flowrun("validate", str(empty))
    assert checked.returncode == 2
    assert checked.stderr.splitlines() == [hint, "flowrun: 1 error in 1 file"]
    tested = flowrun("test", str(empty))
    assert tested.returncode == 2
    assert tested.stderr.splitlines() == [hint, "flowrun: 1 error in flow files"]
    # With a good file beside it the error stays: the folder was still meant to hold flows.
    good = write(tmp_path / "hello.yaml", GOOD)
    both = flowrun("validate", str(good), str(empty))
    assert both.returncode == 2 and hint in both.stderr


def test_a_duplicate_node_id_hides_no_other_error(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yaml", """\
        flow: a
        nodes:
          tick:
            type: inject
            wires: [show]
          show:
            type: debug
        """)
    second = write(tmp_path / "b.yaml", """\
        flow: b
        nodes:
          show:
            type: change
            rules: []
            colour: red
            wires: [nowhere]
          tick:
            type: function
            code: "return ("
          other:
            type: inject
            wires: [shwo]
        """)
    result = flowrun("validate", str(first), str(second))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{second}:3:3: node 'show': duplicate node id 'show' (first defined at {first}:6)",
        f"{second}:6:5: node 'show', field 'colour': unknown field 'colour' (expected one of: "
        "rules)",
        f"{second}:7:13: node 'show', field 'wires[0]': wire to unknown node 'nowhere'",
        f"{second}:8:3: node 'tick': duplicate node id 'tick' (first defined at {first}:3)",
        f"{second}:10:11: node 'tick', field 'code': SyntaxError: '(' was never closed "
        "(line 1 of the code)",
        f"{second}:13:13: node 'other', field 'wires[0]': wire to unknown node 'shwo' "
        "(did you mean 'show'?)",
        "flowrun: 6 errors in 1 file",
    ]


# -- where the HTTP server listens ----------------------------------------------------------------

ADDRESS_FLOW = """\
    flow: address
    nodes:
      tick:
        type: inject
        once: true
        payload: {env: FLOWENGINE_HTTP_URL}
        wires: [port]
      port:
        type: function
        code: |
          host, port = env.get("FLOWENGINE_HTTP_HOST"), env.get("FLOWENGINE_HTTP_PORT")
          msg["payload"] = f'{msg["payload"]} host={host} port={port}'
          return msg
        wires: [show]
      show:
        type: debug
    """


def listening_sockets(port: int) -> list[str]:
    """The local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp*), as
    ``ip:port``: what the process really bound, whatever it logs."""
    import ipaddress

    found = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))
            found.append(f"{ipaddress.ip_address(words)}:{port}")
    return found


@pytest.mark.parametrize("host", [None, "127.0.0.2"])
def test_the_address_bound_is_logged_and_readable_by_flows(tmp_path: Path,
                                                           host: str | None) -> None:
    path = write(tmp_path / "address.yaml", ADDRESS_FLOW)
    run = Flowrun("--port", "0", *(["--host", host] if host else []), str(path), cwd=tmp_path)
    try:
        line = run.wait_for("http server listening on")
        bound = host or "127.0.0.1"  # secure by default: this machine only
        port = int(line.split(f"listening on {bound}:")[1].split(",")[0])
        assert line.endswith(f"http server listening on {bound}:{port}, this machine only "
                             "(settings.http.host or flowrun --host 0.0.0.0 to accept other "
                             f"machines): open http://{bound}:{port}/")
        assert listening_sockets(port) == [f"{bound}:{port}"]
        # Flows read what was bound, the port that 0 picked included.
        run.wait_for(f"show : payload : http://{bound}:{port} host={bound} port={port}")
        assert run.stop(signal.SIGINT) == EXIT_OK
    finally:
        run.kill()


# -- an http-in request whose message fails -------------------------------------------------------

DIVIDE_FLOW = """\
    flow: api
    settings:
      http:
        request_timeout: 120      # a client left waiting would get its 504 only after this
        error_details: {details}
    nodes:
      get:
        type: http-in
        url: /divide/:n
        wires: [divide]
      divide:
        type: function
        code: |
          msg["payload"] = {{"result": 1 / int(msg["req"].params["n"])}}
          return msg
        wires: [answer]
      answer:
        type: http-response
    {extra}"""
CATCH_NODES = """\
  caught:
        type: catch
        wires: [busy]
      busy:
        type: change
        rules:
          - {set: statusCode, to: 503}
          - {set: payload, to: try later}
        wires: [answer]
"""


def http_get(url: str) -> tuple[int, str]:
    """Status and body; the client gives up after 30 s (well before the flow's 120 s)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("details", [False, True])
def test_a_failed_request_is_answered_500_at_once(tmp_path: Path, details: bool) -> None:
    path = write(tmp_path / "api.yaml", DIVIDE_FLOW.format(details=str(details).lower(),
                                                                extra=""))
    run = Flowrun("--port", "0", str(path), cwd=tmp_path)
    try:
        line = run.wait_for("http server listening on")
        base = line.split("open ")[1].rstrip("/")
        assert http_get(base + "/divide/4") == (200, '{"result":0.25}')
        status, body = http_get(base + "/divide/0")  # ZeroDivisionError, no catch node
        assert status == 500
        text = "ZeroDivisionError: division by zero (divide, line 1)"
        assert body == (text if details else "Internal Server Error")
        logged = run.wait_for(text)  # the error is still logged where it happened
        assert "ERROR   [api/divide msg=" in logged and logged.endswith(text)
        assert run.stop(signal.SIGINT) == EXIT_OK
    finally:
        run.kill()


def test_a_catch_node_still_answers_a_failed_request_itself(tmp_path: Path) -> None:
    path = write(tmp_path / "api.yaml", DIVIDE_FLOW.format(details="false", extra=CATCH_NODES))
    run = Flowrun("--port", "0", str(path), cwd=tmp_path)
    try:
        base = run.wait_for("http server listening on").split("open ")[1].rstrip("/")
        assert http_get(base + "/divide/0") == (503, "try later")
        assert run.stop(signal.SIGINT) == EXIT_OK
    finally:
        run.kill()


# -- the README's first flow ----------------------------------------------------------------------


def test_the_readme_flow_prints_a_readable_time(tmp_path: Path) -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## A flow file"):]
    flow = section.split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "hello.yaml"
    path.write_text(flow)
    run = Flowrun("--port", "0", str(path), cwd=tmp_path)
    try:
        line = run.wait_for("show : payload : the time is")
        shown = line.split("the time is ")[1]
        assert re.fullmatch(r"\d\d:\d\d:\d\d", shown), line
        # The local time the line was logged at (its own timestamp), within the second.
        logged = line.split()[1][:8]
        apart = abs(_seconds(shown) - _seconds(logged))
        assert min(apart, 86400 - apart) <= 1, line
        assert run.stop(signal.SIGINT) == EXIT_OK
    finally:
        run.kill()
    assert "Saved as `hello.yaml`, `flowrun hello.yaml` prints `show : payload : the time is" in (
        readme)


def _seconds(hms: str) -> int:
    h, m, s = map(int, hms.split(":"))
    return (h * 3600 + m * 60 + s) % 86400
