"""Reading a Node-RED export: a JSON array of node objects (or ``{"flows": [...]}`` as the
admin API's v2 format and project files have it), checked entry by entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowengine.importer.report import ImportReport

NOT_AN_EXPORT = ("not a Node-RED export: expected a JSON array of node objects, each with "
                 "'id' and 'type' (the file Node-RED's Export menu or GET /flows gives)")


def read_export(path: Path, report: ImportReport) -> list[dict[str, Any]] | None:
    """The node objects of ``path``, in file order, with unique ids; None (and a problem in
    ``report``) when the file is not a Node-RED export."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        report.problems.append(f"cannot read {path}: {exc.strerror or exc}")
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        report.problems.append(f"{NOT_AN_EXPORT}; the file is not JSON ({exc})")
        return None
    if isinstance(data, dict) and isinstance(data.get("flows"), list):
        data = data["flows"]
    if not isinstance(data, list):
        report.problems.append(f"{NOT_AN_EXPORT}; the file holds a JSON "
                               f"{type(data).__name__.replace('dict', 'object')}")
        return None
    nodes: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(data):
        if not (isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]
                and isinstance(item.get("type"), str) and item["type"]):
            report.problems.append(f"entry {index} of the array is not a Node-RED node (it "
                                   f"needs a string 'id' and 'type'): {_short(item)}")
            continue
        node = _normalized(item, index, report)
        first = seen.get(node["id"])
        if first is not None:
            new_id = _unused_id(node["id"], seen)
            report.problems.append(
                f"duplicate id '{node['id']}': {_what(first)} and {_what(node)}; the second "
                f"is imported as '{new_id}' and wires to '{node['id']}' go to the first")
            node["id"] = new_id
        seen[node["id"]] = node
        nodes.append(node)
    if not nodes:
        report.problems.append(f"{NOT_AN_EXPORT}; no entry is a node object")
        return None
    return nodes


def _normalized(item: dict[str, Any], index: int, report: ImportReport) -> dict[str, Any]:
    """A copy of a node whose ``z``, ``g`` and ``wires`` have the shapes Node-RED writes
    (string ids, a list of lists of ids); anything else is dropped and named."""
    node = dict(item)
    where = f"'{node['type']}' node {node['id']}"
    for key in ("z", "g"):
        if key in node and not isinstance(node[key], str):
            report.problems.append(f"{where}: '{key}' is not an id: ignored")
            del node[key]
    if "wires" in node:
        wires = node["wires"]
        if not isinstance(wires, list) or not all(isinstance(w, list) for w in wires):
            report.problems.append(f"{where}: 'wires' is not a list of lists of ids: "
                                   "its wires are dropped")
            node["wires"] = []
        elif not all(isinstance(t, str) for w in wires for t in w):
            report.problems.append(f"{where}: 'wires' holds something other than node ids: "
                                   "left out")
            node["wires"] = [[t for t in w if isinstance(t, str)] for w in wires]
    return node


def _unused_id(node_id: str, seen: dict[str, Any]) -> str:
    n = 2
    while f"{node_id}-{n}" in seen:
        n += 1
    return f"{node_id}-{n}"


def _what(node: dict[str, Any]) -> str:
    name = f" {node['name']!r}" if isinstance(node.get("name"), str) and node["name"] else ""
    return f"a '{node['type']}' node{name}"


def _short(item: Any) -> str:
    text = json.dumps(item, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
