"""First picture of a viewer whose source is on another worker (issue 15: target < 500 ms).

    python bench/media/relay_first_frame.py                 # 10 runs each way
    python bench/media/relay_first_frame.py --runs 20

The server runs as the user runs it (``python -m flowengine.media --workers 2``). One source:
a pass-through ``PlayerEndpoint`` of the benchmark's H.264 file (an IDR every second; see
:func:`mediabench.make_source_file`). Its worker holds one parked viewer, so with
``--viewers-per-worker 1`` every further viewer goes to the other worker and gets the source
through a relay (:mod:`flowengine.media.cluster.relay`). Each run is one decoding aiortc viewer
(``viewers.check_viewer``): from its offer to its first decoded frame, then it leaves. The first
remote run includes setting up the relay; the others find it there. The same runs with a
viewer on the source's own worker (``--viewers-per-worker 1000``) are the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mediabench import ServerProcess, load_average, loopback_ice, make_source_file  # noqa: E402
from viewers import check_viewer, close_check_viewer  # noqa: E402


async def runs_on(where: str, count: int, source: Path) -> list[float]:
    """``count`` first-frame times (ms) of viewers on the source's worker (``home``) or on
    the other one (``remote``)."""
    from flowengine.kurento import KurentoClient

    per_worker = "1" if where == "remote" else "1000"
    server = ServerProcess(
        Path(tempfile.mkdtemp(prefix="flowengine-bench-relay-")),
        extra_args=("--workers", "2", "--viewers-per-worker", per_worker),
    )
    url = await server.start()
    client = await KurentoClient.connect(url, timeout=60)
    times: list[float] = []
    answers: list[float] = []
    try:
        pipeline = await client.create("MediaPipeline")
        player = await pipeline.create(
            "PlayerEndpoint", uri=f"file://{source}", use_encoded_media=True
        )
        await player.on("EndOfStream", lambda _: asyncio.ensure_future(player.play()))
        await player.play()
        parked = await check_viewer(client, pipeline, player, "h264")  # stays on the home worker
        await asyncio.sleep(2)
        for _ in range(count):
            await asyncio.sleep(random.random())  # a random phase of the 1 s GOP
            state = await check_viewer(client, pipeline, player, "h264")
            for _ in range(100):
                if state["first_frame_ms"] is not None:
                    break
                await asyncio.sleep(0.05)
            times.append(state["first_frame_ms"] or float("inf"))
            answers.append(state["answer_ms"])
            await close_check_viewer(state)
        await close_check_viewer(parked)
    finally:
        await client.close()
        await server.stop()
    print(f"{where}: offer->answer ms {', '.join(f'{t:.0f}' for t in answers)}")
    return times


def summary(where: str, times: list[float]) -> str:
    return (f"{where}: first frame ms median {statistics.median(times):.0f}, "
            f"max {max(times):.0f}, first run {times[0]:.0f} "
            f"({', '.join(f'{t:.0f}' for t in times)})")  # fmt: skip


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    loopback_ice()
    source = await asyncio.to_thread(make_source_file, 300)
    print(f"load average {load_average()}; source {source.name}")
    results: dict[str, Any] = {}
    for where in ("home", "remote"):
        results[where] = await runs_on(where, args.runs, source)
        print(summary(where, results[where]), flush=True)
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
