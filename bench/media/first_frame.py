"""Offer to first decoded frame in headless Chromium, on loopback (issue 4 target: < 500 ms).

    python bench/media/first_frame.py                       # both sources, 10 viewers each
    python bench/media/first_frame.py --source webrtc --runs 20

The media server runs as a child process (``python -m flowengine.media``); Chromium is Debian's
``/usr/bin/chromium`` driven by Python Playwright (never ``playwright install``); the pages and
the signaling are those of the browser tests (``tests/browser/browserkit.py``): Kurento-tutorial
style, trickle ICE only, every candidate through ``IceCandidateFound``/``addIceCandidate``.

Sources (each already flowing when the viewers come):

* ``webrtc``: a Chromium page publishes its fake camera to a ``WebRtcEndpoint``. A joining
  viewer makes the server ask the publisher for a key frame (RTCP PLI).
* ``player``: a ``PlayerEndpoint`` plays the benchmark's 640x480/30 H.264 file (an IDR every
  ``--gop`` frames, default 30 = 1 s) and the viewer gets it passed through: a file cannot make
  a key frame on demand, so the viewer waits for the next IDR (0-1 s, 0.5 s on average).

For each run a new page offers to receive video from a new ``WebRtcEndpoint`` connected to the
source; the time is the page's own, from just before ``createOffer`` to the first
``requestVideoFrameCallback`` of the remote video (``browserkit.measure_first_frame``), so it
covers the signaling round trip, ``processOffer``, trickle ICE, DTLS, the wait for a key frame
and its decoding. Pages are opened before the clock starts and closed after each run.
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "browser"))

from mediabench import ServerProcess, load_average, make_source_file  # noqa: E402

TARGET_MS = 500.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def run_source(
    source_kind: str, args: argparse.Namespace, kurento: Any, signaling: Any, browser: Any
) -> list[Any]:
    from browserkit import BrowserPeer, measure_first_frame

    pipeline = await kurento.create("MediaPipeline")
    context = await browser.new_context()
    results = []
    try:
        if source_kind == "webrtc":
            source = await pipeline.create("WebRtcEndpoint")
            signaling.register("publisher", source)
            publisher = await BrowserPeer.open(context, signaling)
            await publisher.start("publisher", "send")
            await publisher.wait_sending(min_frames=30)
        else:
            path = make_source_file(300, gop=args.gop)
            source = await pipeline.create("PlayerEndpoint", uri=f"file://{path}")
            await source.play()
            await asyncio.sleep(1.0)
        for index in range(args.runs):
            name = f"{source_kind}-viewer{index}"
            viewer = await pipeline.create("WebRtcEndpoint")
            await source.connect(viewer, media_type="VIDEO")
            signaling.register(name, viewer)
            page = await BrowserPeer.open(context, signaling)
            try:
                timing = await measure_first_frame(page, name, codec=args.codec)
                state = await page.wait_playing(min_frames=10)
                stats = await page.stats()
            finally:
                await page.close()
                await viewer.release()
            codec = (stats["inbound"].get("video") or {}).get("codec")
            results.append((timing, state["videoWidth"], state["videoHeight"], codec))
            print(
                f"  {name}: offer->answer {timing.offer_to_answer_ms:.0f} ms, "
                f"->ICE connected {timing.offer_to_connected_ms or float('nan'):.0f} ms, "
                f"->first decoded frame {timing.offer_to_first_frame_ms:.0f} ms "
                f"({state['videoWidth']}x{state['videoHeight']} {codec})",
                flush=True,
            )
            # A random pause: runs of a fixed length would join the player's 1 s GOP at the
            # same phase every time and measure the same key-frame wait over and over.
            await asyncio.sleep(args.pause + random.random())
    finally:
        await context.close()
        await pipeline.release()
    return results


def summary(source_kind: str, results: list[Any], gop: int) -> str:
    first = [t.offer_to_first_frame_ms for t, *_ in results]
    answer = [t.offer_to_answer_ms for t, *_ in results]
    connected = [t.offer_to_connected_ms for t, *_ in results if t.offer_to_connected_ms]
    sizes = sorted({f"{w}x{h}" for _, w, h, _ in results})
    codecs = sorted({c or "?" for *_, c in results})
    under = sum(1 for v in first if v < TARGET_MS)
    return (
        f"first_frame source={source_kind}{f' gop={gop}' if source_kind == 'player' else ''} "
        f"runs={len(first)} "
        f"median_ms={statistics.median(first):.0f} p90_ms={percentile(first, 0.9):.0f} "
        f"min_ms={min(first):.0f} max_ms={max(first):.0f} under_{TARGET_MS:.0f}ms={under}/"
        f"{len(first)} answer_median_ms={statistics.median(answer):.0f} "
        f"connected_median_ms={statistics.median(connected) if connected else float('nan'):.0f}"
        f" video={','.join(sizes)} codec={','.join(codecs)}"
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="webrtc,player", help="webrtc, player, or both")
    parser.add_argument("--runs", type=int, default=10, help="viewers per source")
    parser.add_argument("--codec", default=None, help="the viewer page's preference: VP8, H264")
    parser.add_argument(
        "--gop", type=int, default=30, help="frames between IDRs in the player's file (30: 1 s)"
    )
    parser.add_argument(
        "--pause", type=float, default=0.5, help="seconds between runs (plus 0-1 s at random)"
    )
    args = parser.parse_args(argv)

    from browserkit import SignalingServer, launch_chromium
    from playwright.async_api import async_playwright

    from flowengine.kurento import KurentoClient

    kinds = [k.strip() for k in args.source.split(",") if k.strip()]
    if "player" in kinds:
        await asyncio.to_thread(make_source_file, 300, gop=args.gop)
    work = Path(tempfile.mkdtemp(prefix="flowengine-bench-first-frame-"))
    server = ServerProcess(work)
    url = await server.start()
    print(f"server {url}; load average {load_average()}", flush=True)
    summaries = []
    try:
        kurento = await KurentoClient.connect(url)
        async with SignalingServer() as signaling, async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                for kind in kinds:
                    print(f"{kind}:", flush=True)
                    results = await run_source(kind, args, kurento, signaling, browser)
                    summaries.append(summary(kind, results, args.gop))
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
