"""The delay node: Node-RED's cases DL-01..DL-13 (docs/reference/nodered-cases.md), in YAML form.

Timings are scaled to 100-600 ms steps. Assertions check order, lower bounds (a timer never
fires early) and generous upper bounds, so that a loaded machine does not make them flaky.
"""

from __future__ import annotations

import asyncio
import itertools
import textwrap
from typing import Any

import pytest

from flowengine import FlowLoadError
from flowengine.testing import FlowHarness, NodeHarness

EARLY = 0.02  # slack for the clock's resolution on lower bounds


def now() -> float:
    return asyncio.get_running_loop().time()


async def arrivals(h: NodeHarness, count: int, start: float, port: int = 0,
                   timeout: float = 4.0) -> list[float]:
    """Seconds from ``start`` at which the first ``count`` messages of ``port`` arrived."""
    times = []
    for n in range(1, count + 1):
        await h.output(port, n, timeout=timeout)
        times.append(now() - start)
    return times


def payloads(msgs: list[dict[str, Any]]) -> list[Any]:
    return [m.get("payload") for m in msgs]


def flow(nodes: str) -> FlowHarness:
    return FlowHarness.from_yaml("flow: f\nnodes:\n" + textwrap.indent(textwrap.dedent(nodes),
                                                                       "  "))


# -- configuration ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("per", "rate", "interval"), [
    ("24h", 1, 86400.0), ("1h", 1, 3600.0), ("1m", 1, 60.0), ("1s", 2, 0.5), (5, 10, 0.5)])
async def test_dl_01_rate_units(per: Any, rate: float, interval: float) -> None:
    async with NodeHarness("delay", {"pause_type": "rate", "rate": rate, "per": per}) as h:
        assert h.node("node").interval == pytest.approx(interval)


@pytest.mark.parametrize(("config", "message"), [
    ({"pause_type": "delay", "outputs": 2}, "outputs: 2 is for dropped or replaced"),
    ({"pause_type": "rate", "outputs": 2}, "outputs: 2 is for dropped or replaced"),
    ({"pause_type": "random", "random_first": "2s", "random_last": "1s"},
     "random_last must not be shorter"),
    ({"pause_type": "rate", "per": 0}, "per must be longer than 0"),
    ({"pause_type": "rate", "rate": 0}, "rate"),
    ({"pause_type": "slow"}, "pause_type"),
])
def test_bad_configuration_is_a_load_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("delay", config)
    assert message in str(info.value)


# -- delay, delayv, random -------------------------------------------------------------------------

@pytest.mark.parametrize("timeout", ["300ms", 0.3])
async def test_dl_02_fixed_delay(timeout: Any) -> None:
    async with NodeHarness("delay", {"timeout": timeout}) as h:
        start = now()
        h.send({"payload": "x", "topic": "t"})
        [elapsed] = await arrivals(h, 1, start)
        assert 0.3 - EARLY <= elapsed < 2.0
        [out] = h.output_now(0)
        assert (out["payload"], out["topic"]) == ("x", "t")


async def test_dl_03_reset_drops_every_waiting_message() -> None:
    async with NodeHarness("delay", {"timeout": "300ms"}) as h:
        for i in range(5):
            h.send({"payload": i})
        h.send({"reset": True})
        await asyncio.sleep(0.6)
        assert h.output_now(0) == []


async def test_dl_03_flush_sends_everything_now() -> None:
    async with NodeHarness("delay", {"timeout": "5s"}) as h:
        start = now()
        for i in range(5):
            h.send({"payload": i})
        h.send({"flush": True})
        times = await arrivals(h, 5, start)
        assert times[-1] < 2.0
        await h.settle()
        assert payloads(h.output_now(0)) == [0, 1, 2, 3, 4]  # the flush command is not sent


async def test_dl_03_part_flush_releases_the_oldest_first() -> None:
    async with NodeHarness("delay", {"timeout": "5s"}) as h:
        for i in range(5):
            h.send({"payload": i})
        h.send({"flush": 2})
        assert payloads(await h.output(0, 2)) == [0, 1]
        await asyncio.sleep(0.1)
        h.send({"flush": 1})
        assert payloads(await h.output(0, 3)) == [0, 1, 2]
        h.send({"flush": 4})
        assert payloads(await h.output(0, 5)) == [0, 1, 2, 3, 4]
        await h.settle()
        assert len(h.output_now(0)) == 5


async def test_dl_03_a_message_with_flush_and_content_is_queued_and_flushed() -> None:
    async with NodeHarness("delay", {"timeout": "5s"}) as h:
        h.send({"payload": 1})
        h.send({"payload": 4, "flush": True})
        assert payloads(await h.output(0, 2, timeout=1.5)) == [1, 4]


async def test_dl_04_variable_delay_from_msg_delay() -> None:
    config = {"pause_type": "delayv", "timeout": "600ms"}
    async with NodeHarness("delay", config) as h:
        start = now()
        h.send({"payload": "150ms", "delay": 150})
        h.send({"payload": "default"})
        h.send({"payload": "zero", "delay": 0})
        h.send({"payload": "negative", "delay": -250})
        times = await arrivals(h, 4, start)
        assert payloads(h.output_now(0)) == ["zero", "negative", "150ms", "default"]
        assert times[2] >= 0.15 - EARLY
        assert times[3] >= 0.6 - EARLY
        assert times[3] < 3.0


async def test_dl_05_random_delay_within_range() -> None:
    config = {"pause_type": "random", "random_first": "100ms", "random_last": "300ms"}
    async with NodeHarness("delay", config) as h:
        start = now()
        for i in range(5):
            h.send({"payload": i})
        times = await arrivals(h, 5, start)
        assert times[0] >= 0.1 - EARLY
        assert times[-1] < 2.0
        assert sorted(payloads(h.output_now(0))) == [0, 1, 2, 3, 4]


# -- rate limit ------------------------------------------------------------------------------------

@pytest.mark.parametrize("per", ["200ms", "150ms"])
async def test_dl_06_rate_limit_queues_and_releases_one_per_interval(per: str) -> None:
    async with NodeHarness("delay", {"pause_type": "rate", "rate": 1, "per": per}) as h:
        interval = h.node("node").interval
        start = now()
        for i in range(4):
            h.send({"payload": i})
        times = await arrivals(h, 4, start)
        assert payloads(h.output_now(0)) == [0, 1, 2, 3]  # nothing lost, in order
        for i, elapsed in enumerate(times):
            assert elapsed >= i * interval - EARLY


async def test_dl_06_the_first_message_goes_at_once_and_after_a_quiet_interval_too() -> None:
    async with NodeHarness("delay", {"pause_type": "rate", "rate": 1, "per": "2s"}) as h:
        start = now()
        h.send({"payload": 1})
        [elapsed] = await arrivals(h, 1, start)
        assert elapsed < 1.0
        await asyncio.sleep(2.5)  # a tick found the queue empty and stopped the timer
        start = now()
        h.send({"payload": 2})
        await h.output(0, 2)
        assert now() - start < 1.0  # not held until a next tick (1.5 s away if it ran)


@pytest.mark.parametrize("outputs", [1, 2])
async def test_dl_07_rate_limit_with_drop(outputs: int) -> None:
    config = {"pause_type": "rate", "rate": 1, "per": "400ms", "drop": True, "outputs": outputs}
    async with NodeHarness("delay", config) as h:
        for i in (1, 2, 3, 4):
            h.send({"payload": i})
        await h.output(0, 1)
        await asyncio.sleep(0.6)
        h.send({"payload": 5})
        assert payloads(await h.output(0, 2)) == [1, 5]
        await h.settle()
        assert payloads(h.output_now(0)) == [1, 5]
        if outputs == 2:
            assert payloads(h.output_now(1)) == [2, 3, 4]


async def test_dl_08_msg_rate_overrides_the_rate_until_reset() -> None:
    config = {"pause_type": "rate", "rate": 1, "per": "800ms", "allow_rate": True}
    async with NodeHarness("delay", config) as h:
        start = now()
        for i in range(3):
            h.send({"payload": i, "rate": 100})
        times = await arrivals(h, 3, start)
        assert times[2] < 0.7  # 100 ms apart, not 800
        assert times[2] >= 0.2 - EARLY
        h.send({"reset": True})
        await h.settle()
        start = now()
        h.send({"payload": "a"})
        h.send({"payload": "b"})
        times = await arrivals(h, 5, start)
        assert times[4] >= 0.8 - EARLY  # back to the configured rate


async def test_dl_08_msg_rate_ignored_without_allow_rate() -> None:
    async with NodeHarness("delay", {"pause_type": "rate", "rate": 1, "per": "500ms"}) as h:
        start = now()
        h.send({"payload": 1, "rate": 50})
        h.send({"payload": 2, "rate": 50})
        times = await arrivals(h, 2, start)
        assert times[1] >= 0.5 - EARLY


async def test_dl_09_flush_part_flush_and_to_front() -> None:
    async with NodeHarness("delay", {"pause_type": "rate", "rate": 1, "per": "10s"}) as h:
        h.send({"payload": "aoo"})
        h.send({"payload": "boo"})
        h.send({"payload": "coo", "toFront": True})
        h.send({"payload": "doo", "toFront": True, "flush": 1})
        h.send({"payload": "eoo", "toFront": True})
        h.send({"flush": 1})
        assert payloads(await h.output(0, 3)) == ["aoo", "doo", "eoo"]
        await asyncio.sleep(0.3)
        assert len(h.output_now(0)) == 3
        h.send({"flush": 1})
        await h.output(0, 4)
        await asyncio.sleep(0.3)
        assert len(h.output_now(0)) == 4
        h.send({"flush": 4})
        assert payloads(await h.output(0, 5)) == ["aoo", "doo", "eoo", "coo", "boo"]
        await h.settle()
        out = h.output_now(0)
        assert len(out) == 5
        assert all("flush" not in m for m in out)


async def test_dl_09_flush_true_releases_the_whole_queue_and_reset_empties_it() -> None:
    async with NodeHarness("delay", {"pause_type": "rate", "rate": 1, "per": "10s"}) as h:
        for i in range(4):
            h.send({"payload": i})
        h.send({"flush": True})
        assert payloads(await h.output(0, 4)) == [0, 1, 2, 3]
        for i in range(4, 7):
            h.send({"payload": i})  # the flush restarted the interval: these wait
        await h.settle()
        h.send({"reset": True})
        h.send({"flush": True})
        await asyncio.sleep(0.3)
        assert payloads(h.output_now(0)) == [0, 1, 2, 3]
        h.send({"payload": 7})  # the reset stopped the interval: this one goes at once
        assert payloads(await h.output(0, 5)) == [0, 1, 2, 3, 7]


async def test_dl_10_reset_message_on_an_empty_queue_sends_nothing() -> None:
    async with NodeHarness("delay", {"pause_type": "rate", "rate": 1, "per": "2s"}) as h:
        h.send({"payload": 1, "topic": "foo", "reset": True})
        await asyncio.sleep(0.3)
        assert h.output_now(0) == []
        start = now()
        h.send({"payload": 2})
        [elapsed] = await arrivals(h, 1, start)
        assert elapsed < 1.0  # the reset left no interval running (its tick: 1.7 s away)


# -- per topic -------------------------------------------------------------------------------------

TOPIC_INPUT = [{"payload": 1}, {"payload": 1, "topic": "A"}, {"payload": 1, "topic": "B"},
               {"payload": 2, "topic": "A"}, {"payload": 3, "topic": "A"}, {"payload": 2},
               {"payload": 4, "topic": "A"}]


async def test_dl_11_topic_queue_sends_one_topic_per_tick_newest_wins() -> None:
    config = {"pause_type": "queue", "rate": 4, "per": "1s", "outputs": 2}
    async with NodeHarness("delay", config) as h:
        start = now()
        for msg in TOPIC_INPUT:
            h.send(msg)
        times = await arrivals(h, 3, start)
        out = [(m["payload"], m["topic"]) for m in h.output_now(0)]
        assert out == [(2, "_none_"), (4, "A"), (1, "B")]
        for before, after in itertools.pairwise(times):
            assert after - before >= 0.125  # one per 250 ms tick (half, for a loaded machine)
        # Replaced messages went to the second output.
        replaced = [(m["payload"], m["topic"]) for m in h.output_now(1)]
        assert replaced == [(1, "A"), (2, "A"), (1, "_none_"), (3, "A")]


async def test_dl_11_timed_queue_sends_every_topic_at_each_tick() -> None:
    async with NodeHarness("delay", {"pause_type": "timed", "rate": 2, "per": "1s"}) as h:
        start = now()
        for msg in TOPIC_INPUT:
            h.send(msg)
        times = await arrivals(h, 3, start)
        out = [(m["payload"], m["topic"]) for m in h.output_now(0)]
        assert out == [(2, "_none_"), (4, "A"), (1, "B")]
        assert times[2] - times[0] < 0.1  # all at the same tick
        assert times[0] < 2.0


async def test_dl_11_topic_queue_flush_and_reset() -> None:
    async with NodeHarness("delay", {"pause_type": "queue", "rate": 1, "per": "10s"}) as h:
        h.send({"payload": 1, "topic": "A"})
        h.send({"payload": 2})
        h.send({"payload": 3, "topic": "B"})
        h.send({"flush": 2})  # a command: it does not take the "_none_" slot
        out = await h.output(0, 2)
        assert [(m["payload"], m["topic"]) for m in out] == [(1, "A"), (2, "_none_")]
        h.send({"reset": True})
        h.send({"flush": True})
        await asyncio.sleep(0.2)
        assert len(h.output_now(0)) == 2


# -- burst -----------------------------------------------------------------------------------------

async def test_dl_12_burst_lets_rate_messages_through_then_reset() -> None:
    config = {"pause_type": "burst", "rate": 3, "per": "2s", "outputs": 2}
    async with NodeHarness("delay", config) as h:
        for i in range(5):
            h.send({"payload": i})
        await h.settle()
        assert payloads(h.output_now(0)) == [0, 1, 2]
        assert payloads(h.output_now(1)) == [3, 4]
        h.send({"reset": True})
        h.send({"payload": 5})
        await h.settle()
        assert payloads(h.output_now(0)) == [0, 1, 2, 5]


async def test_dl_12_burst_slots_free_up_after_per() -> None:
    async with NodeHarness("delay", {"pause_type": "burst", "rate": 2, "per": "300ms"}) as h:
        for i in range(3):
            h.send({"payload": i})
        await h.settle()
        assert payloads(h.output_now(0)) == [0, 1]
        await asyncio.sleep(0.45)
        h.send({"payload": 3})
        await h.settle()
        assert payloads(h.output_now(0)) == [0, 1, 3]


# -- done / complete -------------------------------------------------------------------------------

async def test_dl_13_complete_fires_when_the_message_is_emitted() -> None:
    nodes = """\
        d: {type: delay, timeout: 400ms}
        c: {type: complete, scope: [d]}
        """
    async with flow(nodes) as h:
        h.watch_output("c")
        start = now()
        h.send("d", {"payload": "x"})
        await asyncio.sleep(0.2)
        assert h.output_now("c") == []  # still waiting in the delay
        [done] = await h.output("c")
        assert now() - start >= 0.4 - EARLY
        assert done["payload"] == "x"
        assert done["complete"]["source"]["id"] == "d"


@pytest.mark.parametrize("pause_type", ["delay", "delayv", "random", "rate"])
async def test_dl_13_complete_fires_when_cleared_or_flushed(pause_type: str) -> None:
    nodes = f"""\
        d: {{type: delay, pause_type: {pause_type}, timeout: 5s, random_first: 5s,
            random_last: 6s, rate: 1, per: 10s}}
        c: {{type: complete, scope: [d]}}
        """
    async with flow(nodes) as h:
        h.watch_output("c")
        h.watch_output("d")
        for i in range(3):
            h.send("d", {"payload": i})
        h.send("d", {"flush": 1})
        await h.settle()
        # rate sends the first message at once; the flush then releases the next one.
        flushed = {0, 1} if pause_type == "rate" else {0}
        assert {m.get("payload") for m in h.output_now("c")} - {None} == flushed
        h.send("d", {"reset": True})
        await h.settle()
        completed = [m.get("payload") for m in h.output_now("c") if "payload" in m]
        assert sorted(completed) == [0, 1, 2]  # every message finished exactly once
        assert payloads(h.output_now("d")) == sorted(flushed)


# -- limits and shutdown ---------------------------------------------------------------------------

async def test_max_queue_drops_extra_messages_with_a_catchable_error() -> None:
    nodes = """\
        d: {type: delay, timeout: 5s, max_queue: 2}
        catcher: {type: catch, scope: [d]}
        """
    async with flow(nodes) as h:
        h.watch_output("catcher")
        h.watch_output("d")
        for i in range(3):
            h.send("d", {"payload": i})
        [caught] = await h.output("catcher")
        assert caught["payload"] == 2
        assert "too many pending messages (max_queue 2)" in caught["error"]["message"]
        h.send("d", {"flush": True})
        assert payloads(await h.output("d", 0, 2)) == [0, 1]


async def test_max_queue_bounds_the_rate_queue() -> None:
    config = {"pause_type": "rate", "rate": 1, "per": "10s", "max_queue": 1}
    async with NodeHarness("delay", config) as h:
        for i in range(3):
            h.send({"payload": i})  # 0 goes, 1 waits, 2 is one too many
        await h.settle()
        assert [e["message"] for e in h.errors] == [
            "too many pending messages (max_queue 1): message dropped"]
        h.send({"flush": True})
        assert payloads(await h.output(0, 2)) == [0, 1]


async def test_close_cancels_the_timers() -> None:
    h = NodeHarness("delay", {"timeout": "200ms"})
    async with h:
        h.send({"payload": 1})
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.4)
    assert h.output_now(0) == []


async def _statuses_of_delay(config: dict[str, Any], msgs: int, wait: float) -> list[str]:
    async with NodeHarness("delay", config) as h:
        for n in range(msgs):
            h.send({"payload": n})
        await h.output(0, msgs, timeout=wait + 2)
        await h.settle()
        return [e["status"].get("text", "") for e in h.statuses if e["node"] == "node"]


async def test_fixed_delay_over_one_second_counts_waiting_messages_on_arrival_and_release() -> None:
    assert await _statuses_of_delay({"timeout": 1.1}, 2, 1.1) == ["1", "2", "1", "0"]


async def test_fixed_delay_of_a_second_or_less_shows_no_count() -> None:
    assert await _statuses_of_delay({"timeout": 0.1}, 2, 0.1) == []


async def test_variable_delay_clears_then_counts_on_release() -> None:
    statuses = await _statuses_of_delay({"pause_type": "delayv", "timeout": 0.05}, 1, 0.05)
    assert statuses == ["1", "", "0"]
