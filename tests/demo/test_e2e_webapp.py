"""The demo end to end: headless Chromium drives the real pages of ``examples/webapp`` against
``flowrun flows/kurento.yaml`` (its embedded media server and embedded PostgreSQL), as a person
would: buttons, fields, the sessions list.

One demo process serves the whole module; every test closes its tabs, which releases its
sessions (what the last test checks on the media server itself). Screenshots of the states the
tests reach go to the ``screenshots`` folder (temporary; ``tools/screenshots.py`` has the
dashboard test write the README's into ``docs/screenshots/``).
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from e2ekit import (
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
def hls_streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """VOD HLS streams made with PyAV, served over http by the test, by length in seconds."""
    folder = tmp_path_factory.mktemp("hls")
    lengths = (30, 8, 3)
    for seconds in lengths:
        write_hls(folder / f"{seconds}s", seconds=seconds)
    with serve_folder(folder) as base:
        yield {f"{s}s": f"{base}/{s}s/index.m3u8" for s in lengths}


@pytest.fixture(scope="module")
def hls_url(hls_streams: dict[str, str]) -> str:
    """A 30 s stream: it plays as long as a test watches."""
    return hls_streams["30s"]


@pytest.fixture(scope="module")
def medium_hls_url(hls_streams: dict[str, str]) -> str:
    """An 8 s stream: it plays through a stats round or two, then ends."""
    return hls_streams["8s"]


@pytest.fixture(scope="module")
def short_hls_url(hls_streams: dict[str, str]) -> str:
    """A 3 s stream: it ends while the test watches."""
    return hls_streams["3s"]


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
    # The session stays until the person removes it (flows/README.md, playEnd).
    assert await page.page.is_visible(f"{page.card(player)} button.stop")
    assert await page.page.text_content(f"{page.card(player)} button.stop") == "Remove"


async def test_player_error_is_shown_and_nothing_is_left(pages: Any, demo: DemoServer) -> None:
    page = await pages()
    before = await media_pipelines(await kms_url(demo))
    await page.page.fill("#play-url", "http://127.0.0.1:9/missing/index.m3u8")
    await page.page.click("#play")

    async def player_error() -> list[str]:
        return [text for text in await page.errors() if "cannot play URL" in text]

    shown = await eventually(player_error, 30, "the player error shown")
    assert shown == ["play: cannot play URL: the server refused the connection"], shown
    # Only that error: the candidates that raced with the failure are not shown as errors.
    await asyncio.sleep(1)
    assert await page.errors() == shown
    card_state = await page.page.eval_on_selector(
        ".peer[data-kind=player] .peer-state", "e => e.dataset.state")
    assert card_state == "ended"
    assert await media_pipelines(await kms_url(demo)) == before  # the half-built one released


async def test_record_then_stop_gives_a_playable_file(pages: Any, demo: DemoServer,
                                                      tmp_path: Path, screenshots: Path) -> None:
    page = await pages()
    webcam = await page.start_webcam()
    card = page.card(webcam)
    known = set(await page.page.eval_on_selector_all(
        "#recordings tbody tr", "rows => rows.map(r => r.dataset.file)"))

    await page.page.click(f"{card} button.record")
    await page.page.wait_for_selector(f"{card} button.stop-record", state="visible",
                                      timeout=10000)
    detail = f"{card} .peer-detail"
    await wait_text(page, detail, "Recording to rec-")
    await asyncio.sleep(4)  # about 80 frames of the fake camera
    await page.page.click(f"{card} button.stop-record")

    async def new_recording() -> str | None:
        files = await page.page.eval_on_selector_all(
            "#recordings tbody tr", "rows => rows.map(r => r.dataset.file)")
        fresh = [f for f in files if f not in known]
        return fresh[0] if fresh else None

    file = await eventually(new_recording, 60, "the finished recording listed")
    # The card no longer says it is recording: it says where the file went.
    said = await wait_text(page, detail, f"Recording stopped: {file}, ")
    assert said.endswith(" is listed under Recordings."), said
    await page.page.locator(card).screenshot(path=str(screenshots / "recording-stopped.png"))
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
                                                        hls_url: str, screenshots: Path) -> None:
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

    # The README's pictures (tools/screenshots.py has them written to docs/screenshots).
    await viewer.page.screenshot(path=str(screenshots / "webapp.png"), full_page=True)
    await dashboard.page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)


async def test_a_viewer_row_shows_its_source_recording_and_stops_it(
        pages: Any, screenshots: Path) -> None:
    publisher = await pages()
    webcam = await publisher.start_webcam()
    viewer = await pages()
    watching = await viewer.watch(webcam)
    row = f"#sessions tr[data-session-id='{watching}']"

    # Record from the viewer's row: what is recorded is the source, and the row says so.
    await viewer.page.click(f"{row} button.record")
    await viewer.page.wait_for_selector(f"{row} .badge[data-state=recording]", timeout=10000)
    assert not await viewer.page.is_visible(f"{row} button.record")
    assert await viewer.page.is_visible(f"{row} button.stop-record")
    card = viewer.card(watching)
    await viewer.page.wait_for_selector(f"{card} .recording-badge", state="visible")
    said = await wait_text(viewer, f"{card} .peer-detail", f"Recording to rec-{webcam}-")
    assert said.endswith(".mp4 (MP4)."), said
    # The publisher's page shows the recording on its own card and row as well.
    await publisher.page.wait_for_selector(
        f"#sessions tr[data-session-id='{webcam}'] .badge[data-state=recording]", timeout=10000)
    await viewer.page.screenshot(path=str(screenshots / "viewer-row-recording.png"),
                                 full_page=True)

    await viewer.page.click(f"{row} button.stop-record")
    await viewer.page.wait_for_selector(f"{row} button.record", timeout=30000)
    await wait_text(viewer, f"{card} .peer-detail", "Recording stopped: rec-")
    assert await viewer.errors() == [] and await publisher.errors() == []


async def test_an_ended_player_is_marked_left_out_of_the_averages_and_removable(
        pages: Any, demo: DemoServer, medium_hls_url: str, screenshots: Path) -> None:
    other = await pages()
    webcam = await other.start_webcam()  # a live peer, counted in every round
    page = await pages()
    player = await page.play(medium_hls_url)
    card, row = page.card(player), f"#sessions tr[data-session-id='{player}']"

    await page.page.wait_for_selector(f"{card} .peer-state[data-state=source-ended]",
                                      timeout=30000)
    ended_at = time.time()  # the server marked it ended before the page could show it
    for person in (page, other):
        await person.page.wait_for_selector(f"{row}[data-state=ended] .badge[data-state=ended]",
                                            timeout=10000)
        assert not await person.page.is_visible(f"{row} button.watch")
        assert not await person.page.is_visible(f"{row} button.record")
    # Its owner may remove it; nobody else can.
    assert await page.page.is_visible(f"{row} button.remove")
    assert not await other.page.is_visible(f"{row} button.remove")
    assert not await page.page.is_visible(f"{card} button.record")
    await page.page.screenshot(path=str(screenshots / "player-ended.png"), full_page=True)

    # The page still reports the player's figures (0 kbit/s now) ...
    await wait_text(page, f"{card} [data-stat=bitrate]", "0 kbit/s")
    # ... but the rounds opened after its end count the webcam only. (By time, not by the
    # newest stored round: under load, storing a round may lag behind the rounds themselves.)
    async def rounds_after_the_end() -> list[Any]:
        api = await asyncio.to_thread(http_json, demo.url + "/api/metrics?minutes=10")
        rounds = sorted(api["rounds"], key=lambda r: r["round"])
        after = [r for previous, r in itertools.pairwise(rounds)
                 if previous["round"] == r["round"] - 1 and epoch(previous["at"]) > ended_at]
        return after if len(after) >= 2 else []

    for counted in await eventually(rounds_after_the_end, 30, "two rounds after the end"):
        assert counted["peers"] == 1 and counted["bitrate"] > 20_000, counted

    # Nothing can be started on it any more, even by a page that asks.
    await page.page.evaluate("(id) => window.demo.send({id: 'record', sessionId: id})", player)
    await wait_error(page, f"record: session '{player}' has ended: its source reached its end")

    await page.page.click(f"{row} button.remove")
    for person in (page, other):
        await person.page.wait_for_selector(row, state="detached", timeout=10000)
    assert await page.page.query_selector(card) is None
    live = await asyncio.to_thread(http_json, demo.url + "/api/sessions")
    assert [s["sessionId"] for s in live["sessions"]] == [webcam]


async def test_a_player_error_reads_plainly(pages: Any, tmp_path: Path,
                                            screenshots: Path) -> None:
    page = await pages()
    with serve_folder(tmp_path) as base:  # an empty folder: every path is a 404
        await page.page.fill("#play-url", base + "/nope.m3u8")
        await page.page.click("#play")
        await wait_error(page, "play: cannot play URL: the server answered 404 Not Found")
    await page.page.locator("#errors").screenshot(path=str(screenshots / "player-error.png"))


async def test_file_urls_are_explained_and_confined_to_the_media_folder(
        pages: Any, demo: DemoServer, screenshots: Path) -> None:
    media = demo.media_dir.resolve()
    page = await pages()
    await wait_text(page, "#play-hint", f"a file inside the media folder {media} ")
    placeholder = await page.page.get_attribute("#play-url", "placeholder")
    assert f"file://{media}/clip.mp4" in placeholder, placeholder
    await page.page.locator(".controls").screenshot(path=str(screenshots / "file-hint.png"))

    # A file elsewhere on the server is refused, in words that say why.
    await page.page.fill("#play-url", "file:///etc/hostname")
    await page.page.click("#play")
    await wait_error(page, "play: cannot play URL: only files inside the media folder "
                     "(MEDIA_DIR) can be played")
    # One inside it plays.
    write_hls(media / "clip", seconds=10)
    player = await page.play(f"file://{media}/clip/index.m3u8")
    assert (await page.wait_playing(player))["width"] == 640


async def test_the_dashboard_host_panel_shows_the_address_bound(pages: Any,
                                                                demo: DemoServer) -> None:
    dashboard = await pages("/dashboard.html")  # the demo runs with --port alone
    facts = await eventually(lambda: host_facts(dashboard), 15, "the host facts")
    assert facts["Web app"] == demo.url + "/"
    assert facts["Listening on"] == f"127.0.0.1:{demo.port} (this machine only)"


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


async def host_facts(page: AppPage) -> dict[str, str]:
    facts = await page.page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#host dt')].map(
            (dt) => [dt.textContent, dt.nextElementSibling.textContent]))""")
    return facts if facts.get("Listening on") else {}


def epoch(iso: str) -> float:
    """Seconds since the epoch of a round's ``at`` (``2026-12-07T22:52:24.200Z``)."""
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def wait_text(page: AppPage, selector: str, text: str, timeout: float = 30) -> str:
    """The text of ``selector`` once it contains ``text``."""
    async def contains() -> str | None:
        found = await page.page.text_content(selector)
        return found if found and text in found else None
    return str(await eventually(contains, timeout, f"{text!r} in {selector}"))


async def wait_error(page: AppPage, text: str, timeout: float = 30) -> None:
    """Wait until the page shows exactly this error (among others)."""
    async def shown() -> bool:
        return text in await page.errors()
    await eventually(shown, timeout, f"the error {text!r}")


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
