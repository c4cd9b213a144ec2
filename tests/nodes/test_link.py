"""``link in``, ``link out`` and ``link call``, with Node-RED's cases LK-01..LK-09
(docs/reference/nodered-cases.md, docs/reference/nodered-runtime.md §6)."""

from __future__ import annotations

import asyncio
import re
import textwrap
from pathlib import Path

import pytest

from flowengine import FlowLoadError
from flowengine.loader import Loader
from flowengine.testing import FlowHarness, test_registry


def flow_files(tmp_path: Path, **flows: str) -> list[Path]:
    """Write one flow file per keyword (the flow's name) and return their paths."""
    paths = []
    for name, nodes in flows.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"flow: {name}\nnodes:\n" + textwrap.indent(textwrap.dedent(nodes), "  "))
        paths.append(path)
    return paths


def caught_messages(h: FlowHarness) -> list[str]:
    return [e["message"] for e in h.errors]


# -- LK-01, LK-02: link out -> link in -----------------------------------------------------------

async def test_lk_01_link_out_delivers_to_link_in_with_event() -> None:
    flow = """\
flow: test
nodes:
  n1: {type: link out, links: [n2]}
  n2: {type: link in, wires: [n3]}
  n3: {type: debug, console: false}
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("n1", {"payload": "hello", "topic": "t"})
        [msg] = await h.received("n3")
    assert msg["payload"] == "hello"
    assert msg["topic"] == "t"
    assert msg["_event"] == "node:n1"


async def test_lk_02_one_link_out_to_two_link_ins_clones() -> None:
    flow = """\
flow: test
nodes:
  n1: {type: link out, links: [n2, n3]}
  n2: {type: link in, wires: [change]}
  n3: {type: link in, wires: [n4]}
  change:
    type: function
    code: |
      msg["payload"] = "changed"
      return msg
    wires: [n4]
  n4: {type: debug, console: false}
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("n1", {"payload": "hello"})
        received = await h.received("n4", 2)
    # Each link in got its own copy: the change on one path is not seen on the other.
    assert sorted(m["payload"] for m in received) == ["changed", "hello"]


async def test_lk_02_two_link_outs_to_one_link_in() -> None:
    flow = """\
flow: test
nodes:
  a: {type: link out, links: [n3]}
  b: {type: link-out, links: [n3]}
  n3: {type: link-in, wires: [n4]}
  n4: {type: debug, console: false}
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("a", {"payload": 1})
        h.send("b", {"payload": 2})
        received = await h.received("n4", 2)
    assert [(m["payload"], m["_event"]) for m in received] == [(1, "node:a"), (2, "node:b")]


async def test_link_out_across_flows(tmp_path: Path) -> None:
    paths = flow_files(tmp_path, main="""\
        out: {type: link out, links: [other-in]}
        """, other="""\
        other-in: {type: link in, wires: [sink]}
        sink: {type: debug, console: false}
        """)
    async with FlowHarness.from_files(paths) as h:
        h.send("out", {"payload": "across"})
        [msg] = await h.received("sink")
    assert msg["payload"] == "across"


def test_link_out_to_a_node_that_is_not_a_link_in_is_a_load_error() -> None:
    flow = """\
flow: test
nodes:
  out: {type: link out, links: [sink]}
  sink: {type: debug}
"""
    with pytest.raises(FlowLoadError) as info:
        FlowHarness.from_yaml(flow)
    assert "'sink' is a 'debug' node, expected a 'link in'" in str(info.value)


# -- LK-03, LK-09: static link call ----------------------------------------------------------------

SUBROUTINE = """\
flow: test
nodes:
  call: {type: link call, links: [link-in-1], wires: [out]}
  link-in-1: {type: link in, wires: [set-123]}
  set-123:
    type: function
    code: |
      msg["payload"] = "123"
      return msg
    wires: [ret]
  ret: {type: link out, mode: return}
  out: {type: debug, console: false}
  finished: {type: complete, scope: [call], wires: [done-sink]}
  done-sink: {type: debug, console: false}
"""


async def test_lk_03_static_call_gets_the_response() -> None:
    async with FlowHarness.from_yaml(SUBROUTINE) as h:
        h.send("call", {"payload": "x"})
        [msg] = await h.received("out")
        [done] = await h.received("done-sink")
    assert msg["payload"] == "123"
    assert "_linkSource" not in msg  # LK-09: removed once empty
    # The call finishes its message when the subroutine returns.
    assert done["complete"]["source"]["id"] == "call"
    assert done["payload"] == "123"


async def test_lk_09_link_source_inside_the_subroutine() -> None:
    async with FlowHarness.from_yaml(SUBROUTINE) as h:
        h.send("call", {"payload": "x"})
        [inside] = await h.received("set-123")
        await h.received("out")
    [entry] = inside["_linkSource"]
    assert entry["node"] == "call"
    assert re.fullmatch(r"[0-9a-f]{28}", entry["id"])


async def test_lk_09_returned_message_carries_the_return_nodes_event() -> None:
    # Node-RED 5.0.7's link out sets msg._event in return mode too (checked with the
    # differential test, link-call-static).
    flow = """\
flow: test
nodes:
  call: {type: link call, links: [first-in], wires: [out]}
  first-in: {type: link in, wires: [hop]}
  hop: {type: link out, links: [second-in]}
  second-in: {type: link in, wires: [ret]}
  ret: {type: link out, mode: return}
  out: {type: debug, console: false}
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("call", {"payload": 1})
        [msg] = await h.received("out")
    assert msg["_event"] == "node:ret"
    assert "_linkSource" not in msg


async def test_return_timer_is_cancelled_after_return() -> None:
    text = SUBROUTINE.replace("links: [link-in-1],", "links: [link-in-1], timeout: 100ms,")
    async with FlowHarness.from_yaml(text) as h:
        h.send("call", {"payload": "x"})
        await h.received("out")
        await asyncio.sleep(0.2)
    assert h.errors == []


async def test_return_without_link_source_warns() -> None:
    async with FlowHarness.from_yaml(SUBROUTINE) as h:
        h.send("ret", {"payload": "lost"})
        await h.settle()
        await asyncio.sleep(0.05)
    warnings = [d for kind, d in h.events if kind == "log" and d["node"] == "ret"]
    assert [(w["level"], w["message"]) for w in warnings] == [
        ("WARNING", "Missing return node information")]
    assert h.received_now("out") == []


def test_static_call_without_target_is_a_load_error() -> None:
    flow = """\
flow: test
nodes:
  call: {type: link call}
"""
    with pytest.raises(FlowLoadError) as info:
        FlowHarness.from_yaml(flow)
    assert "field 'links': a static link call needs its target" in str(info.value)


# -- LK-04: dynamic call by name -------------------------------------------------------------------

def dynamic_flows(tmp_path: Path, *, local: int = 1, elsewhere: int = 1) -> list[Path]:
    """A dynamic link call in flow "main"; ``local`` subroutines named "double payload" in main
    and ``elsewhere`` more in flow "other" (which answer "wrong")."""
    main = """\
        call: {type: link call, link_type: dynamic, timeout: 1s, wires: [out]}
        out: {type: debug, console: false}
        on-error: {type: catch, scope: [call], wires: [errors]}
        errors: {type: debug, console: false}
        ret: {type: link out, mode: return}
        double:
          type: function
          code: |
            msg["payload"] *= 2
            return msg
          wires: [ret]
        """
    main = textwrap.dedent(main)
    for i in range(local):
        main += f"local-{i}: {{type: link in, name: double payload, wires: [double]}}\n"
    other = """\
        wrong:
          type: function
          code: |
            msg["payload"] = "wrong"
            return msg
          wires: [other-ret]
        other-ret: {type: link out, mode: return}
        """
    other = textwrap.dedent(other)
    for i in range(elsewhere):
        other += f"other-{i}: {{type: link in, name: double payload, wires: [wrong]}}\n"
    return flow_files(tmp_path, main=main, other=other)


async def test_lk_04_dynamic_name_prefers_the_same_flow(tmp_path: Path) -> None:
    async with FlowHarness.from_files(dynamic_flows(tmp_path)) as h:
        h.send("call", {"payload": 4, "target": "double payload"})
        [msg] = await h.received("out")
    assert msg["payload"] == 8


async def test_dynamic_target_by_id_and_by_name_in_another_flow(tmp_path: Path) -> None:
    async with FlowHarness.from_files(dynamic_flows(tmp_path, local=0)) as h:
        h.send("call", {"payload": 4, "target": "double payload"})
        h.send("call", {"payload": 4, "target": "other-0"})
        received = await h.received("out", 2)
    assert [m["payload"] for m in received] == ["wrong", "wrong"]


async def test_dynamic_target_not_found(tmp_path: Path) -> None:
    async with FlowHarness.from_files(dynamic_flows(tmp_path)) as h:
        h.send("call", {"payload": 4, "target": "nope"})
        h.send("call", {"payload": 4})
        caught = await h.received("errors", 2)
    assert [m["error"]["message"] for m in caught] == [
        "target link-in node 'nope' not found", "target link-in node 'undefined' not found"]


# -- LK-05: timeout -------------------------------------------------------------------------------

async def test_lk_05_timeout_is_a_catchable_error_with_the_called_message() -> None:
    flow = """\
flow: test
nodes:
  link-call: {type: link call, link_type: dynamic, timeout: 150ms, wires: [out]}
  target: {type: link in, name: double payload, wires: [no-return]}
  no-return: {type: link out}
  out: {type: debug, console: false}
  on-error: {type: catch, scope: [link-call], wires: [errors]}
  errors: {type: debug, console: false}
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("link-call", {"payload": 4, "target": "double payload"})
        [caught] = await h.received("errors", timeout=1.0)
    assert caught["target"] == "double payload"
    assert caught["payload"] == 4
    assert caught["error"]["message"] == "timeout"
    assert caught["error"]["source"] == {"id": "link-call", "type": "link call", "count": 1}
    assert caught["_linkSource"] == []
    assert h.received_now("out") == []


async def test_pending_calls_are_cancelled_on_close() -> None:
    flow = """\
flow: test
nodes:
  call: {type: link call, links: [target], timeout: 100ms}
  target: {type: link in}
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("call", {"payload": 1})
        await h.received("target")
    await asyncio.sleep(0.2)
    assert h.errors == []


# -- LK-06: ambiguous names ------------------------------------------------------------------------

async def test_lk_06_multiple_targets_on_the_same_flow(tmp_path: Path) -> None:
    async with FlowHarness.from_files(dynamic_flows(tmp_path, local=2, elsewhere=0)) as h:
        h.send("call", {"payload": 4, "target": "double payload"})
        [caught] = await h.received("errors")
        await h.settle()
    assert caught["error"]["message"] == "Multiple link-in nodes named 'double payload' found"
    assert h.received_now("double") == []
    assert h.received_now("out") == []


async def test_lk_06_multiple_targets_on_other_flows(tmp_path: Path) -> None:
    async with FlowHarness.from_files(dynamic_flows(tmp_path, local=0, elsewhere=2)) as h:
        h.send("call", {"payload": 4, "target": "double payload"})
        [caught] = await h.received("errors")
        await h.settle()
    assert re.match(r"Multiple link-in nodes", caught["error"]["message"])
    assert h.received_now("wrong") == []


# -- LK-07: nested calls ---------------------------------------------------------------------------

async def test_lk_07_nested_link_calls() -> None:
    flow = """\
flow: test
nodes:
  start: {type: link call, links: [li3], wires: [out]}
  li3: {type: link in, wires: [call-double]}
  call-double: {type: link call, links: [li1], wires: [call-triple]}
  call-triple: {type: link call, links: [li2], wires: [r3]}
  r3: {type: link out, mode: return}
  li1: {type: link in, wires: [double]}
  double:
    type: function
    code: |
      msg["payload"] *= 2
      return msg
    wires: [r1]
  r1: {type: link out, mode: return}
  li2: {type: link in, wires: [triple]}
  triple:
    type: function
    code: |
      msg["depth"] = len(msg["_linkSource"])
      msg["payload"] *= 3
      return msg
    wires: [r2]
  r2: {type: link out, mode: return}
  out: {type: debug, console: false}
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("start", {"payload": 4})
        [msg] = await h.received("out")
    assert msg["payload"] == 24
    assert msg["depth"] == 2  # start's call and call-triple's call were both open
    assert "_linkSource" not in msg
    assert h.errors == []


# -- LK-08: rename, then redeploy ------------------------------------------------------------------

async def test_lk_08_renaming_a_duplicate_link_in_then_reloading() -> None:
    flow = """\
flow: test
nodes:
  call: {type: link call, link_type: dynamic, timeout: 1s, wires: [out]}
  first: {type: link in, name: double payload, wires: [double]}
  second: {type: link in, name: double payload, wires: [double]}
  double:
    type: function
    code: |
      msg["payload"] *= 2
      return msg
    wires: [ret]
  ret: {type: link out, mode: return}
  out: {type: debug, console: false}
"""
    async with FlowHarness.from_yaml(flow) as h:
        h.send("call", {"payload": 1, "target": "add"})
        await h.settle()
        assert caught_messages(h) == ["target link-in node 'add' not found"]
        renamed = flow.replace("second: {type: link in, name: double payload",
                               "second: {type: link in, name: add")
        summary = await h.runtime.reload(Loader(test_registry()).load_text(renamed))
        assert summary["changed"] == ["second"]
        h.send("call", {"payload": 2, "target": "add"})
        h.send("call", {"payload": 3, "target": "double payload"})
        received = await h.received("out", 2)
    assert [m["payload"] for m in received] == [4, 6]
    assert len(h.errors) == 1
