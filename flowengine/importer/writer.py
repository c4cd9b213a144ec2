"""Writing flow files as people write them: block mappings, short lists and value references
inline (``wires: [a, b]``, ``to: {msg: payload}``), multi-line text as ``|`` blocks, and comments
(PyYAML cannot write comments, so each node is dumped on its own and the comment lines put
above it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from flowengine.importer.values import protect

_FLOW_WIDTH = 72  # containers of scalars shorter than this are written inline


@dataclass
class NodeEntry:
    """A node of a flow file."""

    id: str
    type: str
    config: dict[str, Any]
    comment: list[str] = field(default_factory=list)
    name: str = ""
    description: str = ""
    disabled: bool = False
    group: str = ""
    wires: list[list[str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The node's mapping: common fields first, wires last."""
        body: dict[str, Any] = {"type": self.type}
        if self.name:  # as Node-RED names error, status and complete sources
            body["name"] = self.name
        if self.disabled:
            body["disabled"] = True
        if self.description:
            body["description"] = self.description
        if self.group:
            body["group"] = self.group
        body.update(self.config)
        if self.wires:
            body["wires"] = self.wires[0] if len(self.wires) == 1 else self.wires
        return protect(body)


@dataclass
class GroupEntry:
    """A group of a flow file or subflow."""

    id: str
    name: str = ""
    group: str = ""
    env: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.name:
            body["name"] = self.name
        if self.group:
            body["group"] = self.group
        if self.env:
            body["env"] = self.env
        return protect(body)


@dataclass
class SubflowEntry:
    """A subflow: its interface (``in``, ``out``, ``status``), env defaults and nodes."""

    name: str
    description: str = ""
    comment: list[str] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] | None = None
    outputs: list[list[str]] = field(default_factory=list)
    status: list[str] | None = None
    groups: list[GroupEntry] = field(default_factory=list)
    config: list[NodeEntry] = field(default_factory=list)
    nodes: list[NodeEntry] = field(default_factory=list)


@dataclass
class FlowFile:
    """One flow file."""

    name: str
    description: str = ""
    env: dict[str, Any] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    groups: list[GroupEntry] = field(default_factory=list)
    subflows: list[SubflowEntry] = field(default_factory=list)
    config: list[NodeEntry] = field(default_factory=list)
    nodes: list[NodeEntry] = field(default_factory=list)


def render(flow: FlowFile) -> str:
    """The YAML text of a flow file."""
    parts = [_comment(flow.header, "")]
    head: dict[str, Any] = {"flow": flow.name}
    if flow.description:
        head["description"] = flow.description
    if flow.include:
        head["include"] = flow.include
    if flow.env:
        head["env"] = flow.env
    parts.append(_dump(protect(head), depth=2))
    parts.append(_groups(flow.groups, ""))
    if flow.subflows:
        parts.append("subflows:\n")
        for subflow in flow.subflows:
            parts.append(_comment(subflow.comment, "  "))
            parts.append(_indent(_subflow(subflow), "  "))
    parts.append(_sections(flow.config, flow.nodes, "", empty_nodes=True))
    return "".join(parts)


def _subflow(subflow: SubflowEntry) -> str:
    head: dict[str, Any] = {}
    if subflow.description:
        head["description"] = subflow.description
    if subflow.env:
        head["env"] = subflow.env
    if subflow.inputs is not None:
        head["in"] = subflow.inputs
    if subflow.outputs:
        single = len(subflow.outputs) == 1 and subflow.outputs[0]
        head["out"] = subflow.outputs[0] if single else subflow.outputs
    if subflow.status is not None:
        head["status"] = subflow.status
    text = f"{subflow.name}:\n"
    if head:
        text += _indent(_dump(protect(head), depth=1), "  ")
    text += _groups(subflow.groups, "  ")
    return text + _sections(subflow.config, subflow.nodes, "  ", empty_nodes=False)


def _groups(groups: list[GroupEntry], indent: str) -> str:
    if not groups:
        return ""
    text = f"{indent}groups:\n"
    for group in groups:
        body = group.body()
        text += _indent(_dump({group.id: body}, depth=2) if body else f"{group.id}: {{}}\n",
                        indent + "  ")
    return text


def _sections(config: list[NodeEntry], nodes: list[NodeEntry], indent: str,
              empty_nodes: bool) -> str:
    parts = []
    for section, entries in (("config", config), ("nodes", nodes)):
        if not entries:
            if section == "nodes" and empty_nodes:
                parts.append(f"{indent}{section}: {{}}\n")
            continue
        parts.append(f"{indent}{section}:\n")
        for entry in entries:
            parts.append(_comment(entry.comment, indent + "  "))
            parts.append(_indent(_dump({entry.id: entry.body()}, depth=2), indent + "  "))
    return "".join(parts)


def _comment(lines: list[str], indent: str) -> str:
    out = []
    for text in lines:
        for line in text.splitlines() or [""]:
            out.append(f"{indent}# {line}".rstrip() + "\n")
    return "".join(out)


def _indent(text: str, indent: str) -> str:
    return "".join(indent + line if line.strip() else line
                   for line in text.splitlines(keepends=True))


class _Inline(list):
    """A list written inline."""


class _InlineMap(dict):
    """A mapping written inline."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Lists inside mappings indented under their key, as people write them.
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style=style)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(_Inline, lambda d, v: d.represent_sequence(
    "tag:yaml.org,2002:seq", list(v), flow_style=True))
_Dumper.add_representer(_InlineMap, lambda d, v: d.represent_mapping(
    "tag:yaml.org,2002:map", dict(v), flow_style=True))


def _dump(mapping: dict[str, Any], depth: int = 1) -> str:
    """A mapping in block style down to ``depth`` levels; deeper short containers inline."""
    return yaml.dump(_block(mapping, depth), Dumper=_Dumper, sort_keys=False,
                     allow_unicode=True, default_flow_style=False, width=100)


def _block(value: Any, depth: int) -> Any:
    if depth > 0 and isinstance(value, dict):
        return {k: _block(v, depth - 1) for k, v in value.items()}
    return _inline(value)


def _inline(value: Any) -> Any:
    """Mark short containers of scalars (and nested short ones) to be written inline."""
    if isinstance(value, dict):
        inner = {k: _inline(v) for k, v in value.items()}
        if inner and _short(inner):
            return _InlineMap(inner)
        return inner
    if isinstance(value, list):
        items = [_inline(v) for v in value]
        if _short(items):
            return _Inline(items)
        return items
    return value


def _short(container: dict[str, Any] | list[Any]) -> bool:
    values = container.values() if isinstance(container, dict) else container
    if not all(_is_simple(v) for v in values):
        return False
    # The JSON form is about as long as the inline YAML form.
    return len(json.dumps(container, ensure_ascii=False, default=str)) <= _FLOW_WIDTH


def _is_simple(value: Any) -> bool:
    if isinstance(value, _Inline | _InlineMap):
        return True
    if isinstance(value, str):
        return "\n" not in value
    return value is None or isinstance(value, bool | int | float)
