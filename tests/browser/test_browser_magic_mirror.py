"""Kurento's magic-mirror tutorial against our media server (issue 17): the page in headless
Chromium whose fake camera shows a face (tests/fixtures/face, a Y4M made with PyAV), the
kurento-client side of kurento-magic-mirror/js/index.js in Node.js with the official
kurento-client 7.3.0 (tutorials/tutorial.js, mode ``magic-mirror``): a WebRtcEndpoint, a
FaceOverlayFilter with ``setOverlayedImage(hat_uri, -0.35, -1.2, 1.6, 1.6)``, the endpoint
connected to the filter and the filter back to the endpoint. The hat (a magenta square with a
transparent border) is served over HTTP by the test's web server, as the tutorial serves its
image; the test looks for it in the video the page decodes, above the face, where the camera
shows none.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browserkit import CHROMIUM_ARGS, CHROMIUM_PATH
from test_browser_tutorials import tutorial  # noqa: F401 (the fixture)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "media"))
from media_mixing import magenta_png, write_face_camera

# The face is at (218, 80), 126 pixels wide, in the 640 x 480 camera picture; the tutorial's
# hat starts 0.35 faces to the left and 1.2 faces above it and is 1.6 faces wide and high, so
# it covers x 174..375 and y 0..130: a point inside it, where the camera shows the background.
HAT_POINT = (275 / 640, 40 / 480)


def is_magenta(rgb: list[int]) -> bool:
    red, green, blue = rgb
    return red > 170 and blue > 170 and green < 90


@pytest.fixture(scope="module")
def face_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_face_camera(tmp_path_factory.mktemp("camera") / "face.y4m")


@pytest.fixture
async def browser(face_camera: Path) -> AsyncIterator[Any]:
    """Chromium as the tests' ``browser`` fixture has it, with the face as its camera."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, headless=True, timeout=30_000,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={face_camera}"],
        )  # fmt: skip
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_magic_mirror_puts_the_hat_on_the_face(tutorial, signaling, www_dir, monkeypatch):  # noqa: F811
    magenta_png(www_dir / "hat.png")
    monkeypatch.setenv("HAT_URI", signaling.media_url("hat.png"))
    run = await tutorial("magic-mirror", "page")
    await run.offer("page", data_channel=False)
    page = run.pages["page"]

    async def playing() -> bool:
        state = await run.state("page")
        return state["videoWidth"] == 640 and state["frames"] > 10

    await run.wait("the mirror plays", playing)
    await run.wait("setOverlayedImage answered", lambda: run.of("overlay"))
    assert signaling.requests == ["hat.png"]  # fetched from the tutorial's web server

    async def hat() -> list[int] | None:
        rgb = await page.evaluate("([x, y]) => tutorial.pixel('videoOutput', x, y)", HAT_POINT)
        return rgb if is_magenta(rgb) else None

    shown = await run.wait("the hat above the face, in the decoded video", hat)
    camera = await page.evaluate("([x, y]) => tutorial.pixel('videoInput', x, y)", HAT_POINT)
    assert not is_magenta(camera), (shown, camera)  # the camera shows no hat there
    # Away from the face, the mirror shows the camera as it is.
    corner = await page.evaluate("tutorial.pixel('videoOutput', 0.95, 0.9)")
    assert not is_magenta(corner)
    assert (await run.state("page"))["errors"] == []
    await run.stop()
    assert run.of("stopped")
