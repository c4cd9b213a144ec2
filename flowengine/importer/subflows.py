"""Subflows are kept as subflows (docs/flow-format.md, "Subflows"): a Node-RED subflow becomes a
``subflows:`` entry, its instances ``subflow:NAME`` nodes, which the runtime gives their own
copies of the subflow's nodes, env and flow context.

A subflow goes into the file of the flow that uses it, or into ``globals.yaml`` when several
flows do (through their subflows too). Its ports: ``in`` lists the nodes its input is wired to,
``out`` per output the node outputs feeding it (``id`` or ``id:N``), ``status`` those feeding
its status output. A port wired straight from the subflow's input gets a junction in between.
"""

from __future__ import annotations

from typing import Any

Node = dict[str, Any]

#: The id (inside a subflow) of the junction that stands for a wire from the input straight
#: to an output.
PASS_THROUGH = "_input"


def homes(subflows: dict[str, Node], nodes: list[Node], tab_of: dict[str, str],
          shared: str) -> dict[str, str]:
    """The file each subflow goes to: the one flow using it, else ``shared``; subflows
    without an instance are left out. ``tab_of`` gives the flow name of a tab id."""
    users: dict[str, set[str]] = {sid: set() for sid in subflows}
    inside: dict[str, set[str]] = {sid: set() for sid in subflows}  # subflow -> holders
    for node in nodes:
        used = _instance_of(node, subflows)
        if used is None:
            continue
        holder = node.get("z") or ""
        if holder in subflows:
            inside[used].add(holder)
        elif holder in tab_of:
            users[used].add(tab_of[holder])
    changed = True
    while changed:  # a subflow inside another is used where that one is
        changed = False
        for sid, holders in inside.items():
            for holder in holders:
                if not users[holder] <= users[sid]:
                    users[sid] |= users[holder]
                    changed = True
    return {sid: (next(iter(u)) if len(u) == 1 else shared) for sid, u in users.items() if u}


def ports(template: Node, ids: dict[str, str]) -> tuple[list[str] | None, list[list[str]],
                                                           list[str] | None, bool]:
    """``in``, ``out`` and ``status`` of a subflow (flow-file ids), and whether a port is wired
    straight from the input (it then goes through the :data:`PASS_THROUGH` junction)."""
    own = template["id"]
    through = False

    def sources(port: Any) -> list[str]:
        nonlocal through
        found = []
        for wire in _wires(port):
            if wire["id"] == own:
                through = True
                text = PASS_THROUGH
            elif wire["id"] in ids:
                index = int(wire.get("port") or 0)
                text = ids[wire["id"]] + (f":{index + 1}" if index else "")
            else:
                continue
            if text not in found:
                found.append(text)
        return found

    entries = template.get("in") if isinstance(template.get("in"), list) else []
    inputs = None
    if entries:
        inputs = [ids[w["id"]] for w in _wires(entries[0]) if w["id"] in ids]
    outs = template.get("out") if isinstance(template.get("out"), list) else []
    outputs = [sources(port) for port in outs]
    status = sources(template["status"]) if isinstance(template.get("status"), dict) else None
    if through:
        inputs = [*(inputs or []), PASS_THROUGH]
    return inputs, outputs, status, through


def _wires(port: Any) -> list[dict[str, Any]]:
    wires = port.get("wires") if isinstance(port, dict) else None
    return [w for w in wires if isinstance(w, dict) and isinstance(w.get("id"), str)] \
        if isinstance(wires, list) else []


def _instance_of(node: Node, subflows: dict[str, Node]) -> str | None:
    kind = node.get("type", "")
    if isinstance(kind, str) and kind.startswith("subflow:") and kind[8:] in subflows:
        return kind[8:]
    return None
