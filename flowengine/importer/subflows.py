"""Subflows are expanded: every instance becomes a copy of the subflow's nodes.

A copy's id is ``<instance id>-<template node id>`` (Node-RED names a subflow node's runtime
instance that way too). Wires into the instance go to the nodes wired from the subflow's input;
wires to a subflow output go where the instance's output is wired. The subflow's environment
variables (template defaults, then the instance's own) are given to the copies, which resolve
``env`` values from them at import time (an ``env``-typed variable naming itself reads the
enclosing scope, as in Node-RED). A scope (catch, status, complete) naming the instance
names every copy. Subflows inside subflows are expanded in further rounds.
"""

from __future__ import annotations

import copy
from typing import Any

from flowengine.importer.report import ImportReport

MAX_DEPTH = 16  # deeper nesting is taken as a subflow that contains itself

Node = dict[str, Any]


def expand_subflows(flow_nodes: list[Node], config_nodes: list[Node],
                    subflows: dict[str, Node], inner: dict[str, list[Node]],
                    report: ImportReport) -> list[Node]:
    """``flow_nodes`` with every subflow instance replaced by its copies; copies of the
    subflows' config nodes are appended to ``config_nodes``."""
    nodes = list(flow_nodes)
    expanded: dict[str, int] = {}
    while True:
        instance = next((n for n in nodes if _instance_of(n, subflows)), None)
        if instance is None:
            for subflow_id, count in expanded.items():
                report.notes.append(f"subflow '{subflows[subflow_id].get('name') or subflow_id}'"
                                    f" expanded into its {count} instance(s): their nodes' ids "
                                    "start with the instance's name")
            return nodes
        template = subflows[instance["type"][len("subflow:"):]]
        if instance.get("_depth", 0) >= MAX_DEPTH:
            report.problems.append(
                f"subflow '{template.get('name') or template['id']}' is nested more than "
                f"{MAX_DEPTH} deep (does it contain itself?): instance {instance['id']} is "
                "imported as a placeholder")
            instance["_unexpandable"] = True
            continue
        expanded[template["id"]] = expanded.get(template["id"], 0) + 1
        copies, configs = _copy(instance, template, inner.get(template["id"], []))
        input_targets = _input_targets(instance, template)
        nodes = [n for n in nodes if n is not instance]
        everything = nodes + copies
        for node in everything:
            _rewire(node, instance["id"], input_targets)
            _rescope(node, instance["id"], [c["id"] for c in copies])
        nodes = everything
        config_nodes.extend(configs)


def _instance_of(node: Node, subflows: dict[str, Node]) -> bool:
    kind = node.get("type", "")
    return (kind.startswith("subflow:") and kind[len("subflow:"):] in subflows
            and not node.get("_unexpandable"))


def _copy(instance: Node, template: Node, members: list[Node]) -> tuple[list[Node], list[Node]]:
    prefix = instance["id"]
    ids = {m["id"]: f"{prefix}-{m['id']}" for m in members}
    outputs: list[list[str]] = [list(w) for w in instance.get("wires") or []]
    # (template node id, port) -> where the instance's output k is wired
    extra: dict[tuple[str, int], list[str]] = {}
    for k, port in enumerate(_ports(template.get("out"))):
        for wire in port:
            if wire.get("id") in ids and k < len(outputs):
                extra.setdefault((wire["id"], int(wire.get("port") or 0)), []).extend(outputs[k])
    # The instance's variables (its own values over the template's defaults), in front of the
    # scopes the instance itself sees (an enclosing subflow instance).
    name = instance.get("name") or template.get("name") or template["id"]
    scope = {"NR_SUBFLOW_NAME": {"type": "str", "value": name},
             "NR_SUBFLOW_ID": {"type": "str", "value": instance["id"]},
             **_env_entries(template.get("env")), **_env_entries(instance.get("env"))}
    env_chain = [scope, *instance.get("_env_chain", [])]
    copies: list[Node] = []
    configs: list[Node] = []
    for member in members:
        if member.get("type") in ("group",):
            continue  # groups inside a subflow: their names are lost with the subflow
        clone = copy.deepcopy(member)
        clone["id"] = ids[member["id"]]
        clone["z"] = instance.get("z")
        clone["_env_chain"] = env_chain
        clone["_depth"] = instance.get("_depth", 0) + 1
        clone["_subflow"] = [*instance.get("_subflow", []), name]
        clone["_slug_prefix"] = [*instance.get("_slug_prefix", []),
                                 instance.get("name") or template.get("name") or "subflow"]
        if instance.get("g"):
            clone["g"] = instance["g"]
        else:
            clone.pop("g", None)
        if instance.get("d"):
            clone["d"] = True
        for key, value in list(clone.items()):
            if isinstance(value, str) and value in ids and key not in ("id", "type", "name"):
                clone[key] = ids[value]  # a config node of the subflow
        if "wires" in member or "x" in member:
            wires = [[ids.get(t, t) for t in out] for out in member.get("wires") or []]
            for (member_id, port), targets in extra.items():
                if member_id == member["id"]:
                    while len(wires) <= port:
                        wires.append([])
                    wires[port].extend(targets)
            clone["wires"] = wires
            for key in ("scope", "links"):
                if isinstance(clone.get(key), list):
                    clone[key] = [ids.get(i, i) for i in clone[key]]
            copies.append(clone)
        else:
            configs.append(clone)
    return copies, configs


def _input_targets(instance: Node, template: Node) -> list[str]:
    prefix = instance["id"]
    targets: list[str] = []
    for port in _ports(template.get("in")):
        targets.extend(f"{prefix}-{w['id']}" for w in port
                       if w.get("id") and w["id"] != template["id"])
    outputs = instance.get("wires") or []
    for k, port in enumerate(_ports(template.get("out"))):
        # The subflow's input wired straight to an output.
        if any(w.get("id") == template["id"] for w in port) and k < len(outputs):
            targets.extend(outputs[k])
    return targets


def _rewire(node: Node, instance_id: str, targets: list[str]) -> None:
    wires = node.get("wires")
    if not isinstance(wires, list):
        return
    node["wires"] = [
        [t for target in out for t in (targets if target == instance_id else [target])]
        if isinstance(out, list) else out for out in wires]


def _rescope(node: Node, instance_id: str, copies: list[str]) -> None:
    scope = node.get("scope")
    if isinstance(scope, list) and instance_id in scope:
        node["scope"] = [i for s in scope for i in (copies if s == instance_id else [s])]


def _env_entries(entries: Any) -> dict[str, dict[str, Any]]:
    """Node-RED's env list ``[{name, type, value}]`` keyed by name."""
    found: dict[str, dict[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
            found[entry["name"]] = {"type": entry.get("type") or "str",
                                    "value": entry.get("value")}
    return found


def _ports(ports: Any) -> list[list[dict[str, Any]]]:
    """A subflow's ``in`` or ``out``: per port, its wires ``{id, port}`` (odd entries left
    out)."""
    return [[w for w in p.get("wires") if isinstance(w, dict) and isinstance(w.get("id"), str)]
            if isinstance(p, dict) and isinstance(p.get("wires"), list) else []
            for p in (ports if isinstance(ports, list) else [])]
