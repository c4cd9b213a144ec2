"""What the flow view draws (``GET /admin/view``): every loaded flow as a graph.

Per flow: its name, file and description, and its nodes, each with what the page needs to
draw it as Node-RED's editor would: type, name, colour and icon, number of inputs and outputs,
wires per output, the ``link in`` nodes it sends to (virtual wires, maybe to other flows), the
config nodes it uses, its group, whether it is disabled, and the line it is defined on (and the
first line of each multi-line field, so the page can turn "line 3" of a function's code into
a line of the file). Positions are left to the page's layout library.

Nothing here carries a configuration value: the page asks for one node's configuration, with
secrets masked, through :func:`flowengine.server.admin_ui.source.node_source`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowengine.loader.graph import _references
from flowengine.registry import normalize_type
from flowengine.server.admin_ui.palette import look

if TYPE_CHECKING:
    from flowengine.loader import FlowSet
    from flowengine.loader.model import NodeSpec

LINK_TARGET = normalize_type("link in")


def flow_view(flowset: FlowSet) -> dict[str, Any]:
    """``{"flows": [...]}``: each flow with its nodes, config nodes included."""
    return {"flows": [{"name": f.info.name, "file": str(f.path),
                       "description": f.info.description,
                       "nodes": [node_view(flowset.nodes[i]) for i in f.node_ids]}
                      for f in flowset.flows]}


def node_view(spec: NodeSpec) -> dict[str, Any]:
    """One node as the page draws it."""
    cls = spec.node_class
    try:
        outputs = 0 if cls.is_config else cls.output_count(spec.config)
    except Exception:  # a configuration the node refused; it does not run anyway
        outputs = cls.outputs
    links: list[str] = []
    uses: list[str] = []
    for _path, ref_id, kind, wanted in _references(cls.schema, spec.config, ()):
        if kind == "x-config-ref":
            uses.append(ref_id)
        elif isinstance(wanted, str) and normalize_type(wanted) == LINK_TARGET:
            links.append(ref_id)
    color, icon = look(spec.type, cls.category)
    return {
        "id": spec.id, "type": spec.type, "name": spec.name or spec.id,
        "category": cls.category, "color": color, "icon": icon,
        "config": cls.is_config, "disabled": spec.disabled,
        "group": (spec.group.name or spec.group.id) if spec.group else None,
        "inputs": 0 if cls.is_config else cls.inputs, "outputs": outputs,
        "wires": spec.wires, "links": links, "uses": uses,
        "line": spec.line, "blocks": _block_lines(spec),
    }


def _block_lines(spec: NodeSpec) -> dict[str, int]:
    """The file line of the first line of each multi-line string field (``code: |``)."""
    doc = spec.document
    if doc is None:
        return {}
    section = "config" if spec.is_config else "nodes"
    found: dict[str, int] = {}
    for field, value in spec.definition.items():
        if isinstance(value, str):
            pos = doc.positions.get((section, spec.id, field))
            if pos is not None and pos.block:
                found[str(field)] = pos.first_content_line
    return found
