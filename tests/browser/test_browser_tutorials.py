"""Two official Kurento tutorials against our media server (issue 10 points 4 and 5): the page
logic in headless Chromium (pages/tutorial.js), the kurento-client logic in Node.js with the
official kurento-client 7.3.0 (tutorials/tutorial.js), as kurento-tutorial-js has them:

* kurento-hello-world-data-channel: a WebRtcEndpoint {useDataChannels: true} connected to
  itself echoes what the page sends on its data channel (several messages, in order, text as
  the tutorial sends, and binary), ``DataChannelOpened``/``DataChannelClosed`` reach the
  client, the tutorial's Close and Open buttons close the channel and open another; and two
  endpoints, one connected to the other, relay one way.
* kurento-loopback-stats: with ``setLatencyStats(true)``, the page's "E2E latency" text is a
  number of milliseconds, not "NaN milliseconds".

The test carries offers, answers and ICE candidates between the two halves (loopback
candidates only, in the tests' network namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browserkit import SignalingServer, candidate_allowed

SCRIPT = Path(__file__).parent / "tutorials" / "tutorial.js"
WAIT = 20.0  # seconds for any one expected fact
MESSAGES: list[tuple[str, Any]] = [
    ("text", "Hello from the tutorial page"), ("text", ""), ("text", "ünïcødé ✓ 🎥"),
    ("binary", [0, 1, 2, 255]), ("binary", []), ("binary", list(range(256)) * 40),
    ("text", "y" * 30_000), *[("text", f"message {i}") for i in range(40)],
]  # fmt: skip


class Tutorial:
    """One run of tutorial.js and the pages it serves (by peer name)."""

    def __init__(self, process: asyncio.subprocess.Process, pages: dict[str, Any]):
        self.process = process
        self.pages = pages
        self.events: list[dict[str, Any]] = []
        self.output: list[str] = []
        self._tasks = [asyncio.ensure_future(self._read()),
                       asyncio.ensure_future(self._page_candidates())]  # fmt: skip

    @classmethod
    async def start(cls, node_modules: Path, mode: str, url: str, pages: dict[str, Any]
                    ) -> Tutorial:  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), mode, url, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NODE_PATH": str(node_modules)})  # fmt: skip
        return cls(process, pages)

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            try:
                event = json.loads(line)
            except ValueError:
                self.output.append(line)  # kurento-client's own logging
                continue
            self.events.append(event)
            page = self.pages.get(event.get("peer", ""))
            if event["event"] == "answer":
                await page.evaluate("sdp => tutorial.processAnswer(sdp)", event["sdp"])
            elif event["event"] == "candidate":
                candidate = {k: event["candidate"][k]
                             for k in ("candidate", "sdpMid", "sdpMLineIndex")}  # fmt: skip
                await page.evaluate("c => tutorial.addIceCandidate(c)", candidate)

    async def _page_candidates(self) -> None:
        while True:
            for peer, page in self.pages.items():
                for candidate in await page.evaluate("tutorial.takeCandidates()"):
                    if candidate_allowed(candidate["candidate"]):
                        self.send(cmd="candidate", peer=peer, candidate=candidate)
            await asyncio.sleep(0.05)

    async def offer(self, peer: str, data_channel: bool) -> str:
        sdp = await self.pages[peer].evaluate(
            "options => tutorial.start(options)", {"dataChannel": data_channel}
        )
        self.send(cmd="offer", peer=peer, sdp=sdp)
        return sdp

    def of(self, event: str, peer: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events
                if e["event"] == event and (peer is None or e.get("peer") == peer)]  # fmt: skip

    async def wait(self, what: str, check: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + WAIT
        while True:
            failed = self.of("failed")
            assert not failed, f"tutorial.js failed: {failed}; output {self.output[-20:]}"
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            if time.monotonic() > deadline:
                states = {p: await page.evaluate("tutorial.state()")
                          for p, page in self.pages.items()}  # fmt: skip
                raise AssertionError(f"{what}: not within {WAIT}s; events {self.events[-10:]}; "
                                     f"pages {json.dumps(states)[:3000]}")
            await asyncio.sleep(0.05)

    async def state(self, peer: str) -> dict[str, Any]:
        return await self.pages[peer].evaluate("tutorial.state()")

    async def stats(self, peer: str, media_type: str | None = None) -> dict[str, Any]:
        count = len(self.of("stats", peer))
        self.send(cmd="stats", peer=peer, mediaType=media_type)
        await self.wait("stats", lambda: len(self.of("stats", peer)) > count)
        return self.of("stats", peer)[-1]["stats"]

    async def stop(self) -> None:
        self.send(cmd="stop")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 10)
        await self.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def tutorial(kurento_js: Path, media_server, browser: Any, signaling: SignalingServer):
    """``await tutorial(mode, "a", ...)``: tutorial.js in ``mode`` and one page per name."""
    context = await browser.new_context()
    runs: list[Tutorial] = []

    async def _start(mode: str, *peers: str) -> Tutorial:
        pages = {}
        for peer in peers:
            pages[peer] = await context.new_page()
            await pages[peer].goto(signaling.page_url("tutorial.html"))
        run = await Tutorial.start(kurento_js, mode, media_server.url, pages)
        runs.append(run)
        return run

    yield _start
    for run in runs:
        await run.close()
    await context.close()


def channel_ids(run: Tutorial, event: str, peer: str) -> list[int]:
    return [e["channelId"] for e in run.of(event, peer)]


async def received(run: Tutorial, peer: str, count: int) -> list[dict[str, Any]]:
    async def enough() -> list | None:
        got = (await run.state(peer))["received"]
        return got if len(got) >= count else None

    return await run.wait(f"{count} messages on page {peer}", enough)


async def open_channel_id(run: Tutorial, peer: str, label: str) -> int:
    async def is_open() -> int | None:
        channel = (await run.state(peer))["channel"]
        return channel["id"] if channel and channel["label"] == label and channel[
            "state"] == "open" else None  # fmt: skip

    return await run.wait(f"{label} open on page {peer}", is_open)


async def test_hello_world_data_channel_echoes_and_reopens(tutorial):
    run = await tutorial("hello-world-data-channel", "page")
    offer = await run.offer("page", data_channel=True)
    assert "m=application" in offer
    channel_id = await open_channel_id(run, "page", "TestChannel0")
    await run.wait("DataChannelOpened twice (as KMS 7.3)",
                   lambda: channel_ids(run, "DataChannelOpened", "page") == [channel_id] * 2)
    await run.wait("the camera comes back (loopback)",
                   lambda: _frames(run, "page"))  # fmt: skip

    for kind, value in MESSAGES:
        await run.pages["page"].evaluate("([k, v]) => tutorial.send(k, v)", [kind, value])
    echoed = await received(run, "page", len(MESSAGES))
    assert [(m["type"], m["value"]) for m in echoed] == MESSAGES

    stats = await run.stats("page")
    session = [s for s in stats.values() if s["type"] == "session"]
    channels = [s for s in stats.values() if s["type"] == "datachannel"]
    assert [(s["__type__"], s["dataChannelsOpened"], s["dataChannelsClosed"])
            for s in session] == [("RTCPeerConnectionStats", 1, 0)]  # fmt: skip
    assert [(c["label"], c["datachannelid"], c["state"], c["messagesReceived"],
             c["messagesSent"]) for c in channels] == [
        ("TestChannel0", channel_id, "open", len(MESSAGES), len(MESSAGES))]  # fmt: skip

    # The tutorial's Close button, then its Open button: a new channel, echoed again.
    await run.pages["page"].evaluate("tutorial.closeChannel()")
    await run.wait("DataChannelClosed twice",
                   lambda: channel_ids(run, "DataChannelClosed", "page") == [channel_id] * 2)
    await run.pages["page"].evaluate("tutorial.openChannel()")
    second = await open_channel_id(run, "page", "TestChannel1")
    await run.wait("DataChannelOpened for the new channel",
                   lambda: channel_ids(run, "DataChannelOpened", "page")[2:] == [second] * 2)
    await run.pages["page"].evaluate("tutorial.send('text', 'after reopening')")
    assert (await received(run, "page", len(MESSAGES) + 1))[-1] == {
        "type": "text", "value": "after reopening"}  # fmt: skip
    assert (await run.state("page"))["errors"] == []
    await run.stop()
    assert run.of("stopped")


async def test_data_channel_relay_from_one_endpoint_to_another(tutorial):
    run = await tutorial("data-channel-relay", "a", "b")
    for peer in ("a", "b"):
        await run.offer(peer, data_channel=True)
        await open_channel_id(run, peer, "TestChannel0")
    await run.wait("a.connect(b)", lambda: run.of("connected"))
    for i in range(10):
        await run.pages["a"].evaluate("i => tutorial.send('text', 'from a ' + i)", i)
        await run.pages["b"].evaluate("i => tutorial.send('binary', [i])", i)
    got = await received(run, "b", 10)
    assert [m["value"] for m in got] == [f"from a {i}" for i in range(10)]
    await asyncio.sleep(1.0)
    assert (await run.state("a"))["received"] == []  # b is connected to nobody
    await run.stop()


async def test_loopback_stats_shows_e2e_latency_in_milliseconds(tutorial):
    run = await tutorial("loopback-stats", "page")
    # The page also opens a data channel: this endpoint has no useDataChannels, so the answer
    # rejects the data section (as KMS) and Chromium must still take it and play the video.
    await run.offer("page", data_channel=True)
    await run.wait("the camera comes back (loopback)", lambda: _frames(run, "page"))

    def latencies() -> list[dict[str, Any]] | None:
        found = [e for e in run.of("e2eLatency", "page")
                 if not e["text"].startswith(("NaN", "0 "))]  # fmt: skip
        return found if len(found) >= 3 else None

    shown = await run.wait("three E2E latency readings of the tutorial page", latencies)
    for reading in shown:
        text = reading["text"]
        assert re.fullmatch(r"\d+(\.\d+)? milliseconds", text), text
        assert 0 < float(text.split()[0]) <= 500, text  # measured, and under half a second
        [entry] = reading["stats"]["E2ELatency"]
        assert (entry["name"], entry["type"]) == ("sink_video_default", "VIDEO")
        assert entry["avg"] == reading["stats"]["videoE2ELatency"]
        # Kurento 7's version of the line divides a MediaLatencyStat object: NaN on KMS too.
        assert reading["text7"] == "NaN milliseconds"
    state = await run.state("page")
    assert state["channel"]["state"] != "open" and state["received"] == []
    await run.stop()


async def _frames(run: Tutorial, peer: str) -> bool:
    state = await run.state(peer)
    return state["videoWidth"] > 0 and state["frames"] > 10
