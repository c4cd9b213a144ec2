"""Offer to first decoded frame in headless Chromium, on loopback (issue 10 target: a viewer of
any source sees its first picture within 500 ms of ICE connecting).

    python bench/media/first_frame.py                        # every source, both modes, 20 runs
    python bench/media/first_frame.py --source webrtc,h264-one-keyframe --runs 5
    python bench/media/first_frame.py --encoded true          # useEncodedMedia true only

The media server runs as a child process (``python -m flowengine.media``); Chromium is Debian's
``/usr/bin/chromium`` driven by Python Playwright (never ``playwright install``); the pages and
the signaling are those of the browser tests (``tests/browser/browserkit.py``): Kurento-tutorial
style, trickle ICE only, every candidate through ``IceCandidateFound``/``addIceCandidate``.

Sources (each already playing when the viewers come; 640x480/30 made with PyAV by the tests'
``media_synthetic``, cached in ``$TMPDIR/flowengine-bench-media/``):

* ``webrtc``: a Chromium page publishes its fake camera to a ``WebRtcEndpoint``; a joining
  viewer makes the server ask the publisher for a key frame (RTCP PLI).
* ``h264-gop10s`` / ``vp8-gop10s``: an MP4 (H.264, AAC) / a WebM (VP8, Opus) with a key frame
  every 10 s; ``h264-one-keyframe`` / ``vp8-one-keyframe``: the same with a single key frame
  (as a RecorderEndpoint's recordings); ``hls``: a VOD HLS playlist (H.264 with a 4 s GOP, AAC)
  served over http; ``rtsp``: GStreamer's RTSP server (``tools/rtsp_server.py``) streaming an
  MP4 with a 4 s GOP and AAC.

Each player source runs with ``useEncodedMedia`` false (Kurento's default: decoded, encoded
once per format with a key frame for each joining viewer) and true (passed through; the video
hub's key-frame bridge gives a joining viewer a key frame at once).

For each run a new page offers to receive video and audio from a new ``WebRtcEndpoint``
connected to the source; the times are the page's own (``browserkit.measure_first_frame``):
from ICE connected, and from just before ``createOffer``, to the first
``requestVideoFrameCallback`` of the remote video. Runs start at random moments (a fixed pace
would join the GOP at the same phase every time). Pages are opened before the clock starts and
closed after each run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "browser"))

from mediabench import ServerProcess, load_average  # noqa: E402

TARGET_MS = 500.0
FPS = 30


@dataclass(frozen=True)
class Source:
    kind: str  # "webrtc", "file", "hls" or "rtsp"
    codec: str = "h264"
    gop: int | None = 300  # frames between key frames (None: a single key frame)


SOURCES = {
    "webrtc": Source("webrtc", "vp8"),
    "h264-gop10s": Source("file", "h264", 10 * FPS),
    "vp8-gop10s": Source("file", "vp8", 10 * FPS),
    "h264-one-keyframe": Source("file", "h264", None),
    "vp8-one-keyframe": Source("file", "vp8", None),
    "hls": Source("hls", "h264", 4 * FPS),
    "rtsp": Source("rtsp", "h264", 4 * FPS),
}


def media_file(source: Source, seconds: int) -> Path:
    """The cached source media (a file, or the folder of an HLS playlist): 640x480/30 frames
    with a block of fresh noise (real key frames weigh tens of KB), a 440 Hz tone."""
    from browser_media import FPS, HEIGHT, WIDTH, media_synthetic
    from mediabench import noise_frame

    folder = Path(tempfile.gettempdir()) / "flowengine-bench-media"
    folder.mkdir(parents=True, exist_ok=True)
    gop = source.gop or 0
    suffix = "webm" if source.codec == "vp8" else "mp4"
    name = f"ff-{source.kind}-{source.codec}-g{gop}-{seconds}s"
    path = folder / (name if source.kind == "hls" else f"{name}.{suffix}")
    if not path.exists():
        partial = path.with_name(path.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        common = {"fps": FPS, "size": (WIDTH, HEIGHT), "gop": source.gop, "frame": noise_frame,
                  "audio": True}  # fmt: skip
        if source.kind == "hls":
            media_synthetic.write_hls(partial, seconds, 1, **common)
        else:
            written = partial.with_suffix(f".part.{suffix}")
            media_synthetic.write_video_file(written, source.codec, seconds, **common)
            written.rename(partial)
        partial.rename(path)
    return path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def start_source(
    name: str, encoded: bool, args: argparse.Namespace, pipeline: Any, signaling: Any,
    context: Any, servers: list[Any],
) -> Any:
    """The source element, playing (or publishing) and flowing."""
    from browser_servers import RtspServer
    from browserkit import BrowserPeer

    source = SOURCES[name]
    if source.kind == "webrtc":
        element = await pipeline.create("WebRtcEndpoint")
        signaling.register("publisher", element)
        publisher = await BrowserPeer.open(context, signaling)
        await publisher.start("publisher", "send", audio=True)
        await publisher.wait_sending(min_frames=30)
        return element
    path = media_file(source, args.seconds)
    if source.kind == "file":
        uri = path.as_uri()
    elif source.kind == "hls":
        target = Path(signaling.static_dir) / path.name
        if not target.exists():
            shutil.copytree(path, target)
        uri = signaling.media_url(f"{path.name}/index.m3u8")
    else:
        rtsp = RtspServer(path, audio=True)
        rtsp.start()
        servers.append(rtsp)
        uri = rtsp.url
    element = await pipeline.create("PlayerEndpoint", uri=uri, use_encoded_media=encoded)
    await element.play()
    for _ in range(300):
        if await element.is_media_flowing_out(media_type="VIDEO"):
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError(f"{name}: the player's video does not flow")
    return element


async def run_source(
    name: str, encoded: bool, args: argparse.Namespace, kurento: Any, signaling: Any,
    browser: Any,
) -> list[Any]:
    from browserkit import BrowserPeer, measure_first_frame

    pipeline = await kurento.create("MediaPipeline")
    context = await browser.new_context()
    servers: list[Any] = []
    results = []
    label = name if SOURCES[name].kind == "webrtc" else f"{name} encoded={encoded}"
    try:
        source = await start_source(name, encoded, args, pipeline, signaling, context, servers)
        for index in range(args.runs):
            # A random moment: a fixed pace would join the GOP at the same phase every time.
            await asyncio.sleep(args.pause + random.random())
            viewer_name = f"{name}-{encoded}-viewer{index}"
            viewer = await pipeline.create("WebRtcEndpoint")
            await source.connect(viewer)
            signaling.register(viewer_name, viewer)
            page = await BrowserPeer.open(context, signaling)
            try:
                timing = await measure_first_frame(page, viewer_name, codec=args.codec,
                                                   audio=True)  # fmt: skip
                state = await page.wait_playing(min_frames=10)
                stats = await page.stats()
            finally:
                await page.close()
                await viewer.release()
            codec = (stats["inbound"].get("video") or {}).get("codec")
            results.append((timing, state["videoWidth"], state["videoHeight"], codec))
            print(
                f"  {label} #{index}: offer->answer {timing.offer_to_answer_ms:.0f} ms, "
                f"->ICE connected {timing.offer_to_connected_ms or float('nan'):.0f} ms, "
                f"->first decoded frame {timing.offer_to_first_frame_ms:.0f} ms "
                f"(connected->first frame {connected_to_first(timing):.0f} ms; "
                f"{state['videoWidth']}x{state['videoHeight']} {codec})",
                flush=True,
            )
    finally:
        await context.close()
        await pipeline.release()
        for server in servers:
            server.stop()
    return results


def connected_to_first(timing: Any) -> float:
    if timing.offer_to_connected_ms is None:
        return float("nan")
    return timing.offer_to_first_frame_ms - timing.offer_to_connected_ms


def summary(name: str, encoded: bool, results: list[Any]) -> str:
    after_ice = [connected_to_first(t) for t, *_ in results]
    after_offer = [t.offer_to_first_frame_ms for t, *_ in results]
    sizes = sorted({f"{w}x{h}" for _, w, h, _ in results})
    codecs = sorted({c or "?" for *_, c in results})
    under = sum(1 for v in after_ice if v < TARGET_MS)
    mode = "" if SOURCES[name].kind == "webrtc" else f" encoded={str(encoded).lower()}"
    return (
        f"first_frame source={name}{mode} runs={len(results)} "
        f"median_ms={statistics.median(after_ice):.0f} max_ms={max(after_ice):.0f} "
        f"p90_ms={percentile(after_ice, 0.9):.0f} under_{TARGET_MS:.0f}ms={under}/"
        f"{len(results)} offer_median_ms={statistics.median(after_offer):.0f} "
        f"offer_max_ms={max(after_offer):.0f} video={','.join(sizes)} codec={','.join(codecs)}"
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=",".join(SOURCES),
                        help=f"comma-separated: {', '.join(SOURCES)}")  # fmt: skip
    parser.add_argument("--encoded", default="false,true",
                        help="useEncodedMedia values of the players: false, true or both")
    parser.add_argument("--runs", type=int, default=20, help="viewers per source and mode")
    parser.add_argument("--codec", default=None, help="the viewer page's preference: VP8, H264")
    parser.add_argument("--seconds", type=int, default=180,
                        help="length of the source media (longer than all the runs)")
    parser.add_argument(
        "--pause", type=float, default=0.5, help="seconds between runs (plus 0-1 s at random)"
    )
    args = parser.parse_args(argv)

    from browserkit import SignalingServer, launch_chromium
    from playwright.async_api import async_playwright

    from flowengine.kurento import KurentoClient

    names = [k.strip() for k in args.source.split(",") if k.strip()]
    unknown = set(names) - set(SOURCES)
    if unknown:
        parser.error(f"unknown sources: {', '.join(sorted(unknown))}")
    modes = [m.strip() == "true" for m in args.encoded.split(",") if m.strip()]
    for name in names:
        if SOURCES[name].kind != "webrtc":
            await asyncio.to_thread(media_file, SOURCES[name], args.seconds)
    work = Path(tempfile.mkdtemp(prefix="flowengine-bench-first-frame-"))
    (work / "www").mkdir()
    server = ServerProcess(work)
    url = await server.start()
    print(f"server {url}; load average {load_average()}", flush=True)
    summaries = []
    try:
        kurento = await KurentoClient.connect(url)
        async with (
            SignalingServer(static_dir=work / "www") as signaling,
            async_playwright() as playwright,
        ):
            browser = await launch_chromium(playwright)
            try:
                for name in names:
                    for encoded in modes if SOURCES[name].kind != "webrtc" else [False]:
                        print(f"{name} encoded={encoded}:", flush=True)
                        results = await run_source(name, encoded, args, kurento, signaling,
                                                   browser)  # fmt: skip
                        summaries.append(summary(name, encoded, results))
                        print(f"{summaries[-1]}\n  load average {load_average()}", flush=True)
            finally:
                await browser.close()
        with contextlib.suppress(Exception):
            await kurento.close()
    finally:
        await server.stop()
    shutil.rmtree(work, ignore_errors=True)
    print(f"load average after the runs: {load_average()}")
    for line in summaries:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
