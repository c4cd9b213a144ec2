"""An embedded PostgreSQL server: ``dsn: embedded`` in a ``postgres-server`` config node.

The binaries come from the ``pgserver`` wheel (a relocatable PostgreSQL build, so a fresh
machine needs nothing from its package manager); ``FLOWENGINE_PG_BIN`` or a system install
(``/usr/lib/postgresql/*/bin``) are used when that package is missing. ``pgserver``'s own
server management is not used: as root it makes every parent folder of the data directory
world-readable, it listens on a Unix socket only, and it adopts whatever server already runs
on a data directory. Here the server is our child process, listening on 127.0.0.1 only, with a
generated password (scram-sha-256) kept in the data directory, and it stops when we stop it.

PostgreSQL refuses to run as root. When we are root, ``initdb`` and ``postgres`` run as the
user ``FLOWENGINE_PG_USER`` (default ``pgserver``, the user the pgserver package creates too;
created with ``useradd --system`` when missing), the data directory is given to that user, and
parent folders it cannot traverse get the search bit for others (``o+x``, not ``o+r``), with a
warning naming each folder.

The server runs in its own session, so a Ctrl-C on the terminal reaches the runtime, which then
stops the server after the flows have drained. On Linux it also gets SIGINT (a fast shutdown)
when the runtime dies, even by SIGKILL (:func:`flowengine.childproc.die_with_parent`), as the
embedded media server does: the server is started, and waited for, by a thread of its own that
lives exactly as long as the server, since Linux sends that signal when the *thread* that
started a process ends.
Elsewhere, the next start finds an orphaned server through the pid of its owner
(``flowengine.owner``) and stops it first; a server whose owner is still alive is left alone and
reported.

A server that exits without :meth:`EmbeddedPostgres.stop` (killed, crashed) is reported at once
to :attr:`EmbeddedPostgres.on_exit` (from that thread), so its owner can start it again.

Every method blocks (process start, ``initdb``): call them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import pwd
import queue
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from flowengine.childproc import die_with_parent

log = logging.getLogger("flowengine.pg")

SUPERUSER = "postgres"
DATABASE = "postgres"
DEFAULT_RUN_AS = "pgserver"
PASSWORD_FILE = "flowengine.password"  # in the data directory, mode 0600
OWNER_FILE = "flowengine.owner"  # pid of the process that started the server
LOG_FILE = "server.log"  # the server's stderr, appended to, in the data directory
START_TIMEOUT = 60.0  # seconds for initdb + start; a first start takes 1-3 s
STOP_TIMEOUT = 30.0  # seconds of fast shutdown before an immediate one, then SIGKILL
PORT_ATTEMPTS = 3  # a free port picked by us may be taken before the server binds it


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up, started or stopped."""


def find_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres``: ``$FLOWENGINE_PG_BIN``, the pgserver
    wheel's bundled build, ``pg_config --bindir``, or the newest ``/usr/lib/postgresql/*/bin``."""
    candidates: list[Path] = []
    if os.environ.get("FLOWENGINE_PG_BIN"):
        candidates.append(Path(os.environ["FLOWENGINE_PG_BIN"]))
    # Found without importing pgserver: its import creates lock files and warns.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "pginstall" / "bin" for p in spec.submodule_search_locations]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            candidates.append(Path(out))
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: _int(p.parent.name), reverse=True)
    candidates += system
    for folder in candidates:
        if (folder / "postgres").is_file() and (folder / "initdb").is_file():
            return folder
    raise EmbeddedPostgresError(
        "no PostgreSQL binaries found: install the 'pgserver' package (pip install pgserver), "
        "install PostgreSQL, or set FLOWENGINE_PG_BIN to the folder holding initdb and postgres")


class EmbeddedPostgres:
    """One PostgreSQL server on ``data_dir``, listening on ``host:port`` (``port=0``: a free
    port, chosen at the first start and kept for restarts).

    ``start()`` initializes the data directory when it is new, then starts the server and
    waits until it accepts connections; ``stop()`` shuts it down and waits for the process to
    exit. Both are idempotent and thread-safe. Use :attr:`dsn` to connect.
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, host: str = "127.0.0.1",
                 port: int = 0, bin_dir: str | os.PathLike[str] | None = None,
                 start_timeout: float = START_TIMEOUT):
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self._bin_dir = Path(bin_dir) if bin_dir else None
        self._password: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        #: Called with the exit code when the server exits without :meth:`stop` (from the
        #: thread that waits for it: hand the work over to your event loop).
        self.on_exit: Callable[[int], None] | None = None

    # -- what callers read ----------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """The connection URL (with the password) of the running server."""
        if not self.port:
            raise EmbeddedPostgresError("the embedded server has not been started")
        auth = SUPERUSER + (f":{quote(self._password, safe='')}" if self._password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{DATABASE}"

    @property
    def address(self) -> str:
        """``host:port/database``, for status and log lines (no credentials)."""
        return f"{self.host}:{self.port}/{DATABASE}"

    @property
    def pid(self) -> int | None:
        """The server's (postmaster's) process id while it runs."""
        return self._process.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """True while the server process we started is alive."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Initialize the data directory if needed, start the server, wait until it is ready."""
        with self._lock:
            if self.running:
                return
            bin_dir = self._bin_dir or find_binaries()
            user = _server_user()
            self._prepare_data_dir(bin_dir, user)
            self._stop_orphan()
            fixed_port = self.port != 0
            for attempt in range(1, PORT_ATTEMPTS + 1):
                port = self.port or _free_port(self.host)
                try:
                    self._process = self._launch(bin_dir, user, port)
                    self._wait_ready(self._process)
                except EmbeddedPostgresError:
                    self._kill()
                    if fixed_port or attempt == PORT_ATTEMPTS or not self._port_taken():
                        raise
                    continue
                self.port = port
                break
            (self.data_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
            atexit.register(self.stop)
            log.info("embedded PostgreSQL started on %s (pid %d, data %s)", self.address,
                     self._process.pid, self.data_dir)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the server down (fast shutdown: sessions are ended, nothing is lost) and wait
        until the process is gone; escalate to an immediate shutdown, then SIGKILL."""
        with self._lock:
            atexit.unregister(self.stop)
            process, self._process = self._process, None
            if process is None:
                return
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0),
                              (signal.SIGKILL, None)):
                if process.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                try:
                    process.wait(wait)
                except subprocess.TimeoutExpired:
                    log.warning("embedded PostgreSQL (pid %d) did not stop within %gs after %s",
                                process.pid, wait, sig.name)
            owner_file = self.data_dir / OWNER_FILE
            if _read_int(owner_file) == os.getpid():
                with contextlib.suppress(OSError):
                    owner_file.unlink()
            log.info("embedded PostgreSQL on %s stopped", self.address)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- steps ------------------------------------------------------------------------------------

    def _prepare_data_dir(self, bin_dir: Path, user: pwd.struct_passwd | None) -> None:
        data = self.data_dir
        data.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _ensure_traversable(data.parent, user)
            _ensure_traversable(bin_dir, user)
            if data.stat().st_uid != user.pw_uid:
                if (data / "PG_VERSION").exists():
                    raise EmbeddedPostgresError(
                        f"{data} holds a PostgreSQL cluster owned by uid {data.stat().st_uid}; "
                        f"the server runs as '{user.pw_name}' (chown -R it, or use a new "
                        "data_dir)")
                os.chown(data, user.pw_uid, user.pw_gid)
        version = data / "PG_VERSION"
        if not version.exists():
            self._initdb(bin_dir, user)
        else:
            have, binaries = version.read_text().strip(), _major_version(bin_dir)
            if binaries and have != binaries:
                raise EmbeddedPostgresError(
                    f"{data} was created by PostgreSQL {have} but the binaries in {bin_dir} "
                    f"are PostgreSQL {binaries}; use a new data_dir or upgrade it (pg_upgrade)")
        password_file = data / PASSWORD_FILE
        # A cluster made by other tools (pgserver) has no password file: trust auth then.
        self._password = password_file.read_text().strip() if password_file.exists() else None

    def _initdb(self, bin_dir: Path, user: pwd.struct_passwd | None) -> None:
        if any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} is not empty and holds no PostgreSQL cluster (no PG_VERSION)")
        password = secrets.token_urlsafe(24)
        # initdb refuses a non-empty data directory, so the password file passes through a
        # private temporary folder that the server user can read.
        with tempfile.TemporaryDirectory(prefix="flowengine-pg-") as tmp:
            pwfile = Path(tmp) / "pw"
            pwfile.write_text(password + "\n")
            if user is not None:
                os.chown(tmp, user.pw_uid, user.pw_gid)
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            command = [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                       "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8",
                       "--locale=C"]
            log.info("initializing PostgreSQL data directory %s", self.data_dir)
            result = subprocess.run(command, capture_output=True, text=True, cwd=self.data_dir,
                                    env=_server_env(), timeout=self.start_timeout,
                                    **_as_user(user))
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed for {self.data_dir}:\n"
                                        f"{result.stderr.strip() or result.stdout.strip()}")
        password_file = self.data_dir / PASSWORD_FILE
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        if user is not None:
            os.chown(password_file, user.pw_uid, user.pw_gid)

    def _stop_orphan(self) -> None:
        """Stop a server left running on our data directory by a runtime that died."""
        pid = _postmaster_pid(self.data_dir)
        if pid is None:
            return
        owner = _read_int(self.data_dir / OWNER_FILE)
        if owner is not None and owner != os.getpid() and _alive(owner):
            raise EmbeddedPostgresError(
                f"PostgreSQL (pid {pid}) already runs on {self.data_dir}, started by process "
                f"{owner}; stop that process or give this config node the server's dsn")
        if owner == os.getpid():
            raise EmbeddedPostgresError(
                f"PostgreSQL (pid {pid}) already runs on {self.data_dir} in this process; two "
                "postgres-server config nodes cannot share a data_dir")
        log.warning("stopping PostgreSQL (pid %d) left running on %s by an earlier run", pid,
                    self.data_dir)
        for sig, wait in ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _alive(pid):
                return
        raise EmbeddedPostgresError(f"could not stop PostgreSQL (pid {pid}) on {self.data_dir}")

    def _launch(self, bin_dir: Path, user: pwd.struct_passwd | None,
                port: int) -> subprocess.Popen[bytes]:
        """Start the server from a thread that then waits for it (see the module docstring)."""
        handed: queue.Queue[subprocess.Popen[bytes] | BaseException] = queue.Queue(1)

        def run() -> None:
            try:
                process = self._spawn(bin_dir, user, port)
            except BaseException as exc:
                handed.put(exc)
                return
            handed.put(process)
            code = process.wait()
            if process is self._process:  # not stopped by us: killed, or it crashed
                log.warning("embedded PostgreSQL (pid %d) exited with code %s", process.pid,
                            code)
                if self.on_exit is not None:
                    self.on_exit(code)

        threading.Thread(target=run, name=f"postgres-{port}", daemon=True).start()
        result = handed.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _spawn(self, bin_dir: Path, user: pwd.struct_passwd | None,
               port: int) -> subprocess.Popen[bytes]:
        log_path = self.data_dir / LOG_FILE
        with open(log_path, "ab") as log_file:  # the child keeps its own descriptor
            command, preexec = die_with_parent(
                [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-h", self.host,
                 "-p", str(port),
                 # No Unix socket: its path may exceed the 107-byte limit, and TCP on the
                 # loopback address with a password is all we need.
                 "-c", "unix_socket_directories=",
                 "-c", "log_min_messages=warning"], signal.SIGINT)
            return subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                cwd=self.data_dir, env=_server_env(), start_new_session=True,
                preexec_fn=preexec, **_as_user(user))

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        """Wait until postmaster.pid says "ready" (what ``pg_ctl -w`` does)."""
        deadline = time.monotonic() + self.start_timeout
        pid_file = self.data_dir / "postmaster.pid"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedPostgresError(
                    f"PostgreSQL exited with code {process.returncode} while starting; "
                    f"log ({self.data_dir / LOG_FILE}):\n{self._log_tail()}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                lines = pid_file.read_text().splitlines()
                if int(lines[0]) == process.pid and lines[7].strip() == "ready":
                    return
            time.sleep(0.05)
        raise EmbeddedPostgresError(
            f"PostgreSQL did not become ready within {self.start_timeout:g}s; log:\n"
            f"{self._log_tail()}")

    def _port_taken(self) -> bool:
        tail = self._log_tail(5)
        return "could not bind" in tail or "already in use" in tail

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.data_dir / LOG_FILE).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# -- helpers ----------------------------------------------------------------------------------

def _server_user() -> pwd.struct_passwd | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("FLOWENGINE_PG_USER") or DEFAULT_RUN_AS
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    log.warning("running as root: creating the system user '%s' to run PostgreSQL", name)
    try:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        raise EmbeddedPostgresError(
            f"PostgreSQL cannot run as root and the user '{name}' could not be created "
            f"({detail}); create it or set FLOWENGINE_PG_USER to an existing user") from exc
    return pwd.getpwnam(name)


def _as_user(user: pwd.struct_passwd | None) -> dict[str, object]:
    """subprocess arguments that run the child as ``user`` (needs root)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _server_env() -> dict[str, str]:
    """Our environment without PG* variables (they would redirect the server or initdb), with
    English messages so error texts do not depend on the host's locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _ensure_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Give ``user`` the right to pass through ``path`` and its parents (o+x where needed)."""
    for folder in (path, *path.parents):
        st = folder.stat()
        if st.st_uid == user.pw_uid or st.st_mode & stat.S_IXOTH:
            continue
        if st.st_gid == user.pw_gid and st.st_mode & stat.S_IXGRP:
            continue
        log.warning("allowing user '%s' to traverse %s (chmod o+x) so PostgreSQL can reach its "
                    "files", user.pw_name, folder)
        folder.chmod(st.st_mode | stat.S_IXOTH)


def _major_version(bin_dir: Path) -> str | None:
    """``"16"`` for a PostgreSQL 16.2 ``postgres`` binary."""
    try:
        out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return match.group(1) if match else None


def _postmaster_pid(data_dir: Path) -> int | None:
    """The pid in postmaster.pid when that process is a live PostgreSQL server."""
    pid = _read_int(data_dir / "postmaster.pid")
    if pid is None or not _alive(pid):
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return pid  # no /proc: trust the pid file
    return pid if command.endswith((b"postgres", b"postmaster")) else None


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal test is all we have
    return state != "Z"


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
