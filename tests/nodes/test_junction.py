"""The junction node: a wiring point that passes messages through unchanged."""

from __future__ import annotations

import textwrap

from flowengine.testing import FlowHarness, NodeHarness


async def test_junction_passes_the_message_unchanged() -> None:
    async with NodeHarness("junction", {}) as h:
        h.send({"payload": {"a": [1, 2]}, "topic": "t", "_msgid": "M"})
        [out] = await h.output(0)
        assert out == {"payload": {"a": [1, 2]}, "topic": "t", "_msgid": "M"}


async def test_junction_fans_out_to_every_wire_with_copies() -> None:
    nodes = """\
        j: {type: junction, wires: [a, b]}
        a: {type: function, code: 'msg["payload"]["seen"] = "a"; return msg'}
        b: {type: function, code: 'return msg'}
        """
    text = "flow: f\nnodes:\n" + textwrap.indent(textwrap.dedent(nodes), "  ")
    async with FlowHarness.from_yaml(text) as h:
        h.watch_output("a")
        h.watch_output("b")
        h.send("j", {"payload": {"n": 1}})
        [from_a] = await h.output("a")
        [from_b] = await h.output("b")
        assert from_a["payload"] == {"n": 1, "seen": "a"}
        assert from_b["payload"] == {"n": 1}  # b got its own copy
