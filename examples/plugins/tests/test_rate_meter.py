"""Tests of the rate-meter node, in a real flowengine runtime (``flowengine.testing``)."""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from flowengine_example_nodes import RateMeter

from flowengine import FlowLoadError
from flowengine.cli import main
from flowengine.registry import ENTRY_POINT_GROUP, NodeRegistry
from flowengine.testing import FlowHarness, NodeHarness

PLUGIN_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def registry() -> NodeRegistry:
    """The installed node types plus rate-meter, whether or not this package is installed."""
    registry = NodeRegistry()
    registry.load_entry_points()
    if "rate-meter" not in registry:
        registry.register(RateMeter)
    return registry


async def test_counts_messages_per_window(registry: NodeRegistry) -> None:
    async with NodeHarness("rate-meter", {"window": 0.2, "topic": "load"},
                           registry=registry) as meter:
        for i in range(3):
            meter.send({"payload": i})
        first, second = await meter.output(0, count=2)
    assert first["payload"] == {"count": 3, "rate_per_s": 15.0}
    assert first["topic"] == "load"
    # The next window saw nothing; without skip_idle it still reports.
    assert second["payload"] == {"count": 0, "rate_per_s": 0.0}


async def test_status_shows_the_last_rate(registry: NodeRegistry) -> None:
    async with NodeHarness("rate-meter", {"window": "100ms"}, registry=registry) as meter:
        meter.send({"payload": "x"})
        meter.send({"payload": "y"})
        [msg] = await meter.output(0)
    assert msg["payload"] == {"count": 2, "rate_per_s": 20.0}
    assert "topic" not in msg
    assert meter.statuses[0]["status"] == {"fill": "green", "shape": "dot", "text": "20/s"}


async def test_skip_idle_sends_nothing_for_empty_windows(registry: NodeRegistry) -> None:
    async with NodeHarness("rate-meter", {"window": 0.05, "skip_idle": True},
                           registry=registry) as meter:
        await asyncio.sleep(0.2)  # about four empty windows
        assert meter.output_now(0) == []
        meter.send({"payload": 1})
        [msg] = await meter.output(0)
    assert msg["payload"]["count"] == 1


async def test_close_stops_the_timer(registry: NodeRegistry) -> None:
    async with NodeHarness("rate-meter", {"window": 0.05}, registry=registry) as meter:
        await meter.output(0)
    sent = len(meter.output_now(0))
    await asyncio.sleep(0.2)
    assert len(meter.output_now(0)) == sent


async def test_in_a_flow_with_inject(registry: NodeRegistry) -> None:
    flow = FlowHarness.from_yaml("""
flow: demo
nodes:
  ticks:
    type: inject
    repeat: 20ms
    once: true
    once_delay: 0
    wires: [rate]
  rate:
    type: rate-meter
    window: 200ms
    wires: [sink]
  sink:
    type: debug
    console: false
""", registry=registry)
    async with flow:
        [msg] = await flow.received("sink")
    # About ten ticks in 200 ms; timers are not exact, so allow a margin.
    assert 5 <= msg["payload"]["count"] <= 12


@pytest.mark.parametrize(("window", "message"), [
    (0, "window must be more than 0 and at most 24h, got 0s"),
    ("25h", "window must be more than 0 and at most 24h, got 90000s"),
    ("soon", "expected a duration (seconds, or '250ms', '5s', '2m', '1h'), got 'soon'"),
])
def test_bad_window_is_a_load_error(registry: NodeRegistry, window: object,
                                    message: str) -> None:
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("rate-meter", {"window": window}, registry=registry)
    [error] = info.value.errors
    assert (error.node, error.field, error.message) == ("node", "window", message)


def test_unknown_field_is_a_load_error(registry: NodeRegistry) -> None:
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("rate-meter", {"windw": "1s"}, registry=registry)
    assert "unknown field 'windw'" in str(info.value)


def test_flowrun_validate_with_nodes_dir(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # `--nodes DIR` imports the module from the folder; if this package is also pip-installed,
    # its entry point would register the same type a second time (an error naming both), so
    # hide that entry point for this test: it checks the folder route only.
    def without_this_package(**kwargs: str) -> list:
        return [ep for ep in entry_points(**kwargs)
                if not ep.value.startswith("flowengine_example_nodes")]

    monkeypatch.setattr("flowengine.registry.entry_points", without_this_package)
    nodes_dir = PLUGIN_ROOT / "flowengine_example_nodes"
    flow = PLUGIN_ROOT / "flows" / "rate.yaml"
    assert main(["validate", "--nodes", str(nodes_dir), str(flow)]) == 0
    assert capsys.readouterr().out.strip() == "ok: 1 flow(s), 3 nodes, 0 warning(s)"
    # Without the folder the type is unknown.
    assert main(["validate", str(flow)]) == 2
    assert "unknown node type 'rate-meter'" in capsys.readouterr().err


def test_entry_point_group_is_the_one_flowengine_reads() -> None:
    text = (PLUGIN_ROOT / "pyproject.toml").read_text()
    assert f'[project.entry-points."{ENTRY_POINT_GROUP}"]' in text
    assert 'example-nodes = "flowengine_example_nodes"' in text
