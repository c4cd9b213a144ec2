"""The run plan: several Node-RED flow files made into one export that both runtimes run at once.

Every id of file number ``k`` gets the prefix ``f<k>.`` (so that files never share a node, a
tab or a config node), nodes of a tab that the file does not contain get a tab of their own, and
``${NRDIFF_PORT}`` anywhere in a file's text becomes the port both runtimes listen on. Inject
nodes that do not fire by themselves (no ``once``, ``repeat`` or ``crontab``) are the file's
triggers: the drivers press them in file order, ``gap`` seconds apart, as a user would press
their buttons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PORT_PLACEHOLDER = "${NRDIFF_PORT}"
#: Properties that name other nodes (core nodes and their config nodes).
REFERENCES = {"id", "z", "g", "wires", "links", "scope", "server", "client", "tls", "proxy",
              "broker"}
#: Subflow properties holding objects that name nodes ({id, port} wires, status).
PORTS = {"in", "out", "status", "wires"}


@dataclass
class FlowFile:
    """One flow file of the plan."""

    path: Path
    prefix: str
    nodes: list[dict[str, Any]]
    triggers: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.path)

    def types(self) -> set[str]:
        """The node types the file uses (tabs, groups and subflow definitions left out)."""
        return {n["type"] for n in self.nodes
                if n.get("type") not in ("tab", "group", "subflow")
                and not str(n.get("type")).startswith("subflow:")
                and ("x" in n or "wires" in n)}


@dataclass
class Plan:
    files: list[FlowFile]
    port: int
    start_delay: float = 0.3
    gap: float = 0.3
    quiet: float = 1.2
    max_time: float = 20.0

    def export(self) -> list[dict[str, Any]]:
        """Every file's nodes in one Node-RED export."""
        return [n for f in self.files for n in f.nodes]

    def file_of(self, node_id: str) -> FlowFile | None:
        prefix = node_id.split(".", 1)[0] + "."
        return next((f for f in self.files if f.prefix == prefix), None)

    def driver_plan(self) -> dict[str, Any]:
        return {"port": self.port, "start_delay": self.start_delay, "gap": self.gap,
                "quiet": self.quiet, "max_time": self.max_time,
                "groups": [{"name": f.name, "triggers": f.triggers} for f in self.files]}


def load_plan(paths: list[Path], port: int) -> Plan:
    """Read the flow files (JSON exports) into a plan."""
    files = []
    for index, path in enumerate(paths, 1):
        text = path.read_text(encoding="utf-8").replace(PORT_PLACEHOLDER, str(port))
        nodes = json.loads(text)
        if isinstance(nodes, dict) and isinstance(nodes.get("flows"), list):
            nodes = nodes["flows"]  # the v2 form {flows: [...], rev}
        if not isinstance(nodes, list):
            raise ValueError(f"{path}: not a Node-RED export (a JSON array of nodes)")
        prefix = f"f{index}."
        files.append(_prefixed(path, prefix, nodes))
    return Plan(files, port)


def _prefixed(path: Path, prefix: str, nodes: list[dict[str, Any]]) -> FlowFile:
    ids = {n["id"] for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), str)}

    def rename(value: Any, key: str | None = None) -> Any:
        if isinstance(value, str):
            if key in REFERENCES and value in ids:
                return prefix + value
            if key == "type" and value.startswith("subflow:") and value[8:] in ids:
                return "subflow:" + prefix + value[8:]
            return value
        if isinstance(value, list):
            return [rename(v, key) for v in value]
        if isinstance(value, dict) and (key is None or key in PORTS):
            return {k: rename(v, k) for k, v in value.items()}
        return value

    renamed = [rename(n) for n in nodes if isinstance(n, dict)]
    tabs = {n["id"] for n in renamed if n.get("type") in ("tab", "subflow")}
    own_tab = prefix + "tab"
    needs_tab = False
    for node in renamed:
        if node.get("type") in ("tab", "subflow"):
            continue
        is_flow_node = "x" in node or "wires" in node
        if is_flow_node and node.get("z") not in tabs:
            node["z"] = own_tab
            needs_tab = True
    if needs_tab:
        renamed.insert(0, {"id": own_tab, "type": "tab", "label": path.stem})
    flow_tabs = {n["id"] for n in renamed if n.get("type") == "tab" and not n.get("disabled")}
    triggers = [n["id"] for n in renamed
                if n.get("type") == "inject" and n.get("z") in flow_tabs and not n.get("d")
                and not _fires_itself(n)]
    return FlowFile(path, prefix, renamed, triggers)


def _fires_itself(node: dict[str, Any]) -> bool:
    once = node.get("once") in (True, "true")
    repeat = str(node.get("repeat") or "").strip() not in ("", "0")
    return once or repeat or bool(str(node.get("crontab") or "").strip())
