"""Fixtures shared by the test suite."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowengine.pg import EmbeddedPostgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL server for the whole session, on 127.0.0.1 at a free port, from the
    pgserver package's binaries (or a system install); stopped and deleted when the session
    ends. Its data is not under pytest's base folder: as root the server runs as another user
    that must traverse the parent folders, and a concurrent pytest session resets that base
    folder to mode 0700."""
    with tempfile.TemporaryDirectory(prefix="flowengine-test-pg-",
                                     ignore_cleanup_errors=True) as folder:
        server = EmbeddedPostgres(Path(folder) / "data")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: EmbeddedPostgres) -> str:
    """The session server's connection URL."""
    return postgres_server.dsn


KURENTO_JS_MANIFEST = Path(__file__).parent / "kurento" / "js" / "package.json"
NPM_INSTALL_TIMEOUT = 600  # seconds


def _cache_root() -> Path:
    configured = os.environ.get("FLOWENGINE_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "flowengine-tests"


@pytest.fixture(scope="session")
def kurento_js() -> Iterator[Path]:
    """The ``node_modules`` folder holding the official JavaScript client, npm kurento-client
    7.3.0, for the tests that run it in Node.js (tests/kurento, tests/browser).

    Installed on first use with npm into a cache folder outside the repository
    (``$FLOWENGINE_TEST_CACHE``, default ``~/.cache/flowengine-tests``), keyed by a hash of
    tests/kurento/js/package.json, with ``--ignore-scripts`` (kurento-client 7.3.0's postinstall
    script is missing from its tarball) and ``reconnect-ws`` pinned to the npm release (the
    package names a GitHub fork). Without node or npm the test fails: it is never skipped."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the tests of the JavaScript client need Node.js and npm on PATH "
                    f"(node: {node}, npm: {npm}); install them (Debian: apt-get install nodejs "
                    "npm)")
    manifest = KURENTO_JS_MANIFEST.read_bytes()
    target = _cache_root() / f"kurento-js-{hashlib.sha256(manifest).hexdigest()[:12]}"
    target.mkdir(parents=True, exist_ok=True)
    installed = target / "node_modules" / "kurento-client" / "package.json"
    with (target / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test runs install once
        if not installed.exists():
            (target / "package.json").write_bytes(manifest)
            try:
                done = subprocess.run(
                    [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund",
                     "--loglevel=error"], cwd=target, capture_output=True, text=True,
                    timeout=NPM_INSTALL_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"npm install in {target} took more than {NPM_INSTALL_TIMEOUT}s")
            if done.returncode != 0 or not installed.exists():
                pytest.fail(f"npm install of kurento-client 7.3.0 in {target} failed "
                            f"(exit {done.returncode}):\n{done.stdout[-3000:]}"
                            f"{done.stderr[-3000:]}")
    version = json.loads(installed.read_text())["version"]
    assert version == "7.3.0", f"{installed} is version {version}"
    yield target / "node_modules"
