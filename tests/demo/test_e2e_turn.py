"""TURN end to end: with ``TURN_URL`` set, the demo hands its coturn server to the browsers
(``hello.iceServers``) and to the media server's endpoints, and two relay-only browsers (the
page's "Relay only" option) publish and watch through it.

coturn (Debian's ``turnserver``) runs on 127.0.0.1 with long-term credentials; a missing
coturn fails the test with the package to install.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2ekit import (
    TURN_PASSWORD,
    TURN_USER,
    AppPage,
    Coturn,
    DemoServer,
    browser_demo,
    start_coturn,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    server = start_coturn(tmp_path_factory.mktemp("coturn"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo(coturn: Coturn) -> Iterator[DemoServer]:
    with browser_demo("turn", {"TURN_URL": coturn.turn_url}) as server:
        yield server


async def test_relay_only_webcam_and_viewer_through_coturn(browser: Any, demo: DemoServer,
                                                          coturn: Coturn) -> None:
    publisher = await AppPage.open(browser, demo.url, "/?relay=1")
    viewer = await AppPage.open(browser, demo.url, "/?relay=1")
    try:
        ice_servers = await publisher.page.evaluate("() => window.demo.state.iceServers")
        urls = [url for server in ice_servers
                for url in ([server["urls"]] if isinstance(server["urls"], str)
                            else server["urls"])]
        assert f"turn:127.0.0.1:{coturn.port}" in urls, ice_servers
        assert {(s.get("username"), s.get("credential")) for s in ice_servers} == {
            (TURN_USER, TURN_PASSWORD)}
        assert await publisher.page.is_checked("#relay-only")
        assert await publisher.page.is_enabled("#relay-only")

        webcam = await publisher.start_webcam()
        watching = await viewer.watch(webcam)
        progress = await viewer.wait_playing(watching)
        assert (progress["width"], progress["height"]) == (640, 480)

        # Both browsers reach the media server through a relayed candidate only.
        assert await publisher.selected_candidate_type(webcam) == "relay"
        assert await viewer.selected_candidate_type(watching) == "relay"
        assert coturn.allocations() >= 2, coturn.log_path.read_text()[-2000:]
    finally:
        await viewer.close()
        await publisher.close()
