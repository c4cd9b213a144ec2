"""KMS_URL: the same flows drive a media server that runs on its own (our media server as a
separate process, speaking the Kurento protocol as a Kurento Media Server does), and at start
they release the pipelines an earlier run of the application left there, and only those.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import DemoApp, wait_until

from flowengine.kurento import KurentoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kurento"))
from kurento_helpers import MediaServerProcess

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120),
              pytest.mark.usefixtures("loopback_ice")]


@pytest.fixture(scope="module")
def remote_kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServerProcess]:
    server = MediaServerProcess(tmp_path_factory.mktemp("kms") / "media")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def leftovers(remote_kms: MediaServerProcess) -> AsyncIterator[dict[str, str]]:
    """Pipelines on the media server before the app starts: one tagged as the application's
    (an earlier run that was killed), one of another application."""
    client = await KurentoClient.connect(remote_kms.url)
    ours = await client.create("MediaPipeline")
    await ours.add_tag("app", "flowengine-kurento-demo")
    theirs = await client.create("MediaPipeline")
    await theirs.add_tag("app", "someone-else")
    # The client stays connected: its objects stay (a closed session's would too, for minutes).
    yield {"ours": ours.id, "theirs": theirs.id}
    await client.close()


@pytest.fixture(scope="module")
def demo_env(remote_kms: MediaServerProcess, leftovers: dict[str, str]) -> dict[str, str]:
    return {"KMS_URL": remote_kms.url, "MEDIA_DIR": str(remote_kms.media_dir)}


async def test_leftover_pipelines_of_an_earlier_run_are_released(
        demo_app: DemoApp, leftovers: dict[str, str]) -> None:
    remaining = await wait_until(lambda: _without(demo_app, leftovers["ours"]),
                                 "the release of the leftover pipeline")
    assert remaining == [leftovers["theirs"]]
    assert demo_app.harness.node("kms").embedded is None  # type: ignore[attr-defined]


async def _without(app: DemoApp, pipeline: str) -> list[str] | None:
    pipelines = await app.pipelines()
    return pipelines if pipeline not in pipelines else None


async def test_the_same_flows_drive_a_separate_media_server(
        demo_app: DemoApp, remote_kms: MediaServerProcess, leftovers: dict[str, str],
        clients) -> None:
    publisher, viewer = await clients(), await clients()
    source = await publisher.publish()
    _, frames = await viewer.watch(source)
    await frames.wait_for(15)
    pipelines = await demo_app.pipelines()
    assert len(pipelines) == 2 and leftovers["theirs"] in pipelines
    started = await publisher.request({"id": "record", "sessionId": source}, "recording")
    await wait_until(lambda: frames.count > 45, "more frames")
    await publisher.send({"id": "stopRecord", "sessionId": source})
    finished = await publisher.expect("recordingStopped", sessionId=source)
    assert (remote_kms.media_dir / started["file"]).stat().st_size == finished["size"] > 1000
    status, host = await demo_app.get("/api/host")
    assert status == 200 and host["mediaServer"] == remote_kms.url
    assert host["mediaDir"] == str(remote_kms.media_dir)
    await publisher.close()
    await wait_until(lambda: _only(demo_app, leftovers["theirs"]), "the release")


async def _only(app: DemoApp, pipeline: str) -> bool:
    return await app.pipelines() == [pipeline]
