"""Corpus flows for subflow instances and groups: env lookup through groups, subflow instances
and flows, a subflow's status output, catch/status/complete inside a subflow and in groups,
flow context per instance, nested subflows (corpus.py adds them to the corpus)."""

from __future__ import annotations

from typing import Any

from corpus_nodes import change, debug, env, group, inject, instance, node, rule, subflow

CASES: list[tuple[str, list[dict[str, Any]]]] = []


def case(name: str, *nodes: dict[str, Any] | list[dict[str, Any]]) -> None:
    flat: list[dict[str, Any]] = []
    for item in nodes:
        flat.extend(item if isinstance(item, list) else [item])
    CASES.append((name, flat))


def shows(node_id: str, **props: Any) -> dict[str, Any]:
    """A debug node showing the payload in its status."""
    return node("debug", node_id, tostatus=True, statusType="auto", **props)


def read_env(node_id: str, wires: Any, *names: str, **props: Any) -> dict[str, Any]:
    """A change node setting ``payload`` to an object of the named env variables (JSONata's
    ``$env``) and ``topic`` to the first one read as an ``env`` typed value."""
    fields = ", ".join(f"'{n}': $env('{n}')" for n in names)
    return node("change", node_id, wires, rules=[
        rule("set", to="{" + fields + "}", tot="jsonata"),
        rule("set", p="topic", to=names[0], tot="env")], **props)


#: The env of every tab of these flows.
TAB_ENV = env(("WHO", "str", "tab"), ("UNIT", "str", "m"))


# -- subflow env ----------------------------------------------------------------------------------

ENV_SF = subflow("sf", "reader", read_env("r", [], "STEP", "WHO", "UNIT", "LABEL"),
                 inputs=["r"], outputs=[["r"]],
                 variables=[("STEP", "num", "1"), ("LABEL", "str", "default")])
case("subflow-env-template-default", inject("i", ["inst"], "x"), instance("sf", "inst", ["out"]),
     debug(), ENV_SF)
case("subflow-env-instance-value", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"], [("STEP", "num", "5"), ("WHO", "str", "instance")]),
     debug(), ENV_SF)
case("subflow-env-self-reference", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"], [("WHO", "env", "WHO"), ("LABEL", "env", "STEP")]),
     debug(), ENV_SF)
case("subflow-env-builtins", inject("i", ["a", "b"], "x"),
     instance("sf", "a", ["out"], name="named"), instance("sf", "b", ["out"]), debug(),
     subflow("sf", "builtins", read_env("r", [], "NR_SUBFLOW_NAME", "NR_SUBFLOW_ID",
                                        "NR_NODE_ID", "NR_NODE_NAME", "NR_FLOW_NAME"),
             inputs=["r"], outputs=[["r"]]))
case("subflow-env-text-property", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"], [("GREETING", "str", "hello")]), debug(),
     subflow("sf", "text", change("c", [], rule("set", to="${GREETING}"),
                                  rule("set", p="topic", to="${UNIT}")),
             inputs=["c"], outputs=[["c"]], variables=[("GREETING", "str", "default")]))
case("subflow-env-types", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"], [("N", "num", "2.5"), ("B", "bool", "true")]), debug(),
     subflow("sf", "types", node("change", "c", [], rules=[
         rule("set", to="{'n': $env('N'), 'b': $env('B'), 'sum': $env('N') + 1}",
              tot="jsonata")]), inputs=["c"], outputs=[["c"]],
         variables=[("N", "num", "1"), ("B", "bool", "false")]))
case("subflow-env-template-node", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"], [("WHO", "str", "templated")]), debug(),
     subflow("sf", "template", node("template", "t", [], template="{{env.WHO}}/{{env.UNIT}}"),
             inputs=["t"], outputs=[["t"]]))

# -- nested subflows ------------------------------------------------------------------------------

case("subflow-nested-env", inject("i", ["outer"], "x"),
     instance("sf-outer", "outer", ["out"], [("WHO", "str", "outer instance")]), debug(),
     subflow("sf-outer", "outer", instance("sf-inner", "in1", [], [("WHO", "env", "WHO")]),
             instance("sf-inner", "in2", [], [("WHO", "str", "second")]),
             inputs=["in1", "in2"], outputs=[["in1", "in2"]]),
     subflow("sf-inner", "inner", read_env("r", [], "WHO", "UNIT", "NR_SUBFLOW_ID"),
             inputs=["r"], outputs=[["r"]], variables=[("WHO", "str", "inner default")]))
case("subflow-input-to-output", inject("i", ["inst"], "through"),
     instance("sf", "inst", [["out"], ["out2"]]), debug(), debug("out2"),
     subflow("sf", "pass", change("c", [], rule("set", p="topic", to="changed")),
             inputs=["c"], outputs=[["sf"], ["c"]]))
case("subflow-two-outputs", inject("i", ["inst"], "5", "num"),
     inject("i2", ["inst"], "50", "num"),
     instance("sf", "inst", [["small"], ["big"]]), debug("small"), debug("big"),
     subflow("sf", "split", node("switch", "s", [[], []], outputs=2, rules=[
         {"t": "lt", "v": "10", "vt": "num"}, {"t": "else"}]),
         inputs=["s"], outputs=[[("s", 0)], [("s", 1)]]))
case("subflow-no-input", instance("sf", "inst", ["out"]), debug(),
     subflow("sf", "source", node("inject", "tick", ["c"], once=True, onceDelay="0.3",
                                  payload="from inside", payloadType="str", topic=""),
             change("c", [], rule("set", p="topic", to="STEP", tot="env")),
             inputs=None, outputs=[["c"]], variables=[("STEP", "str", "inside")]))

# -- status ---------------------------------------------------------------------------------------

case("subflow-status-output", inject("i", ["inst"], "busy"),
     inject("i2", ["inst"], '{"fill":"red","shape":"dot","text":"bad"}', "json"),
     inject("i3", ["inst"], "[1,2,3]", "json"),
     instance("sf", "inst", ["out"]), debug(),
     node("status", "st", ["st-out"], scope=["inst"]), debug("st-out"),
     subflow("sf", "status", change("c", [], rule("set", p="topic", to="seen")),
             inputs=["c"], outputs=[["c"]], status=[("c", 0)]))
case("subflow-status-of-inner-nodes", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"]), debug(),
     node("status", "st", ["st-out"], scope=["inst"]), debug("st-out"),
     node("status", "all", ["all-out"]), debug("all-out"),
     subflow("sf", "shows", change("c", ["d"], rule("set", p="topic", to="t")), shows("d"),
             inputs=["c"], outputs=[["c"]]))
case("subflow-status-caught-inside", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"]), debug(),
     node("status", "st", ["st-out"], scope=["inst"]), debug("st-out"),
     subflow("sf", "inner status", shows("d"),
             node("status", "inner", ["c"]), change("c", [], rule("set", to="status.text",
                                                                  tot="jsonata")),
             inputs=["d"], outputs=[["c"]]))
case("subflow-status-node-feeds-status-output", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"]), debug(),
     node("status", "st", ["st-out"], scope=["inst"]), debug("st-out"),
     subflow("sf", "relay", shows("d"), node("status", "inner", []),
             inputs=["d"], outputs=[], status=[("inner", 0)]))

# -- errors and completion ------------------------------------------------------------------------

JSON_SF = subflow("sf", "parse", node("json", "j", []), inputs=["j"], outputs=[["j"]])
case("subflow-error-to-parent", inject("i", ["inst"], '{"ok":1}'),
     inject("i2", ["inst"], "{bad"),
     instance("sf", "inst", ["out"]), debug(),
     node("catch", "c", ["err"], scope=["inst"]),
     node("debug", "err", complete="error.source"), JSON_SF)
case("subflow-error-caught-inside", inject("i", ["inst"], "{bad"),
     instance("sf", "inst", ["out"]), debug(),
     node("catch", "c", ["err"]), node("debug", "err", complete="error.source"),
     subflow("sf", "guarded", node("json", "j", []), node("catch", "inner", ["mark"]),
             change("mark", [], rule("set", p="caught", to="inside")),
             inputs=["j"], outputs=[["j", "mark"]]))
case("subflow-error-uncaught-catch", inject("i", ["inst"], "{bad"),
     instance("sf", "inst", ["out"]), debug(),
     node("catch", "c", ["err"], uncaught=True), node("debug", "err", complete="error.source"),
     JSON_SF)
case("subflow-complete-inside", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"]), debug(),
     node("complete", "done", ["done-out"], scope=["inst"]), debug("done-out"),
     subflow("sf", "completes", change("c", [], rule("set", p="topic", to="t")),
             node("complete", "inner", ["mark"], scope=["c"]),
             change("mark", [], rule("set", p="completed", to="inside")),
             inputs=["c"], outputs=[["c", "mark"]]))

# -- flow context ---------------------------------------------------------------------------------

case("subflow-flow-context", inject("i", ["a"], "1", "num"), inject("i2", ["b"], "2", "num"),
     inject("i3", ["a"], "3", "num"),
     change("seed", [], rule("set", p="shared", pt="flow", to="parent")),
     inject("i0", ["seed"], "x"),
     instance("sf", "a", ["out"]), instance("sf", "b", ["out"]), debug(),
     subflow("sf", "counter", change("c", [], rule(
         "set", to="{'before': $flowContext('last'), 'parent': $flowContext('$parent.shared'),"
                   " 'now': payload}", tot="jsonata"),
         rule("set", p="last", pt="flow", to="payload.now", tot="msg")),
         inputs=["c"], outputs=[["c"]]))

# -- groups ---------------------------------------------------------------------------------------

case("group-env", inject("i", ["r", "outside"], "x"),
     read_env("r", ["out"], "WHO", "UNIT", "NR_GROUP_NAME", "NR_GROUP_ID", g="g1"),
     read_env("outside", ["out"], "WHO", "NR_GROUP_NAME"), debug(),
     group("g1", "First", [("WHO", "str", "group")]))
case("group-env-nested", inject("i", ["r"], "x"),
     read_env("r", ["out"], "WHO", "LEVEL", "$parent.WHO", "NR_GROUP_NAME", g="inner"),
     debug(),
     group("outer", "Outer", [("WHO", "str", "outer"), ("LEVEL", "str", "outer level")]),
     group("inner", "Inner", [("WHO", "str", "inner")], g="outer"))
case("group-env-references", inject("i", ["r"], "x"),
     read_env("r", ["out"], "WHO", "BOTH", "UNIT", g="g1"), debug(),
     group("g1", "refs", [("WHO", "env", "WHO"), ("UNIT", "str", "cm"),
                          ("BOTH", "env", "${WHO}-${UNIT}")]))
case("group-env-in-properties", inject("i", ["t"], "WHO", "env", g="g1"),
     node("template", "t", ["c"], template="{{env.WHO}} {{payload}}", g="g1"),
     node("change", "c", ["out"], rules=[rule("set", p="topic", to="${WHO}")], g="g1"), debug(),
     group("g1", "props", [("WHO", "str", "grouped")]))
case("group-subflow-instance", inject("i", ["inst"], "x"),
     instance("sf", "inst", ["out"], g="g1"), debug(),
     group("g1", "holder", [("WHO", "str", "group of instance")]),
     subflow("sf", "reader", read_env("r", [], "WHO", "NR_GROUP_NAME", "UNIT"),
             inputs=["r"], outputs=[["r"]]))
case("group-catch-scope", inject("i", ["in-group"], "{bad"), inject("i2", ["outside"], "[bad"),
     node("json", "in-group", ["out"], g="g1"), node("json", "outside", ["out"]), debug(),
     node("catch", "c-group", ["err"], scope="group", g="g1"),
     node("catch", "c-all", ["err-all"]),
     node("debug", "err", complete="error.source", g="g1"),
     node("debug", "err-all", complete="error.source"),
     group("g1", "guarded"))
case("group-status-scope", inject("i", ["in-group"], "x"), inject("i2", ["outside"], "y"),
     shows("in-group", g="g1"), shows("outside"),
     node("status", "s-group", ["st"], scope="group", g="g1"),
     node("debug", "st", complete="status.source", g="g1"),
     group("g1", "watched"))
case("group-catch-nearest-first", inject("i", ["j"], "{bad"),
     node("json", "j", ["out"], g="inner"), debug(),
     node("catch", "c-outer", ["err"], scope="group", g="outer"),
     node("catch", "c-inner", ["err"], scope="group", g="inner"),
     node("catch", "c-uncaught", ["err"], uncaught=True, g="inner"),
     node("debug", "err", complete="error.source"),
     group("outer", "outer"), group("inner", "inner", g="outer"))
