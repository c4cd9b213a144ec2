"""Run one benchmark workload on flowengine, in this (fresh) process, and print one JSON line.

    python bench/run_flowengine.py chain --n 200000 --batch 100
    python bench/run_flowengine.py switch --n 50000 --batch 1 --profile /tmp/switch.prof

The flow is ``bench/flows/<workload>.yaml``: a source function node, the workload's nodes and a
counter function node with the same semantics as the shared Node-RED bench
(docs/reference/nodered-bench/README.md; bench/README.md says where it runs from). This script
is the in-process driver: it loads and starts the flow, triggers the source with
``{payload: {n, batch}, reply: future}`` (a warm-up pass of N/10 messages, then the measured
pass), awaits the counter's result and prints::

    {"bench": "chain", "n": 200000, "batch": 100, "msgs_per_s": ..., "p50_ms": ..., "p99_ms": ...,
     "max_ms": ..., "elapsed_ms": ..., "count": ..., "expected": ..., "rss_mb": ..., ...}

``rss_mb`` is the process's peak resident set size (VmHWM) after the measured pass, start-up and
warm-up included, as the Node-RED figures are. The exit status is 1 when the counter saw a wrong
message count or a wrong ``payload.count``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from flowengine.cli import run_event_loop
from flowengine.loader import Loader
from flowengine.registry import default_registry
from flowengine.runtime import Runtime

HERE = Path(__file__).resolve().parent
FLOW_DIR = HERE / "flows"
WORKLOADS = ("chain", "switch", "fanout")


class BenchFailure(Exception):
    """The counter's result shows lost, extra or wrongly processed messages."""


def proc_status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmHWM``, ``VmRSS``) in MB, None if unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


async def trigger(runtime: Runtime, workload: str, n: int, batch: int,
                  timeout: float) -> dict[str, Any]:
    """One pass: have the source emit ``n`` messages and wait for the counter's result."""
    reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    runtime.deliver(f"{workload}-source", {"payload": {"n": n, "batch": batch}, "reply": reply})
    result = await asyncio.wait_for(reply, timeout)
    if result["count"] != result["expected"] or result["bad"]:
        raise BenchFailure(f"bad result from {workload}: {result}")
    return result


async def run(workload: str, n: int, batch: int, warmup: bool, timeout: float,
              profile: str | None) -> dict[str, Any]:
    """Load and start the workload's flow, run the warm-up and measured passes, stop it."""
    # The flow's http-in trigger (for the shared HTTP driver) is not used here: any free port.
    environ = dict(os.environ, BENCH_PORT="0")
    flowset = Loader(default_registry(), environ).load([FLOW_DIR / f"{workload}.yaml"])
    runtime = Runtime(flowset)
    await runtime.start()
    profiler = cProfile.Profile() if profile else None
    try:
        idle_rss = proc_status_mb("VmRSS")
        if warmup:
            await trigger(runtime, workload, max(1, n // 10), batch, timeout)
        if profiler is not None:
            profiler.enable()
        wall = time.perf_counter()
        result = await trigger(runtime, workload, n, batch, timeout)
        wall = time.perf_counter() - wall
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    finally:
        await runtime.stop()
    return {
        "bench": workload, "n": n, "batch": batch,
        "msgs_per_s": result["msgs_per_s"], "p50_ms": result["lat_p50_ms"],
        "p99_ms": result["lat_p99_ms"], "max_ms": result["lat_max_ms"],
        "elapsed_ms": result["elapsed_ms"], "wall_s": wall,
        "count": result["count"], "expected": result["expected"], "bad": result["bad"],
        "rss_mb": proc_status_mb("VmHWM"), "rss_idle_mb": idle_rss,
        "python": sys.version.split()[0], "profiled": bool(profile),
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=WORKLOADS)
    ap.add_argument("--n", type=int, default=200000, help="messages emitted by the source")
    ap.add_argument("--batch", type=int, default=100, help="source messages per event-loop turn")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="skip the N/10 warm-up pass")
    ap.add_argument("--timeout", type=float, default=900, help="seconds allowed per pass")
    ap.add_argument("--profile", metavar="FILE",
                    help="cProfile the measured pass into FILE (slows the run down: figures "
                         "from a profiled run are not comparable)")
    ap.add_argument("--loop", choices=("auto", "asyncio"), default="auto",
                    help="event loop: flowrun's (uvloop when installed) or asyncio's own")
    args = ap.parse_args(argv)
    if args.loop == "asyncio":
        os.environ["FLOWENGINE_LOOP"] = "asyncio"
    try:
        res = run_event_loop(run(args.workload, args.n, args.batch, args.warmup, args.timeout,
                                 args.profile))
    except BenchFailure as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
