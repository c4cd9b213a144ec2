"""A recording that writes packets as they come vs one that decodes and re-encodes: server CPU,
how far the file lags behind real time while recording, and how fast stop and release answer.

    python bench/media/recorder_cpu.py                  # 20 s per mode, 640x480/30 H.264 source
    python bench/media/recorder_cpu.py --seconds 10 --load 1

The media server runs as a child process (``python -m flowengine.media``). The source is a
``PlayerEndpoint`` (``useEncodedMedia``: its H.264 passed on as it is) playing the benchmark's
640x480/30 H.264 Baseline file (``mediabench.make_source_file``, 1.5 Mbit/s, an IDR every
second). Modes, each in a fresh pipeline:

* ``source``: the player alone (the baseline the recorders add to);
* ``passthrough``: + a ``RecorderEndpoint`` with profile ``MP4_VIDEO_ONLY``: H.264 into
  fragmented MP4, packets written as they come;
* ``reencode``: + a ``RecorderEndpoint`` with profile ``WEBM_VIDEO_ONLY``: the H.264 is decoded
  and encoded to VP8 (once, in the source hub's transcoder) before muxing.

Server CPU is read from ``/proc`` over the recording (all threads; % of one core). Every
``--probe`` seconds the script demuxes the file as it is on disk (no decoding) and notes how far
its newest packet lags behind the time recorded so far. Then it times ``stop`` (answer, and
``Stopped``, i.e. the file complete) and ``release`` of the pipeline. A file starts at its
first key frame (as KMS's do): the time recorded minus the file's duration is that wait, and
the lag is counted from there. ``--load N`` runs N busy-looping processes meanwhile (a loaded
machine).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mediabench import ServerProcess, cpu_seconds, load_average, make_source_file  # noqa: E402

PROFILES = {"passthrough": "MP4_VIDEO_ONLY", "reencode": "WEBM_VIDEO_ONLY"}


def newest_packet(path: Path) -> float | None:
    """Seconds into the file of its newest video packet, as it is now (demux only)."""
    import av

    newest = None
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(video=0):
                if packet.pts is not None and packet.time_base is not None:
                    t = float(packet.pts * packet.time_base)
                    newest = t if newest is None else max(newest, t)
    except (av.FFmpegError, OSError):
        pass  # not written yet, or cut in the middle of a cluster
    return newest


def busy(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


async def run_mode(mode: str, args: argparse.Namespace, kurento: Any, source: Path,
                   media_dir: Path, server: ServerProcess) -> dict[str, Any]:
    pipeline = await kurento.create("MediaPipeline")
    player = await pipeline.create("PlayerEndpoint", uri=f"file://{source}",
                                   use_encoded_media=True)
    await player.play()
    await asyncio.sleep(1.0)
    result: dict[str, Any] = {"mode": mode}
    probes: list[tuple[float, float]] = []  # (seconds since record, newest packet in the file)
    path = media_dir / f"{mode}.{'mp4' if mode == 'passthrough' else 'webm'}"
    recorder = None
    if mode != "source":
        recorder = await pipeline.create("RecorderEndpoint", uri=f"file://{path}",
                                         media_profile=PROFILES[mode])
        await player.connect(recorder)
        await recorder.record()
    started = time.monotonic()
    cpu_start = cpu_seconds(server.pid)
    while time.monotonic() - started < args.seconds:
        await asyncio.sleep(args.probe)
        if recorder is not None:
            elapsed = time.monotonic() - started
            newest = await asyncio.to_thread(newest_packet, path)
            probes.append((elapsed, newest or 0.0))
    wall = time.monotonic() - started
    result["cpu"] = 100 * (cpu_seconds(server.pid) - cpu_start) / wall
    if recorder is not None:
        stopped = recorder.once("Stopped", timeout=30)
        asked = time.monotonic()
        await recorder.stop()
        result["stop_answer"] = time.monotonic() - asked
        await stopped
        result["stopped_event"] = time.monotonic() - asked
        recorded = asked - started
        import av

        with av.open(str(path)) as container:
            duration = (container.duration or 0) / 1e6
        # The file starts at its first key frame (as KMS's): the wait for it is not lag.
        result["start"] = start = recorded - duration
        # Precise to about 0.1 s (the file's last frame ends it): never below zero.
        result["lags"] = [max(0.0, elapsed - start - newest) for elapsed, newest in probes]
    asked = time.monotonic()
    await pipeline.release()
    result["release"] = time.monotonic() - asked
    return result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


async def main_async(args: argparse.Namespace) -> None:
    from flowengine.kurento import KurentoClient

    source = await asyncio.to_thread(make_source_file, max(60, int(args.seconds) + 10))
    with tempfile.TemporaryDirectory() as tmp:
        media_dir = Path(tmp)
        server = ServerProcess(media_dir)
        await server.start()
        load: list[multiprocessing.Process] = []
        try:
            kurento = await KurentoClient.connect(server.url)
            if args.load:
                stop_at = time.monotonic() + 3 * (args.seconds + 5) + 30
                load = [multiprocessing.Process(target=busy, args=(stop_at,), daemon=True)
                        for _ in range(args.load)]
                for process in load:
                    process.start()
            print(f"# {args.seconds:.0f} s per mode, 640x480/30 H.264 1.5 Mbit/s source, "
                  f"{args.load} busy processes, load average {load_average()}")
            print("mode         server CPU %   lag median/max ms   stop ms   Stopped ms   "
                  "release ms   first key frame ms")
            for mode in ("source", "passthrough", "reencode"):
                r = await run_mode(mode, args, kurento, source, media_dir, server)
                if mode == "source":
                    print(f"{mode:<12} {r['cpu']:>12.1f}")
                    continue
                lags = r["lags"]
                print(f"{mode:<12} {r['cpu']:>12.1f}   {ms(statistics.median(lags)):>8} / "
                      f"{ms(max(lags)):<8} {ms(r['stop_answer']):>7}   "
                      f"{ms(r['stopped_event']):>10}   {ms(r['release']):>10}   "
                      f"{ms(r['start']):>18}")
            await kurento.close()
        finally:
            for process in load:
                process.terminate()
                process.join()
            await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="recording time per mode")
    parser.add_argument("--probe", type=float, default=1.0, help="seconds between file probes")
    parser.add_argument("--load", type=int, default=0, help="busy-looping processes meanwhile")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
