"""The demo's group call and mirror (issue 17, point 5), through the /signaling protocol with
aiortc peers against the embedded media server: ``start`` of kind ``group`` joins the group's
Composite, ``start`` with ``mirror: true`` sends the webcam through a FaceOverlayFilter with the
web app's hat. Checked in what the peers decode and on the media server itself; the
``clients`` fixture checks at the end that every pipeline was released (the group's with its
last participant)."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import VideoStreamTrack
from conftest import DemoApp, wait_until
from media_mixing import face_frame
from media_synthetic import FrameCounter

from flowengine.kurento import KurentoClient

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120),
              pytest.mark.usefixtures("loopback_ice")]


async def element_types(app: DemoApp) -> list[list[str]]:
    """The type of every element of every pipeline, a hub's ports included."""
    client = await KurentoClient.connect(app.kms_url)
    try:
        found = []
        for pipeline in await client.server_manager.get_pipelines():
            types, pending = [], list(await pipeline.get_children())
            while pending:
                child = pending.pop(0)
                types.append(child.type)
                pending.extend(await child.get_children())
            found.append(sorted(types))
        return found
    finally:
        await client.close()


async def test_group_call_mixed_by_a_composite(demo_app: DemoApp, clients) -> None:
    ann, bob, watcher = await clients(), await clients(), await clients()
    first = await ann.publish("group", name="ann")
    second = await bob.publish("group", name="bob")
    # One pipeline for the group: two endpoints, and two ports of one Composite for each.
    assert await element_types(demo_app) == [[
        "Composite", "HubPort", "HubPort", "HubPort", "HubPort", "WebRtcEndpoint",
        "WebRtcEndpoint"]]  # fmt: skip
    _, frames = await watcher.watch(second)
    await frames.wait_for(10)
    assert frames.sizes == {(800, 600)}  # the grid, Kurento's default size
    listed = {s["sessionId"]: s for s in (await watcher.request(
        {"id": "sessions"}, "sessions"))["sessions"]}  # fmt: skip
    assert listed[first]["kind"] == listed[second]["kind"] == "group"

    await ann.send({"id": "stop", "sessionId": first})
    await ann.expect("stopped")
    count = frames.count
    await frames.wait_for(count + 10)   # the group goes on without ann
    assert len(await demo_app.pipelines()) == 1


def bad_start(**fields: Any) -> dict[str, Any]:
    return {"id": "start", "sdpOffer": "v=0", **fields}


async def test_group_and_mirror_bad_requests(demo_app: DemoApp, clients) -> None:
    client = await clients()
    for request, why in [(bad_start(kind="party"), "kind must be webcam, screen or group"),
                         (bad_start(kind="webcam", mirror=1), "mirror must be true or false"),
                         (bad_start(kind="screen", mirror=True), "only for a webcam")]:
        error = await client.error_for(request)
        assert why in error["message"], error


class FaceCamera(VideoStreamTrack):
    """A webcam showing the face of tests/fixtures/face, 640 x 480."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = face_frame(self.count, 640, 480).reformat(format="yuv420p")
        self.count += 1
        frame.pts, frame.time_base = pts, time_base
        return frame


class LastPicture(FrameCounter):
    """Counts frames and keeps the last one."""

    def __init__(self, track: Any) -> None:
        self.last: av.VideoFrame | None = None
        super().__init__(track)

    async def _run(self) -> None:
        while True:
            try:
                self.last = await self.track.recv()
            except Exception:
                return
            self.count += 1


def saturation_at(frame: av.VideoFrame, x: int, y: int) -> int:
    """How far from grey the picture is around (x, y): |U - 128| + |V - 128|."""
    data = frame.reformat(format="yuv420p").to_ndarray()
    height, width = frame.height, frame.width
    u = data[height : height + height // 4].reshape(height // 2, width // 2)
    v = data[height + height // 4 :].reshape(height // 2, width // 2)
    return int(abs(int(u[y // 2, x // 2]) - 128) + abs(int(v[y // 2, x // 2]) - 128))


async def test_mirror_puts_the_web_apps_hat_on_the_face(demo_app: DemoApp, clients) -> None:
    publisher, viewer = await clients(), await clients()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher.peers.append(pc)
    pc.addTrack(FaceCamera())
    mirrored: asyncio.Queue[Any] = asyncio.Queue()
    pc.on("track", mirrored.put_nowait)
    answer = await publisher._negotiate(pc, {"id": "start", "kind": "webcam", "mirror": True},
                                        "startResponse")  # fmt: skip
    assert await element_types(demo_app) == [["FaceOverlayFilter", "WebRtcEndpoint"]]
    back = LastPicture(await asyncio.wait_for(mirrored.get(), 20))   # the mirror, back
    publisher.counters.append(back)
    _, watched = await viewer.view({"id": "viewer", "source": answer["sessionId"]},
                                   "viewerResponse")  # fmt: skip
    # The hat (magenta and yellow stripes) sits above the face, at (218, 80) size 126 in the
    # camera's picture, where the picture itself is grey.
    point = (275, 60)
    assert saturation_at(face_frame(0, 640, 480), *point) < 40
    await wait_until(lambda: back.last is not None and saturation_at(back.last, *point) > 90,
                     "the hat in the mirrored video")  # fmt: skip
    await watched.wait_for(10)   # viewers watch the mirror too
    assert watched.sizes == {(640, 480)}
