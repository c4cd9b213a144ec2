"""Converters of Node-RED's function nodes: function (imported disabled), switch, change,
template, delay, trigger."""

from __future__ import annotations

from typing import Any

from flowengine.importer.converters import (
    UNIT_MS,
    Context,
    Converted,
    Unsupported,
    as_list,
    converts,
    duration,
    prop_path,
    seconds,
    target,
    truthy,
)
from flowengine.importer.values import js_number

STUB = 'raise NotImplementedError("JavaScript function from Node-RED: rewrite it in Python")\n'


@converts("function")
def function(n: dict[str, Any], cx: Context) -> Converted:
    outputs = js_number(n.get("outputs", 1))
    config: dict[str, Any] = {"outputs": int(outputs) if outputs == outputs else 1,
                              "code": STUB}
    timeout = js_number(n.get("timeout") or 0)
    if timeout == timeout and timeout > 0:
        config["timeout"] = timeout
    lines = ["JavaScript function from Node-RED, imported DISABLED: rewrite `code` in Python",
             "(docs/design/function-node.md), then remove `disabled: true`."]
    for label, key in (("On Start", "initialize"), ("On Message", "func"),
                       ("On Stop", "finalize")):
        code = n.get(key)
        if isinstance(code, str) and code.strip():
            lines.append(f"{label}:")
            lines.extend("    " + line for line in code.strip("\n").splitlines())
    libs = [lib.get("module") for lib in as_list(n.get("libs")) if isinstance(lib, dict)]
    if libs:
        lines.append("Modules it required: " + ", ".join(str(m) for m in libs))
    return Converted("function", config, comment=lines, disabled=True, javascript=True)


_BARE_RULES = ("true", "false", "null", "nnull", "empty", "nempty", "else")
_VALUE_RULES = ("eq", "neq", "lt", "lte", "gt", "gte", "cont", "hask")


@converts("switch")
def switch(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {}
    kind = n.get("propertyType") or "msg"
    prop = prop_path(n.get("property"))
    if kind == "msg":
        if prop != "payload":
            config["property"] = prop
    else:
        config["property"] = cx.value(prop, kind, "property")
    rules = [_switch_rule(r, cx) for r in as_list(n.get("rules"))]
    config["rules"] = rules
    if n.get("checkall") in (False, "false"):
        config["checkall"] = False
    if truthy(n.get("repair")):
        config["repair"] = True
    return Converted("switch", config)


def _switch_operand(value: Any, kind: Any, cx: Context) -> Any:
    if kind == "prev":
        return {"prev": True}
    if not kind:
        # Node-RED: a rule value without a type is a number when Number(v) is one.
        number = js_number(value)
        return number if number == number else ("" if value is None else str(value))
    return cx.value(value, kind, "rule value")


def _switch_rule(rule: dict[str, Any], cx: Context) -> Any:
    op = rule.get("t")
    if op in _BARE_RULES:
        return op
    if op in _VALUE_RULES or op in ("head", "tail"):
        return {op: _switch_operand(rule.get("v"), rule.get("vt"), cx)}
    if op in ("btwn", "index"):
        return {op: [_switch_operand(rule.get("v"), rule.get("vt"), cx),
                     _switch_operand(rule.get("v2"), rule.get("v2t"), cx)]}
    if op == "regex":
        out: dict[str, Any] = {"regex": "" if rule.get("v") is None else str(rule["v"])}
        if truthy(rule.get("case")):
            out["ignore_case"] = True
        return out
    if op == "istype":
        return {"istype": rule.get("v") or "string"}
    if op == "jsonata_exp":
        return {"jsonata_exp": str(rule.get("v") or "")}
    raise Unsupported(f"the switch rule '{op}'")


@converts("change")
def change(n: dict[str, Any], cx: Context) -> Converted:
    rules = n.get("rules")
    if not isinstance(rules, list):
        rules = [_legacy_change_rule(n)]
    return Converted("change", {"rules": [_change_rule(r, cx) for r in rules]})


def _legacy_change_rule(n: dict[str, Any]) -> dict[str, Any]:
    """A node saved before Node-RED 0.14: one action (15-change.js constructor)."""
    action = n.get("action")
    rule: dict[str, Any] = {"t": "set" if action == "replace" else action,
                            "p": n.get("property") or ""}
    if rule["t"] in ("set", "move"):
        rule["to"] = n.get("to") or ""
    elif rule["t"] == "change":
        rule.update(**{"from": n.get("from") or "", "to": n.get("to") or "",
                       "fromt": "re" if n.get("reg") is None or n.get("reg") else "str"})
    if rule["t"] == "set" and str(rule["to"]).startswith("msg."):
        rule["to"], rule["tot"] = rule["to"][4:], "msg"
    return rule


def _change_rule(rule: dict[str, Any], cx: Context) -> dict[str, Any]:
    action = rule.get("t")
    if action not in ("set", "change", "delete", "move"):
        raise Unsupported(f"the change rule '{action}'")
    out: dict[str, Any] = {action: target(cx, rule.get("p"), rule.get("pt"))}
    if action == "change":
        from_kind = "re" if rule.get("re") else rule.get("fromt") or "str"
        if from_kind == "re":
            out["from"] = {"regex": str(rule.get("from") or "")}
        else:
            out["from"] = cx.value(rule.get("from", ""), from_kind, "rule from")
    to_kind = rule.get("tot") or "str"
    if action == "move":
        out["to"] = target(cx, rule.get("to"), to_kind)
    elif action in ("set", "change"):
        out["to"] = cx.value(rule.get("to", ""), to_kind, f"rule {action}")
    if action == "set" and rule.get("dc"):
        out["deep_copy"] = True
    return out


@converts("template")
def template(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {"template": str(n.get("template") or "")}
    if n.get("syntax") == "plain":
        config["syntax"] = "plain"
    output = n.get("output") or "str"
    if output != "str":
        config["output"] = output
    field_type = n.get("fieldType") or "msg"
    if field_type not in ("msg", "flow", "global"):
        raise Unsupported(f"a '{field_type}' target")
    if prop_path(n.get("field")) != "payload":
        config["field"] = n["field"]
    if field_type != "msg":
        config["field_type"] = field_type
    return Converted("template", config)


@converts("delay")
def delay(n: dict[str, Any], cx: Context) -> Converted:
    mode = n.get("pauseType") or "delay"
    config: dict[str, Any] = {"pause_type": mode}
    if mode in ("delay", "delayv", "random"):
        # Random delays keep it too: Node-RED shows their status when it is 1 s or more.
        config["timeout"] = duration(n.get("timeout", 5),
                                     UNIT_MS.get(n.get("timeoutUnits") or "seconds", 1000))
    if mode == "random":
        unit = UNIT_MS.get(n.get("randomUnits") or "seconds", 1000)
        bounds = sorted((seconds(n.get("randomFirst", 1), unit),
                         seconds(n.get("randomLast", 5), unit)))  # either order in Node-RED
        config["random_first"] = duration(bounds[0], 1000)
        config["random_last"] = duration(bounds[1], 1000)
    elif mode not in ("delay", "delayv"):
        rate = js_number(n.get("rate", 1))
        config["rate"] = rate if rate == rate and rate > 0 else 1
        periods = js_number(n.get("nbRateUnits") or 1)
        periods = periods if periods == periods and periods > 0 else 1
        config["per"] = duration(periods, UNIT_MS.get(n.get("rateUnits") or "second", 1000))
        if mode == "rate" and truthy(n.get("drop")):
            config["drop"] = True
        if truthy(n.get("allowrate")):
            config["allow_rate"] = True
    outputs = js_number(n.get("outputs") or 1)
    if outputs == 2:
        config["outputs"] = 2
    return Converted("delay", config)


_TRIGGER_SPECIAL = {"pay": {"payload": "original"}, "payl": {"payload": "latest"},
                    "nul": {"nothing": True}}


def _trigger_value(value: Any, kind: Any, cx: Context, default: str) -> Any:
    kind = kind or "str"
    if kind in _TRIGGER_SPECIAL:
        return _TRIGGER_SPECIAL[kind]
    if kind == "date":  # 89-trigger.js: the editor's default "1"/"0" means the timestamp
        value = "" if value in (None, default) else value
    elif value in (None, ""):
        value = default
    if kind == "val":  # 89-trigger.js: "true"/"false" are booleans, "null" is null
        if value in ("true", "false"):
            return value == "true"
        if value == "null":
            return None
        kind = "str"
    return cx.value(value, kind, "trigger value")


@converts("trigger")
def trigger(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {
        "op1": _trigger_value(n.get("op1"), n.get("op1type"), cx, "1"),
        "op2": _trigger_value(n.get("op2"), n.get("op2type"), cx, "0"),
    }
    raw = js_number(n.get("duration", 250))
    raw = 250 if raw != raw else raw
    if raw < 0:  # a negative duration: resend op1 every |duration|
        config["repeat"] = True
        raw = -raw
    config["duration"] = duration(raw, UNIT_MS.get(n.get("units") or "ms", 1))
    if truthy(n.get("extend")) and not config.get("repeat"):
        config["extend"] = True
    if truthy(n.get("overrideDelay")):
        config["override_delay"] = True
    reset = n.get("reset")
    if reset not in (None, ""):
        config["reset"] = reset
    if n.get("bytopic") == "topic":
        config["by_topic"] = "topic"
        if prop_path(n.get("topic"), "topic") != "topic":
            config["topic_property"] = n["topic"]
    if js_number(n.get("outputs") or 1) == 2:
        config["outputs"] = 2
    return Converted("trigger", config)
