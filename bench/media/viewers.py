"""Viewers of one 640x480/30 H.264 source on the embedded media server: how many, at what CPU.

    python bench/media/viewers.py                                  # both modes, 25 per step
    python bench/media/viewers.py --mode passthrough --max-viewers 200 --step 25
    python bench/media/viewers.py --mode reencode --max-viewers 100 --step 20
    python bench/media/viewers.py --server-loop uvloop             # compare event loops

Per mode: the server runs as a child process (``python -m flowengine.media``); a
``PlayerEndpoint`` plays a PyAV-made H.264 Baseline file (640x480, 30 fps, ~1.5 Mbit/s, an IDR
every second; see :func:`mediabench.make_source_file`); viewers are ``WebRtcEndpoint``s connected
from the player, each answered by an aiortc peer.

* ``passthrough``: the player has ``useEncodedMedia``, the viewers offer H.264, the server
  forwards the file's packets untouched.
* ``reencode``: the player decodes (Kurento's default) and the viewers offer only VP8, so the
  server must encode VP8; it does that once for all of them (one decoder, one VP8 encoder), so
  the per-viewer cost should stay that of pass-through plus one fixed transcoding cost.

Steps: 0 viewers (the player alone), 1 viewer that really decodes (in this process: checks the
picture size and the time from the offer to its first decoded frame, then leaves), then
``--step`` more counting viewers at a time, spread over ``--viewer-procs`` worker processes
(:mod:`viewer_worker`; they count RTP packets without decrypting or decoding them, see
:mod:`rtp_tap`). After each step the script waits ``--settle`` seconds, then measures over
``--window`` seconds: frames per second delivered to each viewer (packets with the RTP marker
bit), loss, lag (growth of arrival time minus RTP time), the server's CPU (all threads, and its
event-loop thread alone; from ``/proc/<pid>/stat``), its RSS, the viewers' and the whole
machine's CPU. It stops once the mean delivered frame rate falls below ``--min-fps`` (27),
more than 1 % of the packets are lost or frames queue up in the server (mean lag above
``--max-lag``, 250 ms), or at ``--max-viewers``. Before each mode it waits (``--quiet-wait``)
for the machine to be quiet: other jobs take CPU from the server and the viewers.

CPU figures are % of one core (the machine has ``nproc`` cores: 200 % = two busy cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mediabench import (  # noqa: E402
    CpuSample,
    ServerProcess,
    load_average,
    loopback_ice,
    machine_pct,
    make_source_file,
    new_peer,
    pct,
    rss_mb,
)
from viewer_worker import negotiate  # noqa: E402

CODEC = {"passthrough": "h264", "reencode": "vp8"}


# --- worker processes -------------------------------------------------------------------------


class WorkerProc:
    """One :mod:`viewer_worker` child: JSON lines in, JSON lines out."""

    def __init__(self, index: int, log_dir: Path):
        self.index = index
        self.log_path = log_dir / f"viewer-worker-{index}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.viewers = 0

    async def start(self, url: str, pipeline: str, source: str, codec: str) -> None:
        log = open(self.log_path, "wb")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "viewer_worker.py"), url, pipeline, source, codec,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
            limit=16 * 1024 * 1024,
        )  # fmt: skip
        log.close()
        await self.reply(timeout=60)

    async def reply(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"viewer worker {self.index} died; see {self.log_path}")
        return json.loads(line)

    async def call(self, command: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.reply(timeout)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.call({"cmd": "quit"}, timeout=30)
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        await self.proc.wait()


# --- one measurement --------------------------------------------------------------------------


@dataclass
class Row:
    viewers: int
    fps_mean: float = 0.0
    fps_min: float = 0.0
    loss_pct: float = 0.0
    lag_mean_ms: float = 0.0
    lag_max_ms: float = 0.0
    kbps: float = 0.0
    packets_per_s: float = 0.0
    server_cpu: float = 0.0
    loop_cpu: float = 0.0
    kernel_cpu: float = 0.0
    threads: dict[str, float] = field(default_factory=dict)
    rss: float = 0.0
    viewer_cpu: float = 0.0
    viewer_cpu_max: float = 0.0
    machine: float = 0.0
    join_ms: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def us_per_packet(self) -> float:
        """Server CPU per RTP packet delivered to a viewer, in microseconds."""
        if not self.packets_per_s:
            return 0.0
        return self.server_cpu / 100 * 1e6 / self.packets_per_s

    @property
    def others(self) -> float:
        """CPU used by processes other than the server and the viewers (disturbance)."""
        return max(0.0, self.machine - self.server_cpu - self.viewer_cpu)


async def measure(
    server: ServerProcess, workers: list[WorkerProc], viewers: int, window: float
) -> Row:
    before_w = await asyncio.gather(*(w.call({"cmd": "stats"}) for w in workers))
    before = CpuSample.take(server.pid)
    self_before = os.times()
    await asyncio.sleep(window)
    after_w = await asyncio.gather(*(w.call({"cmd": "stats"}) for w in workers))
    after = CpuSample.take(server.pid)
    self_after = os.times()
    wall = after.wall - before.wall
    row = Row(viewers)
    row.server_cpu = pct(before.process, after.process, wall)
    row.loop_cpu = pct(before.main, after.main, wall)
    row.kernel_cpu = pct(before.kernel, after.kernel, wall)
    row.threads = {
        name: pct(before.threads.get(name, 0.0), seconds, wall)
        for name, seconds in after.threads.items()
        if name != "main"
    }
    row.rss = rss_mb(server.pid)
    row.machine = machine_pct(before, after)
    own = (self_after.user + self_after.system) - (self_before.user + self_before.system)
    fps, loss, lag_sum, lag_n, lag_max, kbps, worker_cpu = [], [], 0.0, 0, 0.0, [], []
    for b, a in zip(before_w, after_w, strict=True):
        dt = a["t"] - b["t"]
        worker_cpu.append(pct(b["cpu"], a["cpu"], dt))
        for vb, va in zip(b["viewers"], a["viewers"], strict=False):
            packets, frames, nbytes, lost = (va[i] - vb[i] for i in range(4))
            fps.append(frames / dt)
            row.packets_per_s += packets / dt
            kbps.append(nbytes * 8 / dt / 1000)
            loss.append((lost, packets + lost))
            lag_sum += va[4] - vb[4]
            lag_n += int(va[5] - vb[5])
            lag_max = max(lag_max, va[6])
    row.viewer_cpu = sum(worker_cpu) + 100.0 * own / wall
    row.viewer_cpu_max = max(worker_cpu, default=0.0)
    if fps:
        row.fps_mean = statistics.fmean(fps)
        row.fps_min = min(fps)
        row.kbps = statistics.fmean(kbps)
        lost = sum(x for x, _ in loss)
        total = sum(y for _, y in loss)
        row.loss_pct = 100.0 * lost / total if total else 0.0
        row.lag_mean_ms = 1000 * lag_sum / lag_n if lag_n else 0.0
        row.lag_max_ms = 1000 * lag_max
    return row


# --- the decoding check viewer ----------------------------------------------------------------


async def check_viewer(client: Any, pipeline: Any, player: Any, codec: str) -> dict[str, Any]:
    """One real (decoding) aiortc viewer in this process: from ``createOffer`` to its first
    decoded frame, and the size of what it decodes. Returns its peer and counters."""
    import av

    pc = new_peer()
    tracks: asyncio.Queue[Any] = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    state: dict[str, Any] = {"pc": pc, "frames": 0, "sizes": set(), "first_frame_ms": None}
    t0 = time.monotonic()
    state["endpoint"] = await negotiate(client, pipeline, player, pc, codec)
    state["answer_ms"] = (time.monotonic() - t0) * 1000
    track = await asyncio.wait_for(tracks.get(), 10)

    async def consume() -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if state["first_frame_ms"] is None:
                state["first_frame_ms"] = (time.monotonic() - t0) * 1000
            state["frames"] += 1
            if isinstance(frame, av.VideoFrame):
                state["sizes"].add((frame.width, frame.height))

    state["task"] = asyncio.create_task(consume())
    return state


async def close_check_viewer(state: dict[str, Any]) -> None:
    state["task"].cancel()
    with contextlib.suppress(Exception):
        await state["endpoint"].release()
    await state["pc"].close()


async def start_profiler(pid: int, path: str, seconds: float) -> asyncio.subprocess.Process:
    """py-spy sampling the server for ``seconds`` (collapsed stacks: ``--format raw``, or a
    speedscope/flamegraph file by the name's suffix: .json, .svg)."""
    fmt = {".json": "speedscope", ".svg": "flamegraph"}.get(Path(path).suffix, "raw")
    return await asyncio.create_subprocess_exec(
        "py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
        "--format", fmt, "--output", path, "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


# --- one mode ---------------------------------------------------------------------------------


HEADER = (
    "| viewers | fps mean | fps min | loss % | lag ms mean/max | kbit/s per viewer "
    "| server CPU % (kernel) | µs per packet | event-loop thread % | Δ CPU per added viewer % "
    "| server RSS MB | viewers' CPU % (busiest proc) | machine CPU % (others) | join ms p50/max "
    "| note |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
    "| ---: | ---: | --- |"
)


def format_row(row: Row, previous: Row | None) -> str:
    delta = ""
    if previous is not None and row.viewers > previous.viewers:
        delta = f"{(row.server_cpu - previous.server_cpu) / (row.viewers - previous.viewers):.2f}"
    joins = ""
    if row.join_ms:
        joins = f"{statistics.median(row.join_ms):.0f}/{max(row.join_ms):.0f}"
    return (
        f"| {row.viewers} | {row.fps_mean:.1f} | {row.fps_min:.1f} | {row.loss_pct:.2f} "
        f"| {row.lag_mean_ms:.0f}/{row.lag_max_ms:.0f} | {row.kbps:.0f} "
        f"| {row.server_cpu:.1f} ({row.kernel_cpu:.0f}) | {row.us_per_packet:.1f} "
        f"| {row.loop_cpu:.1f} | {delta} | {row.rss:.0f} "
        f"| {row.viewer_cpu:.0f} ({row.viewer_cpu_max:.0f}) "
        f"| {row.machine:.0f} ({row.others:.0f}) | {joins} | {row.note} |"
    )


def row_ok(row: Row, args: argparse.Namespace) -> bool:
    """The viewers are served: mean frame rate at least ``--min-fps``, at most 1 % of the
    packets lost, and frames not queueing up in the server (mean lag under ``--max-lag``)."""
    return row.fps_mean >= args.min_fps and row.loss_pct <= 1.0 and row.lag_mean_ms <= args.max_lag


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return float("nan")
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else float("nan")


async def wait_quiet(threshold: float, max_wait: float) -> None:
    """Wait (up to ``max_wait`` s) until the machine is less busy than ``threshold`` (% of a
    core over 2 s): other jobs on a shared machine take CPU from the server and the viewers."""
    from mediabench import machine_cpu

    deadline = time.monotonic() + max_wait
    while True:
        busy0, total0 = machine_cpu()
        await asyncio.sleep(2.0)
        busy1, total1 = machine_cpu()
        busy = 100.0 * os.cpu_count() * (busy1 - busy0) / max(1, total1 - total0)
        if busy < threshold or time.monotonic() >= deadline:
            verdict = "quiet" if busy < threshold else "still busy, going on"
            print(f"machine CPU before the run: {busy:.0f} % of a core ({verdict})", flush=True)
            return


async def run_mode(mode: str, args: argparse.Namespace, source: Path) -> str:
    from flowengine.kurento import KurentoClient

    codec = CODEC[mode]
    if args.quiet_wait > 0:
        await wait_quiet(args.quiet_threshold, args.quiet_wait)
    work = Path(tempfile.mkdtemp(prefix=f"flowengine-bench-{mode}-"))
    server = ServerProcess(work, loop=args.server_loop, prelude=args.server_prelude)
    url = await server.start()
    print(f"\n## {mode}: {codec} viewers of {source.name}; server pid {server.pid} at {url}, "
          f"loop {args.server_loop}; load average {load_average()}", flush=True)  # fmt: skip
    client = await KurentoClient.connect(url, timeout=60)
    workers: list[WorkerProc] = []
    rows: list[Row] = []
    try:
        pipeline = await client.create("MediaPipeline")
        # Pass-through needs useEncodedMedia (as in Kurento); without it the player decodes.
        player = await pipeline.create(
            "PlayerEndpoint", uri=f"file://{source}", use_encoded_media=mode == "passthrough"
        )
        await player.on("EndOfStream", lambda _: asyncio.ensure_future(player.play()))
        await player.play()
        await asyncio.sleep(args.settle)
        print(HEADER, flush=True)

        def show(row: Row) -> None:
            previous = rows[-1] if rows else None
            rows.append(row)
            print(format_row(row, previous), flush=True)

        show(await measure(server, [], 0, args.window))

        # At a random moment: the key-frame wait of a pass-through viewer depends on where in
        # the file's 1 s GOP it joins, and a fixed schedule would always hit the same phase.
        await asyncio.sleep(random.random())
        check = await check_viewer(client, pipeline, player, codec)
        await asyncio.sleep(args.settle)
        frames_before = check["frames"]
        row = await measure(server, [], 1, args.window)
        row.fps_mean = row.fps_min = (check["frames"] - frames_before) / args.window
        sizes = ",".join(f"{w}x{h}" for w, h in sorted(check["sizes"])) or "none"
        first = check["first_frame_ms"]
        row.note = (
            f"decoding viewer: {check['frames']} frames {sizes}, offer->answer "
            f"{check['answer_ms']:.0f} ms, offer->first decoded frame "
            f"{first:.0f} ms"
            if first is not None
            else "decoding viewer: no frame decoded"
        )
        transcoding = await player.invoke("isMediaTranscoding", mediaType="VIDEO")
        row.note += f"; server transcoding: {transcoding}"
        show(row)
        await close_check_viewer(check)

        workers = [WorkerProc(i, work) for i in range(args.viewer_procs)]
        await asyncio.gather(*(w.start(url, pipeline.id, player.id, codec) for w in workers))
        total = 0
        while total < args.max_viewers:
            goal = min(args.max_viewers, total + args.step)
            plan: dict[WorkerProc, int] = {}
            for _ in range(goal - total):
                target = min(workers, key=lambda w: w.viewers + plan.get(w, 0))
                plan[target] = plan.get(target, 0) + 1
            replies = await asyncio.gather(
                *(w.call({"cmd": "add", "n": n}) for w, n in plan.items())
            )
            joins: list[float] = []
            failed = 0
            for (w, _), reply in zip(plan.items(), replies, strict=True):
                w.viewers += reply["added"]
                joins.extend(reply["join_ms"])
                failed += reply["failed"]
            total = sum(w.viewers for w in workers)
            await asyncio.sleep(args.settle)
            profiler = None
            if args.profile and total >= args.max_viewers:
                profiler = await start_profiler(server.pid, args.profile, args.window)
            row = await measure(server, workers, total, args.window)
            if profiler is not None:
                await profiler.wait()
                print(f"py-spy profile of the server at {total} viewers: {args.profile}")
            row.join_ms = joins
            notes = []
            if failed:
                notes.append(f"{failed} viewers failed to join")
            if row.viewer_cpu_max > 90:
                notes.append("a viewer process is saturated")
            if row.others > 30:
                notes.append("other processes busy")
            row.note = "; ".join(notes)
            show(row)
            if not row_ok(row, args) or failed:
                break
    finally:
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        with contextlib.suppress(Exception):
            await client.close()
        await server.stop()
        if server.stderr_tail:
            print("server log (last lines):", *server.stderr_tail[-10:], sep="\n  ")
    shutil.rmtree(work, ignore_errors=True)  # kept when the run failed: worker logs are there

    good = [r for r in rows if r.viewers >= 1 and row_ok(r, args)]
    good_load = [r for r in good if r.viewers > 1]
    max_viewers = max((r.viewers for r in good_load), default=0)
    per_viewer = slope([(r.viewers, r.server_cpu) for r in good])
    first_viewer = rows[1].server_cpu - rows[0].server_cpu if len(rows) > 1 else float("nan")
    last = max(good_load, key=lambda r: r.viewers) if good_load else rows[-1]
    threads = ", ".join(f"{k} {v:.1f}" for k, v in sorted(last.threads.items()) if v >= 0.5)
    print(f"\nserver threads at {last.viewers} viewers (% of a core): event loop "
          f"{last.loop_cpu:.1f}, {threads or 'others < 0.5'}", flush=True)  # fmt: skip
    others = statistics.median(r.others for r in rows)
    return (
        f"{mode} max_viewers={max_viewers} cpu_per_viewer_pct={per_viewer:.2f} "
        f"first_viewer_cpu_pct={first_viewer:.1f} idle_cpu_pct={rows[0].server_cpu:.1f} "
        f"cpu_at_max_pct={last.server_cpu:.1f} rss_at_max_mb={last.rss:.0f} "
        f"stopped_by={'max-viewers' if max_viewers >= args.max_viewers else 'fps/loss/lag'} "
        f"others_cpu_median_pct={others:.0f}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode",
        default="passthrough,reencode",
        help="passthrough, reencode, or both comma separated (default both)",
    )
    parser.add_argument("--max-viewers", type=int, default=300)
    parser.add_argument("--step", type=int, default=25)
    parser.add_argument("--window", type=float, default=5.0, help="seconds measured per step")
    parser.add_argument(
        "--settle",
        type=float,
        default=4.0,
        help="seconds waited after adding viewers before measuring",
    )
    parser.add_argument("--min-fps", type=float, default=27.0)
    parser.add_argument(
        "--max-lag",
        type=float,
        default=250.0,
        help="ms of mean lag (frames queued in the server) beyond which a step fails",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds to wait at most, before each mode, for the machine to be quiet",
    )
    parser.add_argument(
        "--quiet-threshold",
        type=float,
        default=30.0,
        help="'quiet': the machine busy less than this (%% of one core)",
    )
    parser.add_argument(
        "--viewer-procs", type=int, default=2, help="processes the counting viewers are spread over"
    )
    parser.add_argument("--bitrate", type=int, default=1500, help="source kbit/s")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="py-spy the server during the window of the step reaching --max-viewers, into FILE "
        "(collapsed stacks; .svg: flame graph; .json: speedscope)",
    )
    parser.add_argument(
        "--server-prelude",
        type=Path,
        metavar="FILE",
        help="Python code run in the server process before it starts "
        "(experiments: patches measured before they are made in the code)",
    )
    parser.add_argument(
        "--server-loop",
        choices=("default", "asyncio", "uvloop"),
        default="default",
        help="the server's event loop (default: its own)",
    )
    return parser.parse_args(argv)  # fmt: skip


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    for mode in modes:
        if mode not in CODEC:
            raise SystemExit(f"unknown mode {mode!r}")
    loopback_ice()
    steps = -(-args.max_viewers // args.step)
    estimate = (steps + 3) * (args.settle + args.window + 10) + 60
    seconds = 300 * -(-int(estimate) // 300)  # a few cached lengths; the player replays at EOS
    source = await asyncio.to_thread(make_source_file, seconds, bitrate_kbps=args.bitrate)
    print(f"machine: {os.cpu_count()} cores, load average {load_average()}; source {source}")
    summaries = [await run_mode(mode, args, source) for mode in modes]
    print(f"\nload average after the runs: {load_average()}")
    for line in summaries:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
