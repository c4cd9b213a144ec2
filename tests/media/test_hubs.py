"""Composite, HubPort, Dispatcher and DispatcherOneToMany with real WebRTC peers (aiortc on
127.0.0.1), checked in what the peers decode: tiles and colours of the grid, tones of the mix,
the time a switch takes and the key frame it brings, and that nothing is left running after a
release."""

from __future__ import annotations

import asyncio
import threading
import time

import aioice.ice
import pytest
from media_mixing import ColorVideo, Peer, Tone, black, near

from flowengine.media.engine.mixer import grid

TONES = {"red": 440.0, "green": 660.0, "blue": 990.0}


@pytest.fixture
def loopback_ice(monkeypatch):
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def publisher(client, pipeline: str, color: str, *, receive: bool = False
                    ) -> tuple[str, Peer]:  # fmt: skip
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    peer = Peer(Tone(TONES[color]), ColorVideo(color), receive=receive)
    await peer.negotiate(client, endpoint)
    return endpoint, peer


def mixer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("mixer-", "filter-"))]


async def no_mixer_threads() -> None:
    """Every mixer thread ends soon after its Composite is released."""
    deadline = time.monotonic() + 3
    while mixer_threads() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert mixer_threads() == []


def test_grid_is_kurentos_layout():
    assert grid(1, 800, 600) == [(0, 0, 800, 600)]
    assert grid(2, 800, 600) == [(0, 0, 400, 600), (400, 0, 400, 600)]
    assert grid(3, 800, 600)[2] == (0, 300, 400, 300)
    assert len(grid(5, 800, 600)) == 5 and grid(5, 800, 600)[4] == (266, 300, 266, 300)
    assert grid(20, 800, 600)[19] == (640, 450, 160, 150)  # 5 columns, 4 rows


async def test_composite_of_three_publishers(loopback_ice, client, server):
    pipeline = await client.create("MediaPipeline")
    composite = await client.create("Composite", mediaPipeline=pipeline)
    peers: list[Peer] = []
    try:
        ports = {}
        endpoints = {}
        for color in ("red", "green", "blue"):
            ports[color] = await client.create("HubPort", hub=composite)
            endpoints[color], peer = await publisher(
                client, pipeline, color, receive=color == "red"
            )
            peers.append(peer)
            await client.invoke(endpoints[color], "connect", sink=ports[color])
        # Red is a participant of a group call: it gets the grid and the others' voices.
        await client.invoke(ports["red"], "connect", sink=endpoints["red"])
        watcher_port = await client.create("HubPort", hub=composite)
        viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
        await client.invoke(watcher_port, "connect", sink=viewer)
        watcher = Peer()
        peers.append(watcher)
        await watcher.negotiate(client, viewer)

        def grid_shown() -> bool:
            if watcher.picture is None:
                return False
            return (near(watcher.color_at(0.25, 0.25), "red")
                    and near(watcher.color_at(0.75, 0.25), "green")
                    and near(watcher.color_at(0.25, 0.75), "blue")
                    and black(watcher.color_at(0.75, 0.75)))  # fmt: skip

        await watcher.wait(grid_shown, "the 2 x 2 grid: red, green / blue, black")
        assert watcher.picture[0].shape == (600, 800)  # Kurento's default size
        await asyncio.sleep(1.0)
        heard = watcher.tone_levels(*TONES.values())
        assert min(heard) > 50, f"the viewer hears every publisher: {heard}"
        red = peers[0]
        await red.wait(lambda: red.picture is not None and len(red.samples) > 50, "red's grid")
        red_hears = red.tone_levels(*TONES.values())
        # Red hears green and blue, and not itself (what is left at 440 Hz is codec noise and
        # concealed losses, over 20 dB below the others; with its own voice it would be level).
        assert min(red_hears[1:]) > 50 and red_hears[0] < min(red_hears[1:]) / 10, red_hears
        assert near(red.color_at(0.75, 0.25), "green")

        # One shared grid: one hub, one encoder per format, however many ports send it.
        comp = server.media_set.objects[composite]
        assert len(comp.video.readers) == 1 and sum(map(len, comp.video.readers.values())) == 2
        # 15 frames a second, never more (a late mixer catches up by 0.2 s at most, and skips
        # the rest: fewer on a busy machine).
        mixer = comp.mixer
        made, started = mixer.frames_made, time.monotonic()
        await asyncio.sleep(2.0)
        elapsed = time.monotonic() - started
        assert 5 * elapsed <= mixer.frames_made - made <= 15 * elapsed + 4, elapsed

        # A port released while mixing: its tile goes, the others move up, nothing breaks.
        await client.result("release", {"object": ports["green"]})

        def regrid() -> bool:
            return (near(watcher.color_at(0.25, 0.5), "red")
                    and near(watcher.color_at(0.75, 0.5), "blue"))  # fmt: skip

        await watcher.wait(regrid, "two tiles side by side after the release")
    finally:
        for peer in peers:
            await peer.close()
    await client.result("release", {"object": pipeline})
    assert server.media_set.objects == {}
    await no_mixer_threads()


async def test_composite_with_twenty_inputs(loopback_ice, client, server):
    """One publisher into 20 ports: a 5 x 4 grid of the same picture, one decode."""
    pipeline = await client.create("MediaPipeline")
    composite = await client.create("Composite", mediaPipeline=pipeline, width=640, height=480)
    endpoint, peer = await publisher(client, pipeline, "green")
    watcher = Peer()
    try:
        for _ in range(20):
            port = await client.create("HubPort", hub=composite)
            await client.invoke(endpoint, "connect", sink=port)
        out = await client.create("HubPort", hub=composite)
        viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
        await client.invoke(out, "connect", sink=viewer)
        await watcher.negotiate(client, viewer)
        tiles = grid(20, 640, 480)

        def all_tiles() -> bool:
            return watcher.picture is not None and all(
                near(watcher.color_at((x + w / 2) / 640, (y + h / 2) / 480), "green")
                for x, y, w, h in tiles
            )

        await watcher.wait(all_tiles, "20 green tiles")
        hub = server.media_set.objects[endpoint].outputs["video"]
        assert list(hub.readers) == ["raw"] and len(hub.readers["raw"]) == 20  # one decode
    finally:
        await watcher.close()
        await peer.close()
    await client.result("release", {"object": pipeline})
    assert server.media_set.objects == {}


async def test_composite_constructor_and_ports_of_other_hubs(client, server):
    pipeline = await client.create("MediaPipeline")
    big = await client.call("create", {"type": "Composite", "constructorParams": {
        "mediaPipeline": pipeline, "width": 100000}})  # fmt: skip
    assert big["error"]["code"] == 40107
    composite = await client.create("Composite", mediaPipeline=pipeline, width=0, framerate=-3)
    comp = server.media_set.objects[composite]
    assert (comp.width, comp.height, comp.framerate) == (800, 600, 15)  # KMS's defaults
    described = await client.result("describe", {"object": composite})
    assert described["hierarchy"] == ["kurento.Hub", "kurento.MediaObject"]
    port = await client.create("HubPort", hub=composite)
    assert port.startswith(composite + "/")
    assert await client.invoke(port, "getParent") == composite
    assert await client.invoke(port, "getMediaPipeline") == pipeline
    not_a_hub = await client.call("create", {"type": "HubPort", "constructorParams": {
        "hub": pipeline}})  # fmt: skip
    assert not_a_hub["error"]["code"] == 40001
    dispatcher = await client.create("Dispatcher", mediaPipeline=pipeline)
    foreign = await client.call("invoke", {"object": dispatcher, "operation": "connect",
                                           "operationParams": {"source": port, "sink": port}})
    assert foreign["error"]["code"] == 40004
    assert foreign["error"]["message"] == "Can not connect ports"
    await client.result("release", {"object": composite})  # its ports go first
    assert port not in server.media_set.objects
    await client.result("release", {"object": pipeline})
    await no_mixer_threads()


async def test_dispatcher_switches_with_a_key_frame(loopback_ice, client, server):
    pipeline = await client.create("MediaPipeline")
    dispatcher = await client.create("Dispatcher", mediaPipeline=pipeline)
    peers: list[Peer] = []
    try:
        ports = {}
        for color in ("red", "blue"):
            ports[color] = await client.create("HubPort", hub=dispatcher)
            endpoint, peer = await publisher(client, pipeline, color)
            peers.append(peer)
            await client.invoke(endpoint, "connect", sink=ports[color])
        out = await client.create("HubPort", hub=dispatcher)
        viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
        await client.invoke(out, "connect", sink=viewer)
        await client.invoke(dispatcher, "connect", source=ports["red"], sink=out)
        watcher = Peer()
        peers.append(watcher)
        await watcher.negotiate(client, viewer)
        await watcher.wait(lambda: watcher.picture is not None
                           and near(watcher.color_at(0.5, 0.5), "red"), "red")  # fmt: skip
        codec_before = server.media_set.objects[viewer].tracks["video"].fmt
        await asyncio.sleep(1.5)  # past the key frames of the start
        for color in ("blue", "red", "blue", "red"):
            switched = time.monotonic()
            await client.invoke(dispatcher, "connect", source=ports[color], sink=out)
            await watcher.wait(
                lambda c=color: near(watcher.color_at(0.5, 0.5), c), f"switch to {color}", 5
            )
            took = time.monotonic() - switched
            assert took < 0.5, f"{color} after {took:.3f} s"
            assert any(t >= switched for t in watcher.keyframes), "a key frame on the switch"
            await asyncio.sleep(0.7)
        # No renegotiation, no transcoding: the viewer still sends what it negotiated.
        assert server.media_set.objects[viewer].tracks["video"].fmt == codec_before
        assert await client.invoke(out, "isMediaTranscoding", mediaType="VIDEO") is False
    finally:
        for peer in peers:
            await peer.close()
    await client.result("release", {"object": pipeline})


async def test_dispatcher_one_to_many(loopback_ice, client, server):
    pipeline = await client.create("MediaPipeline")
    hub = await client.create("DispatcherOneToMany", mediaPipeline=pipeline)
    peers: list[Peer] = []
    try:
        ports, endpoints = {}, {}
        for color in ("red", "green"):
            ports[color] = await client.create("HubPort", hub=hub)
            endpoints[color], peer = await publisher(client, pipeline, color, receive=True)
            peers.append(peer)
            await client.invoke(endpoints[color], "connect", sink=ports[color])
            await client.invoke(ports[color], "connect", sink=endpoints[color])
        red, green = peers
        await client.invoke(hub, "setSource", source=ports["red"])
        for peer in (red, green):
            await peer.wait(lambda p=peer: p.picture is not None
                            and near(p.color_at(0.5, 0.5), "red"), "everybody sees red")
        await client.invoke(hub, "setSource", source=ports["green"])
        for peer in (red, green):
            await peer.wait(lambda p=peer: near(p.color_at(0.5, 0.5), "green"), "green", 2)
        # A port created after setSource sends the source at once.
        late = await client.create("HubPort", hub=hub)
        viewer = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
        await client.invoke(late, "connect", sink=viewer)
        watcher = Peer()
        peers.append(watcher)
        await watcher.negotiate(client, viewer)
        await watcher.wait(lambda: watcher.picture is not None
                           and near(watcher.color_at(0.5, 0.5), "green"), "late port")
        await client.invoke(hub, "removeSource")
        await asyncio.sleep(0.3)
        count = watcher.frames
        await asyncio.sleep(1.0)
        assert watcher.frames - count <= 2, "nothing is sent after removeSource"
    finally:
        for peer in peers:
            await peer.close()
    await client.result("release", {"object": pipeline})
