"""Converters of Node-RED's sequence and parser nodes: split, join, json."""

from __future__ import annotations

import json
from typing import Any

from flowengine.importer.converters import (
    Context,
    Converted,
    Unsupported,
    converts,
    prop_path,
    truthy,
)
from flowengine.importer.values import js_number


def _escapes(text: str) -> str:
    """Node-RED's split/join separators write ``\\n``, ``\\r``, ``\\t``, ``\\0`` as escapes."""
    return (text.replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t")
            .replace("\\f", "\f").replace("\\0", "\0").replace("\\e", "e"))


def _byte_list(value: Any, cx: Context, what: str) -> dict[str, Any]:
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        data = None
    if not isinstance(data, list) or not all(isinstance(b, int) for b in data):
        raise Unsupported(f"the {what} {value!r} is not a list of bytes")
    return {"bytes": [b & 0xFF for b in data]}


@converts("split")
def split(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {}
    if prop_path(n.get("property")) != "payload":
        config["property"] = n["property"]
    kind = n.get("spltType") or "str"
    if kind == "len":
        length = js_number(n.get("splt"))
        if not (length == length and length >= 1):
            raise Unsupported(f"the split length {n.get('splt')!r}")
        config["length"] = int(length)
    elif kind == "bin":
        config["separator"] = _byte_list(n.get("splt"), cx, "split bytes")
    else:
        separator = _escapes(str(n.get("splt") or "\\n"))
        if separator != "\n":
            config["separator"] = separator
    chunk = js_number(n["arraySplt"]) if n.get("arraySplt") not in (None, "") else 1
    if not (chunk == chunk and chunk >= 1):
        raise Unsupported(f"the array chunk length {n.get('arraySplt')!r}")
    if chunk != 1:
        config["array_chunk"] = int(chunk)
    if truthy(n.get("stream")):
        config["stream"] = True
    if isinstance(n.get("addname"), str) and n["addname"]:
        config["add_key"] = n["addname"]
    return Converted("split", config)


@converts("join")
def join(n: dict[str, Any], cx: Context) -> Converted:
    mode = n.get("mode") or "auto"
    if mode == "reduce":
        reduce: dict[str, Any] = {"expression": str(n.get("reduceExp") or "")}
        init_kind = n.get("reduceInitType") or "num"
        reduce["init"] = cx.value(n.get("reduceInit", ""), init_kind, "reduce init")
        if n.get("reduceFixup"):
            reduce["fixup"] = str(n["reduceFixup"])
        if truthy(n.get("reduceRight")):
            reduce["right"] = True
        return Converted("join", {"mode": "reduce", "reduce": reduce})
    if mode != "custom":
        return Converted("join", {})
    build = n.get("build") or "array"
    config: dict[str, Any] = {"mode": "manual", "build": build}
    if n.get("propertyType") == "full":
        config["whole_message"] = True
    elif prop_path(n.get("property")) != "payload":
        config["property"] = n["property"]
    if build == "object":
        config["key"] = prop_path(n.get("key"), "topic")
    if build in ("string", "buffer"):
        if n.get("joinerType") == "bin":
            config["joiner"] = _byte_list(n.get("joiner") or "[]", cx, "joiner")
        else:
            config["joiner"] = _escapes(str(n.get("joiner") or ""))
    count = js_number(n.get("count") or 0)
    if count == count and count > 0:
        config["count"] = int(count)
    # Nodes saved before Node-RED 4.0.1 have no useparts: they used msg.parts.
    if "useparts" not in n or truthy(n["useparts"]):
        config["use_parts"] = True
    timeout = js_number(n.get("timeout") or 0)
    if timeout == timeout and timeout > 0:
        config["timeout"] = timeout
    if truthy(n.get("accumulate")):
        config["accumulate"] = True
    return Converted("join", config)


@converts("json")
def json_node(n: dict[str, Any], cx: Context) -> Converted:
    config: dict[str, Any] = {}
    if prop_path(n.get("property")) != "payload":
        config["property"] = n["property"]
    action = {"str": "string", "obj": "object"}.get(n.get("action") or "", "auto")
    if action != "auto":
        config["action"] = action
    if truthy(n.get("pretty")):
        config["pretty"] = True
    return Converted("json", config)
