"""The real peers the browser tests start as child processes: coturn (TURN) and a GStreamer RTSP
server (``tools/rtsp_server.py``), both on 127.0.0.1; a network namespace with only the loopback
interface for each test; and a check that no process a test started outlives it.

Nothing is installed at run time: a missing program is a :class:`MissingTool` error that names
the Debian package to install (the tests turn it into a failure, never a skip).

Leak check: every child started during a test carries the environment variable
:data:`MARKER_VARIABLE` with a value unique to the test (the test's fixture sets it in
``os.environ``, so Playwright's driver, Chromium and its helpers, the media server and the
servers here all inherit it). :func:`marked_processes` finds them in ``/proc`` whoever their
parent is now (Chromium's helpers are re-parented when the driver exits).

Loopback only (docs/reference/aiortc-notes.md: "use a lo-only netns to be sure nothing leaks"):
Chromium gathers ICE candidates on every interface it sees and checks every pair, so on a machine
with an Ethernet address it would send connectivity checks from that address. :class:`LoopbackNetns`
puts the test's thread into a new network namespace whose only interface is ``lo``: every
socket the test then opens, and every process it starts (media server, Chromium, coturn, RTSP
server), lives there, and the test's own thread returns to its namespace at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RTSP_SCRIPT = REPO / "tools" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-gi is a Debian package: not in the venv
MARKER_VARIABLE = "FLOWENGINE_BROWSER_TEST"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


class MissingTool(RuntimeError):
    """A program the test needs is not installed (the message says which Debian package)."""


def require_program(name: str, package: str) -> str:
    """The path of ``name`` (a command name or an absolute path), or :class:`MissingTool`."""
    found = shutil.which(name)
    if found is None:
        raise MissingTool(
            f"{name} is not installed: the browser tests need the Debian package '{package}' "
            f"(apt-get install -y {package})"
        )
    return found


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on 127.0.0.1 right now (TCP by default)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux sends the child SIGTERM when the test process dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class ChildProcess:
    """A child process whose output (stdout and stderr) is collected by a thread; ready when a
    line matches ``ready`` (or at once when ``ready`` is None). ``stop()`` sends SIGTERM, then
    SIGKILL after :data:`STOP_TIMEOUT`."""

    def __init__(self, name: str, args: list[str], ready: re.Pattern[str] | None):
        self.name = name
        self.args = args
        self.ready = ready
        self.process: subprocess.Popen[str] | None = None
        self.output: deque[str] = deque(maxlen=200)
        self.match: re.Match[str] | None = None
        self._matched = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace",
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-output", daemon=True)
        self._reader.start()
        if self.ready is None:
            return
        deadline = time.monotonic() + timeout
        while not self._matched.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.stop()
                why = f"exited with {code}" if code is not None else f"not ready in {timeout}s"
                raise RuntimeError(f"{self.name} {why}:\n{self.tail}")

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip())
            if self.ready is not None and not self._matched.is_set():
                match = self.ready.search(line)
                if match:
                    self.match = match
                    self._matched.set()

    @property
    def tail(self) -> str:
        return "\n".join(self.output)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(2)


class TurnServer(ChildProcess):
    """Debian's coturn (``turnserver``) on 127.0.0.1 with one long-term-credential user, as in
    docs/reference/aiortc-notes.md. ``--allow-loopback-peers`` lets it
    relay to 127.0.0.1 (tests only)."""

    realm = "flowengine.test"

    def __init__(self, workdir: Path, relay_ports: int = 40):
        program = require_program("turnserver", "coturn")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.username = "test" + secrets.token_hex(3)
        self.password = secrets.token_hex(8)
        self.min_port, self.max_port = _free_range(relay_ports)
        self.log_path = workdir / "turnserver.log"
        super().__init__(
            "turnserver",
            [
                program, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
                f"--listening-port={self.port}", "--lt-cred-mech",
                f"--user={self.username}:{self.password}", f"--realm={self.realm}",
                "--no-cli", "--no-tls", "--no-dtls", "--allow-loopback-peers",
                f"--min-port={self.min_port}", f"--max-port={self.max_port}", "--fingerprint",
                "--log-file=stdout", "--simple-log",
                f"--pidfile={workdir / 'turnserver.pid'}", f"--userdb={workdir / 'turndb'}",
            ],
            ready=None,
        )  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT) -> None:
        super().start(timeout)
        # Ready when its TCP listener accepts (it opens UDP and TCP listeners together).
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"turnserver exited with {self.process.poll()}:\n{self.tail}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"turnserver did not listen within {timeout}s:\n{self.tail}")
            time.sleep(0.05)

    @property
    def kurento_url(self) -> str:
        """The WebRtcEndpoint ``turnUrl``: ``user:password@address:port``."""
        return f"{self.username}:{self.password}@127.0.0.1:{self.port}?transport=udp"

    @property
    def ice_server(self) -> dict[str, str]:
        """The browser's ``RTCIceServer``."""
        return {
            "urls": f"turn:127.0.0.1:{self.port}?transport=udp",
            "username": self.username,
            "credential": self.password,
        }


def _free_range(count: int) -> tuple[int, int]:
    """``count`` consecutive ports free on 127.0.0.1 (TCP and UDP), for coturn's relays."""
    for _ in range(50):
        start = 20000 + secrets.randbelow(25000)
        if all(_port_free(p) for p in range(start, start + count)):
            return start, start + count - 1
    raise RuntimeError(f"no {count} consecutive free ports found for TURN relays")


class RtspServer(ChildProcess):
    """``tools/rtsp_server.py`` (GStreamer) streaming ``path`` at ``rtsp://127.0.0.1:PORT/clip``
    (with its AAC track if ``audio``), run with the system Python that has PyGObject."""

    def __init__(self, path: Path, mount: str = "/clip", audio: bool = False):
        require_program(SYSTEM_PYTHON, "python3-gi")
        check = subprocess.run(
            [SYSTEM_PYTHON, str(RTSP_SCRIPT), "--check"], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise MissingTool((check.stderr or check.stdout).strip())
        super().__init__(
            "rtsp-server",
            [SYSTEM_PYTHON, "-u", str(RTSP_SCRIPT), "--file", str(path), "--host", "127.0.0.1",
             "--port", "0", "--mount", mount, *(["--audio"] if audio else [])],
            ready=re.compile(r"listening on (rtsp://\S+)"),
        )  # fmt: skip

    @property
    def url(self) -> str:
        assert self.match is not None, "not started"
        return self.match.group(1)


# --- network namespace ----------------------------------------------------------------------------

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class LoopbackNetns:
    """A network namespace with only ``lo`` (up), held by a ``sleep`` process started with
    ``unshare --net``. :meth:`enter` moves the calling thread into it (sockets it creates and
    processes it starts from then on belong to it); :meth:`leave` moves it back. Needs root
    (CAP_SYS_ADMIN), as the machines of the project have."""

    def __init__(self) -> None:
        unshare = require_program("unshare", "util-linux")
        ip = require_program("ip", "iproute2")
        self.holder = ChildProcess(
            "netns",
            [unshare, "--net", "sh", "-c", f"{ip} link set lo up && echo ready && exec sleep 3600"],
            ready=re.compile(r"^ready"),
        )
        self._original: int | None = None

    def start(self) -> None:
        self.holder.start()

    def enter(self) -> None:
        assert self.holder.process is not None and self._original is None
        self._original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/proc/{self.holder.process.pid}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)

    def leave(self) -> None:
        if self._original is not None:
            try:
                _setns(self._original)
            finally:
                os.close(self._original)
                self._original = None

    def stop(self) -> None:
        self.leave()
        self.holder.stop()


# --- leak check -----------------------------------------------------------------------------------


def new_marker() -> str:
    return secrets.token_hex(8)


def marked_processes(marker: str) -> dict[int, str]:
    """Live processes (pid -> command line) whose environment carries ``marker``; zombies
    (already exited, waiting to be reaped) are not counted."""
    wanted = f"{MARKER_VARIABLE}={marker}".encode()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if wanted not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def wait_for_no_processes(marker: str, timeout: float = 10.0) -> dict[int, str]:
    """Wait until no marked process lives; returns (and kills) those still alive after
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        alive = marked_processes(marker)
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return alive
