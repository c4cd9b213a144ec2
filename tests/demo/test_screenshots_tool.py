"""``python tools/screenshots.py``: the separate command that regenerates the pictures of the
docs. It writes where it is told, and the test suite never rewrites ``docs/screenshots``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from e2ekit import REPO, require_chromium

pytestmark = pytest.mark.timeout(600)

DOCS_PICTURES = REPO / "docs" / "screenshots"


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("*.png"))}


def test_the_screenshot_command_writes_the_pictures_where_told(tmp_path: Path) -> None:
    require_chromium()
    before = digests(DOCS_PICTURES)
    out = tmp_path / "pictures"
    result = subprocess.run([sys.executable, "tools/screenshots.py", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stdout + result.stderr
    names = ("webapp.png", "dashboard.png", "recording-stopped.png", "viewer-row-recording.png",
             "player-ended.png", "player-error.png", "file-hint.png")
    assert result.stdout.splitlines()[-1] == "wrote " + ", ".join(str(out / n) for n in names)
    for name in names:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
    for name in ("webapp.png", "dashboard.png", "player-ended.png"):  # whole pages
        data = (out / name).read_bytes()
        assert int.from_bytes(data[16:20], "big") == 1280, name  # the pages' viewport width
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert digests(DOCS_PICTURES) == before  # the browser test wrote nothing there
