"""Groups at run time, as Node-RED 5 runs them: their env (nested groups, ``$parent.``, built-in
names) seen by their nodes before the flow's, in ``${NAME}`` at load time and ``env.get`` at run
time; catch and status nodes with ``scope: group``, the nearest group first; load errors.
tests/nodered_diff checks the same behaviours against the real Node-RED."""

from __future__ import annotations

import textwrap

import pytest

from flowengine.errors import FlowLoadError
from flowengine.loader import Loader
from flowengine.testing import FlowHarness, test_registry

READER = ("{type: function, group: inner, code: \"msg['payload'] = {n: env.get(n) for n in "
          "msg['names']}; return msg\", wires: [out]}")

FLOW = """\
    flow: main
    env: {WHO: flow, UNIT: m, DEPTH: 0}
    groups:
      outer:
        name: Outer
        env: {WHO: outer, LEVEL: "${WHO} level", DEPTH: 1, ECHO: outer echo}
      inner:
        group: outer
        env: {WHO: inner, SIBLING: "${WHO}", BOTH: "${WHO}/${UNIT}", ECHO: "${ECHO}!"}
    nodes:
      read: READER
      label:
        type: change
        group: inner
        rules: [{set: topic, to: "${WHO} in ${NR_GROUP_NAME}"}]
        wires: [out]
      out: {type: debug, active: false}
    """


def harness(text: str = FLOW) -> FlowHarness:
    return FlowHarness.from_yaml(textwrap.dedent(text).replace("READER", READER), environ={})


async def test_nodes_see_their_group_env_then_the_outer_groups_then_the_flow() -> None:
    names = ["WHO", "LEVEL", "UNIT", "DEPTH", "$parent.WHO", "SIBLING", "BOTH", "ECHO",
             "NR_GROUP_NAME", "NR_GROUP_ID", "NR_FLOW_NAME"]
    async with harness() as h:
        h.send("read", {"names": names})
        [msg] = await h.received("out")
    assert msg["payload"] == {
        "WHO": "inner", "LEVEL": "outer level", "UNIT": "m", "DEPTH": 1, "$parent.WHO": "outer",
        # A value sees the values of its own level first; one naming itself, the level around.
        "SIBLING": "inner", "BOTH": "inner/m", "ECHO": "outer echo!",
        "NR_GROUP_NAME": "", "NR_GROUP_ID": "inner", "NR_FLOW_NAME": "main"}


async def test_env_references_in_a_grouped_node_are_read_from_its_groups() -> None:
    async with harness() as h:
        h.send("label", {})
        [msg] = await h.received("out")
    assert msg["topic"] == "inner in "  # the inner group has no name


CATCH_FLOW = """\
    flow: main
    groups:
      outer: {name: outer}
      inner: {name: inner, group: outer}
    nodes:
      deep: {type: json, group: inner}
      shallow: {type: json, group: outer}
      loose: {type: json}
      c-inner: {type: catch, scope: group, group: inner, wires: [inner-errors]}
      c-outer: {type: catch, scope: group, group: outer, wires: [outer-errors]}
      c-all: {type: catch, uncaught: true, wires: [uncaught-errors]}
      inner-errors: {type: debug, active: false}
      outer-errors: {type: debug, active: false}
      uncaught-errors: {type: debug, active: false}
    """


async def test_a_catch_scoped_to_its_group_hears_the_nodes_of_the_groups_inside_it() -> None:
    async with harness(CATCH_FLOW) as h:
        for node in ("deep", "shallow", "loose"):
            h.send(node, {"payload": "{bad"})
        await h.settle()

        def sources(debug: str) -> list[str]:
            return [m["error"]["source"]["id"] for m in h.received_now(debug)]
        assert sources("inner-errors") == ["deep"]
        assert sources("outer-errors") == ["deep", "shallow"]
        assert sources("uncaught-errors") == ["loose"]


async def test_the_nearest_catch_hears_an_error_first() -> None:
    flow = """\
        flow: main
        groups:
          outer: {name: outer}
          inner: {name: inner, group: outer}
        nodes:
          deep: {type: json, group: inner}
          c-outer: {type: catch, scope: group, group: outer, wires: [by-outer]}
          c-inner: {type: catch, scope: group, group: inner, wires: [by-inner]}
          c-loose: {type: catch, uncaught: true, group: inner, wires: [by-loose]}
          by-outer: {type: change, rules: [{set: by, to: outer}], wires: [errors]}
          by-inner: {type: change, rules: [{set: by, to: inner}], wires: [errors]}
          by-loose: {type: change, rules: [{set: by, to: loose}], wires: [errors]}
          errors: {type: debug, active: false}
        """
    async with harness(flow) as h:
        h.send("deep", {"payload": "{bad"})
        await h.received("errors", 2)
        await h.settle()
        # c-inner (no group between) before c-outer (one group up), though written after it;
        # the uncaught catch is left out: the error was handled.
        assert [m["by"] for m in h.received_now("errors")] == ["inner", "outer"]


async def test_a_status_node_scoped_to_its_group_hears_only_its_group() -> None:
    flow = """\
        flow: main
        groups:
          g: {name: watched}
        nodes:
          inside: {type: debug, status: auto, active: false, group: g}
          outside: {type: debug, status: auto, active: false}
          watch: {type: status, scope: group, group: g, wires: [seen]}
          seen: {type: debug, active: false}
        """
    async with harness(flow) as h:
        h.send("outside", {"payload": "no"})
        h.send("inside", {"payload": "yes"})
        [seen] = await h.received("seen")
        await h.settle()
        assert len(h.received_now("seen")) == 1
    assert seen["status"]["source"] == {"id": "inside", "type": "debug"}


def test_group_load_errors() -> None:
    text = textwrap.dedent("""\
        flow: main
        groups:
          a: {group: b}
          b: {group: a, colour: red}
          c: {group: nowhere}
          read: {}
        nodes:
          read: {type: debug, group: z}
        """)
    with pytest.raises(FlowLoadError) as failed:
        Loader(test_registry(), {}).load_text(text, "f.yaml")
    assert [str(e) for e in failed.value.errors] == [
        "f.yaml:3:14: field 'groups.a.group': groups 'a' and 'b' contain each other",
        "f.yaml:4:14: field 'groups.b.group': groups 'b' and 'a' contain each other",
        "f.yaml:4:17: field 'groups.b.colour': unknown field 'colour' (expected one of: "
        "description, env, group, name)",
        "f.yaml:5:14: field 'groups.c.group': no group 'nowhere' in this flow's groups",
        "f.yaml:8:3: node 'read': duplicate node id 'read' (first defined at f.yaml:6)",
    ]
