"""The media engine's pieces on their own: hubs, ICE configuration, keyframe detection."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import aioice.ice
import pytest

from flowengine.media.engine.hub import MediaHub, ReaderClosed
from flowengine.media.engine.ice import host_addresses, parse_turn_url, rtc_configuration
from flowengine.media.engine.units import EncodedUnit, is_video_keyframe

TB = Fraction(1, 90000)


def unit(n: int, key: bool = False) -> EncodedUnit:
    return EncodedUnit("vp8", bytes([0 if key else 1, n]), n * 3000, TB, key)


async def test_hub_fans_out_the_same_units_and_readers_start_at_a_key_frame():
    requests = []
    hub = MediaHub("video", queue_size=10, on_keyframe_request=lambda: requests.append(1))
    hub.push(unit(0, key=True))  # before anyone listens: lost
    a, b = hub.subscribe("vp8"), hub.subscribe("vp8")
    assert requests  # a new reader of encoded video asks the source for a key frame
    hub.push(unit(1))  # a delta frame: readers cannot start with it
    hub.push(unit(2, key=True))
    hub.push(unit(3))
    got_a = [await a.get() for _ in range(2)]
    got_b = [await b.get() for _ in range(2)]
    assert [u.pts for u in got_a] == [6000, 9000]
    assert got_a[0] is got_b[0]  # pass-through: the very same object, no copy
    assert hub._transcoder is None


async def test_a_slow_reader_drops_and_resumes_at_the_next_key_frame():
    requests = []
    hub = MediaHub("video", queue_size=3, on_keyframe_request=lambda: requests.append(1))
    reader = hub.subscribe("vp8")
    hub.push(unit(0, key=True))
    for n in range(1, 6):
        hub.push(unit(n))  # the queue (3) overflows: everything queued is useless now
    assert reader.dropped >= 1 and reader.need_keyframe
    hub.push(unit(6))
    hub.push(unit(7, key=True))
    assert (await reader.get()).pts == 7 * 3000
    assert requests  # (rate-limited: one request per KEYFRAME_REQUEST_INTERVAL)


async def test_audio_readers_drop_the_oldest_and_closing_wakes_them():
    hub = MediaHub("audio", queue_size=2)
    reader = hub.subscribe("opus")
    for n in range(4):
        hub.push(EncodedUnit("opus", b"x", n * 960, Fraction(1, 48000)))
    assert [(await reader.get()).pts for _ in range(2)] == [1920, 2880]
    waiter = asyncio.ensure_future(reader.get())
    await asyncio.sleep(0)
    hub.close()
    with pytest.raises(ReaderClosed):
        await waiter


def test_keyframe_detection():
    assert is_video_keyframe("vp8", b"\x10\x02\x00")
    assert not is_video_keyframe("vp8", b"\x11\x02\x00")
    assert is_video_keyframe("h264", b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88")
    assert not is_video_keyframe("h264", b"\x00\x00\x00\x01\x41\x9a")


def test_no_ice_server_unless_configured():
    # aiortc would use stun.l.google.com with no configuration
    # (docs/reference/aiortc-notes.md pitfall 1).
    assert rtc_configuration(None, None, None).iceServers == []
    assert rtc_configuration("", 3478, "").iceServers == []
    config = rtc_configuration("127.0.0.1", 3479, "u:p@127.0.0.1:3478?transport=tcp")
    stun, turn = config.iceServers
    assert stun.urls == "stun:127.0.0.1:3479"
    assert (turn.urls, turn.username, turn.credential) == (
        "turn:127.0.0.1:3478?transport=tcp",
        "u",
        "p",
    )


def test_turn_url_format():
    server = parse_turn_url("user:pa:ss@10.0.0.1:3478")
    assert server.urls == "turn:10.0.0.1:3478?transport=udp"
    assert server.credential == "pa:ss"
    assert parse_turn_url("u:p@turn.example.org:5349?transport=tls").urls.startswith("turns:")
    for bad in ("10.0.0.1:3478", "u:p@host", "u:p@h:port", "u:p@h:1?transport=sctp"):
        with pytest.raises(ValueError):
            parse_turn_url(bad)


def test_host_addresses_are_chosen_per_context(monkeypatch):
    def fake_original(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["192.0.2.10"]

    monkeypatch.setattr("flowengine.media.engine.ice._original", fake_original)
    lookup = aioice.ice.get_host_addresses
    assert lookup(True, False) == ["192.0.2.10"]
    with host_addresses(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    assert aioice.ice.get_host_addresses(True, False) == ["192.0.2.10"]


async def test_a_reader_of_another_codec_gets_the_decoders_key_frame_from_the_source():
    """A VP8 publisher's hub, an H.264 reader joining between its key frames: the transcoder's
    decoder cannot start on a delta frame, so the source is asked (a WebRTC endpoint sends a
    PLI), at once and again while the decoder waits."""
    requests: list[float] = []
    hub = MediaHub("video", on_keyframe_request=lambda: requests.append(1.0))
    hub.push(unit(0))
    hub.subscribe("h264")
    assert len(requests) == 1
    for n in range(1, 20):
        hub.push(unit(n))
        await asyncio.sleep(0.02)
    assert len(requests) >= 2
    hub.close()
