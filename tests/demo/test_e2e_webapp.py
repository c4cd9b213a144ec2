"""The demo end to end: headless Chromium drives the real pages of ``examples/webapp`` against
``flowrun flows/kurento.yaml`` (its embedded media server and embedded PostgreSQL), as a person
would: buttons, fields, the sessions list.

One demo process serves the whole module; every test closes its tabs, which releases its
sessions (what the last test checks on the media server itself). The dashboard test saves the
screenshots of the README (``docs/screenshots/``).
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from e2ekit import (
    SCREENSHOTS,
    AppPage,
    DemoServer,
    browser_demo,
    count_frames,
    embedded_postgres_dsn,
    eventually,
    http_json,
    media_pipelines,
    serve_folder,
    write_hls,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    """``flowrun flows/kurento.yaml`` with its data in a temporary folder."""
    with browser_demo("e2e") as server:
        yield server


@pytest.fixture(scope="module")
def hls_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 30 s VOD HLS stream made with PyAV, served over http by the test."""
    folder = tmp_path_factory.mktemp("hls")
    write_hls(folder, seconds=30)
    with serve_folder(folder) as base:
        yield base + "/index.m3u8"


@pytest.fixture(scope="module")
def short_hls_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3 s VOD HLS stream: it ends while the test watches."""
    folder = tmp_path_factory.mktemp("hls-short")
    write_hls(folder, seconds=3)
    with serve_folder(folder) as base:
        yield base + "/index.m3u8"


@pytest.fixture
async def pages(browser: Any, demo: DemoServer) -> AsyncIterator[Any]:
    """``await pages()`` opens a tab of the web app (a browser context of its own); every
    tab is closed at the end of the test."""
    opened: list[AppPage] = []

    async def open_page(path: str = "/") -> AppPage:
        page = await AppPage.open(browser, demo.url, path)
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        await page.close()


async def test_webcam_published_and_watched_from_a_second_page(pages: Any) -> None:
    publisher = await pages()
    webcam = await publisher.start_webcam()
    viewer = await pages()
    watching = await viewer.watch(webcam)

    progress = await viewer.wait_playing(watching)
    # Chromium's fake camera is 640x480: the viewer gets the publisher's picture.
    assert (progress["width"], progress["height"]) == (640, 480)
    # Both pages list the webcam with its one viewer.
    row = f"#sessions tr[data-session-id='{webcam}'] td:nth-child(4)"
    for page in (publisher, viewer):
        await page.page.wait_for_function(
            "(sel) => document.querySelector(sel)?.textContent === '1'", arg=row, timeout=10000)
    assert await publisher.errors() == []
    assert await viewer.errors() == []


async def test_screen_share_is_watched(pages: Any) -> None:
    sharer = await pages()
    screen = await sharer.share_screen()
    viewer = await pages()
    watching = await viewer.watch(screen)

    progress = await viewer.wait_playing(watching)
    # The fake screen of headless Chromium is 1280x720, not the camera's 640x480.
    assert (progress["width"], progress["height"]) == (1280, 720)
    kinds = await viewer.page.eval_on_selector_all(
        "#sessions tbody tr", "rows => rows.map(r => r.dataset.kind)")
    assert "screen" in kinds


async def test_hls_source_plays(pages: Any, hls_url: str) -> None:
    page = await pages()
    player = await page.play(hls_url)

    progress = await page.wait_playing(player)
    assert (progress["width"], progress["height"]) == (640, 360)  # the stream the test made
    source = await page.page.text_content(
        f"#sessions tr[data-session-id='{player}'] td:nth-child(3)")
    assert source == hls_url


async def test_end_of_a_played_stream_is_shown(pages: Any, short_hls_url: str) -> None:
    page = await pages()
    player = await page.play(short_hls_url)

    await page.page.wait_for_function(
        "(sel) => document.querySelector(sel)?.textContent.includes('reached its end')",
        arg=f"{page.card(player)} .peer-detail", timeout=20000)
    # The session stays until the person stops it (flows/README.md, playEnd).
    assert await page.page.is_visible(f"{page.card(player)} button.stop")


async def test_player_error_is_shown_and_nothing_is_left(pages: Any, demo: DemoServer) -> None:
    page = await pages()
    before = await media_pipelines(await kms_url(demo))
    await page.page.fill("#play-url", "http://127.0.0.1:9/missing/index.m3u8")
    await page.page.click("#play")

    async def player_error() -> list[str]:
        return [text for text in await page.errors() if "cannot play URL" in text]

    shown = await eventually(player_error, 30, "the player error shown")
    assert shown[0].startswith("play: cannot play URL"), shown
    # Only that error: the candidates that raced with the failure are not shown as errors.
    await asyncio.sleep(1)
    assert await page.errors() == shown
    card_state = await page.page.eval_on_selector(
        ".peer[data-kind=player] .peer-state", "e => e.dataset.state")
    assert card_state == "ended"
    assert await media_pipelines(await kms_url(demo)) == before  # the half-built one released


async def test_record_then_stop_gives_a_playable_file(pages: Any, demo: DemoServer,
                                                      tmp_path: Path) -> None:
    page = await pages()
    webcam = await page.start_webcam()
    card = page.card(webcam)
    known = set(await page.page.eval_on_selector_all(
        "#recordings tbody tr", "rows => rows.map(r => r.dataset.file)"))

    await page.page.click(f"{card} button.record")
    await page.page.wait_for_selector(f"{card} button.stop-record", state="visible",
                                      timeout=10000)
    await asyncio.sleep(4)  # about 80 frames of the fake camera
    await page.page.click(f"{card} button.stop-record")

    async def new_recording() -> str | None:
        files = await page.page.eval_on_selector_all(
            "#recordings tbody tr", "rows => rows.map(r => r.dataset.file)")
        fresh = [f for f in files if f not in known]
        return fresh[0] if fresh else None

    file = await eventually(new_recording, 60, "the finished recording listed")
    href = await page.page.get_attribute(f"#recordings tr[data-file='{file}'] a", "href")
    assert href
    download = tmp_path / file
    await asyncio.to_thread(urllib.request.urlretrieve, demo.url + href, download)

    frames, width, height = count_frames(download)
    assert (width, height) == (640, 480)
    assert frames >= 40, f"only {frames} frames in a 4 s recording"
    assert (demo.media_dir / file).stat().st_size == download.stat().st_size
    await page.page.wait_for_selector(f"{card} button.record", state="visible", timeout=5000)


async def test_metrics_reach_postgres_and_the_dashboard(pages: Any, demo: DemoServer,
                                                        hls_url: str) -> None:
    publisher = await pages()
    webcam = await publisher.start_webcam()
    viewer = await pages()
    await viewer.watch(webcam)
    player = await viewer.play(hls_url)
    await viewer.wait_playing(player)

    # Three stats rounds (every 5 s) with replies from the three sessions.
    db = await asyncpg.connect(embedded_postgres_dsn(Path(demo.env["FLOWENGINE_DATA"]) /
                                                     "postgres"))
    try:
        async def rounds_with_three_peers() -> list[Any]:
            rows = await db.fetch("SELECT * FROM metric_rounds ORDER BY id DESC LIMIT 3")
            return rows if len(rows) == 3 and all(r["peers"] == 3 for r in rows) else []

        rows = await eventually(rounds_with_three_peers, 40, "three rounds of three peers")
        newest = dict(rows[0])
        # The fake camera sends about 20 fps, the HLS stream 25 fps.
        assert 10 <= newest["frame_rate"] <= 35, newest
        assert 10 <= newest["avg_frame_rate"] <= 35, newest
        assert newest["bitrate"] > 20_000, newest
        assert newest["width"] >= 640 and newest["height"] >= 360, newest

        # The dashboard shows the last round's one-minute averages, live, as stored.
        dashboard = await pages("/dashboard.html")
        await dashboard.page.wait_for_function(
            "() => document.querySelector('#avg-frameRate').dataset.value", timeout=15000)
        shown = await dashboard.page.evaluate("""() => ({
            round: document.querySelector('#last-round').textContent,
            frameRate: Number(document.querySelector('#avg-frameRate').dataset.value),
            bitrate: Number(document.querySelector('#avg-bitrate').dataset.value),
            peers: document.querySelector('#last-peers').textContent,
            points: Number(document.querySelector('#chart-frameRate').dataset.points),
        })""")
        number = int(shown["round"].split()[1])  # "round N at HH:MM:SS"
        stored = await db.fetchrow("SELECT * FROM metric_rounds WHERE round = $1 "
                                   "ORDER BY id DESC LIMIT 1", number)
    finally:
        await db.close()
    assert stored is not None, shown
    assert shown["frameRate"] == pytest.approx(stored["avg_frame_rate"]), (shown, dict(stored))
    assert shown["bitrate"] == pytest.approx(stored["avg_bitrate"]), (shown, dict(stored))
    assert shown["peers"] == str(stored["peers"]) == "3"
    assert shown["points"] >= 3  # the chart has the rounds so far
    api = await asyncio.to_thread(http_json, demo.url + "/api/metrics?minutes=10")
    assert number in [r["round"] for r in api["rounds"]]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await viewer.page.screenshot(path=str(SCREENSHOTS / "webapp.png"), full_page=True)
    await dashboard.page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)


async def test_stop_and_tab_close_release_every_media_object(pages: Any, demo: DemoServer,
                                                             hls_url: str) -> None:
    url = await kms_url(demo)
    # The earlier tests closed their tabs: nothing of theirs is left either.
    await eventually(lambda: count_is(url, 0), 10, "no pipeline left by the earlier tests")
    publisher = await pages()
    webcam = await publisher.start_webcam()
    player = await publisher.play(hls_url)
    viewer = await pages()
    watching = await viewer.watch(webcam)
    assert len(await media_pipelines(url)) == 2  # the viewer is in the webcam's pipeline

    await publisher.page.click(f"{publisher.card(player)} button.stop")
    await eventually(lambda: count_is(url, 1), 10, "one pipeline left after Stop")

    await publisher.page.close()  # the tab closes: its socket closes
    await viewer.page.wait_for_selector(
        f"{viewer.card(watching)} .peer-state[data-state=ended]", timeout=10000)
    await eventually(lambda: count_is(url, 0), 10, "no pipeline left after the tab closed")
    sessions = await asyncio.to_thread(http_json, demo.url + "/api/sessions")
    assert sessions["sessions"] == []


async def count_is(kms: str, expected: int) -> bool:
    return len(await media_pipelines(kms)) == expected


async def kms_url(demo: DemoServer) -> str:
    """The embedded media server's URL, from ``GET /api/host``."""
    host = await asyncio.to_thread(http_json, demo.url + "/api/host")
    return demo.kms_url_from(host)


async def test_group_page_and_the_mirror(pages: Any) -> None:
    """The group page: two people join, each gets the Composite's grid back (800x600) and the
    page lists only group sessions; the video page's mirror option sends the webcam through a
    FaceOverlayFilter and shows what comes back."""
    ann, bob = await pages("/group.html"), await pages("/group.html")
    first = await ann.new_card("group", lambda: ann.page.click("#join-group"))
    await bob.new_card("group", lambda: bob.page.click("#join-group"))
    progress = await ann.wait_playing(first)
    assert (progress["width"], progress["height"]) == (800, 600)
    mirror = await pages()
    await mirror.page.check("#mirror")
    own = await mirror.new_card("webcam", lambda: mirror.page.click("#start-webcam"))
    progress = await mirror.wait_playing(own)   # the mirror, back from the media server
    assert (progress["width"], progress["height"]) == (640, 480)
    assert await mirror.page.eval_on_selector(f"{mirror.card(own)} .peer-title",
                                              "e => e.textContent") == "Mirror"  # fmt: skip
    await eventually(lambda: ann.page.eval_on_selector_all(
        "#sessions tbody tr", "rows => rows.map(r => r.dataset.kind)"), 10, "the list")
    kinds = await ann.page.eval_on_selector_all(
        "#sessions tbody tr", "rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["group", "group"]   # the webcam is not listed on the group page
    for page in (ann, bob, mirror):
        assert await page.errors() == [] and page.console_errors == []
