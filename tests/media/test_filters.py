"""GStreamerFilter and FaceOverlayFilter between real WebRTC peers (aiortc on 127.0.0.1) and
players, checked in what the viewer decodes; their errors as KMS gives them."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

import aioice.ice
import av
import cv2
import numpy as np
import pytest
from media_mixing import FACE, ColorVideo, Peer, Tone, face_frame, magenta, magenta_png, near
from media_synthetic import write_video_file

from flowengine.media.engine.face_overlay import FaceOverlayer, Overlay
from flowengine.media.engine.yuv import yuv_planes


@pytest.fixture
def loopback_ice(monkeypatch):
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def through_filter(client, pipeline: str, filter_id: str, *tracks) -> tuple[Peer, Peer]:
    """A publisher of ``tracks`` -> the filter -> a viewer; returns (publisher, viewer)."""
    source = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    sink = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(source, "connect", sink=filter_id)
    await client.invoke(filter_id, "connect", sink=sink)
    publisher = Peer(*tracks, receive=False)
    await publisher.negotiate(client, source)
    viewer = Peer()
    await viewer.negotiate(client, sink)
    return publisher, viewer


def filter_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("filter-")]


async def no_filter_threads() -> None:
    deadline = time.monotonic() + 3
    while filter_threads() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert filter_threads() == []


async def error_of(client, method: str, params: dict) -> dict:
    response = await client.call(method, params)
    assert "error" in response, response
    return response["error"]


async def test_videobalance_and_set_element_property(loopback_ice, client):
    pipeline = await client.create("MediaPipeline")
    gray = await client.create(
        "GStreamerFilter", mediaPipeline=pipeline, command="videobalance saturation=0.0"
    )
    assert await client.invoke(gray, "getCommand") == "videobalance saturation=0.0"
    publisher, viewer = await through_filter(client, pipeline, gray, ColorVideo("red"))
    try:
        # Kurento's CompositeWebRtcTest: red through "videobalance saturation=0.0" is grey.
        await viewer.wait(lambda: viewer.picture is not None
                          and near(viewer.color_at(0.5, 0.5), "gray82"), "grey")  # fmt: skip
        await client.invoke(gray, "setElementProperty", propertyName="saturation",
                            propertyValue="1.0")  # fmt: skip
        await viewer.wait(lambda: near(viewer.color_at(0.5, 0.5), "red"), "red again", 3)
    finally:
        await publisher.close()
        await viewer.close()
    await client.result("release", {"object": pipeline})
    await no_filter_threads()


@pytest.mark.parametrize(
    ("command", "size", "max_fps"),
    [
        ("videoflip method=clockwise", (240, 320), None),
        ("capsfilter caps=video/x-raw,framerate=10/1,width=160", (160, 120), 10.5),
        ("videocrop top=40 bottom=40 left=0 right=80", (240, 160), None),
    ],
)
async def test_video_commands(loopback_ice, client, server, command, size, max_fps):
    pipeline = await client.create("MediaPipeline")
    element = await client.create("GStreamerFilter", mediaPipeline=pipeline, command=command,
                                  filterType="VIDEO")  # fmt: skip
    publisher, viewer = await through_filter(client, pipeline, element, ColorVideo("blue"))
    try:
        def shape() -> tuple[int, int] | None:
            if viewer.picture is None:
                return None
            return viewer.picture[0].shape[1], viewer.picture[0].shape[0]

        await viewer.wait(lambda: shape() == size, f"{command}: {size}")
        assert near(viewer.color_at(0.5, 0.6), "blue")
        if max_fps is not None:  # the publisher sends 30 a second
            out = server.media_set.objects[element].output_hub("video")
            count = out.units_pushed
            await asyncio.sleep(3.0)
            rate = (out.units_pushed - count) / 3.0
            assert 3 < rate <= max_fps, f"{command}: {rate} fps"
    finally:
        await publisher.close()
        await viewer.close()
    await client.result("release", {"object": pipeline})


async def test_volume_filters_audio_and_passes_video(loopback_ice, client, server):
    pipeline = await client.create("MediaPipeline")
    quiet = await client.create("GStreamerFilter", mediaPipeline=pipeline,
                                command="volume volume=0.25")  # fmt: skip
    publisher, viewer = await through_filter(
        client, pipeline, quiet, Tone(440, amplitude=8000), ColorVideo("green")
    )
    try:
        await viewer.wait(lambda: len(viewer.samples) > 60 and viewer.picture is not None,
                          "audio and video")  # fmt: skip
        samples = np.concatenate(list(viewer.samples))[-24_000:].astype(np.float64)
        rms = float(np.sqrt(np.mean(samples**2)))
        assert 0.6 * 1414 < rms < 1.4 * 1414, rms  # a quarter of 8000 / sqrt(2)
        assert near(viewer.color_at(0.5, 0.6), "green")
        # The video went through untouched: the filter's video output is its source's hub.
        obj = server.media_set.objects[quiet]
        assert obj.output_hub("video") is obj.input_hub("video")
        assert await client.invoke(quiet, "isMediaTranscoding", mediaType="VIDEO") is False
    finally:
        await publisher.close()
        await viewer.close()
    await client.result("release", {"object": pipeline})


async def test_gstreamer_filter_errors(client):
    pipeline = await client.create("MediaPipeline")

    def create(command: str, **more) -> dict:
        return {"type": "GStreamerFilter",
                "constructorParams": {"mediaPipeline": pipeline, "command": command, **more}}

    unsupported = await error_of(client, "create", create("textoverlay text=hello"))
    assert unsupported["code"] == 40001 and unsupported["data"]["type"] == "MARSHALL_ERROR"
    assert unsupported["message"].startswith(
        'GStreamer element cannot be created: no element "textoverlay"')
    for name in ("capsfilter", "videobalance", "videocrop", "videoflip", "videorate",
                 "videoscale", "volume"):  # fmt: skip
        assert name in unsupported["message"]
    two = await error_of(client, "create", create("videoflip ! videobalance"))
    assert two["message"] == "Given command is not valid, only one element can be created"
    wrong_kind = await error_of(client, "create", create("videoflip", filterType="AUDIO"))
    assert wrong_kind["message"] == "Given command is not valid, pad templates don't match"
    for command in ("videoflip method=sideways", "videobalance saturation=3",
                    "videoflip nope=1", "capsfilter caps=audio/x-raw", "'", ""):  # fmt: skip
        error = await error_of(client, "create", create(command))
        assert error["code"] == 40001, (command, error)

    element = await client.create("GStreamerFilter", mediaPipeline=pipeline,
                                  command="videoflip method=horizontal-flip")  # fmt: skip
    invoke = {"object": element, "operation": "setElementProperty"}
    unknown = await error_of(client, "invoke", {**invoke, "operationParams": {
        "propertyName": "angle", "propertyValue": "3"}})  # fmt: skip
    assert unknown["code"] == 40001
    assert unknown["message"].startswith("No property named 'angle' in object 'videoflip")
    enum = await error_of(client, "invoke", {**invoke, "operationParams": {
        "propertyName": "method", "propertyValue": "sideways"}})  # fmt: skip
    assert enum["message"] == (
        "Cannot convert 'sideways' to enum: Invalid value for enum GstVideoFlipMethod")
    volume = await client.create("GStreamerFilter", mediaPipeline=pipeline, command="volume")
    boolean = await error_of(client, "invoke", {"object": volume, "operation":
        "setElementProperty", "operationParams": {"propertyName": "mute",
                                                  "propertyValue": "true"}})  # fmt: skip
    assert (boolean["code"], boolean["message"]) == (
        40006, "Property type not implemented: GParamBoolean")
    await client.invoke(element, "setElementProperty", propertyName="method",
                        propertyValue="clockwise")  # fmt: skip
    await client.result("release", {"object": pipeline})


def test_overlay_placements_at_every_parity_and_edge():
    """Faces at odd and even places, hats sticking out of every side, a grey and a
    3-channel image: drawn where they belong, clipped, never an error."""
    frame = av.VideoFrame.from_ndarray(np.full((360, 640), 60, np.uint8), format="yuv420p")
    images = {"alpha": cv2.imread(str(magenta_png(Path(tempfile.mkdtemp()) / "hat.png")),
                                  cv2.IMREAD_UNCHANGED),
              "bgr": np.full((10, 10, 3), (255, 0, 255), np.uint8),
              "grey": np.full((10, 10), 200, np.uint8)}  # fmt: skip
    for name, image in images.items():
        for face in [(0, 0, 40, 40), (1, 1, 41, 41), (597, 197, 43, 43), (301, 101, 63, 61)]:
            for offsets in [(0.0, 0.0), (-0.35, -1.2), (0.9, 0.9), (-2.0, 3.0)]:
                overlayer = FaceOverlayer()
                overlayer.set_overlay(Overlay(image, *offsets, 1.6, 1.6))
                overlayer._next_detection = float("inf")  # use these faces
                overlayer.faces = [face]
                out = overlayer.process(frame)
                y_plane, u_plane, _ = yuv_planes(out.to_ndarray(), 640, 240)
                x, y, w, h = face
                cx, cy = int(x + w * (offsets[0] + 0.8)), int(y + h * (offsets[1] + 0.8))
                inside = 0 <= cx < 640 and 0 <= cy < 240
                if inside and name != "grey":
                    assert u_plane[cy // 2, cx // 2] > 180, (name, face, offsets)
                elif inside:
                    assert y_plane[cy, cx] > 150, (name, face, offsets)
                assert (out.width, out.height) == (640, 240)


def test_the_face_picture_has_a_face():
    frame = av.VideoFrame.from_ndarray(cv2.imread(str(FACE)), format="bgr24")
    assert len(FaceOverlayer().detect(frame.reformat(format="yuv420p"))) == 1


async def test_face_overlay_from_a_player(loopback_ice, client, server, media_dir):
    write_video_file(media_dir / "face.mp4", "h264", seconds=20, size=(640, 480),
                     frame=face_frame)  # fmt: skip
    hat = magenta_png(media_dir / "hat.png")
    (media_dir / "not-an-image.png").write_text("hello")
    pipeline = await client.create("MediaPipeline")
    player = await client.create("PlayerEndpoint", mediaPipeline=pipeline, uri="face.mp4")
    face_filter = await client.create("FaceOverlayFilter", mediaPipeline=pipeline)
    viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(player, "connect", sink=face_filter)
    await client.invoke(face_filter, "connect", sink=viewer)
    await client.result("subscribe", {"object": face_filter, "type": "Error"})
    await client.invoke(face_filter, "setOverlayedImage", uri=f"file://{hat}",
                        offsetXPercent=0.0, offsetYPercent=0.0, widthPercent=1.0,
                        heightPercent=1.0)  # fmt: skip
    watcher = Peer()
    await watcher.negotiate(client, viewer)
    await client.invoke(player, "play")
    # The face is at (218, 80) size 126 in the 640 x 480 picture: its centre is about here.
    face = (281 / 640, 143 / 480)
    try:
        await watcher.wait(lambda: watcher.picture is not None
                           and magenta(watcher.color_at(*face)), "the hat on the face")
        assert not magenta(watcher.color_at(0.9, 0.9)), "only over the face"
        await client.invoke(face_filter, "unsetOverlayedImage")
        await watcher.wait(lambda: not magenta(watcher.color_at(*face)), "no hat", 5)

        # Images that cannot be loaded: the call succeeds (as KMS), nothing is overlaid, and an
        # Error event says why.
        params = {"offsetXPercent": 0.0, "offsetYPercent": 0.0, "widthPercent": 1.0,
                  "heightPercent": 1.0}  # fmt: skip
        for uri, why in [("missing.png", "cannot be read"),
                         ("not-an-image.png", "is not an image"),
                         ("http://127.0.0.1:9/hat.png", "could not be fetched"),
                         ("/etc/hostname", "outside the media directory"),
                         ("ftp://127.0.0.1/hat.png", "unsupported URI scheme")]:  # fmt: skip
            await client.invoke(face_filter, "setOverlayedImage", uri=uri, **params)
            event = await client.event("Error")
            assert event["data"]["errorCode"] == 40600 and why in event["data"]["description"]
        negative = await error_of(client, "invoke", {
            "object": face_filter, "operation": "setOverlayedImage",
            "operationParams": {**params, "uri": str(hat), "widthPercent": -1.0}})  # fmt: skip
        assert negative["code"] == 40107
        assert not magenta(watcher.color_at(*face))
        # The filter goes on filtering after all that.
        obj = server.media_set.objects[face_filter]
        done = obj.frames_filtered
        await watcher.wait(lambda: obj.frames_filtered > done + 20, "20 frames more filtered")
    finally:
        await watcher.close()
    await client.result("release", {"object": pipeline})
    await no_filter_threads()
