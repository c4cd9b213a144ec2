"""Subflows (docs/flow-format.md, "Subflows"): definitions, and the nodes of each instance.

A ``subflows:`` block defines subflows by name; a node of type ``subflow:NAME`` is an instance.
Each instance gets its own copies of the subflow's config and flow nodes (ids
``<instance>-<node>``, as Node-RED names them), which run in the instance's scope
(:class:`~flowengine.node.FlowInfo`: its env, its flow context), plus the two nodes of
:mod:`flowengine.subflow`. Wires and node references inside the subflow lead to the copies; a
copy wired to one of the subflow's outputs also sends to where the instance's output is wired
(``NodeSpec.routes``). Subflows may hold instances of other subflows, but not of themselves.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowengine.loader.model import NodeSpec
from flowengine.loader.scopes import env_entries, read_groups, resolve_env
from flowengine.loader.yamlsource import PathKey, SourceDocument
from flowengine.node import FlowInfo, ScopeEnv
from flowengine.schema import env_block
from flowengine.subflow import SubflowInstance, SubflowStatus

if TYPE_CHECKING:
    from flowengine.loader.loader import Loader

INSTANCE_PREFIX = "subflow:"
_PORTS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}]}
SUBFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "env": env_block(),
        "in": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "out": _PORTS,
        "status": {"anyOf": [{"type": "string"},
                             {"type": "array", "items": {"type": "string"}}]},
        "groups": {"type": ["object", "null"]},
        "config": {"type": ["object", "null"]},
        "nodes": {"type": ["object", "null"]},
    },
    "additionalProperties": False,
}
# A subflow port's source: a node id, or "id:N" for its output N (counted from 1).
_SOURCE = re.compile(r"^(?P<id>[^:]+?)(?::(?P<port>\d+))?$")

Source = tuple[str, int]  # (subflow node id, output index from 0)


@dataclass
class SubflowDef:
    """One subflow as written: where, its interface, its env defaults and its nodes."""

    name: str
    document: SourceDocument
    file: str
    definition: dict[str, Any]
    #: The subflow's nodes its input is wired to (None: it has no input).
    inputs: list[str] | None = None
    #: Per output, the subflow's node outputs that feed it.
    outputs: list[list[Source]] = field(default_factory=list)
    #: The node outputs wired to the status output (None: it has none).
    status: list[Source] | None = None
    node_class: type[SubflowInstance] = SubflowInstance

    @property
    def key(self) -> PathKey:
        return ("subflows", self.name)

    def section(self, name: str) -> dict[Any, Any]:
        entries = self.definition.get(name)
        return entries if isinstance(entries, dict) else {}


def read_subflows(loader: Loader, document: SourceDocument, file: str, block: Any,
                  known: dict[str, SubflowDef]) -> None:
    """Add the subflows of one file's ``subflows:`` block to ``known``."""
    if not isinstance(block, dict):
        return
    for raw_name, definition in block.items():
        name = str(raw_name)
        key = ("subflows", raw_name)
        if name in known:
            first = known[name]
            line = first.document.key_position(first.key).line
            loader.report(document, file, key, f"subflow '{name}' is already defined "
                          f"({first.file}:{line})", at_key=True)
            continue
        if not loader.valid_id(name):
            loader.report(document, file, key, f"invalid subflow name '{name}': use only "
                          "letters, digits, '-', '_' and '.'", at_key=True)
            continue
        if not isinstance(definition, dict):
            loader.report(document, file, key, "expected a mapping with the subflow's 'nodes', "
                          f"'in', 'out' and 'env', got {definition!r}")
            continue
        errors = loader.schema_errors(SUBFLOW_SCHEMA, definition)
        for path, message in errors:
            loader.report(document, file, (*key, *path), message,
                          at_key=message.startswith("unknown field") or not path)
        if errors:
            continue
        subflow = SubflowDef(name, document, file, definition)
        _read_ports(loader, subflow)
        subflow.node_class = type(f"Subflow[{name}]", (SubflowInstance,), {
            "type": INSTANCE_PREFIX + name, "subflow": name,
            "description": definition.get("description") or f"An instance of subflow {name}.",
            "inputs": 0 if subflow.inputs is None else 1,
            "outputs": len(subflow.outputs), "__module__": SubflowInstance.__module__})
        known[name] = subflow


def _read_ports(loader: Loader, subflow: SubflowDef) -> None:
    from flowengine.loader.loader import normalize_wires

    members = {str(k) for k in subflow.section("nodes")}

    def source(text: str, path: PathKey) -> Source | None:
        match = _SOURCE.match(text)
        if match is None or match.group("id") not in members or match.group("port") == "0":
            hint = difflib.get_close_matches(text, sorted(members), n=1)
            loader.report(subflow.document, subflow.file, (*subflow.key, *path),
                          f"'{text}' is not a node of this subflow (write 'id' or 'id:N' for "
                          f"its output N){f' (did you mean {hint[0]!r}?)' if hint else ''}")
            return None
        return match.group("id"), int(match.group("port") or 1) - 1

    definition = subflow.definition
    if "in" in definition:
        given = definition["in"]
        listed = [given] if isinstance(given, str) else list(given or [])
        subflow.inputs = []
        for i, target in enumerate(listed):
            path = ("in",) if isinstance(given, str) else ("in", i)
            if source(target, path) is not None:
                subflow.inputs.append(target)
    raw_out = definition.get("out")
    for k, port in enumerate(normalize_wires(raw_out)):
        nested = isinstance(raw_out, list) and any(isinstance(p, list) for p in raw_out)
        found = []
        for j, text in enumerate(port):
            path = ("out", k, j) if nested else ("out", j) if isinstance(raw_out, list) \
                else ("out",)
            if (parsed := source(text, path)) is not None:
                found.append(parsed)
        subflow.outputs.append(found)
    if "status" in definition:
        given = definition["status"]
        listed = [given] if isinstance(given, str) else list(given or [])
        subflow.status = [parsed for i, text in enumerate(listed)
                          if (parsed := source(text, ("status",) if isinstance(given, str)
                                               else ("status", i))) is not None]


def expand(loader: Loader, instance: NodeSpec, nodes: dict[str, NodeSpec],
           within: tuple[str, ...] = ()) -> None:
    """Add the nodes of subflow instance ``instance`` (and of the instances inside it) to
    ``nodes``; ``within`` names the subflows being expanded around it."""
    subflow: SubflowDef = loader.subflows[instance.node_class.subflow]  # type: ignore[attr-defined]
    if subflow.name in within:
        loop = " -> ".join((*within[within.index(subflow.name):], subflow.name))
        loader.node_error(instance, ("type",), f"subflow '{subflow.name}' contains itself "
                          f"({loop})")
        return
    scope = FlowInfo(name=f"{instance.flow.name}/{instance.id}", file=subflow.file,
                     description=subflow.definition.get("description") or "",
                     parent=instance.flow, instance=instance.id, instance_name=instance.name,
                     group=instance.group, subflow=subflow.name,
                     status_output=subflow.status is not None)
    entries = env_entries(subflow.definition.get("env"), subflow.document, subflow.file,
                          (*subflow.key, "env"))
    instance_doc = instance.document or SourceDocument(None)
    entries.update(env_entries(instance.config.get("env"), instance_doc, instance.flow.file,
                               (*instance.key, "env")))
    scope.env = resolve_env(loader, entries, ScopeEnv(None, scope))
    groups = read_groups(loader, subflow.document, subflow.file, (*subflow.key, "groups"),
                         subflow.definition.get("groups"), scope, lambda _id, _key: True)
    ids = {str(k): f"{instance.id}-{k}" for section in ("config", "nodes")
           for k in subflow.section(section)}
    copies: dict[str, NodeSpec] = {}
    for section in ("config", "nodes"):
        for raw_id, definition in subflow.section(section).items():
            copy_id = ids[str(raw_id)]
            if copy_id in nodes or loader.is_defined(copy_id):
                loader.node_error(instance, (), f"its copy of subflow node '{raw_id}' would "
                                  f"have the id '{copy_id}', which is already used",
                                  at_key=True)
                continue
            spec = loader.node_spec(subflow.document, subflow.file, (*subflow.key, section,
                                    raw_id), copy_id, definition, section, scope, groups,
                                    members=ids)
            if spec is None:
                continue
            spec.alias = str(raw_id)
            spec.disabled = spec.disabled or instance.disabled
            copies[str(raw_id)] = spec
            nodes[copy_id] = spec
    _route(loader, instance, subflow, copies, ids, nodes, scope)
    for spec in copies.values():
        if _is_instance(spec):
            expand(loader, spec, nodes, (*within, subflow.name))


def _route(loader: Loader, instance: NodeSpec, subflow: SubflowDef,
           copies: dict[str, NodeSpec], ids: dict[str, str], nodes: dict[str, NodeSpec],
           scope: FlowInfo) -> None:
    """The runtime's wires of the instance and of the copies feeding its outputs."""

    def feed(member: str, port: int, targets: list[str], where: str) -> bool:
        spec = copies.get(member)
        if spec is None or spec.is_config:
            return False
        # An instance inside the subflow sends through its own subflow's copies, which are
        # routed when it is expanded: its wires are what they lead to.
        routes = spec.wires if _is_instance(spec) else spec.routes
        if routes is None:
            return False
        try:
            count = spec.node_class.output_count(spec.config)
        except Exception:  # an invalid configuration, reported by its schema
            return False
        if port >= count:
            loader.report(subflow.document, subflow.file, (*subflow.key, where),
                          f"'{member}' has {count} output{'s' if count != 1 else ''}, not "
                          f"{port + 1}")
            return False
        while len(routes) <= port:
            routes.append([])
        routes[port].extend(targets)
        return True

    instance.routes = [[ids[t] for t in subflow.inputs]] if subflow.inputs is not None else []
    for spec in copies.values():
        if not spec.is_config and not _is_instance(spec):
            spec.routes = [list(targets) for targets in spec.wires]
    outputs = instance.wires
    instance.outputs_from = [[] for _ in subflow.outputs]
    for k, sources in enumerate(subflow.outputs):
        for member, port in sources:
            if feed(member, port, outputs[k] if k < len(outputs) else [], "out"):
                instance.outputs_from[k].append((ids[member], port))
    if subflow.status is None:
        return
    status_id = f"{instance.id}:status"
    position = subflow.document.key_position((*subflow.key, "status"))
    nodes[status_id] = NodeSpec(
        id=status_id, type=SubflowStatus.type, flow=scope, config={}, definition={},
        node_class=SubflowStatus, line=position.line, column=position.column,
        disabled=instance.disabled, document=subflow.document, key=(*subflow.key, "status"))
    for member, port in subflow.status:
        feed(member, port, [status_id], "status")



def _is_instance(spec: NodeSpec) -> bool:
    return issubclass(spec.node_class, SubflowInstance)
