"""catch, status and complete: Node-RED's cases CA-01..CA-06, ST-01..ST-02, CO-01..CO-02 in
docs/reference/nodered-cases.md.

A flow file plays the part of a Node-RED tab. Errors are raised with a function node's
``node.error("my-error", msg)``; statuses with ``node.status(...)``. CA-07 (the error loop guard)
is in tests/test_runtime.py. Groups (CA-03) and subflows (CA-05, ST-03) do not exist here.
"""

from __future__ import annotations

import textwrap
from typing import Any

from flowengine.testing import FlowHarness

ERROR_CODE = 'node.error("my-error", msg)'


def flow(nodes: str) -> FlowHarness:
    return FlowHarness.from_yaml("flow: f\nnodes:\n" + textwrap.indent(textwrap.dedent(nodes),
                                                                       "  "))


def outputs(h: FlowHarness, *node_ids: str) -> dict[str, list[dict[str, Any]]]:
    return {node_id: h.output_now(node_id) for node_id in node_ids}


async def run(h: FlowHarness, watched: tuple[str, ...], sends: list[tuple[str, dict[str, Any]]]
              ) -> dict[str, list[dict[str, Any]]]:
    """Watch the outputs of ``watched``, send the messages, wait until all is quiet."""
    for node_id in watched:
        h.watch_output(node_id)
    for node_id, msg in sends:
        h.send(node_id, msg)
    await h.settle()
    return outputs(h, *watched)


# -- catch ----------------------------------------------------------------------------------------


async def test_ca_01_every_catch_without_scope_gets_it_uncaught_does_not() -> None:
    nodes = f"""\
        n1: {{type: function, name: a, code: '{ERROR_CODE}'}}
        sn: {{type: catch}}
        sn2: {{type: catch, scope: all}}
        sn3: {{type: catch, uncaught: true}}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("sn", "sn2", "sn3"), [("n1", {"a": "foo", "_msgid": "M"})])
    expected = {"a": "foo", "_msgid": "M", "error": {
        "message": "my-error", "source": {"id": "n1", "type": "function", "name": "a",
                                          "count": 1}}}
    assert seen == {"sn": [expected], "sn2": [expected], "sn3": []}


async def test_ca_02_scoped_and_uncaught_catches() -> None:
    nodes = f"""\
        n1: {{type: function, code: '{ERROR_CODE}'}}
        n2: {{type: function, code: 'return msg'}}
        n3: {{type: function, code: '{ERROR_CODE}'}}
        sn: {{type: catch, scope: [n2]}}
        sn2: {{type: catch, scope: [n1]}}
        sn3: {{type: catch, uncaught: true}}
        sn4: {{type: catch, uncaught: true}}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("sn", "sn2", "sn3", "sn4"), [("n1", {"payload": 1})])
        assert [len(seen[k]) for k in ("sn", "sn2", "sn3", "sn4")] == [0, 1, 0, 0]
        seen = await run(h, ("sn", "sn2", "sn3", "sn4"), [("n3", {"payload": 3})])
    assert [len(seen[k]) for k in ("sn", "sn2", "sn3", "sn4")] == [0, 1, 1, 1]
    assert [m["error"]["source"]["id"] for m in seen["sn3"] + seen["sn4"]] == ["n3", "n3"]


async def test_ca_04_an_existing_error_moves_to__error() -> None:
    nodes = f"""\
        n1: {{type: function, code: '{ERROR_CODE}'}}
        sn: {{type: catch}}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("sn",), [("n1", {"a": "foo", "error": "existing"})])
    [msg] = seen["sn"]
    assert msg["_error"] == "existing"
    assert msg["error"]["message"] == "my-error"


async def test_ca_04_each_catch_gets_its_own_copy() -> None:
    nodes = f"""\
        n1: {{type: function, code: '{ERROR_CODE}'}}
        sn: {{type: catch, wires: [mutate]}}
        sn2: {{type: catch, wires: [look]}}
        mutate:
          type: function
          code: |
            msg["error"]["source"]["id"] = "changed"
            msg["payload"]["x"] = "changed"
            return msg
        look: {{type: function, code: 'return msg'}}
        """
    async with flow(nodes) as h:
        h.send("n1", {"payload": {"x": 1}})
        [looked] = await h.received("look")
        await h.settle()
    assert looked["error"]["source"]["id"] == "n1" and looked["payload"] == {"x": 1}


async def test_ca_06_scoped_all_and_uncaught() -> None:
    nodes = f"""\
        f: {{type: function, code: '{ERROR_CODE}'}}
        g: {{type: function, code: '{ERROR_CODE}'}}
        scoped: {{type: catch, scope: [f]}}
        every: {{type: catch}}
        leftover: {{type: catch, uncaught: true}}
        """
    watched = ("scoped", "every", "leftover")
    async with flow(nodes) as h:
        from_f = await run(h, watched, [("f", {"payload": "E1"})])
        assert {k: [m["payload"] for m in v] for k, v in from_f.items()} == {
            "scoped": ["E1"], "every": ["E1"], "leftover": []}
        from_g = await run(h, watched, [("g", {"payload": "E2"})])
    assert {k: [m["payload"] for m in v] for k, v in from_g.items()} == {
        "scoped": ["E1"], "every": ["E1", "E2"], "leftover": []}


async def test_ca_06_uncaught_gets_what_no_other_catch_covers() -> None:
    nodes = f"""\
        f: {{type: function, code: '{ERROR_CODE}'}}
        g: {{type: function, code: '{ERROR_CODE}'}}
        scoped: {{type: catch, scope: [f]}}
        leftover: {{type: catch, uncaught: true}}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("scoped", "leftover"), [("f", {"payload": "E1"}),
                                                      ("g", {"payload": "E2"})])
    assert [m["payload"] for m in seen["scoped"]] == ["E1"]
    assert [m["payload"] for m in seen["leftover"]] == ["E2"]


async def test_catch_does_not_see_an_error_reported_without_a_message() -> None:
    nodes = """\
        n1: {type: function, code: 'node.error("log only")'}
        sn: {type: catch}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("sn",), [("n1", {"payload": 1})])
    assert seen == {"sn": []}
    assert [e["message"] for e in h.errors] == ["log only"]


# -- status ---------------------------------------------------------------------------------------


STATUS_CODE = 'node.status({"text": "my-status", "random": "otherProperty"})'


async def test_st_01_status_reaches_status_nodes_in_scope() -> None:
    nodes = f"""\
        n1: {{type: function, name: a, code: '{STATUS_CODE}'}}
        every: {{type: status}}
        other: {{type: status, scope: [n2]}}
        mine: {{type: status, scope: [n1]}}
        n2: {{type: function, code: 'return msg'}}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("every", "other", "mine"), [("n1", {"payload": 1})])
    expected = {"text": "my-status", "random": "otherProperty",
                "source": {"id": "n1", "type": "function", "name": "a"}}
    assert [m["status"] for m in seen["every"]] == [expected]
    assert [m["status"] for m in seen["mine"]] == [expected]
    assert seen["other"] == []
    assert set(seen["every"][0]) == {"status", "_msgid"}  # a new message, no payload


async def test_st_02_status_shapes() -> None:
    code = """\
        node.status({"fill": "red", "shape": "dot", "text": 42})
        node.status("plain")
        node.status({})
        """
    nodes = f"""\
        n1:
          type: function
          code: |
{textwrap.indent(textwrap.dedent(code), " " * 12)}
        watch: {{type: status}}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("watch",), [("n1", {"payload": 1})])
    source = {"id": "n1", "type": "function"}  # unnamed: no name, as in Node-RED
    assert [m["status"] for m in seen["watch"]] == [
        {"fill": "red", "shape": "dot", "text": "42", "source": source},
        {"text": "plain", "source": source},
        {"source": source},
    ]
    assert h.node("n1").last_status == {}


async def test_status_node_leaves_out_nodes_it_is_wired_to() -> None:
    # Node-RED's loop guard: a status node scoped to a node it feeds would feed on itself.
    nodes = """\
        n1:
          type: function
          code: |
            node.status({"text": str(msg.get("status", {}).get("text", "start")) + "+"})
        watch: {type: status, scope: [n1], wires: [n1]}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("watch",), [("n1", {"payload": 1})])
    assert seen == {"watch": []}
    assert h.node("n1").last_status == {"text": "start+"}


# -- complete -------------------------------------------------------------------------------------


async def test_co_01_complete_gets_messages_the_scoped_nodes_finished() -> None:
    nodes = """\
        n1: {type: function, code: 'return msg'}
        n2: {type: function, code: 'return msg'}
        n3: {type: function, code: 'return None'}
        done: {type: complete, scope: [n1, n3]}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("done",), [("n1", {"payload": 1}), ("n2", {"payload": 2}),
                                        ("n3", {"payload": 3})])
    assert [(m["payload"], m["complete"]["source"]["id"]) for m in seen["done"]] == [
        (1, "n1"), (3, "n3")]


async def test_co_02_complete_payloads() -> None:
    nodes = """\
        returns: {type: function, name: R, code: 'return msg'}
        calls-done:
          type: function
          code: |
            msg["payload"] = "changed"
            node.done()
        raises: {type: function, code: 'raise RuntimeError("no")'}
        done: {type: complete, scope: [returns, calls-done, raises]}
        """
    async with flow(nodes) as h:
        seen = await run(h, ("done",), [("returns", {"payload": "r", "_msgid": "M"}),
                                        ("calls-done", {"payload": "d"}),
                                        ("raises", {"payload": "x"})])
    [returned, called] = seen["done"]
    assert returned == {"payload": "r", "_msgid": "M", "complete": {
        "source": {"id": "returns", "type": "function", "name": "R"}}}
    assert called["payload"] == "changed"
    assert called["complete"]["source"]["id"] == "calls-done"
    assert [e["node"] for e in h.errors] == ["raises"]


async def test_complete_node_leaves_out_nodes_it_is_wired_to() -> None:
    nodes = """\
        n1: {type: function, code: 'return None'}
        n2: {type: function, code: 'return None'}
        done: {type: complete, scope: [n1, n2], wires: [n1]}
        """
    async with flow(nodes) as h:
        h.watch_output("done")
        h.send("n1", {"payload": 1})
        h.send("n2", {"payload": 2})
        await h.settle()
        seen = h.output_now("done")
        fed_back = h.received_now("n1")
    assert [m["complete"]["source"]["id"] for m in seen] == ["n2"]
    # n1 got its own message and n2's completion, and finishing that one fed nothing back.
    assert [m["payload"] for m in fed_back] == [1, 2]
