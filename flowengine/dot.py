"""The wired graph of loaded flows in Graphviz dot (``flowrun graph``).

::

    flowrun graph flows/ | dot -Tsvg > flows.svg

One cluster per flow (labelled with the flow's name), one box per node labelled ``name`` and
``(type)``. Drawn as:

- wires: solid edges; when the node has several outputs the edge is labelled with the output
  index (0-based, as in ``wires:`` and the test helpers);
- ``link out`` / ``link call`` to the ``link in`` nodes they name: dashed edges (these are
  wires too, just not written under ``wires:``);
- config nodes: dashed boxes, with a dotted, arrowless line from each node that refers to them;
- disabled nodes, and every line touching them: grey.

The text is deterministic: flows in load order, nodes in file order. It has no final newline
(``flowrun graph`` prints it).
"""

from __future__ import annotations

from flowengine.loader import FlowSet, NodeSpec
from flowengine.loader.graph import _references
from flowengine.registry import normalize_type

GREY, GREY_FILL = "gray60", "gray92"
#: Node types whose node references are message paths (link out -> link in, link call -> in).
LINK_SOURCES = ("link-out", "link-call")
LINK_TARGET = "link-in"


def to_dot(flowset: FlowSet) -> str:
    """The Graphviz ``digraph`` of every flow in ``flowset``."""
    lines = ["digraph flows {",
             '  graph [rankdir=LR, fontname="Helvetica"];',
             '  node [shape=box, style=rounded, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for index, flow in enumerate(flowset.flows):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_quote(flow.info.name)};")
        for node_id in flow.node_ids:
            spec = flowset.nodes.get(node_id)
            if spec is not None:
                lines.append(f"    {_node(spec)}")
        lines.append("  }")
    for flow in flowset.flows:
        for node_id in flow.node_ids:
            spec = flowset.nodes.get(node_id)
            if spec is not None:
                lines.extend(f"  {edge}" for edge in _edges(spec, flowset))
    lines.append("}")
    return "\n".join(lines)


def _node(spec: NodeSpec) -> str:
    # "\n" is dot's line break inside a label.
    label = f'"{_escape(spec.name or spec.id)}\\n({_escape(spec.type)})"'
    attrs = [f"label={label}"]
    styles = ["rounded"]
    if spec.is_config:
        styles.append("dashed")
    if spec.disabled:
        styles.append("filled")
        attrs += [f"color={GREY}", f"fontcolor={GREY}", f"fillcolor={GREY_FILL}"]
    attrs.append(f'style="{",".join(styles)}"')
    return f"{_quote(spec.id)} [{', '.join(attrs)}];"


def _edges(spec: NodeSpec, flowset: FlowSet) -> list[str]:
    edges: list[str] = []
    if not spec.is_config:
        try:
            outputs = spec.node_class.output_count(spec.config)
        except Exception:  # a configuration the loader rejected cannot be drawn anyway
            outputs = len(spec.wires)
        for port, targets in enumerate(spec.wires):
            for target_id in targets:
                target = flowset.nodes.get(target_id)
                if target is None:
                    continue
                attrs = [f'label="{port}"'] if outputs > 1 else []
                edges.append(_edge(spec, target, attrs))
    for _path, ref_id, kind, _wanted in _references(spec.node_class.schema, spec.config, ()):
        target = flowset.nodes.get(ref_id)
        if target is None:
            continue
        if kind == "x-config-ref":
            edges.append(_edge(spec, target, ["style=dotted", "arrowhead=none"]))
        elif (normalize_type(spec.type) in LINK_SOURCES
              and normalize_type(target.type) == LINK_TARGET):
            edges.append(_edge(spec, target, ["style=dashed"]))
    return edges


def _edge(source: NodeSpec, target: NodeSpec, attrs: list[str]) -> str:
    if source.disabled or target.disabled:
        attrs = [*attrs, f"color={GREY}", f"fontcolor={GREY}"]
    suffix = f" [{', '.join(attrs)}]" if attrs else ""
    return f"{_quote(source.id)} -> {_quote(target.id)}{suffix};"


def _quote(text: str) -> str:
    """A dot string literal."""
    return f'"{_escape(text)}"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
