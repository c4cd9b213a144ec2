"""Fixtures of the flow view's tests: ``flowrun`` as a child process on flow files of the test,
and the page in Debian's Chromium (through Playwright, as the demo's browser tests drive it:
tests/demo/e2ekit.py). A missing Chromium or Playwright fails the browser tests, never skips
them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in ("demo", "media"):  # e2ekit (Chromium, the demo) and the media it imports
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from e2ekit import chromium, free_port  # noqa: E402

REPO = TESTS.parent


class Flowrun:
    """``flowrun FILES`` in a child process, on a free port of 127.0.0.1."""

    def __init__(self, files: list[Path], workdir: Path, env: dict[str, str] | None = None,
                 watch: bool = False):
        self.port = free_port()
        self.log_path = workdir / "flowrun.log"
        environ = {k: v for k, v in os.environ.items() if k != "FLOWENGINE_ADMIN_TOKEN"}
        environ.update({"FLOWENGINE_DATA": str(workdir / "data"), "PYTHONUNBUFFERED": "1"})
        environ.update(env or {})
        command = [sys.executable, "-m", "flowengine.cli", *map(str, files),
                   "--port", str(self.port), *(["--watch"] if watch else [])]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=environ,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def _wait_until_serving(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flowrun exited ({self.process.returncode}):\n"
                                     f"{self.output()}")
            if "flowrun: running" in self.output():
                with (contextlib.suppress(OSError, urllib.error.URLError),
                      urllib.request.urlopen(self.url + "/admin/view", timeout=2)):
                    return
            time.sleep(0.1)
        raise AssertionError(f"flowrun did not serve within {timeout:g}s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def flowrun(tmp_path: Path) -> Iterator[Callable[..., Flowrun]]:
    """``flowrun(files, env=None, watch=False)`` starts flowrun; every one stops at the end."""
    started: list[Flowrun] = []

    def start(files: list[Path], env: dict[str, str] | None = None,
              watch: bool = False) -> Flowrun:
        server = Flowrun(files, tmp_path, env, watch)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Debian Chromium (Playwright)."""
    async with chromium() as instance:
        yield instance
