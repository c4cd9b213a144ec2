"""Converters of Node-RED's common nodes: inject, debug, complete, catch, status, comment,
junction and the link nodes."""

from __future__ import annotations

from typing import Any

from flowengine.importer.converters import (
    Context,
    Converted,
    Unsupported,
    as_list,
    converts,
    truthy,
)
from flowengine.importer.values import js_number


@converts("inject")
def inject(n: dict[str, Any], cx: Context) -> Converted:
    props = n.get("props")
    if not isinstance(props, list):  # before Node-RED 1.1: payload and topic only
        props = [{"p": "payload", "v": n.get("payload"), "vt": n.get("payloadType")},
                 {"p": "topic", "v": n.get("topic"), "vt": "str"}]
    ordered: list[tuple[str, Any]] = []
    for prop in props:
        if not isinstance(prop, dict) or not prop.get("p"):
            continue
        name, value, kind = prop["p"], prop.get("v"), prop.get("vt")
        if name == "payload" and "v" not in prop:
            value, kind = n.get("payload"), n.get("payloadType")
        elif name == "topic" and "v" not in prop:
            value, kind = n.get("topic"), "str"
        ordered.append((name, cx.value(value, kind or "str", f"property {name}")))
    names = [name for name, _ in ordered]
    config: dict[str, Any] = {}
    if names[:1] == ["payload"] and "topic" not in names[2:]:
        # The usual shape: payload, then topic, then the rest, as the node's own fields.
        config["payload"] = ordered[0][1]
        extra = dict(ordered[1:])
        if "topic" in extra:
            config["topic"] = extra.pop("topic")
        if extra:
            config["props"] = extra
    else:
        # Node-RED's order (a payload read after the topic), or no payload at all.
        config["props"] = [{name: value} for name, value in ordered]
    if truthy(n.get("once")):
        config["once"] = True
        delay = js_number(n.get("onceDelay") or 0.1)
        if delay == delay and delay != 0.1:
            config["once_delay"] = delay
    repeat = js_number(n.get("repeat") or 0)
    if repeat == repeat and repeat > 0:
        config["repeat"] = repeat
    elif isinstance(n.get("crontab"), str) and n["crontab"].strip():
        config["cron"] = n["crontab"].strip()
    return Converted("inject", config)


@converts("debug")
def debug(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {}
    complete = n.get("complete", "false")
    if n.get("targetType") == "jsonata":
        config["expression"] = str(complete or "")
    elif complete in (True, "true"):
        config["complete"] = True
    elif isinstance(complete, str) and complete not in ("", "false", "payload"):
        config["property"] = complete
    if n.get("active") is False or n.get("active") == "false":
        config["active"] = False
    # The sidebar's counterpart here is the console (and the admin API's debug stream).
    if not (truthy(n.get("tosidebar", True)) or truthy(n.get("console"))):
        config["console"] = False
    if truthy(n.get("tostatus")):
        kind, value = n.get("statusType") or "auto", n.get("statusVal")
        if kind in ("auto", "counter"):
            config["status"] = kind
        elif kind in ("msg", "jsonata"):
            config["status"] = {kind: value or (complete if kind == "msg" else "payload")}
        else:
            config["status"] = "auto"
            cx.note(f"shows a '{kind}' value in its status: the imported debug shows 'auto'")
    return Converted("debug", config)


@converts("complete")
def complete(n: dict[str, Any], cx: Context) -> Converted:
    scope = [r for r in (cx.ref(i, "scope") for i in as_list(n.get("scope"))) if r]
    return Converted("complete", {"scope": scope})


@converts("catch", "status")
def catch_or_status(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {}
    scope = n.get("scope")
    if scope == "group":
        config["scope"] = "group"
    elif isinstance(scope, list):
        config["scope"] = [r for r in (cx.ref(i, "scope") for i in scope) if r]
    if n["type"] == "catch" and truthy(n.get("uncaught")):
        config["uncaught"] = True
    return Converted(n["type"], config)


@converts("comment")
def comment(n: dict[str, Any], cx: Context) -> Converted:
    info = n.get("info")
    return Converted("comment", {"info": info} if isinstance(info, str) and info else {})


@converts("junction")
def junction(n: dict[str, Any], cx: Context) -> Converted:
    return Converted("junction", {})


@converts("link in")
def link_in(n: dict[str, Any], cx: Context) -> Converted:
    return Converted("link in", {})


@converts("link out")
def link_out(n: dict[str, Any], cx: Context) -> Converted:
    if n.get("mode") == "return":
        return Converted("link out", {"mode": "return"})
    return Converted("link out", {"links": cx.link_targets()})


@converts("link call")
def link_call(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {}
    if n.get("linkType") == "dynamic":
        config["link_type"] = "dynamic"
    else:
        links = [r for r in (cx.ref(i, "links") for i in as_list(n.get("links"))) if r]
        if not links:
            raise Unsupported("a static call without a target link in node")
        config["links"] = links[:1]
    timeout = js_number(n.get("timeout") or 30)
    if timeout == timeout and timeout > 0 and timeout != 30:
        config["timeout"] = timeout
    return Converted("link call", config)
