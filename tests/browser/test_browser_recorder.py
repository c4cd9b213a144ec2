"""Issue 10, live recording, with headless Chromium's fake camera and microphone as the source:
the recorded file is opened and decoded by PyAV while recording (it grows, with decodable
frames up to about a second ago) and after stop (the recorded length, audio and video), and
Kurento's recorder tutorial, run through the official kurento-client 7.3.0 in the page, plays
the file right after stopping: the whole recording, with sound."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from browser_media import media_synthetic  # noqa: F401 - puts tests/media on sys.path
from browserkit import BrowserPeer, recorder_tutorial_played
from recorded_media import check_growing, decode_file, duration

FAKE_CAMERA = (640, 480)  # Chromium's fake capture device


async def test_chromium_camera_recording_grows_and_is_complete_after_stop(
    kurento, signaling, open_peer, media_dir: Path, tmp_path: Path
):
    pipeline = await kurento.create("MediaPipeline")
    publisher = await pipeline.create("WebRtcEndpoint")
    recorder = await pipeline.create("RecorderEndpoint", uri="camera.webm", media_profile="WEBM")
    await publisher.connect(recorder)
    signaling.register("publisher", publisher)
    page: BrowserPeer = await open_peer()
    await page.start("publisher", "send", audio=True)
    await page.wait_sending(min_frames=10)
    path = media_dir / "camera.webm"
    try:
        await recorder.record()
        started = time.monotonic()
        await check_growing(path, tmp_path, started, at=(3.0, 5.0))
        asked = time.monotonic()
        await recorder.stop_and_wait()
        answered = time.monotonic()
    finally:
        await pipeline.release()
    recorded = asked - started
    assert answered - asked < 3.0  # bench/media/recorder_cpu.py has the real figure
    assert abs(duration(path) - recorded) < 1.0, (duration(path), recorded)
    done = decode_file(path)
    assert done["codecs"] == {"video": "vp8", "audio": "opus"}
    assert done["sizes"] == {FAKE_CAMERA}
    assert done["video"] >= 10 * recorded and done["audio"] >= 20 * recorded, done
    assert abs(done["video_end"] - recorded) < 1.0 and abs(done["audio_end"] - recorded) < 1.0


async def test_kurento_recorder_tutorial_plays_the_file_right_after_stop(
    kurento_js_bundle: Path, media_server, signaling, www_dir: Path, browser, media_dir: Path
):
    (www_dir / "kurento-client.js").write_bytes(kurento_js_bundle.read_bytes())
    context = await browser.new_context()
    page = await context.new_page()
    args = {"ws_uri": media_server.url, "file_uri": f"file://{media_dir}/recorder_demo.webm"}
    try:
        await page.goto(signaling.page_url("recorder_tutorial.html"))
        await page.evaluate("args => startRecording(args)", args)
        await asyncio.sleep(8.0)
        await page.evaluate("() => stopRecording()")
        await page.evaluate("args => startPlaying(args)", args)  # at once, as a user may
        state = await recorder_tutorial_played(page)
    finally:
        await context.close()
    recorded = (state["stoppedAt"] - state["recordingAt"]) / 1000
    assert state["endOfStreamAt"] is not None, f"no EndOfStream within 30 s: {state}"
    assert state["firstFrameAt"] is not None, f"no video frame played: {state}"
    # The picture from (about) the start of the recording, not only its last seconds. The
    # file has a key frame every 2 s (recorder.KEYFRAME_INTERVAL); a player that waits for one
    # (issue 10 point 1 is the player's side) starts at the second one at worst.
    assert (state["firstFrameAt"] - state["playAt"]) / 1000 < 3.5, state
    shown = (state["endOfStreamAt"] - state["firstFrameAt"]) / 1000
    assert shown > recorded - 3.0, (shown, recorded, state)
    assert state["frames"] >= 10 * (recorded - 3.0), state
    assert state["audioPackets"] > 0, state  # with sound
    done = decode_file(media_dir / "recorder_demo.webm")
    assert done["codecs"] == {"video": "vp8", "audio": "opus"}
    assert abs(done["video_end"] - recorded) < 1.0 and abs(done["audio_end"] - recorded) < 1.0
