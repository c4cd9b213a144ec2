"""Issue 4c: a PlayerEndpoint plays to headless Chromium from a file, from HLS over http and from
RTSP (a GStreamer RTSP server started by the test). All media is made here with PyAV (4f).

The player's codec is known before the viewer negotiates (probed from a file; for network
sources the test waits until media flows), so the server answers with the same codec and
forwards the encoded media: the page must decode the file's own codec and the player must not
transcode.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_media import HEIGHT, WIDTH
from browserkit import BrowserPeer

from flowengine.kurento import MediaObject

CODEC_MIME = {"h264": "video/H264", "vp8": "video/VP8"}


@dataclass
class Played:
    pipeline: MediaObject
    player: MediaObject
    page: BrowserPeer
    errors: list[dict]
    """The player's ``Error`` events."""


async def play_to_page(
    kurento, signaling, open_peer, uri: str, *, wait_flowing: bool, **params
) -> Played:
    """A player of ``uri`` connected to a WebRtcEndpoint viewed by a new page; playing."""
    pipeline = await kurento.create("MediaPipeline")
    player = await pipeline.create("PlayerEndpoint", uri=uri, **params)
    viewer = await pipeline.create("WebRtcEndpoint")
    await player.connect(viewer)
    errors: list[dict] = []
    await player.on("Error", errors.append)
    flowing = player.once("MediaFlowOutStateChanged", timeout=30) if wait_flowing else None
    await player.play()
    if flowing is not None:
        # A network source's codec is known once it flows: negotiate after that, so the viewer
        # gets the source's codec passed through.
        event = await flowing
        assert (event["state"], event["mediaType"]) == ("FLOWING", "VIDEO"), (event, errors)
    signaling.register("viewer", viewer)
    page = await open_peer()
    await page.start("viewer", "recv")
    return Played(pipeline, player, page, errors)


async def assert_plays_passed_through(played: Played, codec: str) -> None:
    state = await played.page.wait_playing(min_frames=30)
    assert (state["videoWidth"], state["videoHeight"]) == (WIDTH, HEIGHT)
    video = (await played.page.stats())["inbound"]["video"]
    assert video["codec"] == CODEC_MIME[codec]
    assert video["framesDecoded"] >= 30
    assert await played.player.is_media_transcoding(media_type="VIDEO") is False
    assert await played.player.get_state() == "START"
    assert played.errors == []


@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_player_file_to_chromium(
    kurento, signaling, open_peer, clips, media_dir: Path, codec: str
):
    """H.264 in MP4 and VP8 in WebM (the player reads inside the media directory)."""
    path = Path(shutil.copy(clips[codec], media_dir))
    played = await play_to_page(kurento, signaling, open_peer, f"file://{path}", wait_flowing=False)
    await assert_plays_passed_through(played, codec)
    info = await played.player.get_video_info()
    assert info["duration"] == 8000 and info["isSeekable"] is True
    await played.pipeline.release()


async def test_player_hls_over_http_to_chromium(
    kurento, signaling, open_peer, clips, www_dir: Path
):
    """A VOD playlist of 1 s MPEG-TS segments, served by the test's aiohttp server."""
    shutil.copytree(clips["hls"], www_dir / "hls")
    played = await play_to_page(
        kurento, signaling, open_peer, signaling.media_url("hls/index.m3u8"), wait_flowing=True
    )
    await assert_plays_passed_through(played, "h264")
    # The media server fetched the playlist and then segments, in order, over http.
    assert signaling.requests[0] == "hls/index.m3u8"
    segments = [r for r in signaling.requests if r.endswith(".ts")]
    assert segments[:3] == ["hls/segment000.ts", "hls/segment001.ts", "hls/segment002.ts"]
    await played.pipeline.release()


async def test_player_rtsp_to_chromium(kurento, signaling, open_peer, clips, rtsp_server_for):
    """GStreamer's RTSP server streaming an H.264 MP4 (RTP over RTSP-interleaved TCP)."""
    rtsp = rtsp_server_for(clips["rtsp"])
    assert rtsp.url.startswith("rtsp://127.0.0.1:")
    played = await play_to_page(
        kurento, signaling, open_peer, rtsp.url, wait_flowing=True, networkCache=200
    )
    await assert_plays_passed_through(played, "h264")
    await played.pipeline.release()
