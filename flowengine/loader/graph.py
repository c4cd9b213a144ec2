"""Checks on the wired graph (flow-format.md, "Validation"), with networkx.

Errors: wires to unknown ids, to config nodes or to nodes without an input; more wire lists than
outputs; node references (``x-node-ref``) to unknown nodes or nodes of the wrong type, e.g. a
``link out`` pointing at something that is not a ``link in``; config references
(``x-config-ref``) to a missing config node or one of the wrong type. Warnings: nodes that no
source can reach.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import networkx as nx

from flowengine.loader.model import FlowSpec, NodeSpec
from flowengine.registry import normalize_type

if TYPE_CHECKING:
    from flowengine.loader.loader import Loader


def check(loader: Loader, flows: list[FlowSpec], nodes: dict[str, NodeSpec]) -> None:
    """Report graph problems through ``loader`` (errors and warnings)."""
    flows_by_name = {f.info.name: f for f in flows}
    g = nx.DiGraph()
    for spec in nodes.values():
        flow = flows_by_name[spec.flow.name]
        g.add_node(spec.id)
        _check_wires(loader, flow, spec, nodes, g)
        _check_refs(loader, flow, spec, nodes, g)
    _warn_unreachable(loader, flows_by_name, nodes, g)


def _check_wires(loader: Loader, flow: FlowSpec, spec: NodeSpec, nodes: dict[str, NodeSpec],
                 g: nx.DiGraph) -> None:
    doc, file = flow.document, str(flow.path)
    base = ("config" if spec.is_config else "nodes", spec.id)
    if spec.is_config:
        if spec.wires:
            loader._error(doc, file, (*base, "wires"), "a config node has no wires")
        return
    try:
        outputs = spec.node_class.output_count(spec.config)
    except Exception:  # reported by the node's own configure
        return
    if len(spec.wires) > outputs:
        loader._error(doc, file, (*base, "wires"),
                      f"{len(spec.wires)} wire lists but '{spec.type}' has {outputs} "
                      f"output{'s' if outputs != 1 else ''}")
    raw = spec.definition.get("wires")
    for i, targets in enumerate(spec.wires):
        for j, target_id in enumerate(targets):
            where = (*base, "wires", *_yaml_index(raw, i, j))
            target = nodes.get(target_id)
            if target is None:
                close = difflib.get_close_matches(target_id, list(nodes), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                loader._error(doc, file, where, f"wire to unknown node '{target_id}'{hint}")
            elif target.is_config:
                loader._error(doc, file, where, f"wire to config node '{target_id}'")
            elif target.node_class.inputs == 0:
                loader._error(doc, file, where,
                              f"wire to '{target_id}', a '{target.type}' node has no input")
            elif not spec.disabled and not target.disabled:
                g.add_edge(spec.id, target_id)


def _yaml_index(raw: Any, output: int, index: int) -> tuple[int, ...]:
    if isinstance(raw, list) and any(isinstance(w, list) for w in raw):
        return (output, index) if isinstance(raw[output], list) else (output,)
    if isinstance(raw, list):
        return (index,)
    return ()


def _check_refs(loader: Loader, flow: FlowSpec, spec: NodeSpec, nodes: dict[str, NodeSpec],
                g: nx.DiGraph) -> None:
    doc, file = flow.document, str(flow.path)
    base = ("config" if spec.is_config else "nodes", spec.id)
    for field_path, ref_id, kind, wanted in _references(spec.node_class.schema, spec.config, ()):
        where = (*base, *field_path)
        target = nodes.get(ref_id)
        if kind == "x-config-ref":
            if target is None or not target.is_config:
                loader._error(doc, file, where, f"no config node '{ref_id}' "
                              f"(expected a '{wanted}' under 'config:')")
            elif normalize_type(target.type) != normalize_type(wanted):
                loader._error(doc, file, where, f"'{ref_id}' is a '{target.type}' config node, "
                              f"expected a '{wanted}'")
            continue
        if target is None or target.is_config:
            loader._error(doc, file, where, f"no node '{ref_id}'")
        elif wanted is not True and normalize_type(target.type) != normalize_type(wanted):
            loader._error(doc, file, where,
                          f"'{ref_id}' is a '{target.type}' node, expected a '{wanted}'")
        elif not spec.disabled and not target.disabled and target.node_class.inputs:
            g.add_edge(spec.id, ref_id)


def _references(schema: dict[str, Any], value: Any,
                path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str, str, Any]]:
    """(path, id, annotation, wanted type) for every node/config reference in ``value``."""
    for kind in ("x-config-ref", "x-node-ref"):
        if kind in schema:
            if isinstance(value, str):
                yield path, value, kind, schema[kind]
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, str):
                        yield (*path, i), item, kind, schema[kind]
                return
    for alternative in schema.get("anyOf", ()):
        if isinstance(alternative, dict):
            yield from _references(alternative, value, path)
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value and isinstance(sub, dict):
                yield from _references(sub, value[name], (*path, name))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _references(schema["items"], item, (*path, i))


def _warn_unreachable(loader: Loader, flows: dict[str, FlowSpec], nodes: dict[str, NodeSpec],
                      g: nx.DiGraph) -> None:
    live = [s for s in nodes.values() if not s.is_config and not s.disabled]
    sources = [s.id for s in live if s.node_class.inputs == 0]
    reached: set[str] = set(sources)
    for source in sources:
        reached |= nx.descendants(g, source)
    for spec in live:
        if spec.id in reached or spec.node_class.inputs == 0:
            continue
        flow = flows[spec.flow.name]
        loader._error(flow.document, str(flow.path), ("nodes", spec.id),
                      "no source reaches this node (nothing is wired into it)", warning=True)
