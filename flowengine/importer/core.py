"""The import: a Node-RED export in, one flow file per tab out (docs/design/flow-format.md,
"Node-RED import").

The steps, in :meth:`Importer.run`: read and check the export; sort its objects into tabs,
subflows (:mod:`flowengine.importer.subflows`), groups, config nodes and flow nodes; give every
node and group a flow-file id (a slug of its name, or of its type, unique across the import;
or, with ``readable_ids=False``, its Node-RED id); convert each node with its type's converter
(:mod:`flowengine.importer.converters`), unknown types becoming disabled placeholders; map wires
and references to the new ids, dropping (and naming) the dangling ones; put config nodes and
subflows in the file of the flow that uses them, or in ``globals.yaml`` when several do; write
the files and load them with the real loader, so that the report says whether
``flowrun validate`` passes.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowengine import schema as schemas
from flowengine.errors import ConfigError, FlowLoadError
from flowengine.importer import converters as conv
from flowengine.importer.reader import read_export
from flowengine.importer.report import ImportReport, NodeNote
from flowengine.importer.subflows import PASS_THROUGH, homes, ports
from flowengine.importer.values import (
    WHOLE_ENV,
    EnvText,
    Unconvertible,
    env_reference,
    env_text,
    env_value,
    typed_value,
)
from flowengine.importer.writer import FlowFile, GroupEntry, NodeEntry, SubflowEntry, render
from flowengine.loader import Loader
from flowengine.loader.envsubst import substitute
from flowengine.loader.yamlsource import SourceError
from flowengine.registry import NodeRegistry, default_registry

Node = dict[str, Any]

_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: Node-RED types that are never flow nodes.
STRUCTURE_TYPES = ("tab", "subflow", "group")
GLOBALS = "globals"  # the flow (and file) holding config nodes that several flows use
RESERVED_FLOW_NAMES = ("global",)
PLACEHOLDER_CODE = 'raise NotImplementedError("placeholder for a Node-RED node")\n'


def import_nodered(flows_json: str | Path, out_dir: str | Path, *,
                   registry: NodeRegistry | None = None, readable_ids: bool = True,
                   force: bool = False) -> ImportReport:
    """Convert a Node-RED export into flow files in ``out_dir`` (created if needed).

    Never raises for a bad input: every problem is named in the returned report. Existing
    files are not overwritten unless ``force``.
    """
    report = ImportReport(source=str(flows_json), out_dir=Path(out_dir))
    nodes = read_export(Path(flows_json), report)
    if nodes is None:
        return report
    importer = Importer(nodes, registry or default_registry(), report, readable_ids)
    try:
        files = importer.run()
    except Exception as exc:  # a shape no check foresaw: report it rather than crash
        report.problems.append(f"the export could not be converted: {type(exc).__name__}: "
                               f"{exc}")
        return report
    if not files:
        report.problems.append("the export has no tab and no flow node: nothing to write")
        return report
    _write(files, Path(out_dir), report, force)
    if report.files:
        _validate(report, registry or default_registry())
    return report


def _write(files: list[FlowFile], out_dir: Path, report: ImportReport, force: bool) -> None:
    targets = [(out_dir / f"{f.name}.yaml", f) for f in files]
    existing = [str(path) for path, _ in targets if path.exists()]
    if existing and not force:
        report.problems.append("not overwriting existing files (use --force): "
                               + ", ".join(existing))
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path, flow_file in targets:
            path.write_text(render(flow_file), encoding="utf-8")
            report.files.append(path)
    except OSError as exc:
        report.problems.append(f"cannot write {out_dir}: {exc.strerror or exc}")


def _validate(report: ImportReport, registry: NodeRegistry) -> None:
    """Load what was written, as ``flowrun validate`` does."""
    try:
        Loader(registry, environ={}).load(report.files)
    except FlowLoadError as exc:
        report.problems.extend(f"validation: {e}" for e in exc.errors)
        return
    report.valid = True


@dataclass
class _Flow:
    """A tab (or a subflow) being imported."""

    nr_id: str
    name: str
    label: str
    info: str = ""
    env: dict[str, Any] = field(default_factory=dict)
    disabled: bool = False
    nodes: list[Node] = field(default_factory=list)
    #: For a subflow: its Node-RED definition, and the file it goes to.
    template: Node | None = None
    home: str = ""

    @property
    def file(self) -> str:
        """The flow file its nodes (and the config nodes only they use) go to."""
        return self.home if self.template is not None else self.name


class Importer:
    """One import: ``Importer(nodes, registry, report).run()`` -> the flow files to write."""

    def __init__(self, nodes: list[Node], registry: NodeRegistry, report: ImportReport,
                 readable_ids: bool = True):
        self.registry = registry
        self.report = report
        self.readable_ids = readable_ids
        self.by_id: dict[str, Node] = {n["id"]: n for n in nodes}
        self.nodes = nodes
        self.flows: dict[str, _Flow] = {}
        self.subflows: dict[str, _Flow] = {}  # Node-RED subflow id -> subflow
        self.groups: dict[str, Node] = {}
        self.config_nodes: list[Node] = []
        self.flow_nodes: list[Node] = []
        self.ids: dict[str, str] = {}  # Node-RED id -> flow-file id
        self._used_ids: set[str] = set()
        self._slug_counts: Counter[str] = Counter()
        # Config nodes converted to ours: Node-RED id -> (entry, flows that use it).
        self.configs: dict[str, tuple[NodeEntry, set[str]]] = {}
        # Config nodes defined in a subflow (each instance gets its own): id -> subflow id.
        self.local_configs: dict[str, str] = {}
        self.global_env: dict[str, Any] = {}

    # -- the steps --------------------------------------------------------------------------------

    def run(self) -> list[FlowFile]:
        self._sort()
        for node in self.flow_nodes:
            self._assign_id(node)
        for group in self.groups.values():
            self._assign_id(group)
        entries = {node["id"]: self._convert(node) for node in self.flow_nodes}
        for node in self.flow_nodes:
            self._wire(node, entries)
        self._leftover_configs(entries)
        files = [self._flow_file(flow, entries) for flow in self.flows.values()]
        subflows = [(sf, self._subflow_entry(sf, entries)) for sf in self.subflows.values()]
        return self._place_configs(files, subflows)

    def _leftover_configs(self, entries: dict[str, NodeEntry]) -> None:
        """Config nodes no converter used: unknown types become disabled comment placeholders
        in the flow of a node that uses them; known ones are left out, with a note."""
        for node in self.config_nodes:
            kind = node["type"]
            if node["id"] in self.configs or kind in conv.ABSORBED_CONFIG_TYPES:
                continue
            if kind in conv.CONFIG_CONVERTERS:
                self.report.notes.append(f"{self._label(node)}: config node not used by any "
                                         "imported node: left out")
                continue
            users = [n for n in self.flow_nodes
                     if any(v == node["id"] for k, v in n.items() if k not in ("id", "z"))]
            flow = self._flow_of(users[0]) if users else (
                self.flows.get(node.get("z")) or next(iter(self.flows.values()), None))
            if flow is None:
                self.report.problems.append(f"{self._label(node)}: no flow to put it in: "
                                            "left out")
                continue
            self._assign_id(node)
            reason = "a config node type flowengine does not have"
            placeholder = self._placeholder(node, flow, reason)
            info = "\n".join(line[4:] for line in placeholder.comment[1:])
            entry = NodeEntry(id=self.ids[node["id"]], type="comment", disabled=True,
                              config={"info": info}, name=_name(node),
                              comment=[f"Placeholder for the Node-RED config node type "
                                       f"'{kind}' ({reason})."],
                              description="Used by: " + ", ".join(
                                  self.ids[u["id"]] for u in users) if users else "")
            entries[node["id"]] = entry
            flow.nodes.append(node)

    def _sort(self) -> None:
        """Tabs, subflows, groups, config and flow nodes; subflow instances expanded."""
        names: set[str] = {GLOBALS}
        subflows: dict[str, Node] = {}
        for node in self.nodes:
            kind = node["type"]
            if kind == "tab":
                label = str(node.get("label") or "")
                name = _unique(_slug(label) or f"flow-{len(self.flows) + 1}", names)
                self.flows[node["id"]] = _Flow(
                    node["id"], name, label, info=str(node.get("info") or ""),
                    env=self._tab_env(node.get("env"), label or name),
                    disabled=node.get("disabled") is True)
                self.report.flows[node["id"]] = name
            elif kind == "subflow":
                subflows[node["id"]] = node
            elif kind == "group":
                self.groups[node["id"]] = node
            elif kind == "global-config":
                self.global_env.update(self._tab_env(node.get("env"), "global-config"))
        inner: dict[str, list[Node]] = {}
        top: list[Node] = []
        for node in self.nodes:
            if node["type"] in STRUCTURE_TYPES or node["type"] == "global-config":
                continue
            if node.get("z") in subflows:
                inner.setdefault(node["z"], []).append(node)
            elif _is_flow_node(node):
                top.append(node)
            else:
                self.config_nodes.append(node)
        # Nodes of a tab that is not in the export ("Export selected nodes" leaves the tab
        # out): a flow per such tab, named after the export file.
        for node in top:
            tab = node.get("z") or ""
            if tab not in self.flows:
                base = _slug(Path(self.report.source).stem) or "imported"
                self.flows[tab] = _Flow("", _unique(base, names), "")
                whose = f"of a tab the export does not contain ('{tab}')" if tab else \
                    "of no tab"
                self.report.notes.append(f"the export has nodes {whose}: they are imported as "
                                         f"the flow '{self.flows[tab].name}'")
            self.flows[tab].nodes.append(node)
        tab_names = {tab_id: flow.name for tab_id, flow in self.flows.items()}
        placed = homes(subflows, self.nodes, tab_names, GLOBALS)
        self.flow_nodes = list(top)
        taken: set[str] = set()
        for subflow_id, subflow in subflows.items():
            label = str(subflow.get("name") or "")
            if subflow_id not in placed:
                self.report.notes.append(f"subflow '{label or subflow_id}' has no instance: "
                                         "not imported")
                continue
            name = subflow_id if not self.readable_ids and _ID.match(subflow_id) else \
                _unique(_slug(label) or "subflow", taken)
            taken.add(name)
            sf = _Flow(subflow_id, name, label, info=str(subflow.get("info") or ""),
                       env=self._tab_env(subflow.get("env"), f"subflow '{label or name}'"),
                       template=subflow, home=placed[subflow_id])
            self.subflows[subflow_id] = sf
            for node in inner.get(subflow_id, []):
                if _is_flow_node(node):
                    sf.nodes.append(node)
                    self.flow_nodes.append(node)
                else:
                    self.config_nodes.append(node)
        for flow in self.flows.values():
            flow.env = {**self.global_env, **flow.env}

    def _tab_env(self, entries: Any, where: str) -> dict[str, Any]:
        """A tab's (or global-config's) env list as a flow's ``env:`` block."""
        env: dict[str, Any] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            name, kind, value = entry["name"], entry.get("type") or "str", entry.get("value")
            if kind == "num":
                env[name] = typed_value(value, "num")
            elif kind == "bool":
                env[name] = typed_value(value, "bool")
            elif kind == "env":
                # A variable of the level around (or of this level), or a text made of some.
                env[name] = env_value(value) if isinstance(value, str) and (
                    _NAME.match(value) or "${" in value) else ""
                if isinstance(env[name], dict):
                    env[name] = env_reference(value)
            elif kind == "str":
                env[name] = "" if value is None else str(value)
            else:
                env[name] = "" if value is None else (
                    value if isinstance(value, str) else json.dumps(value))
                if where:
                    self.report.notes.append(f"{where}: env variable {name} of type '{kind}' "
                                             "is imported as text")
        return env

    # -- ids --------------------------------------------------------------------------------------

    def _assign_id(self, node: Node) -> str:
        """The node's flow-file id: a slug of its name (nameless: its type, numbered), after
        the names of the subflow instances it comes from; or its Node-RED id."""
        nr_id = node["id"]
        if not self.readable_ids and _ID.match(nr_id) and nr_id not in self._used_ids:
            new_id = nr_id
        elif not self.readable_ids:
            new_id = self._unique_id(_slug(nr_id) or "node", numbered=False)
        else:
            name = _name(node)
            base = _slug(name) or _slug(node["type"].split(":")[0]) or "node"
            new_id = self._unique_id(base, numbered=not _slug(name))
        self._used_ids.add(new_id)
        self.ids[nr_id] = new_id
        self.report.ids[nr_id] = new_id
        return new_id

    def _unique_id(self, base: str, numbered: bool) -> str:
        if numbered:
            # Nameless nodes: inject-1, inject-2...
            while True:
                self._slug_counts[base] += 1
                candidate = f"{base}-{self._slug_counts[base]}"
                if candidate not in self._used_ids:
                    return candidate
        candidate, n = base, 1
        while candidate in self._used_ids:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    # -- conversion -------------------------------------------------------------------------------

    def _convert(self, node: Node) -> NodeEntry:
        flow = self._flow_of(node)
        cx = _NodeContext(self, node, flow)
        kind = node["type"]
        converter = conv.CONVERTERS.get(kind)
        if kind.startswith("subflow:") and kind[len("subflow:"):] in self.subflows:
            converter = self._instance
        elif converter is None and not kind.startswith("subflow:") and kind in self.registry:
            converter = _plugin_node  # a type a plugin provides (--nodes DIR, a package)
        converted: conv.Converted | None = None
        reason = ""
        if converter is None:
            reason = _unknown_reason(node)
        else:
            try:
                converted = converter(node, cx)
            except conv.Unsupported as exc:
                reason = f"uses {exc}"
            except Exception as exc:  # a property of an unexpected shape: never a crash
                reason = f"its configuration could not be read ({type(exc).__name__}: {exc})"
            else:
                reason = "" if converter == self._instance else self._unfit(converted, flow, node)
                if reason:
                    converted = None
        if converted is None:
            converted = self._placeholder(node, flow, reason)
        else:
            self.report.converted[kind] = self.report.converted.get(kind, 0) + 1
        entry = NodeEntry(id=self.ids[node["id"]], type=converted.type,
                          config=converted.config, comment=converted.comment)
        entry.name = _name(node)
        entry.description = self._description(node)
        entry.disabled = (converted.disabled or node.get("d") is True or flow.disabled)
        group = self.groups.get(node.get("g"))  # type: ignore[arg-type]
        if group is not None and group.get("z") == node.get("z"):
            entry.group = self.ids[group["id"]]
        if converted.javascript:
            self.report.functions.append(self._note(node, flow))
        return entry

    def _instance(self, node: Node, cx: conv.Context) -> conv.Converted:
        """A subflow instance: its env values over the subflow's."""
        subflow = self.subflows[node["type"][len("subflow:"):]]
        env = self._tab_env(node.get("env"), self._label(node))
        return conv.Converted(f"subflow:{subflow.name}", {"env": env} if env else {})

    def _unfit(self, converted: conv.Converted, flow: _Flow, node: Node) -> str:
        """Why a converted node would not load ("" if it would): no such type here, or a
        configuration its type refuses (checked as the loader does: schema, then configure)."""
        cls = self.registry.get(converted.type)
        if cls is None:
            return f"this installation has no '{converted.type}' node type"
        if converted.disabled:
            return ""
        config = _as_loaded(converted.config, self.known_env(node))
        schemas.apply_defaults(cls.schema, config)
        problems = [problem for error in schemas.validator_for(cls.schema).iter_errors(config)
                    for problem in schemas.describe_error(error)]
        # Then typed values, as the loader gives them (a folder's base does not matter here).
        problems = problems or schemas.convert(cls.schema, config, schemas.Folders(Path.cwd()))
        for path, message in problems[:1]:
            where = ".".join(str(p) for p in path)
            return f"a value its '{converted.type}' node refuses ({where}: {message})"
        try:
            cls("check", config)
        except ConfigError as exc:
            return f"a value its '{converted.type}' node refuses ({exc.field}: {exc.message})"
        except Exception as exc:
            return f"a value its '{converted.type}' node refuses ({type(exc).__name__}: {exc})"
        return ""

    def _placeholder(self, node: Node, flow: _Flow, reason: str) -> conv.Converted:
        self.report.placeholders.append(self._note(node, flow, reason))
        wires = node.get("wires")
        outputs = len(wires) if isinstance(wires, list) else 0
        original = {k: v for k, v in node.items()
                    if k not in ("id", "x", "y", "z", "g", "w", "h", "wires", "type", "name")
                    and not k.startswith("_")}
        comment = [f"Placeholder for the Node-RED node type '{node['type']}' ({reason}); "
                   "its Node-RED configuration:"]
        comment.extend("    " + line for line in
                       json.dumps(original, indent=2, default=str).splitlines())
        return conv.Converted("function", {"outputs": outputs, "code": PLACEHOLDER_CODE},
                              comment=comment, disabled=True)

    def _note(self, node: Node, flow: _Flow, text: str = "") -> NodeNote:
        return NodeNote(flow=flow.name, id=self.ids[node["id"]], nr_id=node["id"],
                        nr_type=node["type"], name=_name(node), text=text)

    @staticmethod
    def _description(node: Node) -> str:
        info = node.get("info")
        return info.strip() if isinstance(info, str) and node["type"] != "comment" else ""

    def _flow_of(self, node: Node) -> _Flow:
        """The tab or subflow holding ``node``."""
        holder = node.get("z") or ""
        if holder in self.subflows:
            return self.subflows[holder]
        return self.flows[holder] if holder in self.flows else next(iter(self.flows.values()))

    # -- wires ------------------------------------------------------------------------------------

    def _wire(self, node: Node, entries: dict[str, NodeEntry]) -> None:
        """The node's wires by flow-file id; dangling ones are dropped and named."""
        entry = entries[node["id"]]
        cls = self.registry.get(entry.type)
        subflow = self.subflows.get(node["type"][len("subflow:"):])
        try:
            if subflow is not None and subflow.template is not None:
                outputs = len(conv.as_list(subflow.template.get("out")))
            else:
                outputs = cls.output_count(entry.config) if cls is not None else 0
        except Exception:  # an invalid config: the validation names it
            outputs = len(node.get("wires") or [])
        wires: list[list[str]] = []
        for port, targets in enumerate(node.get("wires") or []):
            mapped: list[str] = []
            for target in targets if isinstance(targets, list) else []:
                new_id = self._wire_target(node, port, target, entries)
                if new_id is not None and new_id not in mapped:
                    mapped.append(new_id)
            if port >= outputs:
                if mapped:
                    self.report.problems.append(
                        f"{self._label(node)}: output {port + 1} is wired, but the imported "
                        f"'{entry.type}' node has {outputs} output(s): wires dropped")
                continue
            wires.append(mapped)
        while wires and not wires[-1]:
            wires.pop()
        entry.wires = wires

    def _wire_target(self, node: Node, port: int, target: Any,
                     entries: dict[str, NodeEntry]) -> str | None:
        where = f"{self._label(node)}: output {port + 1} is wired to"
        target_entry = entries.get(target) if isinstance(target, str) else None
        if target_entry is None:
            what = "a config node" if isinstance(target, str) and target in self.by_id \
                else "an unknown node"
            self.report.problems.append(f"{where} {what} '{target}': wire dropped")
            return None
        cls = self.registry.get(target_entry.type)
        if cls is not None and cls.inputs == 0:
            self.report.problems.append(f"{where} '{target}', a node without an input: "
                                        "wire dropped")
            return None
        return target_entry.id

    def _label(self, node: Node) -> str:
        name = _name(node)
        return (f"'{node['type']}' node {node['id']}" + (f" ({name!r})" if name else ""))

    # -- files ------------------------------------------------------------------------------------

    def _flow_file(self, flow: _Flow, entries: dict[str, NodeEntry]) -> FlowFile:
        ordered = _reading_order(flow.nodes)
        description = flow.info.strip()
        if flow.disabled:
            description = ("The Node-RED tab was disabled: every node is imported disabled.\n"
                           + description).strip()
        header = [f"Imported from Node-RED by flowrun import: tab {flow.label or flow.name!r} "
                  f"({flow.nr_id})." if flow.nr_id else
                  "Imported from Node-RED by flowrun import: nodes of a tab the export does not "
                  "contain."]
        return FlowFile(name=flow.name, description=description, env=flow.env,
                        header=header, groups=self._group_entries(flow),
                        nodes=[entries[n["id"]] for n in ordered])

    def _subflow_entry(self, subflow: _Flow, entries: dict[str, NodeEntry]) -> SubflowEntry:
        template = subflow.template or {}
        ids = {n["id"]: self.ids[n["id"]] for n in subflow.nodes}
        inputs, outputs, status, through = ports(template, ids)
        nodes = [entries[n["id"]] for n in _reading_order(subflow.nodes)]
        if through:
            nodes.insert(0, NodeEntry(id=PASS_THROUGH, type="junction", config={}, comment=[
                "The subflow's input is wired straight to an output."]))
        configs = [self.configs[nr_id][0] for nr_id, owner in self.local_configs.items()
                   if owner == subflow.nr_id]
        return SubflowEntry(
            name=subflow.name, description=subflow.info.strip(), env=subflow.env,
            comment=[f"Node-RED subflow {subflow.label or subflow.name!r} ({subflow.nr_id})."],
            inputs=inputs, outputs=outputs, status=status,
            groups=self._group_entries(subflow), config=configs, nodes=nodes)

    def _group_entries(self, holder: _Flow) -> list[GroupEntry]:
        """The groups of a tab or subflow, outer ones first."""
        own = {gid: g for gid, g in self.groups.items() if (g.get("z") or "") == holder.nr_id}
        ordered: list[Node] = []

        def add(group: Node, depth: int = 0) -> None:
            parent = own.get(group.get("g"))  # type: ignore[arg-type]
            if parent is not None and parent not in ordered and depth < 32:
                add(parent, depth + 1)
            if group not in ordered:
                ordered.append(group)

        for group in own.values():
            add(group)
        found = []
        for group in ordered:
            parent = own.get(group.get("g"))  # type: ignore[arg-type]
            found.append(GroupEntry(
                id=self.ids[group["id"]], name=_name(group),
                group=self.ids[parent["id"]] if parent is not None else "",
                env=self._tab_env(group.get("env"), f"group {_name(group) or group['id']}")))
        return found

    def _place_configs(self, files: list[FlowFile],
                       subflows: list[tuple[_Flow, SubflowEntry]]) -> list[FlowFile]:
        """Config nodes and subflows go to the one flow that uses them, or to globals.yaml;
        config nodes defined in a subflow stay in it."""
        by_name = {f.name: f for f in files}
        shared = FlowFile(name=GLOBALS, description="Config nodes and subflows shared by "
                          "several flows.", header=["Imported from Node-RED by flowrun import."])
        by_name[GLOBALS] = shared
        include = f"{GLOBALS}.yaml"
        for nr_id, (entry, users) in self.configs.items():
            if nr_id in self.local_configs:
                continue
            home = next(iter(users)) if len(users) == 1 else GLOBALS
            by_name[home].config.append(entry)
            for user in sorted(users) if home == GLOBALS else ():
                if user != GLOBALS and include not in by_name[user].include:
                    by_name[user].include.append(include)
        for subflow, subflow_entry in subflows:
            by_name[subflow.home].subflows.append(subflow_entry)
        for flow in self.flows.values():
            uses = {s.home for s in self.subflows.values() if any(
                n.get("type") == f"subflow:{s.nr_id}" for n in flow.nodes)}
            if GLOBALS in uses and include not in by_name[flow.name].include:
                by_name[flow.name].include.append(include)
        return [*files, shared] if shared.config or shared.subflows else files

    # -- for the converters -----------------------------------------------------------------------

    def use_config(self, nr_id: Any, flow: _Flow, user: Node) -> str | None:
        if nr_id in self.configs:
            entry, users = self.configs[nr_id]
            users.add(flow.file)
            return entry.id
        node = self.by_id.get(nr_id) if isinstance(nr_id, str) else None
        if node is None or node.get("type") not in conv.CONFIG_CONVERTERS:
            self.report.problems.append(f"{self._label(user)}: refers to a missing config "
                                        f"node '{nr_id}'")
            return None
        converted = conv.CONFIG_CONVERTERS[node["type"]](node, _NodeContext(self, node, flow))
        new_id = self._unique_id(_slug(_name(node)) or _slug(node["type"]), numbered=False)
        self._used_ids.add(new_id)
        self.ids[nr_id] = self.report.ids[nr_id] = new_id
        entry = NodeEntry(id=new_id, type=converted.type, config=converted.config,
                          comment=converted.comment, name=_name(node))
        self.configs[nr_id] = (entry, {flow.file})
        if flow.template is not None and node.get("z") == flow.nr_id:
            self.local_configs[nr_id] = flow.nr_id
        self.report.converted[node["type"]] = self.report.converted.get(node["type"], 0) + 1
        return new_id

    def known_env(self, node: Node) -> dict[str, Any]:
        """The env variables written where ``node`` can see them: its tab's (or subflow's)
        and its groups', the inner ones over the outer ones."""
        env = dict(self._flow_of(node).env)
        chain: list[Node] = []
        group = self.groups.get(node.get("g"))  # type: ignore[arg-type]
        while group is not None and group not in chain and len(chain) < 32:
            chain.append(group)
            group = self.groups.get(group.get("g"))  # type: ignore[arg-type]
        for group in reversed(chain):
            env.update(self._tab_env(group.get("env"), ""))
        return env


class _NodeContext:
    """The :class:`flowengine.importer.converters.Context` of one node."""

    def __init__(self, importer: Importer, node: Node, flow: _Flow):
        self.importer = importer
        self.node = node
        self.flow = flow

    def value(self, value: Any, kind: str | None, what: str) -> Any:
        try:
            return typed_value(value, kind)
        except Unconvertible as exc:
            self.note(f"{what}: {exc}; imported as the text {value!r}")
            return "" if value is None else str(value)

    def text(self, value: Any) -> str:
        text = "" if value is None else str(value)
        whole = WHOLE_ENV.match(text)
        if not whole:
            return text  # escaped from the loader's ${NAME} substitution when written
        name = whole.group(1)
        # Read when the flow is loaded, from the node's groups and scopes.
        return env_text(name, known=name in self.importer.known_env(self.node))

    def ref(self, node_id: Any, what: str) -> str | None:
        new_id = self.importer.ids.get(node_id) if isinstance(node_id, str) else None
        if new_id is None:
            self.importer.report.problems.append(
                f"{self.importer._label(self.node)}: {what} names an unknown node "
                f"'{node_id}': left out")
        return new_id

    def config(self, node_id: Any, *types: str) -> dict[str, Any] | None:
        node = self.importer.by_id.get(node_id) if isinstance(node_id, str) else None
        if node is None or node.get("type") not in types:
            self.importer.report.problems.append(
                f"{self.importer._label(self.node)}: its {' or '.join(types)} config node "
                f"'{node_id}' is missing")
            return None
        return node

    def use_config(self, node_id: Any) -> str | None:
        return self.importer.use_config(node_id, self.flow, self.node)

    def link_targets(self) -> list[str]:
        own = self.node["id"]
        targets = [t for t in conv.as_list(self.node.get("links")) if isinstance(t, str)]
        # Node-RED also wires a link out to every link in that lists it.
        targets += [n["id"] for n in self.importer.flow_nodes
                    if n["type"] == "link in" and own in conv.as_list(n.get("links"))]
        found: list[str] = []
        for target in targets:
            node = next((n for n in self.importer.flow_nodes if n["id"] == target), None)
            if node is None or node["type"] != "link in":
                self.importer.report.problems.append(
                    f"{self.importer._label(self.node)}: links to '{target}', which is not a "
                    "link in node of the export: left out")
                continue
            new_id = self.importer.ids[target]
            if new_id not in found:
                found.append(new_id)
        return found

    def note(self, text: str) -> None:
        self.importer.report.notes.append(f"{self.importer._label(self.node)}: {text}")


# -- helpers -----------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _is_flow_node(node: Node) -> bool:
    """Node-RED: an object with x and y is a flow node; without, a config node. Exports
    written by hand (and test flows) often leave positions out, so wires count too."""
    if node["type"] in conv.ABSORBED_CONFIG_TYPES or node["type"] in conv.CONFIG_CONVERTERS:
        return False
    return ("x" in node and "y" in node) or "wires" in node or node["type"] in conv.CONVERTERS \
        or node["type"].startswith("subflow:")


def _as_loaded(value: Any, env: dict[str, Any]) -> Any:
    """A converted value as the loader will read it: ``${NAME}`` references substituted from
    the env the node sees (other variables as empty), other text as it is."""
    if isinstance(value, EnvText):
        try:
            return substitute(value, {}, env)
        except SourceError:
            return ""
    if isinstance(value, dict):
        return {k: _as_loaded(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_loaded(v, env) for v in value]
    return copy.deepcopy(value)


def _name(node: Node) -> str:
    name = node.get("name")
    return name if isinstance(name, str) and name not in ("", "_DEFAULT_") else ""


def _slug(text: str) -> str:
    """``"Parse JSON!"`` -> ``"parse-json"``: lower-case ASCII letters, digits and dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:40].rstrip("-")


def _unique(base: str, taken: set[str]) -> str:
    name = base if base not in RESERVED_FLOW_NAMES else f"{base}-flow"
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    taken.add(candidate)
    return candidate


#: Node-RED's own fields of every node, never part of a node type's configuration.
_COMMON_FIELDS = {"id", "type", "z", "g", "name", "x", "y", "w", "h", "wires", "d", "info",
                  "l", "inputLabels", "outputLabels", "icon"}


def _plugin_node(node: Node, cx: conv.Context) -> conv.Converted:
    """A node of a type a plugin registers under the same name: imported as that type, with
    its Node-RED properties as its configuration (the plugin's schema then checks them)."""
    config = {k: v for k, v in node.items() if k not in _COMMON_FIELDS}
    return conv.Converted(node["type"], config)


def _unknown_reason(node: Node) -> str:
    kind = node["type"]
    if kind.startswith("subflow:"):
        return "its subflow is not in the export"
    if kind == "unknown":
        return "Node-RED itself did not know this node's type"
    return "no equivalent node type"


def _reading_order(nodes: list[Node]) -> list[Node]:
    """Sources first, each followed by what it feeds (breadth first); then the rest, in the
    export's order."""
    by_id = {n["id"]: n for n in nodes}
    fed = {t for n in nodes for out in n.get("wires") or [] if isinstance(out, list)
           for t in out}
    order: list[Node] = []
    seen: set[str] = set()
    for start in [n for n in nodes if n["id"] not in fed] + nodes:
        if start["id"] in seen:
            continue
        queue = [start]
        seen.add(start["id"])
        while queue:
            node = queue.pop(0)
            order.append(node)
            for out in node.get("wires") or []:
                for target in out if isinstance(out, list) else []:
                    if target in by_id and target not in seen:
                        seen.add(target)
                        queue.append(by_id[target])
    return order
