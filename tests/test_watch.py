"""``flowrun --watch`` (flowengine.watch): a changed file restarts only the changed nodes; a
broken edit is reported and leaves the running flows alone; the next good edit applies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowengine.loader import Loader
from flowengine.runtime import Runtime
from flowengine.testing import test_registry
from flowengine.watch import watch_and_reload

INTERVAL = 0.02

FLOW = """\
    flow: watched
    nodes:
      counter:
        type: function
        code: |
          n = context.get("n", default=0) + 1
          context.set("n", n)
          msg["n"] = n
          return msg
        wires: [scale]
      scale:
        type: function
        code: |
          msg["payload"] = msg["n"] * {factor}
          return msg
        wires: [show]
      show:
        type: debug
        console: false
    """


def flow_text(factor: int) -> str:
    return textwrap.dedent(FLOW).format(factor=factor)


class Logs(logging.Handler):
    """The flowengine.watch log lines, with a way to wait for the next one of a kind."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._seen = 0  # lines before this index were already waited past

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    async def wait_for(self, start: str, timeout: float = 5.0) -> str:
        """The next line (after the last one waited for) that starts with ``start``."""
        async with asyncio.timeout(timeout):
            while True:
                for index in range(self._seen, len(self.lines)):
                    if self.lines[index].startswith(start):
                        self._seen = index + 1
                        return self.lines[index]
                await asyncio.sleep(INTERVAL / 2)


@pytest.fixture
def logs() -> Iterator[Logs]:
    handler = Logs()
    logger = logging.getLogger("flowengine.watch")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Runtime, Path, list[dict[str, Any]]]]:
    """A runtime on a flow file in tmp_path, watched; yields it, the file and the debug events."""
    path = tmp_path / "watched.yaml"
    path.write_text(flow_text(2))
    registry = test_registry()
    runtime = Runtime(Loader(registry, {}).load([path]))
    debug: list[dict[str, Any]] = []
    runtime.events.subscribe(lambda kind, data: debug.append(data) if kind == "debug" else None)
    await runtime.start()
    watcher = asyncio.create_task(
        watch_and_reload(runtime, [path], registry, INTERVAL, environ={}))
    await asyncio.sleep(0)  # the watcher takes its first snapshot
    try:
        yield runtime, path, debug
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await runtime.stop()


async def shown(runtime: Runtime, debug: list[dict[str, Any]]) -> str:
    """Send one message through the flow and return what the debug node showed."""
    before = len(debug)
    runtime.deliver("counter", {"payload": None})
    async with asyncio.timeout(2):
        while len(debug) == before:
            await asyncio.sleep(0.005)
    return str(debug[before]["msg"])


async def test_changed_code_restarts_only_that_node(
        running: tuple[Runtime, Path, list[dict[str, Any]]], logs: Logs) -> None:
    runtime, path, debug = running
    assert await shown(runtime, debug) == "2"  # n=1, times 2
    counter, scale, show = (runtime.get_node(i) for i in ("counter", "scale", "show"))

    path.write_text(flow_text(10))
    assert await logs.wait_for("reloaded:") == "reloaded: 0 added, 1 changed, 0 removed " \
        "(changed: scale)"

    assert runtime.get_node("scale") is not scale
    assert runtime.get_node("counter") is counter
    assert runtime.get_node("show") is show
    # The counter kept its instance and its node context: n goes on from 1 to 2.
    assert counter is not None and counter.context.get("n") == 1
    assert await shown(runtime, debug) == "20"


async def test_a_broken_edit_is_reported_and_the_old_flows_keep_running(
        running: tuple[Runtime, Path, list[dict[str, Any]]], logs: Logs) -> None:
    runtime, path, debug = running
    scale = runtime.get_node("scale")

    # A YAML syntax error: reported with file and line, nothing reloaded.
    path.write_text(flow_text(3).replace("    wires: [show]", "    wires: [show"))
    assert await logs.wait_for("not reloaded:") == \
        "not reloaded: 1 error; the running flows are unchanged"
    assert await shown(runtime, debug) == "2"
    assert runtime.get_node("scale") is scale

    # An unknown node type: the same.
    path.write_text(flow_text(3).replace("type: debug", "type: debgu"))
    await logs.wait_for("not reloaded:")
    assert await shown(runtime, debug) == "4"  # n=2, still times 2
    assert runtime.get_node("scale") is scale

    # A fixed edit applies.
    path.write_text(flow_text(3))
    await logs.wait_for("reloaded:")
    assert await shown(runtime, debug) == "9"  # n=3, times 3
    assert runtime.get_node("scale") is not scale


async def test_the_errors_of_a_broken_edit_are_logged_with_their_place(
        running: tuple[Runtime, Path, list[dict[str, Any]]], logs: Logs) -> None:
    runtime, path, _debug = running
    path.write_text(flow_text(3).replace("type: debug", "type: debgu"))
    assert await logs.wait_for("changed:") == f"changed: {path}; reloading"
    await logs.wait_for("not reloaded:")
    assert [line for line in logs.lines if line.startswith(str(path))] == [
        f"{path}:18:11: node 'show', field 'type': unknown node type 'debgu' "
        "(did you mean 'debug'?)"]
    assert runtime.get_node("show") is not None


async def test_a_settings_change_is_reported_as_needing_a_restart(
        running: tuple[Runtime, Path, list[dict[str, Any]]], logs: Logs) -> None:
    runtime, path, debug = running
    path.write_text(flow_text(5).replace("nodes:", "settings:\n  close_timeout: 3s\nnodes:"))
    assert await logs.wait_for("settings changed") == \
        "settings changed; restart flowrun to apply them"
    await logs.wait_for("reloaded:")  # the nodes are reloaded all the same
    assert await shown(runtime, debug) == "5"


async def test_a_new_file_in_a_watched_folder_is_loaded(tmp_path: Path, logs: Logs) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "a.yaml").write_text(flow_text(2))
    registry = test_registry()
    runtime = Runtime(Loader(registry, {}).load([folder]))
    await runtime.start()
    watcher = asyncio.create_task(
        watch_and_reload(runtime, [folder], registry, INTERVAL, environ={}))
    await asyncio.sleep(0)  # the watcher takes its first snapshot
    try:
        (folder / "b.yaml").write_text(textwrap.dedent("""\
            flow: second
            nodes:
              note:
                type: comment
                info: added later
            """))
        assert await logs.wait_for("reloaded:") == \
            "reloaded: 1 added, 0 changed, 0 removed (added: note)"
        assert runtime.get_node("note") is not None
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await runtime.stop()


async def test_an_included_file_is_watched(tmp_path: Path, logs: Logs) -> None:
    main = tmp_path / "main.yaml"
    main.write_text("flow: main\ninclude: [parts/extra.yaml]\n")
    (tmp_path / "parts").mkdir()
    extra = tmp_path / "parts" / "extra.yaml"
    extra.write_text("flow: extra\nnodes:\n  note:\n    type: comment\n    info: one\n")
    registry = test_registry()
    runtime = Runtime(Loader(registry, {}).load([main]))
    await runtime.start()
    note = runtime.get_node("note")
    watcher = asyncio.create_task(
        watch_and_reload(runtime, [main], registry, INTERVAL, environ={}))
    await asyncio.sleep(0)  # the watcher takes its first snapshot
    try:
        extra.write_text(extra.read_text().replace("info: one", "info: two"))
        assert await logs.wait_for("reloaded:") == \
            "reloaded: 0 added, 1 changed, 0 removed (changed: note)"
        new_note = runtime.get_node("note")
        assert new_note is not note and new_note is not None
        assert new_note.config["info"] == "two"
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await runtime.stop()
