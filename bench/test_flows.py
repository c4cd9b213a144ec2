"""The benchmark flows run and count right (small N), so a runtime change that breaks them shows
up before a benchmark run does. ``python -m pytest bench``."""

from __future__ import annotations

import pytest
from run_flowengine import run  # pytest puts this folder on sys.path


@pytest.mark.parametrize("workload, fanout", [("chain", 1), ("switch", 1), ("fanout", 4)])
@pytest.mark.parametrize("batch", [1, 7])
async def test_workload_counts_every_message(workload: str, fanout: int, batch: int) -> None:
    res = await run(workload, 200, batch, warmup=True, timeout=30, profile=None)
    assert res["expected"] == 200 * fanout
    assert res["count"] == res["expected"]
    assert res["bad"] == 0  # payload.count as the workload's hops make it
    assert res["msgs_per_s"] > 0
    assert 0 <= res["p50_ms"] <= res["p99_ms"] <= res["max_ms"]
