"""The differential corpus: small Node-RED flows, one behaviour each, for every core node type
flowengine has and every mode of each (tests/nodered_diff/test_differential.py runs them on the
real Node-RED and on flowengine).

Each flow is driven by its inject nodes (pressed in order, 0.3 s apart, by the drivers) and
observed through its debug and complete nodes and the statuses its nodes show. Timed nodes use
short times (at most 0.6 s between two observations) so that every flow ends within the
drivers' quiet period. ``python tests/nodered_diff/corpus.py DIR`` writes them as JSON exports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import corpus_scopes
from corpus_nodes import change, config, debug, flow, inject, node, rule

CORPUS: dict[str, list[dict[str, Any]]] = {}


def case(name: str, *nodes: dict[str, Any]) -> None:
    assert name not in CORPUS, name
    CORPUS[name] = flow(name, *nodes)


# -- inject ---------------------------------------------------------------------------------------

for kind, value in (("str", "hello"), ("num", "42.5"), ("bool", "true"), ("json", '{"a":[1,2]}'),
                    ("bin", "[104,105]"), ("date", ""), ("env", "NRDIFF_PORT")):
    case(f"inject-{kind}", inject("i", ["out"], value, kind, topic="t"), debug())
case("inject-empty-topic", inject("i", ["out"], "x"), debug())
case("inject-props-order",
     node("inject", "i", ["out"], props=[
         {"p": "topic", "v": "T", "vt": "str"},
         {"p": "payload", "v": "topic & '!'", "vt": "jsonata"},
         {"p": "extra", "v": "$count($keys($$))", "vt": "jsonata"}]), debug())
case("inject-no-payload",
     node("inject", "i", ["out"], props=[{"p": "topic", "v": "only", "vt": "str"},
                                         {"p": "n", "v": "3", "vt": "num"}]), debug())
case("inject-legacy-props",
     node("inject", "i", ["out"], props=[{"p": "payload"}, {"p": "topic", "vt": "str"}],
          payload="7", payloadType="num", topic="legacy"), debug())
case("inject-once", node("inject", "i", ["out"], once=True, onceDelay="0.2", payload="o",
                         payloadType="str"), debug())
case("inject-complete", inject("i", ["out"], "c"), debug(),
     node("complete", "done", ["done-out"], scope=["i"]), debug("done-out"))

# -- debug ----------------------------------------------------------------------------------------

case("debug-status-auto", inject("i", ["d"], "shown"),
     inject("i2", ["d"], '{"a":1,"b":"x"}', "json"),
     node("debug", "d", tostatus=True, statusType="auto", statusVal="payload"))
case("debug-status-counter", inject("i", ["d"], "1"), inject("i2", ["d"], "2"),
     inject("i3", ["d"], "3"), node("debug", "d", tostatus=True, statusType="counter"))
case("debug-status-property", inject("i", ["d"], "x", topic="the topic"),
     node("debug", "d", tostatus=True, statusType="msg", statusVal="topic"))
case("debug-status-jsonata", inject("i", ["d"], "5", "num"),
     node("debug", "d", tostatus=True, statusType="jsonata", statusVal="payload * 2 & ' units'"))
case("debug-status-complete-msg", inject("i", ["d"], "whole"),
     node("debug", "d", complete="true", tostatus=True, statusType="auto"))
case("debug-status-number", inject("i", ["d"], "12", "num"), inject("i2", ["d"], "[1,2]", "json"),
     inject("i3", ["d"], "true", "bool"), node("debug", "d", tostatus=True))
case("debug-status-long-text", inject("i", ["d"], "x" * 50),
     node("debug", "d", tostatus=True))
case("debug-status-of-error",
     inject("i", ["j"], "{bad"), node("json", "j", ["x"]), node("catch", "c", ["d"]),
     node("debug", "d", tostatus=True), debug("x"))
case("debug-status-watched", inject("i", ["d"], "seen"),
     node("debug", "d", tostatus=True), node("status", "s", ["out"], scope=["d"]), debug())
case("debug-complete", inject("i", ["d"], "c"), node("debug", "d"),
     node("complete", "done", ["out"], scope=["d"]), debug())

# -- complete -------------------------------------------------------------------------------------

case("complete-change", inject("i", ["c"], "x"), change("c", [], rule("set", to="y")),
     node("complete", "done", ["out"], scope=["c"]), debug())
case("complete-switch-no-match", inject("i", ["s"], "x"),
     node("switch", "s", [], rules=[{"t": "eq", "v": "nope", "vt": "str"}], outputs=1),
     node("complete", "done", ["out"], scope=["s"]), debug())
case("complete-delay", inject("i", ["dl"], "x"),
     node("delay", "dl", ["out"], timeout="0.2"), debug(),
     node("complete", "done", ["done-out"], scope=["dl"]), debug("done-out"))
case("complete-into-join",
     inject("i", ["c"], "a", topic="k1"), change("c", [], rule("set", p="topic", to="k2")),
     node("complete", "done", ["j"], scope=["c"]),
     node("join", "j", ["out"], mode="custom", build="object", count="2", timeout="0.5"), debug())
case("complete-split", inject("i", ["sp"], "[1,2]", "json"), node("split", "sp", []),
     node("complete", "done", ["out"], scope=["sp"]), debug())
case("complete-json-error", inject("i", ["j"], "{x"), node("json", "j", []),
     node("complete", "done", ["out"], scope=["j"]), debug(), node("catch", "c", ["err"]),
     debug("err"))
case("complete-trigger", inject("i", ["t"], "x"),
     node("trigger", "t", ["out"], duration="200"), debug(),
     node("complete", "done", ["done-out"], scope=["t"]), debug("done-out"))
case("complete-template", inject("i", ["t"], "x"),
     node("template", "t", [], template="<{{payload}}>"),
     node("complete", "done", ["out"], scope=["t"]), debug())
case("complete-link-out", inject("i", ["lo"], "x"),
     node("link out", "lo", links=["li"]), node("link in", "li", ["out"]), debug(),
     node("complete", "done", ["done-out"], scope=["lo", "li"]), debug("done-out"))

# -- catch ----------------------------------------------------------------------------------------

case("catch-all", inject("i", ["j"], "{bad"), node("json", "j", []),
     node("catch", "c", ["out"]), debug())
case("catch-scoped", inject("i", ["j1"], "{bad"), inject("i2", ["j2"], "[bad"),
     node("json", "j1", []), node("json", "j2", []),
     node("catch", "c", ["out"], scope=["j2"]), debug())
case("catch-uncaught", inject("i", ["j1"], "{bad"), inject("i2", ["j2"], "[bad"),
     node("json", "j1", []), node("json", "j2", []),
     node("catch", "c1", ["out1"], scope=["j1"]), node("catch", "c2", ["out2"], uncaught=True),
     debug("out1"), debug("out2"))
case("catch-existing-error", inject("i", ["c0"], "{bad"),
     change("c0", ["j"], rule("set", p="error", to="old")), node("json", "j", []),
     node("catch", "c", ["out"]), debug())
case("catch-jsonata-error", inject("i", ["ch"], "x"),
     change("ch", [], rule("set", to="$number('abc') + $undefinedFunction()", tot="jsonata")),
     node("catch", "c", ["out"]), debug())
case("catch-and-complete", inject("i", ["j"], "{bad"), node("json", "j", []),
     node("catch", "c", ["out"]), debug(), node("complete", "done", ["out2"], scope=["j"]),
     debug("out2"))

# -- status ---------------------------------------------------------------------------------------

case("status-all", inject("i", ["dl"], "x"), node("delay", "dl", ["out"], timeout="0.2"),
     node("status", "s", ["st"]), debug(), debug("st"))
case("status-scoped", inject("i", ["t"], "x"),
     node("trigger", "t", ["out"], duration="200"), node("delay", "dl", [], timeout="0.2"),
     node("status", "s", ["st"], scope=["dl"]), debug(), debug("st"))
case("status-of-debug-counter", inject("i", ["d"], "a"),
     node("debug", "d", tostatus=True, statusType="counter"),
     node("status", "s", ["st"]), debug("st"))
case("status-of-rate-limit", inject("i", ["dl"], "1"), inject("i2", ["dl"], "2"),
     node("delay", "dl", ["out"], pauseType="rate", rate="1", nbRateUnits="0.5",
          rateUnits="second"), debug(), node("status", "s", ["st"], scope=["dl"]), debug("st"))

# -- link -----------------------------------------------------------------------------------------

case("link-simple", inject("i", ["lo"], "x"), node("link out", "lo", links=["li"]),
     node("link in", "li", ["out"]), debug())
case("link-fan-out", inject("i", ["lo"], "x"), node("link out", "lo", links=["li1", "li2"]),
     node("link in", "li1", ["out"]), node("link in", "li2", ["out"]), debug())
case("link-fan-in", inject("i", ["lo1"], "a"), inject("i2", ["lo2"], "b"),
     node("link out", "lo1", links=["li"]), node("link out", "lo2", links=["li"]),
     node("link in", "li", ["out"]), debug())
case("link-back-reference", inject("i", ["lo"], "x"), node("link out", "lo", links=[]),
     node("link in", "li", ["out"], links=["lo"]), debug())
case("link-call-static", inject("i", ["call"], "3", "num"),
     node("link call", "call", ["out"], links=["sub"]),
     node("link in", "sub", ["double"]),
     change("double", ["ret"], rule("set", to="payload * 2", tot="jsonata")),
     node("link out", "ret", mode="return"), debug())
case("link-call-dynamic", inject("i", ["tgt"], "4", "num"),
     change("tgt", ["call"], rule("set", p="target", to="subroutine-x")),
     node("link call", "call", ["out"], linkType="dynamic", links=[]),
     node("link in", "sub", ["inc"], name="subroutine-x"),
     change("inc", ["ret"], rule("set", to="payload + 1", tot="jsonata")),
     node("link out", "ret", mode="return"), debug())
case("link-call-timeout", inject("i", ["call"], "x"),
     node("link call", "call", ["out"], links=["sub"], timeout="0.3"),
     node("link in", "sub", []), node("catch", "c", ["err"], scope=["call"]), debug(),
     debug("err"))
case("link-call-nested", inject("i", ["call"], "1", "num"),
     node("link call", "call", ["out"], links=["a"]),
     node("link in", "a", ["call2"]), node("link call", "call2", ["ret"], links=["b"]),
     node("link out", "ret", mode="return"),
     node("link in", "b", ["add"]),
     change("add", ["ret2"], rule("set", to="payload + 10", tot="jsonata")),
     node("link out", "ret2", mode="return"), debug())
case("junction", inject("i", ["jn"], "x"), node("junction", "jn", ["out", "out2"]), debug(),
     debug("out2"))

# -- switch ---------------------------------------------------------------------------------------

SWITCH_RULES: dict[str, tuple[list[dict[str, Any]], list[tuple[str, str]]]] = {
    "eq-str": ([{"t": "eq", "v": "a", "vt": "str"}], [("a", "str"), ("b", "str"), ("1", "num")]),
    "eq-num": ([{"t": "eq", "v": "1", "vt": "num"}], [("1", "str"), ("1", "num"), ("2", "num")]),
    "neq": ([{"t": "neq", "v": "a", "vt": "str"}], [("a", "str"), ("b", "str")]),
    "lt-lte": ([{"t": "lt", "v": "3", "vt": "num"}, {"t": "lte", "v": "3", "vt": "num"}],
               [("2", "num"), ("3", "num"), ("4", "num")]),
    "gt-gte": ([{"t": "gt", "v": "3", "vt": "num"}, {"t": "gte", "v": "3", "vt": "num"}],
               [("2", "num"), ("3", "num"), ("4", "num")]),
    "btwn": ([{"t": "btwn", "v": "10", "vt": "num", "v2": "5", "v2t": "num"}],
             [("4", "num"), ("5", "num"), ("7", "str"), ("11", "num")]),
    "cont": ([{"t": "cont", "v": "ell", "vt": "str"}], [("hello", "str"), ("help", "str")]),
    "regex": ([{"t": "regex", "v": "^a.c$", "vt": "str", "case": True}],
              [("AbC", "str"), ("abd", "str")]),
    "true-false": ([{"t": "true"}, {"t": "false"}],
                   [("true", "bool"), ("false", "bool"), ("true", "str")]),
    "null-nnull": ([{"t": "null"}, {"t": "nnull"}], [("null", "json"), ("x", "str")]),
    "empty-nempty": ([{"t": "empty"}, {"t": "nempty"}],
                     [("", "str"), ("[]", "json"), ("{}", "json"), ("0", "num"), ("a", "str")]),
    "istype": ([{"t": "istype", "v": "string", "vt": "string"},
                {"t": "istype", "v": "number", "vt": "number"},
                {"t": "istype", "v": "array", "vt": "array"},
                {"t": "istype", "v": "object", "vt": "object"},
                {"t": "istype", "v": "buffer", "vt": "buffer"}],
               [("s", "str"), ("1", "num"), ("[1]", "json"), ('{"a":1}', "json"),
                ("[1]", "bin")]),
    "hask": ([{"t": "hask", "v": "a", "vt": "str"}], [('{"a":1}', "json"), ('{"b":1}', "json")]),
    "else": ([{"t": "eq", "v": "a", "vt": "str"}, {"t": "else"}], [("a", "str"), ("b", "str")]),
    "jsonata-exp": ([{"t": "jsonata_exp", "v": "payload % 2 = 1", "vt": "jsonata"}],
                    [("3", "num"), ("4", "num")]),
    "prev": ([{"t": "gt", "v": "", "vt": "prev"}], [("1", "num"), ("0", "num"), ("2", "num")]),
    "msg-comparand": ([{"t": "eq", "v": "topic", "vt": "msg"}], [("t", "str"), ("x", "str")]),
}
for name, (rules, inputs) in SWITCH_RULES.items():
    outputs = len(rules)
    case(f"switch-{name}",
         *(inject(f"i{k}", ["s"], v, t, topic="t") for k, (v, t) in enumerate(inputs)),
         node("switch", "s", [[f"o{k}"] for k in range(outputs)], rules=rules,
              outputs=outputs),
         *(debug(f"o{k}") for k in range(outputs)))
case("switch-checkall-false",
     inject("i", ["s"], "hello"),
     node("switch", "s", [["o0"], ["o1"]], checkall="false", outputs=2,
          rules=[{"t": "cont", "v": "h", "vt": "str"}, {"t": "cont", "v": "e", "vt": "str"}]),
     debug("o0"), debug("o1"))
case("switch-jsonata-property", inject("i", ["s"], "-5", "num"),
     node("switch", "s", [["o0"]], property="$abs(payload)", propertyType="jsonata",
          rules=[{"t": "eq", "v": "5", "vt": "num"}], outputs=1), debug("o0"))
for name, rule_def, repair in (
        ("head", {"t": "head", "v": "2", "vt": "num"}, False),
        ("head-repair", {"t": "head", "v": "2", "vt": "num"}, True),
        ("tail-repair", {"t": "tail", "v": "2", "vt": "num"}, True),
        ("index-repair", {"t": "index", "v": "1", "vt": "num", "v2": "2", "v2t": "num"}, True),
        ("index-count-repair", {"t": "jsonata_exp", "v": "$I % 2 = 0", "vt": "jsonata"}, True)):
    case(f"switch-sequence-{name}", inject("i", ["sp"], "[1,2,3,4]", "json"),
         node("split", "sp", ["s"]),
         node("switch", "s", [["o0"]], rules=[rule_def], repair=repair, outputs=1),
         debug("o0"))

# -- change ---------------------------------------------------------------------------------------

for kind, value in (("str", "text"), ("num", "12"), ("bool", "false"), ("json", '{"k":[1]}'),
                    ("bin", "[1,2,3]"), ("jsonata", "payload & '!'"), ("msg", "topic"),
                    ("env", "NRDIFF_PORT"), ("date", "")):
    case(f"change-set-{kind}", inject("i", ["c"], "in", topic="tp"),
         change("c", ["out"], rule("set", to=value, tot=kind)), debug())
case("change-set-nested", inject("i", ["c"], "x"),
     change("c", ["out"], rule("set", p="a.b[0].c", to="deep")), debug())
case("change-set-flow-global", inject("i", ["c1"], "v"),
     change("c1", ["c2"], {"t": "set", "p": "fv", "pt": "flow", "to": "payload", "tot": "msg"},
            {"t": "set", "p": "gv_cset", "pt": "global", "to": "g", "tot": "str"}),
     change("c2", ["out"], rule("set", p="f", to="fv", tot="flow"),
            rule("set", p="g", to="gv_cset", tot="global"),
            rule("set", p="j", to="$flowContext('fv') & $globalContext('gv_cset')",
                 tot="jsonata")), debug())
case("change-change-str", inject("i", ["c"], "a-b-a"),
     change("c", ["out"], {"t": "change", "p": "payload", "pt": "msg", "from": "a",
                           "fromt": "str", "to": "x", "tot": "str"}), debug())
case("change-change-regex", inject("i", ["c"], "a1b22c"),
     change("c", ["out"], {"t": "change", "p": "payload", "pt": "msg", "from": "(\\d+)",
                           "fromt": "re", "to": "<$1>", "tot": "str"}), debug())
case("change-change-whole-num", inject("i", ["c"], "5"),
     change("c", ["out"], {"t": "change", "p": "payload", "pt": "msg", "from": "5",
                           "fromt": "str", "to": "9", "tot": "num"}), debug())
case("change-delete", inject("i", ["c"], "x", topic="t"),
     change("c", ["out"], {"t": "delete", "p": "topic", "pt": "msg"}), debug())
case("change-move", inject("i", ["c"], "x", topic="t"),
     change("c", ["out"], {"t": "move", "p": "topic", "pt": "msg", "to": "moved.here",
                           "tot": "msg"}), debug())
case("change-rules-in-order", inject("i", ["c"], "1", "num"),
     change("c", ["out"], rule("set", p="a", to="payload + 1", tot="jsonata"),
            rule("set", p="b", to="a * 10", tot="jsonata"),
            {"t": "delete", "p": "payload", "pt": "msg"}), debug())
case("change-set-missing-msg", inject("i", ["c"], "x"),
     change("c", ["out"], rule("set", to="nothere", tot="msg")), debug())
case("change-jsonata-comment", inject("i", ["c"], "2", "num"),
     change("c", ["out"], rule("set", to="payload * 3 /* triple it */", tot="jsonata")),
     debug())

# -- template -------------------------------------------------------------------------------------

case("template-mustache", inject("i", ["t"], "world", topic="greeting"),
     node("template", "t", ["out"], template="{{topic}}: hello {{payload}}!"), debug())
case("template-escape", inject("i", ["t"], "<a href='x'>&</a>"),
     node("template", "t", ["out"], template="{{payload}}|{{{payload}}}"), debug())
case("template-json-output", inject("i", ["t"], "line\n2"),
     node("template", "t", ["out"], template='{"text": "{{payload}}", "n": 1}', output="json"),
     debug())
case("template-plain", inject("i", ["t"], "x"),
     node("template", "t", ["out"], template="{{payload}} stays", syntax="plain"), debug())
case("template-field-topic", inject("i", ["t"], "p"),
     node("template", "t", ["out"], field="topic", template="topic from {{payload}}"), debug())
case("template-sections", inject("i", ["t"], '{"items":[{"n":"a"},{"n":"b"}],"show":true}',
                                  "json"),
     node("template", "t", ["out"],
          template="{{#payload.items}}[{{n}}]{{/payload.items}}{{#payload.show}}!{{/payload.show}}"
                   "{{^payload.hide}}?{{/payload.hide}}"), debug())
case("template-context", inject("i", ["c"], "x"),
     change("c", ["t"], {"t": "set", "p": "name", "pt": "flow", "to": "flowval", "tot": "str"}),
     node("template", "t", ["out"], template="{{flow.name}}/{{payload}}"), debug())
case("template-object-values", inject("i", ["t"], '{"a":[1,2],"n":0,"b":false,"z":null}',
                                       "json"),
     node("template", "t", ["out"],
          template="[{{payload.a}}][{{payload.n}}][{{payload.b}}][{{payload.z}}][{{payload}}]"),
     debug())
case("template-bad-json", inject("i", ["t"], "x"),
     node("template", "t", ["out"], template="not json {{payload}}", output="json"), debug(),
     node("catch", "c", ["err"]), node("debug", "err", complete="error.source"))

# -- json -----------------------------------------------------------------------------------------

case("json-parse", inject("i", ["j"], '{"a":1,"b":[true,null]}'), node("json", "j", ["out"]),
     debug())
case("json-stringify", inject("i", ["j"], '{"a":1,"b":"x"}', "json"),
     node("json", "j", ["out"]), debug())
case("json-pretty", inject("i", ["j"], '{"a":{"b":1}}', "json"),
     node("json", "j", ["out"], pretty=True), debug())
case("json-action-str", inject("i", ["j"], "[1,2]", "json"), inject("i2", ["j"], "[1]"),
     node("json", "j", ["out"], action="str"), debug())
case("json-action-obj", inject("i", ["j"], "[1,2]"), inject("i2", ["j"], "[3]", "json"),
     node("json", "j", ["out"], action="obj"), debug())
case("json-other-property", inject("i", ["c"], "p"),
     change("c", ["j"], rule("set", p="data", to='{"x":2}')),
     node("json", "j", ["out"], property="data"), debug())
case("json-number-string", inject("i", ["j"], "12"), inject("i2", ["j"], "12", "num"),
     node("json", "j", ["out"]), debug())
case("json-buffer", inject("i", ["j"], "[123,34,97,34,58,49,125]", "bin"),
     node("json", "j", ["out"]), debug())

# -- delay ----------------------------------------------------------------------------------------

case("delay-fixed", inject("i", ["dl"], "x"), node("delay", "dl", ["out"], timeout="0.2"),
     debug())
case("delay-fixed-ms", inject("i", ["dl"], "a"), inject("i2", ["dl"], "b"),
     node("delay", "dl", ["out"], timeout="100", timeoutUnits="milliseconds"), debug())
case("delay-variable", inject("i", ["dl"], "x", delay=150),
     node("delay", "dl", ["out"], pauseType="delayv", timeout="0.1"), debug())
case("delay-variable-set", inject("i", ["c"], "x"),
     change("c", ["dl"], rule("set", p="delay", to="100", tot="num")),
     node("delay", "dl", ["out"], pauseType="delayv", timeout="5"), debug())
case("delay-random", inject("i", ["dl"], "x"),
     node("delay", "dl", ["out"], pauseType="random", randomFirst="50", randomLast="150",
          randomUnits="milliseconds"), debug())
case("delay-rate-queue", inject("i", ["dl"], "1"), inject("i2", ["dl"], "2"),
     inject("i3", ["dl"], "3"),
     node("delay", "dl", ["out"], pauseType="rate", rate="2", nbRateUnits="1",
          rateUnits="second"), debug())
case("delay-rate-drop", inject("i", ["dl"], "1"), inject("i2", ["dl"], "2"),
     inject("i3", ["dl"], "3"),
     node("delay", "dl", ["out"], pauseType="rate", rate="1", nbRateUnits="0.5",
          rateUnits="second", drop=True), debug())
case("delay-rate-drop-output", inject("i", ["dl"], "1"), inject("i2", ["dl"], "2"),
     node("delay", "dl", [["out"], ["dropped"]], pauseType="rate", rate="1", nbRateUnits="1",
          rateUnits="second", drop=True, outputs=2), debug(), debug("dropped"))
case("delay-rate-status", inject("i", ["dl"], "1"), inject("i2", ["dl"], "2"),
     node("delay", "dl", ["out"], pauseType="rate", rate="1", nbRateUnits="0.4",
          rateUnits="second"), debug())
case("delay-per-topic-queue",
     inject("i", ["dl"], "a1", topic="a"), inject("i2", ["dl"], "b1", topic="b"),
     inject("i3", ["dl"], "a2", topic="a"),
     node("delay", "dl", ["out"], pauseType="queue", rate="1", nbRateUnits="0.2",
          rateUnits="second"), debug())
case("delay-per-topic-timed",
     inject("i", ["dl"], "a1", topic="a"), inject("i2", ["dl"], "a2", topic="a"),
     inject("i3", ["dl"], "b1", topic="b"),
     node("delay", "dl", ["out"], pauseType="timed", rate="1", nbRateUnits="1.2",
          rateUnits="second"), debug())
case("delay-reset", inject("i", ["dl"], "x"), inject("i2", ["rs"], ""),
     change("rs", ["dl"], rule("set", p="reset", to="true", tot="bool")),
     node("delay", "dl", ["out"], timeout="1.2"), debug())
case("delay-flush", inject("i", ["dl"], "x"), inject("i2", ["dl"], "y"),
     inject("i3", ["fl"], ""),
     change("fl", ["dl"], rule("set", p="flush", to="true", tot="bool")),
     node("delay", "dl", ["out"], timeout="2"), debug())
case("delay-rate-msg-rate", inject("i", ["c"], "1"), inject("i2", ["c"], "2"),
     change("c", ["dl"], rule("set", p="rate", to="100", tot="num")),
     node("delay", "dl", ["out"], pauseType="rate", rate="1", nbRateUnits="5",
          rateUnits="second", allowrate=True), debug())

# -- trigger --------------------------------------------------------------------------------------

case("trigger-default", inject("i", ["t"], "x"), node("trigger", "t", ["out"], duration="200"),
     debug())
case("trigger-blocked-while-waiting", inject("i", ["t"], "a"), inject("i2", ["t"], "b"),
     node("trigger", "t", ["out"], duration="500"), debug())
case("trigger-extend", inject("i", ["t"], "a"), inject("i2", ["t"], "b"),
     node("trigger", "t", ["out"], duration="400", extend=True), debug())
case("trigger-payloads", inject("i", ["t"], "orig"),
     node("trigger", "t", ["out"], op1="", op1type="pay", op2="", op2type="payl",
          duration="150"), debug())
case("trigger-nothing-first", inject("i", ["t"], "orig"),
     node("trigger", "t", ["out"], op1="", op1type="nul", op2="later", duration="150"), debug())
case("trigger-second-output", inject("i", ["t"], "x"),
     node("trigger", "t", [["out"], ["out2"]], duration="150", outputs=2), debug(),
     debug("out2"))
case("trigger-reset-msg", inject("i", ["t"], "x"), inject("i2", ["rs"], ""),
     change("rs", ["t"], rule("set", p="reset", to="true", tot="bool")),
     node("trigger", "t", ["out"], duration="600"), debug())
case("trigger-reset-payload", inject("i", ["t"], "x"), inject("i2", ["t"], "stop"),
     node("trigger", "t", ["out"], duration="600", reset="stop"), debug())
case("trigger-by-topic", inject("i", ["t"], "a", topic="a"), inject("i2", ["t"], "b", topic="b"),
     inject("i3", ["t"], "a2", topic="a"),
     node("trigger", "t", ["out"], duration="500", bytopic="topic"), debug())
case("trigger-block-until-reset", inject("i", ["t"], "a"), inject("i2", ["t"], "b"),
     inject("i3", ["rs"], ""), inject("i4", ["t"], "c"),
     change("rs", ["t"], rule("set", p="reset", to="true", tot="bool")),
     node("trigger", "t", ["out"], duration="0", op2type="nul"), debug())
case("trigger-override-delay", inject("i", ["c"], "x"),
     change("c", ["t"], rule("set", p="delay", to="100", tot="num")),
     node("trigger", "t", ["out"], duration="2", units="s", overrideDelay=True), debug())
case("trigger-typed-values", inject("i", ["t"], "x"),
     node("trigger", "t", ["out"], op1="5", op1type="num", op2='{"done":true}', op2type="json",
          duration="100"), debug())
case("trigger-status", inject("i", ["t"], "x"),
     node("trigger", "t", ["out"], duration="200"), debug(),
     node("status", "s", ["st"], scope=["t"]), debug("st"))

# -- split ----------------------------------------------------------------------------------------

case("split-string-newline", inject("i", ["sp"], "a\nb\nc"), node("split", "sp", ["out"]),
     debug())
case("split-string-char", inject("i", ["sp"], "a,b,,c"),
     node("split", "sp", ["out"], splt=","), debug())
case("split-string-length", inject("i", ["sp"], "abcdefg"),
     node("split", "sp", ["out"], splt="3", spltType="len"), debug())
case("split-array", inject("i", ["sp"], '[1,"two",{"three":3}]', "json"),
     node("split", "sp", ["out"]), debug())
case("split-array-chunks", inject("i", ["sp"], "[1,2,3,4,5]", "json"),
     node("split", "sp", ["out"], arraySplt=2), debug())
case("split-object", inject("i", ["sp"], '{"a":1,"b":2}', "json"),
     node("split", "sp", ["out"]), debug())
case("split-object-addname", inject("i", ["sp"], '{"a":1,"b":2}', "json"),
     node("split", "sp", ["out"], addname="key"), debug())
case("split-buffer", inject("i", ["sp"], "[1,2,3,4,5]", "bin"),
     node("split", "sp", ["out"], splt="2", spltType="len"), debug())
case("split-stream", inject("i", ["sp"], "a\nb"), inject("i2", ["sp"], "c\nd"),
     node("split", "sp", ["out"], stream=True), debug())
case("split-other-property", inject("i", ["c"], "p"),
     change("c", ["sp"], rule("set", p="list", to="[1,2]", tot="json")),
     node("split", "sp", ["out"], property="list"), debug())
case("split-join-roundtrip", inject("i", ["sp"], "[3,1,2]", "json"),
     node("split", "sp", ["j"]), node("join", "j", ["out"]), debug())
case("split-string-join-auto", inject("i", ["sp"], "x-y-z"),
     node("split", "sp", ["j"], splt="-"), node("join", "j", ["out"]), debug())
case("split-object-join-auto", inject("i", ["sp"], '{"a":1,"b":2}', "json"),
     node("split", "sp", ["c"]), change("c", ["j"], rule("set", to="payload * 10",
                                                          tot="jsonata")),
     node("join", "j", ["out"]), debug())

# -- join -----------------------------------------------------------------------------------------

for build, extra in (("array", {}), ("string", {"joiner": ","}), ("object", {}),
                     ("merged", {}), ("buffer", {"joinerType": "bin", "joiner": "[]"})):
    payloads = (('{"a":1}', "json"), ('{"b":2}', "json")) if build == "merged" else (
        ("[104]", "bin"), ("[105]", "bin")) if build == "buffer" else (("a", "str"), ("b", "str"))
    case(f"join-manual-{build}",
         *(inject(f"i{k}", ["j"], v, t, topic=f"k{k}") for k, (v, t) in enumerate(payloads)),
         node("join", "j", ["out"], mode="custom", build=build, count="2", **extra), debug())
case("join-manual-timeout", inject("i", ["j"], "a"),
     node("join", "j", ["out"], mode="custom", build="array", count="5", timeout="0.3"), debug())
case("join-manual-msg-complete", inject("i", ["j"], "a"), inject("i2", ["c"], "b"),
     change("c", ["j"], rule("set", p="complete", to="true", tot="bool")),
     node("join", "j", ["out"], mode="custom", build="array", count="5"), debug())
case("join-manual-accumulate", inject("i", ["j"], "a", topic="x"),
     inject("i2", ["j"], "b", topic="y"), inject("i3", ["j"], "c", topic="x"),
     node("join", "j", ["out"], mode="custom", build="object", count="2", accumulate=True),
     debug())
case("join-manual-whole-messages", inject("i", ["j"], "a", topic="x"),
     inject("i2", ["j"], "b", topic="y"),
     node("join", "j", ["out"], mode="custom", build="object", property="", count="2"), debug())
case("join-reduce", inject("i", ["sp"], "[1,2,3,4]", "json"), node("split", "sp", ["j"]),
     node("join", "j", ["out"], mode="reduce", reduceExp="$A + payload", reduceInit="0",
          reduceInitType="num", reduceFixup="$A / $N"), debug())
case("join-reduce-right", inject("i", ["sp"], '["a","b","c"]', "json"),
     node("split", "sp", ["j"]),
     node("join", "j", ["out"], mode="reduce", reduceExp="$A & payload", reduceInit="",
          reduceInitType="str", reduceRight=True), debug())
case("join-auto-string-parts", inject("i", ["sp"], "a b c"),
     node("split", "sp", ["s"], splt=" "),
     node("switch", "s", [["j"]], rules=[{"t": "neq", "v": "b", "vt": "str"}], outputs=1),
     node("join", "j", ["out"], timeout="0.3", mode="custom", build="string", joiner="+",
          useparts=True, count=""), debug())

# -- http -----------------------------------------------------------------------------------------

BASE = "http://127.0.0.1:${NRDIFF_PORT}"


def http_case(name: str, path: str, request: dict[str, Any], *server: dict[str, Any],
              before: tuple[dict[str, Any], ...] = (), payload: str = "",
              payload_type: str = "str") -> None:
    """An http in endpoint at ``path`` (the nodes in ``server`` wired from ``hin``) called by
    an http request node ``req`` from the same flow; its answer goes to debug ``out``."""
    first = before[0]["id"] if before else "req"
    case(name, inject("i", [first], payload, payload_type), *before,
         node("http request", "req", ["out"], **{"url": BASE + path if path else "", **request}),
         debug(),
         *server)


def answer(node_id: str = "res", **props: Any) -> dict[str, Any]:
    return node("http response", node_id, **props)


http_case("http-get-text", "/nrdiff/text", {},
          node("http in", "hin", ["set"], url="/nrdiff/text"),
          change("set", ["res"], rule("set", to="hello")), answer())
http_case("http-get-json", "/nrdiff/json", {"ret": "obj"},
          node("http in", "hin", ["set"], url="/nrdiff/json"),
          change("set", ["res"], rule("set", to='{"a":[1,2]}', tot="json")), answer())
http_case("http-params-query", "/nrdiff/users/42?x=1&y=b", {"ret": "obj"},
          node("http in", "hin", ["set"], url="/nrdiff/users/:id"),
          change("set", ["res"], rule("set", to="{'id': req.params.id, 'q': req.query}",
                                      tot="jsonata")), answer())
http_case("http-req-express-fields", "/nrdiff/express?z=9", {"ret": "obj"},
          node("http in", "hin", ["set", "seen"], url="/nrdiff/express"),
          change("set", ["res"], rule(
              "set", to="{'hostname': $$.req.hostname, 'originalUrl': $$.req.originalUrl, "
                        "'ip': $$.req.ip, 'protocol': $$.req.protocol, "
                        "'baseUrl': $$.req.baseUrl, 'route': $$.req.route.path, "
                        "'method': req.method}", tot="jsonata")),
          answer(), node("debug", "seen", complete="req"))
http_case("http-switch-on-req", "/nrdiff/sw?kind=b", {},
          node("http in", "hin", ["s"], url="/nrdiff/sw"),
          node("switch", "s", [["a"], ["b"]], property="$$.req.query.kind",
               propertyType="jsonata", outputs=2,
               rules=[{"t": "eq", "v": "a", "vt": "str"}, {"t": "eq", "v": "b", "vt": "str"}]),
          change("a", ["res"], rule("set", to="went a")),
          change("b", ["res"], rule("set", to="went b")), answer())
http_case("http-post-json", "/nrdiff/post", {"method": "POST", "ret": "obj"},
          node("http in", "hin", ["set"], url="/nrdiff/post", method="post"),
          change("set", ["res"], rule(
              "set", to="{'got': payload, 'ct': req.headers.'content-type'}", tot="jsonata")),
          answer(), payload='{"n":1}', payload_type="json")
http_case("http-status-code", "/nrdiff/teapot", {},
          node("http in", "hin", ["set"], url="/nrdiff/teapot"),
          change("set", ["res"], rule("set", to="short and stout")),
          answer(statusCode="418"))
http_case("http-response-headers", "/nrdiff/headers", {},
          node("http in", "hin", ["set"], url="/nrdiff/headers"),
          change("set", ["res"], rule("set", to="h"),
                 rule("set", p="headers", to='{"x-custom":"yes"}', tot="json")), answer())
http_case("http-not-found", "/nrdiff/missing", {},
          node("http in", "hin", [], url="/nrdiff/other"))
http_case("http-url-mustache", "/nrdiff/{{topic}}", {},
          node("http in", "hin", ["set"], url="/nrdiff/mustache"),
          change("set", ["res"], rule("set", to="mustache ok")), answer(),
          before=(change("tp", ["req"], rule("set", p="topic", to="mustache")),))
http_case("http-msg-url", "", {},
          node("http in", "hin", ["set"], url="/nrdiff/msgurl"),
          change("set", ["res"], rule("set", to="from msg.url")), answer(),
          before=(change("u", ["req"], rule("set", p="url", to=BASE + "/nrdiff/msgurl")),))
http_case("http-request-headers", "/nrdiff/reqheaders", {"ret": "obj"},
          node("http in", "hin", ["set"], url="/nrdiff/reqheaders"),
          change("set", ["res"], rule("set", to="req.headers.'x-test'", tot="jsonata")),
          answer(),
          before=(change("h", ["req"], rule("set", p="headers", to='{"x-test":"sent"}',
                                            tot="json")),))
http_case("http-no-url-error", "", {}, node("catch", "c", ["err"]),
          node("debug", "err", complete="error.message"))
http_case("http-connection-refused", "", {"url": "http://127.0.0.1:9/refused"},
          node("catch", "c", ["err"]), node("debug", "err", complete="true"),
          node("complete", "done", ["done-out"], scope=["req"]), debug("done-out"))
http_case("http-no-response-in-time", "/nrdiff/silent", {},
          node("http in", "hin", [], url="/nrdiff/silent"),
          node("catch", "c", ["err"]), node("debug", "err", complete="true"),
          before=(change("t", ["req"], rule("set", p="requestTimeout", to="300", tot="num")),))
http_case("http-complete", "/nrdiff/complete", {},
          node("http in", "hin", ["set"], url="/nrdiff/complete"),
          change("set", ["res"], rule("set", to="done")), answer(),
          node("complete", "done", ["done-out"], scope=["res", "req"]),
          node("debug", "done-out", complete="payload"))

# -- websocket ------------------------------------------------------------------------------------

WS = "ws://127.0.0.1:${NRDIFF_PORT}"
case("websocket-echo",
     config("websocket-listener", "lst", path="/nrdiff/ws-echo"),
     config("websocket-client", "cli", path=WS + "/nrdiff/ws-echo"),
     node("websocket in", "srv-in", ["srv-out"], server="lst"),
     node("websocket out", "srv-out", server="lst"),
     inject("i", ["cli-out"], "ping"),
     node("websocket out", "cli-out", client="cli"),
     node("websocket in", "cli-in", ["out"], client="cli"), debug())
case("websocket-server-receives",
     config("websocket-listener", "lst", path="/nrdiff/ws-in"),
     config("websocket-client", "cli", path=WS + "/nrdiff/ws-in"),
     node("websocket in", "srv-in", ["out"], server="lst"),
     inject("i", ["cli-out"], '{"a":1}', "json"),
     node("websocket out", "cli-out", client="cli"), debug())
case("websocket-wholemsg",
     config("websocket-listener", "lst", path="/nrdiff/ws-whole", wholemsg="true"),
     config("websocket-client", "cli", path=WS + "/nrdiff/ws-whole", wholemsg="true"),
     node("websocket in", "srv-in", ["out"], server="lst"),
     inject("i", ["cli-out"], "whole", topic="tp"),
     node("websocket out", "cli-out", client="cli"), debug())
case("websocket-broadcast",
     config("websocket-listener", "lst", path="/nrdiff/ws-bc"),
     config("websocket-client", "cli", path=WS + "/nrdiff/ws-bc"),
     inject("i", ["srv-out"], "to all"),
     node("websocket out", "srv-out", server="lst"),
     node("websocket in", "cli-in", ["out"], client="cli"), debug())

# -- subflows and groups (corpus_scopes.py) -------------------------------------------------------

for scope_name, scope_nodes in corpus_scopes.CASES:
    case(scope_name, *scope_nodes)
    CORPUS[scope_name][0]["env"] = corpus_scopes.TAB_ENV


def write(directory: Path) -> list[Path]:
    """Write every corpus flow as ``DIR/<name>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, nodes in CORPUS.items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(nodes, indent=1), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    print(f"{len(write(Path(sys.argv[1])))} flows written to {sys.argv[1]}")
