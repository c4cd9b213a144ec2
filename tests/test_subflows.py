"""Subflow instances at run time, as Node-RED 5 runs them: each instance with its own env (its
values over the subflow's, then its group's and its flow's), flow context, status (from the
status output, or its nodes' statuses) and errors; nested subflows; load errors.
tests/nodered_diff checks the same behaviours against the real Node-RED."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from flowengine.errors import FlowLoadError
from flowengine.loader import Loader
from flowengine.testing import FlowHarness, test_registry

#: A function node answering msg.names with their env values.
READER = ("{type: function, code: \"msg['payload'] = {n: env.get(n) for n in msg['names']}; "
          "return msg\"}")


def harness(text: str, environ: dict[str, str] | None = None) -> FlowHarness:
    return FlowHarness.from_yaml(textwrap.dedent(text).replace("READER", READER),
                                 environ=environ or {})


def errors(text: str) -> list[str]:
    with pytest.raises(FlowLoadError) as failed:
        Loader(test_registry(), {}).load_text(textwrap.dedent(text), "f.yaml")
    return [str(e) for e in failed.value.errors]


ENV_FLOW = """\
    flow: main
    env: {WHO: flow, UNIT: m, STEP: 0}
    groups:
      box: {name: Box, env: {WHO: box}}
    subflows:
      reader:
        env: {STEP: 1, LABEL: "step ${STEP}", WHO: "${WHO}"}
        in: [read]
        out: [read]
        nodes:
          read: READER
    nodes:
      plain: {type: subflow:reader, wires: [out]}
      valued: {type: subflow:reader, name: Valued, env: {STEP: 5}, wires: [out]}
      boxed: {type: subflow:reader, group: box, wires: [out]}
      out: {type: debug}
    """


async def test_instance_env_is_its_values_over_the_subflow_defaults_then_the_flow() -> None:
    names = ["STEP", "LABEL", "WHO", "UNIT", "NR_SUBFLOW_NAME", "NR_SUBFLOW_ID",
             "NR_NODE_ID", "NR_FLOW_NAME", "NOT_SET"]
    async with harness(ENV_FLOW) as h:
        for instance in ("plain", "valued"):
            h.send(instance, {"names": names})
        plain, valued = [m["payload"] for m in await h.received("out", 2)]
    # LABEL refers to STEP of its own level; WHO names itself: the level around it.
    assert plain == {"STEP": 1, "LABEL": "step 1", "WHO": "flow", "UNIT": "m",
                     "NR_SUBFLOW_NAME": None, "NR_SUBFLOW_ID": "plain",
                     "NR_NODE_ID": "plain-read", "NR_FLOW_NAME": "main", "NOT_SET": None}
    assert valued["STEP"] == 5 and valued["LABEL"] == "step 5"
    assert valued["NR_SUBFLOW_NAME"] == "Valued" and valued["NR_NODE_ID"] == "valued-read"


async def test_an_instance_in_a_group_sees_the_group_env_after_its_own() -> None:
    async with harness(ENV_FLOW) as h:
        h.send("boxed", {"names": ["WHO", "NR_GROUP_NAME", "STEP", "$parent.STEP"]})
        [msg] = await h.received("out")
    # WHO: ${WHO} of the subflow reads the level around the instance: its group.
    assert msg["payload"] == {"WHO": "box", "NR_GROUP_NAME": "Box", "STEP": 1,
                              "$parent.STEP": 0}


async def test_env_references_in_subflow_nodes_are_read_per_instance() -> None:
    flow = """\
        flow: main
        subflows:
          tag:
            env: {TAG: none}
            in: [set]
            out: [set]
            nodes:
              set:
                type: change
                rules: [{set: topic, to: "tag-${TAG}"}, {set: who, to: {env: TAG}}]
        nodes:
          a: {type: subflow:tag, env: {TAG: a}, wires: [out]}
          b: {type: subflow:tag, wires: [out]}
          out: {type: debug}
        """
    async with harness(flow) as h:
        h.send("a", {})
        h.send("b", {})
        received = await h.received("out", 2)
    assert [(m["topic"], m["who"]) for m in received] == [("tag-a", "a"), ("tag-none", "none")]


async def test_each_instance_has_its_own_flow_context_whose_parent_is_the_flow() -> None:
    flow = """\
        flow: main
        subflows:
          counter:
            in: [count]
            out: [count]
            nodes:
              count:
                type: function
                code: |
                  n = (flow.get("n") or 0) + 1
                  flow.set("n", n)
                  context.set("seen", (context.get("seen") or 0) + 1)
                  msg["payload"] = [n, flow.get("$parent.shared"), context.get("seen")]
                  return msg
        nodes:
          a: {type: subflow:counter, wires: [out]}
          b: {type: subflow:counter, wires: [out]}
          out: {type: debug}
        """
    async with harness(flow) as h:
        h.runtime.contexts.flow_context("main").set("shared", "parent value")
        for instance in ("a", "a", "b"):
            h.send(instance, {})
        received = [m["payload"] for m in await h.received("out", 3)]
        contexts = h.runtime.contexts
        assert contexts.flow_context("main").get("n") is None
        # Node context is keyed as Node-RED keys it: the subflow's node id in the instance.
        assert contexts.node_context("count", "main/a").get("seen") == 2
    assert received == [[1, "parent value", 1], [2, "parent value", 2],
                        [1, "parent value", 1]]


STATUS_FLOW = """\
    flow: main
    subflows:
      shows:
        in: [show, pass]
        out: [pass]
        nodes:
          show: {type: debug, status: auto, active: false}
          pass: {type: junction}
      reports:
        in: [show]
        status: [report]
        nodes:
          show: {type: debug, status: auto, active: false}
          report: {type: status, scope: [show]}
    nodes:
      plain: {type: subflow:shows, wires: [out]}
      relayed: {type: subflow:reports}
      watch: {type: status, scope: [plain, relayed], wires: [seen]}
      seen: {type: debug, active: false}
      out: {type: debug, active: false}
    """


def status_of(events: list[tuple[str, dict[str, Any]]], node_id: str) -> list[Any]:
    return [d["status"] for k, d in events if k == "status" and d["node"] == node_id]


async def test_statuses_inside_an_instance_reach_the_flow_as_the_instance_s() -> None:
    async with harness(STATUS_FLOW) as h:
        h.send("plain", {"payload": "hello"})
        [seen] = await h.received("seen")
    # Heard through the instance (a status node scoped to it), named after the inner node.
    assert seen["status"] == {"fill": "grey", "shape": "dot", "text": "hello",
                              "source": {"id": "plain-show", "type": "debug"}}
    assert status_of(h.events, "plain") == []  # the instance itself shows nothing


async def test_the_status_output_sets_the_instance_status() -> None:
    async with harness(STATUS_FLOW) as h:
        h.send("relayed", {"payload": "busy"})
        [seen] = await h.received("seen")
        await h.settle()
        shown = status_of(h.events, "relayed")
    # The inner status node fed the status output; the flow only hears the instance.
    assert seen["status"] == {"fill": "grey", "shape": "dot", "text": "busy",
                              "source": {"id": "relayed", "type": "subflow:reports"}}
    # As in Node-RED, the instance shows the status object its status output got.
    assert shown == [{"fill": "grey", "shape": "dot", "text": "busy",
                      "source": {"id": "relayed-show", "type": "debug"}}]
    assert status_of(h.events, "relayed")[-1] == {}  # cleared when the instance stops


@pytest.mark.parametrize(("payload", "status"), [
    ("text", {"text": "text"}),
    ({"fill": "red", "shape": "ring", "text": "bad"}, {"fill": "red", "shape": "ring",
                                                       "text": "bad"}),
    ({}, {}),
    ([1, "two"], {"text": "[ 1, 'two' ]"}),
    ({"long": "x" * 40}, {"text": "{ long: 'xxxxxxxxxxxxxxxxxxxxxxx..."}),
])
async def test_the_status_output_reads_payloads_as_node_red_does(payload: Any,
                                                                 status: Any) -> None:
    flow = """\
        flow: main
        subflows:
          relay:
            in: [pass]
            status: [pass]
            nodes:
              pass: {type: junction}
        nodes:
          inst: {type: subflow:relay}
        """
    async with harness(flow) as h:
        h.send("inst", {"payload": payload})
        await h.settle()
        assert status_of(h.events, "inst") == [status]


ERROR_FLOW = """\
    flow: main
    subflows:
      parse:
        in: [parse]
        out: [parse]
        nodes:
          parse: {type: json}
      guarded:
        in: [parse]
        out: [parse, mark]
        nodes:
          parse: {type: json}
          inner: {type: catch, wires: [mark]}
          mark: {type: change, rules: [{set: caught, to: inside}]}
    nodes:
      bare: {type: subflow:parse, wires: [out]}
      guard: {type: subflow:guarded, wires: [out]}
      by-instance: {type: catch, scope: [bare, guard], wires: [errors]}
      errors: {type: debug, active: false}
      out: {type: debug, active: false}
    """


async def test_errors_no_catch_inside_handles_reach_the_flow_from_the_instance() -> None:
    async with harness(ERROR_FLOW) as h:
        h.send("bare", {"payload": "{bad"})
        [caught] = await h.received("errors")
    assert caught["error"]["source"] == {"id": "bare-parse", "type": "json", "count": 1}
    assert caught["error"]["message"] == ("Expected property name or '}' in JSON at position 1 "
                                          "(line 1 column 2)")


async def test_a_catch_inside_an_instance_keeps_its_errors_inside() -> None:
    async with harness(ERROR_FLOW) as h:
        h.send("guard", {"payload": "{bad"})
        [msg] = await h.received("out")
        await h.settle()
        assert h.received_now("errors") == []
    assert msg["caught"] == "inside"


async def test_complete_and_catch_scopes_inside_a_subflow_name_the_instance_s_nodes() -> None:
    flow = """\
        flow: main
        subflows:
          done:
            in: [work]
            out: [finished]
            nodes:
              work: {type: change, rules: [{set: topic, to: t}]}
              finished: {type: complete, scope: [work]}
        nodes:
          a: {type: subflow:done, wires: [out]}
          b: {type: subflow:done, wires: [out]}
          out: {type: debug, active: false}
        """
    async with harness(flow) as h:
        assert h.flowset.nodes["a-finished"].config["scope"] == ["a-work"]
        h.send("a", {"payload": 1})
        [msg] = await h.received("out")
        await h.settle()
        assert len(h.received_now("out")) == 1  # b's complete node did not fire
    assert msg["complete"] == {"source": {"id": "a-work", "type": "change"}}


async def test_nested_subflows_read_env_through_every_level() -> None:
    flow = """\
        flow: main
        env: {WHO: flow}
        subflows:
          outer:
            env: {WHO: outer default}
            in: [first, second]
            out: [first, second]
            nodes:
              first: {type: subflow:inner, env: {WHO: "${WHO}"}}
              second: {type: subflow:inner}
          inner:
            env: {WHO: inner default}
            in: [read]
            out: [read]
            nodes:
              read: READER
        nodes:
          top: {type: subflow:outer, env: {WHO: top}, wires: [out]}
          out: {type: debug, active: false}
        """
    async with harness(flow) as h:
        h.send("top", {"names": ["WHO", "NR_SUBFLOW_ID", "$parent.WHO"]})
        received = sorted((m["payload"] for m in await h.received("out", 2)),
                          key=lambda p: p["NR_SUBFLOW_ID"])
    assert received == [
        {"WHO": "top", "NR_SUBFLOW_ID": "top-first", "$parent.WHO": "top"},
        {"WHO": "inner default", "NR_SUBFLOW_ID": "top-second", "$parent.WHO": "top"}]


async def test_an_instance_output_can_be_watched_and_a_port_can_lead_straight_out() -> None:
    flow = """\
        flow: main
        subflows:
          split:
            in: [pick]
            out: [[pick], ["pick:2"]]
            nodes:
              pick: {type: switch, rules: [{lt: 10}, else]}
        nodes:
          inst: {type: subflow:split}
        """
    async with harness(flow) as h:
        h.watch_output("inst", 0)
        h.watch_output("inst", 1)
        h.send("inst", {"payload": 5})
        h.send("inst", {"payload": 50})
        [small] = await h.output("inst", 0)
        [big] = await h.output("inst", 1)
    assert (small["payload"], big["payload"]) == (5, 50)


async def test_changing_an_instance_env_restarts_its_nodes_on_reload() -> None:
    text = textwrap.dedent(ENV_FLOW).replace("READER", READER)
    loader = Loader(test_registry(), {})
    async with FlowHarness(loader.load_text(text, "f.yaml")) as h:
        changed = text.replace("env: {STEP: 5}", "env: {STEP: 6}")
        summary = await h.runtime.reload(Loader(test_registry(), {}).load_text(changed, "f.yaml"))
        h.send("valued", {"names": ["STEP"]})
        [msg] = await h.received("out")
    assert summary["changed"] == ["valued", "valued-read"]
    assert msg["payload"] == {"STEP": 6}


def test_subflow_load_errors_name_the_place_once() -> None:
    found = errors("""\
        flow: main
        subflows:
          looped:
            in: [again]
            nodes:
              again: {type: subflow:looped}
          leaky:
            in: [a]
            out: ["a:2", ghost]
            nodes:
              a: {type: change, rules: [], wires: [outside]}
        nodes:
          one: {type: subflow:leaky}
          two: {type: subflow:leaky}
          three: {type: subflow:looped}
          four: {type: subflow:lekay}
          outside: {type: debug}
          one-a: {type: debug}
        """)
    assert found == [
        "f.yaml:6:21: node 'three-again', field 'type': subflow 'looped' contains itself "
        "(looped -> looped)",
        "f.yaml:9:10: field 'subflows.leaky.out': 'a' has 1 output, not 2",
        "f.yaml:9:18: field 'subflows.leaky.out[1]': 'ghost' is not a node of this subflow "
        "(write 'id' or 'id:N' for its output N)",
        # Reported once, for the first instance that has the copy ('one' has none).
        "f.yaml:11:44: node 'two-a', field 'wires[0]': wire to 'outside', which is not a "
        "node of this subflow (a subflow's nodes send out through its 'out')",
        "f.yaml:13:3: node 'one': its copy of subflow node 'a' would have the id 'one-a', "
        "which is already used",
        "f.yaml:16:16: node 'four', field 'type': unknown subflow 'lekay' (did you mean "
        "'subflow:leaky'?)",
    ]
