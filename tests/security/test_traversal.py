"""Files the demo serves (issue 12, points 2, 11 and the traversal probes): /recordings/FILE
serves only a finished recording listed in PostgreSQL that is a regular file in the media folder
(no path outside it, no link to elsewhere, no file still being written), and the recordings
list shows only files that are there; the static files stay inside their folder."""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

import aiohttp
import pytest
from demokit import REPO, DemoApp

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

NAME = "rec-{}-20260101T000000000.mp4"


async def raw_get(app: DemoApp, path: str) -> int:
    """GET with the path sent as written (no normalisation of ``..`` by the client)."""
    async with aiohttp.ClientSession() as http, \
            http.get(app.url + path, allow_redirects=False) as response:
        await response.read()
        return response.status


async def add_row(app: DemoApp, file: str) -> None:
    now = datetime.datetime.now(datetime.UTC)
    await app.rows("INSERT INTO recordings (file, session_id, profile, size, url, started_at, "
                   "stopped_at) VALUES ($1, 'x', 'MP4', 1, $2, $3, $3) RETURNING id",
                   file, f"/recordings/{file}", now)


async def test_traversal_is_refused_everywhere(demo_app: DemoApp) -> None:
    for path in ("/recordings/../../../../etc/passwd", "/recordings/..%2f..%2f..%2fetc%2fpasswd",
                 "/recordings/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/recordings/%00",
                 "/recordings/rec-..%2f..%2fx-20260101T000000000.mp4",
                 "/../../../../etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd",
                 "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/index.html/../../flows/kurento.yaml",
                 "/..%5c..%5cflows%5ckurento.yaml"):
        assert await raw_get(demo_app, path) in (400, 404), path
    assert await raw_get(demo_app, "/index.html") == 200 or not (
        REPO / "examples" / "webapp" / "index.html").is_file()


async def test_only_listed_regular_files_are_served_and_listed(demo_app: DemoApp,
                                                               tmp_path: Path) -> None:
    media = demo_app.media_dir
    media.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    linked, growing, gone, kept = (NAME.format(n) for n in ("linked", "growing", "gone", "kept"))
    os.symlink(secret, media / linked)             # a link inside the media folder
    (media / growing).write_bytes(b"\0" * 100)     # a recording still being written
    (media / kept).write_bytes(b"\0" * 100)
    for file in (linked, gone, kept):
        await add_row(demo_app, file)              # listed in the database
    try:
        assert await raw_get(demo_app, f"/recordings/{linked}") == 404
        assert await raw_get(demo_app, f"/recordings/{growing}") == 404
        assert await raw_get(demo_app, f"/recordings/{gone}") == 404
        assert await raw_get(demo_app, f"/recordings/{kept}") == 200
        status, listed = await demo_app.get("/api/recordings")
        files = [r["file"] for r in listed["recordings"]]
        assert status == 200 and kept in files
        assert linked not in files and gone not in files and growing not in files
        # A link that appears after the check is not followed either (O_NOFOLLOW).
        (media / kept).unlink()
        shutil.copy(secret, tmp_path / "other.mp4")
        os.symlink(tmp_path / "other.mp4", media / kept)
        assert await raw_get(demo_app, f"/recordings/{kept}") == 404
    finally:
        for file in (linked, growing, kept):
            (media / file).unlink(missing_ok=True)
        await demo_app.rows("DELETE FROM recordings WHERE file = ANY($1) RETURNING id",
                            [linked, gone, kept])
