"""What the loader produces: flows, node specifications and merged settings."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowengine.errors import LoadError
from flowengine.loader.yamlsource import PathKey, SourceDocument
from flowengine.node import FlowInfo, GroupInfo, Node


@dataclass
class NodeSpec:
    """One node (or config node) as written in a flow file, validated, with its instance."""

    id: str
    type: str
    flow: FlowInfo
    config: dict[str, Any]
    definition: dict[str, Any]  # the node's mapping as written (after ${} substitution)
    node_class: builtins.type[Node]  # `type` is a field name here
    line: int
    column: int
    name: str | None = None
    wires: list[list[str]] = field(default_factory=list)
    disabled: bool = False
    description: str = ""
    instance: Node | None = None
    #: The parsed file the node was read from (positions for error messages).
    document: SourceDocument | None = field(default=None, repr=False, compare=False)
    #: Where the node is written in ``document``: ``("nodes", id)``, or for the copy of a
    #: subflow's node ``("subflows", name, "nodes", id)``.
    key: PathKey = ()
    group: GroupInfo | None = None
    #: Inside a subflow instance: the id of the subflow's node this one is a copy of.
    alias: str | None = None
    #: Where the runtime sends each output, when that is not ``wires``: a subflow instance
    #: forwards to its subflow's input nodes; a node wired to a subflow's output also sends
    #: to where the instance's output is wired (flowengine.loader.subflows).
    routes: list[list[str]] | None = None
    #: A subflow instance's outputs: per output, the (node id, output) pairs inside it that
    #: send there (a node may be another instance).
    outputs_from: list[list[tuple[str, int]]] | None = None

    @property
    def is_config(self) -> bool:
        return self.node_class.is_config

    def signature(self) -> Any:
        """What decides whether a reload must restart the node: everything but the wires and
        the group, and the env of the groups and scopes around it. (A node that only moves to
        another group keeps running: it reads its group when it looks a name up.)"""
        envs: list[Any] = []
        scope: FlowInfo | None = self.flow
        group = self.group
        while scope is not None:
            envs.extend(g.env for g in (group.chain() if group else ()))
            envs.append(scope.env)
            group, scope = scope.group, scope.parent
        return {k: v for k, v in self.definition.items() if k not in ("wires", "group")}, envs


@dataclass
class FlowSpec:
    """One flow file."""

    info: FlowInfo
    path: Path
    document: SourceDocument
    node_ids: list[str] = field(default_factory=list)
    tests: list[Any] = field(default_factory=list)
    includes: list[Path] = field(default_factory=list)
    #: Where each entry of ``includes`` is written (``("include", 0)``), for error messages.
    include_keys: list[tuple[str | int, ...]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class FlowSet:
    """Everything loaded from a set of files, ready for a runtime."""

    flows: list[FlowSpec]
    nodes: dict[str, NodeSpec]
    settings: dict[str, Any]
    warnings: list[LoadError] = field(default_factory=list)

    def flow(self, name: str) -> FlowSpec | None:
        return next((f for f in self.flows if f.info.name == name), None)

    @property
    def files(self) -> list[Path]:
        """Every loaded file, included files too (what ``flowrun --watch`` polls)."""
        return [f.path for f in self.flows]
