"""Checks on the wired graph (docs/design/flow-format.md, "Validation"), with networkx.

Errors: wires to unknown ids, to config nodes or to nodes without an input; more wire lists than
outputs; node references (``x-node-ref``) to unknown nodes or nodes of the wrong type, e.g. a
``link out`` pointing at something that is not a ``link in``; config references
(``x-config-ref``) to a missing config node, one of the wrong type or a disabled one. Warnings:
nodes that no source can reach.

Disabled nodes are checked like the others, but carry no edges: wires through them are dropped.
The nodes of subflow instances are checked as copies: an error in a subflow is reported once,
where it is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import networkx as nx

from flowengine.loader.model import NodeSpec
from flowengine.registry import normalize_type

if TYPE_CHECKING:
    from flowengine.loader.loader import Loader


def check(loader: Loader, nodes: dict[str, NodeSpec], others: Iterable[NodeSpec] = ()) -> None:
    """Report graph problems through ``loader`` (errors and warnings). The wires and references
    of ``others`` (definitions of an id defined twice) are checked too, outside the graph."""
    g = nx.DiGraph()
    for spec in nodes.values():
        g.add_node(spec.id)
        _check_wires(loader, spec, nodes, g)
        _check_refs(loader, spec, nodes, g)
        if spec.routes is not None and not spec.disabled:
            # A subflow instance's way in and its nodes' ways out (checked where written).
            g.add_edges_from((spec.id, t) for out in spec.routes for t in out
                             if t in nodes and not nodes[t].disabled)
    for spec in others:
        _check_wires(loader, spec, nodes, nx.DiGraph())
        _check_refs(loader, spec, nodes, nx.DiGraph())
    _warn_unreachable(loader, nodes, g)


def _a(word: str) -> str:
    """``"a 'debug'"``, ``"an 'inject'"``."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} '{word}'"


def _hint(wanted: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(wanted, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_wires(loader: Loader, spec: NodeSpec, nodes: dict[str, NodeSpec],
                 g: nx.DiGraph) -> None:
    if spec.is_config:
        if spec.wires:
            loader.node_error(spec, ("wires",), "a config node has no wires")
        return
    try:
        outputs = spec.node_class.output_count(spec.config)
    except Exception:  # reported by the node's schema or its own configure
        return
    if len(spec.wires) > outputs:
        loader.node_error(spec, ("wires",),
                          f"{len(spec.wires)} wire lists but this '{spec.type}' node has "
                          f"{outputs} output{'s' if outputs != 1 else ''}")
    raw = spec.definition.get("wires")
    inputs = [i for i, n in nodes.items() if not n.is_config and n.node_class.inputs]
    for i, targets in enumerate(spec.wires):
        for j, target_id in enumerate(targets):
            where: tuple[str | int, ...] = ("wires", *yaml_index(raw, i, j))
            target = nodes.get(target_id)
            if target is None:
                if target_id not in loader.broken_ids:  # already reported where it is defined
                    loader.node_error(spec, where, f"wire to unknown node '{target_id}'"
                                      f"{_hint(target_id, inputs)}")
            elif target.is_config:
                loader.node_error(spec, where, f"wire to config node '{target_id}' "
                                  "(config nodes have no input)")
            elif target.node_class.inputs == 0:
                loader.node_error(spec, where, f"wire to '{target_id}': "
                                  f"{_a(target.type)} node has no input")
            elif i < outputs and not spec.disabled and not target.disabled:
                g.add_edge(spec.id, target_id)


def yaml_index(raw: Any, output: int, index: int) -> tuple[int, ...]:
    """Where wire ``index`` of output ``output`` is written in the ``wires`` field."""
    if isinstance(raw, list) and any(isinstance(w, list) for w in raw):
        return (output, index) if isinstance(raw[output], list) else (output,)
    if isinstance(raw, list):
        # [a, null, b]: the normalized list dropped the nulls, the file did not.
        strings = [k for k, w in enumerate(raw)
                   if isinstance(w, str | int) and not isinstance(w, bool)]
        return (strings[index],)
    return ()


def _check_refs(loader: Loader, spec: NodeSpec, nodes: dict[str, NodeSpec],
                g: nx.DiGraph) -> None:
    for field_path, ref_id, kind, wanted in _references(spec.node_class.schema, spec.config, ()):
        target = nodes.get(ref_id)
        if target is None and ref_id in loader.broken_ids:
            continue  # already reported where it is defined
        if kind == "x-config-ref":
            configs = [i for i, n in nodes.items() if n.is_config]
            if target is None:
                loader.node_error(spec, field_path, f"no config node '{ref_id}' (expected "
                                  f"{_a(wanted)} under 'config:'){_hint(ref_id, configs)}")
            elif not target.is_config:
                loader.node_error(spec, field_path, f"'{ref_id}' is a flow node, expected "
                                  f"{_a(wanted)} config node")
            elif normalize_type(target.type) != normalize_type(wanted):
                loader.node_error(spec, field_path, f"'{ref_id}' is {_a(target.type)} config "
                                  f"node, expected {_a(wanted)}")
            elif target.disabled and not spec.disabled:
                loader.node_error(spec, field_path, f"config node '{ref_id}' is disabled")
            continue
        if target is None:
            flow_nodes = [i for i, n in nodes.items() if not n.is_config]
            loader.node_error(spec, field_path,
                              f"no node '{ref_id}'{_hint(ref_id, flow_nodes)}")
        elif target.is_config:
            loader.node_error(spec, field_path, f"'{ref_id}' is a config node, expected "
                              f"{'a flow node' if wanted is True else _a(wanted) + ' node'}")
        elif wanted is not True and normalize_type(target.type) != normalize_type(wanted):
            loader.node_error(spec, field_path,
                              f"'{ref_id}' is {_a(target.type)} node, expected {_a(wanted)}")
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


def _warn_unreachable(loader: Loader, nodes: dict[str, NodeSpec], g: nx.DiGraph) -> None:
    """Warn about enabled nodes with an input that no source (a node without input) reaches."""
    live = [s for s in nodes.values() if not s.is_config and not s.disabled]
    reached: set[str] = set()
    for spec in live:
        if spec.node_class.inputs == 0:
            reached.add(spec.id)
            reached |= nx.descendants(g, spec.id)
    for spec in live:
        if spec.id not in reached:
            loader.node_error(spec, (), "no source reaches this node (nothing is wired into it)",
                              warning=True, at_key=True)
