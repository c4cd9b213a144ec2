"""Load flow files (flow-format.md): parse, substitute, validate, instantiate, check the graph.

Every problem becomes a :class:`~flowengine.errors.LoadError` naming file, line, column, node and
field; all of them are collected (``flowrun validate`` shows every error of every file at once)
and raised together as :class:`~flowengine.errors.FlowLoadError`. Nothing is started here: node
classes are instantiated (``configure`` compiles code, expressions and regexes) but
``on_start`` is the runtime's business.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flowengine import schema as schemas
from flowengine.errors import ConfigError, FlowLoadError, LoadError
from flowengine.loader import graph
from flowengine.loader.envsubst import substitute
from flowengine.loader.model import FlowSet, FlowSpec, NodeSpec
from flowengine.loader.yamlsource import PathKey, SourceDocument, SourceError, parse_yaml
from flowengine.node import FlowInfo
from flowengine.registry import NodeRegistry

ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
COMMON_FIELDS = {"type", "name", "wires", "disabled", "description"}
FLOW_SUFFIXES = (".yaml", ".yml")

FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "flow": {"type": "string", "pattern": ID_PATTERN},
        "description": {"type": "string"},
        "include": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "env": {"type": ["object", "null"],
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
        "settings": {"type": ["object", "null"]},
        "config": {"type": ["object", "null"], "propertyNames": {"pattern": ID_PATTERN},
                   "additionalProperties": {"type": "object", "required": ["type"],
                                            "properties": {"type": {"type": "string"}}}},
        "nodes": {"type": ["object", "null"], "propertyNames": {"pattern": ID_PATTERN},
                  "additionalProperties": {"type": "object", "required": ["type"],
                                           "properties": {"type": {"type": "string"}}}},
        "tests": {"type": ["array", "null"]},
    },
    "additionalProperties": False,
}

COMMON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "disabled": {"type": "boolean"},
        "wires": {"anyOf": [
            {"type": "null"}, {"type": "string"},
            {"type": "array", "items": {"anyOf": [
                {"type": "string"}, {"type": "null"},
                {"type": "array", "items": {"type": "string"}}]}}]},
    },
}

# Settings whose values are paths, resolved against the directory of the file that sets them.
PATH_SETTINGS: tuple[tuple[str, ...], ...] = (("http", "static"), ("nodes_dirs",), ("data_dir",),
                                              ("media_dir",))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the ``*.yaml``/``*.yml`` files of directories, in name order."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(sorted(f for f in path.iterdir() if f.suffix in FLOW_SUFFIXES))
        else:
            files.append(path)
    return files


class Loader:
    """Loads a set of flow files against a node registry."""

    def __init__(self, registry: NodeRegistry, environ: Mapping[str, str] | None = None):
        self.registry = registry
        self.environ = dict(os.environ if environ is None else environ)
        self.errors: list[LoadError] = []
        self.warnings: list[LoadError] = []

    # -- entry points ---------------------------------------------------------------------------

    def load(self, paths: Iterable[str | Path]) -> FlowSet:
        """Load files and directories (and their includes); raise FlowLoadError on problems."""
        flows: list[FlowSpec] = []
        seen: set[Path] = set()
        queue = [(p, None) for p in expand_paths(paths)]
        while queue:
            path, included_by = queue.pop(0)
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            flow = self._load_file(path, included_by)
            if flow is not None:
                flows.append(flow)
                queue.extend((inc, flow) for inc in flow.includes)
        return self._assemble(flows)

    def load_text(self, text: str, filename: str = "<memory>") -> FlowSet:
        """Load one flow from a string (tests and the plugin test helper)."""
        flow = self._parse(text, Path(filename))
        return self._assemble([flow] if flow else [])

    # -- one file -------------------------------------------------------------------------------

    def _load_file(self, path: Path, included_by: FlowSpec | None) -> FlowSpec | None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            where = included_by.path if included_by else path
            self.errors.append(LoadError(str(where), 1, 1, f"cannot read flow file '{path}': "
                                         f"{exc.strerror or exc}"))
            return None
        return self._parse(text, path)

    def _parse(self, text: str, path: Path) -> FlowSpec | None:
        source_errors: list[SourceError] = []
        process_env = self.environ

        def choose(key: PathKey, built: dict[Any, Any]) -> Any:
            # The env block is read against the process environment; everything else (read
            # after it) against the flow's env first.
            variables = process_env
            if key != ("env",) and isinstance(built.get("env"), dict):
                variables = {**process_env, **{str(k): v for k, v in built["env"].items()}}
            return lambda text, _path: substitute(text, variables)

        doc = parse_yaml(text, choose, source_errors)
        file = str(path)
        for err in source_errors:
            self.errors.append(LoadError(file, err.line, err.column, err.message,
                                         *_node_field(err.path)))
        data = doc.data
        if data is None:
            if not source_errors:
                self.errors.append(LoadError(file, 1, 1, "the flow file is empty"))
            return None
        if not isinstance(data, dict):
            self.errors.append(LoadError(file, 1, 1, "a flow file must be a mapping with "
                                         "'flow', 'nodes' and the other keys of flow-format.md"))
            return None
        for err_path, message in _schema_errors(FILE_SCHEMA, data):
            self._error(doc, file, err_path, message)
        info = FlowInfo(name=str(data.get("flow") or path.stem), file=file,
                        description=str(data.get("description") or ""),
                        env=dict(data.get("env") or {}))
        includes = data.get("include") or []
        if isinstance(includes, str):
            includes = [includes]
        flow = FlowSpec(info=info, path=path, document=doc,
                        tests=list(data.get("tests") or []),
                        includes=[path.parent / inc for inc in includes if isinstance(inc, str)],
                        settings=_resolve_setting_paths(data.get("settings") or {}, path.parent))
        return flow

    # -- all files together ---------------------------------------------------------------------

    def _assemble(self, flows: list[FlowSpec]) -> FlowSet:
        nodes: dict[str, NodeSpec] = {}
        where: dict[str, tuple[FlowSpec, tuple[str, str]]] = {}
        names: dict[str, FlowSpec] = {}
        for flow in flows:
            other = names.get(flow.info.name)
            if other is not None:
                self._error(flow.document, str(flow.path), ("flow",),
                            f"flow name '{flow.info.name}' is already used by {other.path}")
            names[flow.info.name] = flow
            data = flow.document.data
            for section in ("config", "nodes"):
                for node_id, definition in (data.get(section) or {}).items():
                    node_id = str(node_id)
                    if node_id in where:
                        first_flow, first_key = where[node_id]
                        pos = first_flow.document.position(first_key)
                        self._error(flow.document, str(flow.path), (section, node_id),
                                    f"duplicate node id '{node_id}' (first defined at "
                                    f"{first_flow.path}:{pos.line})", node=node_id)
                        continue
                    where[node_id] = (flow, (section, node_id))
                    if not isinstance(definition, dict) or "type" not in definition:
                        continue  # reported by the file schema
                    spec = self._node_spec(flow, section, node_id, definition)
                    if spec is not None:
                        nodes[node_id] = spec
                        flow.node_ids.append(node_id)
        settings = self._merge_settings(flows)
        graph.check(self, flows, nodes)
        if self.errors:
            errors = sorted(self.errors, key=lambda e: (e.file, e.line, e.column))
            raise FlowLoadError(errors + self.warnings)
        self._instantiate(nodes, flows)
        if self.errors:
            raise FlowLoadError(sorted(self.errors, key=lambda e: (e.file, e.line, e.column)))
        return FlowSet(flows=flows, nodes=nodes, settings=settings, warnings=self.warnings)

    def _node_spec(self, flow: FlowSpec, section: str, node_id: str,
                   definition: dict[str, Any]) -> NodeSpec | None:
        doc, file = flow.document, str(flow.path)
        base: PathKey = (section, node_id)
        type_name = definition["type"]
        node_class = self.registry.get(str(type_name))
        if node_class is None:
            known = [c.type for c in self.registry.types()]
            close = difflib.get_close_matches(str(type_name), known, n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            self._error(doc, file, (*base, "type"), f"unknown node type '{type_name}'{hint}",
                        node=node_id)
            return None
        if node_class.is_config != (section == "config"):
            expected = "config" if node_class.is_config else "nodes"
            self._error(doc, file, (*base, "type"), f"'{type_name}' is a "
                        f"{'config' if node_class.is_config else 'flow'} node type; "
                        f"define it under '{expected}:'", node=node_id)
            return None
        for err_path, message in _schema_errors(COMMON_SCHEMA, definition):
            self._error(doc, file, (*base, *err_path), message, node=node_id)
        own = {k: copy.deepcopy(v) for k, v in definition.items() if k not in COMMON_FIELDS}
        schemas.apply_defaults(node_class.schema, own)
        for err_path, message in _schema_errors(node_class.schema, own):
            self._error(doc, file, (*base, *err_path), message, node=node_id)
        pos = doc.position(base)
        return NodeSpec(
            id=node_id, type=node_class.type, flow=flow.info, config=own,
            definition=definition, node_class=node_class, line=pos.line, column=pos.column,
            name=definition.get("name"), wires=_normalize_wires(definition.get("wires")),
            disabled=bool(definition.get("disabled", False)),
            description=str(definition.get("description") or ""))

    def _instantiate(self, nodes: dict[str, NodeSpec], flows: list[FlowSpec]) -> None:
        docs = {f.info.name: f for f in flows}
        for spec in nodes.values():
            if spec.disabled:
                continue
            flow = docs[spec.flow.name]
            section = "config" if spec.is_config else "nodes"
            try:
                spec.instance = spec.node_class(spec.id, copy.deepcopy(spec.config),
                                                name=spec.name, flow=spec.flow)
            except ConfigError as exc:
                key: PathKey = (section, spec.id, *_field_key(exc.field))
                pos = flow.document.position(key)
                line = pos.line
                if exc.line is not None:
                    line = pos.first_content_line + exc.line - 1
                self.errors.append(LoadError(str(flow.path), line, pos.column, exc.message,
                                             spec.id, exc.field))
            except Exception as exc:  # a broken plugin must not hide the other errors
                self.errors.append(LoadError(str(flow.path), spec.line, spec.column,
                                             f"cannot create node: {type(exc).__name__}: {exc}",
                                             spec.id))

    def _merge_settings(self, flows: list[FlowSpec]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for flow in flows:
            conflicts = _deep_merge(merged, flow.settings)
            for key in conflicts:
                self._error(flow.document, str(flow.path), ("settings", *key),
                            "conflicts with the same setting in another loaded file")
        return merged

    # -- reporting ------------------------------------------------------------------------------

    def _error(self, doc: SourceDocument, file: str, path: PathKey, message: str,
               node: str | None = None, warning: bool = False) -> None:
        pos = doc.position(path)
        found_node, field = _node_field(path)
        error = LoadError(file, pos.line, pos.column, message, node or found_node, field,
                          warning=warning)
        (self.warnings if warning else self.errors).append(error)


def _schema_errors(schema: dict[str, Any], instance: Any) -> list[tuple[PathKey, str]]:
    found: list[tuple[PathKey, str]] = []
    for error in schemas.validator_for(schema).iter_errors(instance):
        found.extend(schemas.describe_error(error))
    return found


def _normalize_wires(wires: Any) -> list[list[str]]:
    """``a`` -> ``[[a]]``; ``[a, b]`` -> ``[[a, b]]``; ``[[a], [], b]`` -> ``[[a], [], [b]]``."""
    if wires is None:
        return []
    if isinstance(wires, str):
        return [[wires]]
    if not isinstance(wires, list):
        return []
    if any(isinstance(w, list) for w in wires):
        return [[str(x) for x in w] if isinstance(w, list) else ([] if w is None else [str(w)])
                for w in wires]
    return [[str(w) for w in wires if w is not None]]


def _node_field(path: PathKey) -> tuple[str | None, str | None]:
    """The node id and the field text of a path such as ("nodes", "x", "rules", 0, "eq")."""
    if len(path) >= 2 and path[0] in ("nodes", "config"):
        return str(path[1]), _field_text(path[2:]) or None
    return None, _field_text(path) or None


def _field_text(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _field_key(field: str | None) -> PathKey:
    if not field:
        return ()
    return tuple(int(m.group(2)) if m.group(2) is not None else m.group(1)
                 for m in _FIELD_PART.finditer(field))


def _deep_merge(target: dict[str, Any], source: Mapping[str, Any],
                prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    conflicts: list[tuple[str, ...]] = []
    for key, value in source.items():
        if key in target and isinstance(target[key], dict) and isinstance(value, dict):
            conflicts.extend(_deep_merge(target[key], value, (*prefix, key)))
        elif key in target and target[key] != value:
            conflicts.append((*prefix, key))
        else:
            target[key] = copy.deepcopy(value)
    return conflicts


def _resolve_setting_paths(settings: dict[str, Any], base: Path) -> dict[str, Any]:
    settings = copy.deepcopy(settings)
    for key_path in PATH_SETTINGS:
        holder: Any = settings
        for key in key_path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or key_path[-1] not in holder:
            continue
        value = holder[key_path[-1]]
        if isinstance(value, str):
            holder[key_path[-1]] = str((base / value).resolve())
        elif isinstance(value, list):
            holder[key_path[-1]] = [str((base / v).resolve()) if isinstance(v, str) else v
                                    for v in value]
    stores = settings.get("context", {}).get("stores", {}) if isinstance(
        settings.get("context"), dict) else {}
    for store in stores.values() if isinstance(stores, dict) else ():
        if isinstance(store, dict) and isinstance(store.get("dir"), str):
            store["dir"] = str((base / store["dir"]).resolve())
    return settings


def load_flows(paths: Iterable[str | Path], registry: NodeRegistry,
               environ: Mapping[str, str] | None = None) -> FlowSet:
    """Load flow files and directories; raise FlowLoadError listing every problem."""
    return Loader(registry, environ).load(paths)
