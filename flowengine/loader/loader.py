"""Load flow files (docs/flow-format.md): parse, substitute, validate, instantiate, check the graph.

Every problem becomes a :class:`~flowengine.errors.LoadError` naming file, line, column, node and
field; all of them are collected (``flowrun validate`` shows every error of every file at once)
and raised together as :class:`~flowengine.errors.FlowLoadError`. Nothing is started here: node
classes are instantiated (``configure`` compiles code, expressions and regexes) but
``on_start`` is the runtime's business.

The passes, each reporting every problem it finds before the next one runs:

1. each file: YAML (duplicate keys, ``${NAME}`` outside nodes), the file's structure, its flow
   name, its includes (followed, each file loaded once, so include cycles are harmless);
2. all files: unique flow names and ids, settings merged (a conflict is an error), groups
   (:mod:`~flowengine.loader.scopes`) and subflows (:mod:`~flowengine.loader.subflows`), each
   node's ``${NAME}`` (read from its groups and scopes), common fields and its type's JSON
   Schema; the nodes of every subflow instance;
3. the wired graph (:mod:`flowengine.loader.graph`);
4. ``configure`` of every enabled node whose configuration passed its schema.
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
from flowengine.loader.scopes import read_groups
from flowengine.loader.subflows import INSTANCE_PREFIX, SubflowDef, expand, read_subflows
from flowengine.loader.yamlsource import (
    PathKey,
    SourceDocument,
    SourceError,
    field_text,
    parse_yaml,
)
from flowengine.node import FlowInfo, GroupInfo, Node, ScopeEnv
from flowengine.registry import NodeRegistry

ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
_ID = re.compile(ID_PATTERN)
ID_RULE = "use only letters, digits, '-', '_' and '.'"
COMMON_FIELDS = {"type", "name", "wires", "disabled", "description", "group"}
FLOW_SUFFIXES = (".yaml", ".yml")
SECTIONS = ("config", "nodes")
#: Sections whose ``${NAME}`` is read per node (or group), from the node's groups and scopes.
SCOPED_SECTIONS = ("config", "nodes", "groups", "subflows")
#: The global context's scope name; a flow cannot have it (see flowengine.context).
RESERVED_FLOW_NAMES = ("global",)

FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "flow": {"type": "string"},
        "description": {"type": "string"},
        "include": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "env": schemas.env_block(),
        "settings": {"type": ["object", "null"]},
        "groups": {"type": ["object", "null"]},
        "subflows": {"type": ["object", "null"]},
        "config": {"type": ["object", "null"]},
        "nodes": {"type": ["object", "null"]},
        "tests": {"type": ["array", "null"]},
    },
    "additionalProperties": False,
}

# The fields every node has besides its type's own; ``wires`` is checked by _wires_errors.
COMMON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "disabled": {"type": "boolean"},
        "group": {"type": "string"},
    },
}

# Settings whose values are paths, resolved against the directory of the file that sets them.
PATH_SETTINGS: tuple[tuple[str, ...], ...] = (("http", "static"), ("nodes_dirs",), ("data_dir",),
                                              ("media_dir",))

# Where a file came from: None for a path given to load(), else (including flow, include key).
_Origin = tuple[FlowSpec, PathKey] | None


#: Folders a search for flow files does not enter (besides hidden ones, named ``.*``).
SKIPPED_FOLDERS = ("node_modules", "__pycache__")
NO_FLOW_FILES = ("no flow file (*.yaml, *.yml) in this folder or its subfolders (hidden "
                 "folders and node_modules are skipped)")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the ``*.yaml``/``*.yml`` files of folders and their subfolders
    (hidden ones and ``node_modules`` skipped): a folder's files in name order, then its
    subfolders'."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        files.extend(_folder_flow_files(path) if path.is_dir() else [path])
    return files


def find_flow_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[LoadError]]:
    """:func:`expand_paths`, and an error for each folder that holds no flow file (a typo, or
    the wrong folder: ``flowrun validate`` must not pass on nothing)."""
    files: list[Path] = []
    errors: list[LoadError] = []
    for path in map(Path, paths):
        found = expand_paths([path])
        if not found:
            errors.append(LoadError(str(path), 1, 1, NO_FLOW_FILES))
        files.extend(found)
    return files, errors


def _folder_flow_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):  # symbolic links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS)
        found.extend(Path(root) / n for n in sorted(names)
                     if Path(n).suffix in FLOW_SUFFIXES and not n.startswith("."))
    return found


class Loader:
    """Loads a set of flow files against a node registry.

    ``environ`` replaces the process environment for ``${NAME}`` substitution (tests). A Loader
    collects the problems of one load; use a fresh one for each load.
    """

    def __init__(self, registry: NodeRegistry, environ: Mapping[str, str] | None = None):
        self.registry = registry
        self.environ = dict(os.environ if environ is None else environ)
        self.errors: list[LoadError] = []
        self.warnings: list[LoadError] = []
        # Ids that are defined but could not become a NodeSpec (unknown type, wrong section...):
        # references to them are not reported a second time as references to unknown ids.
        self.broken_ids: set[str] = set()
        # Definitions (file, section, id) whose configuration failed validation: they are not
        # instantiated.
        self._invalid: set[tuple[str, str, str]] = set()
        # Every id defined (nodes, config nodes, groups): where, for duplicate errors.
        self._defined: dict[str, tuple[SourceDocument, str, PathKey]] = {}
        self._reported: set[tuple[Any, ...]] = set()
        self.subflows: dict[str, SubflowDef] = {}

    # -- entry points ---------------------------------------------------------------------------

    def load(self, paths: Iterable[str | Path]) -> FlowSet:
        """Load files and directories (and their includes); raise FlowLoadError on problems."""
        files, errors = find_flow_files(paths)
        self.errors.extend(errors)
        queue: list[tuple[Path, _Origin]] = [(f, None) for f in files]
        return self._assemble(self._read_all(queue, []))

    def load_text(self, text: str, filename: str = "<memory>") -> FlowSet:
        """Load one flow from a string (tests and the plugin test helper), with its includes
        (relative to ``filename``'s folder)."""
        flow = self._parse(text, Path(filename))
        flows = [flow] if flow is not None else []
        queue = self._include_queue(flow) if flow is not None else []
        return self._assemble(self._read_all(queue, flows))

    # -- files ----------------------------------------------------------------------------------

    def _read_all(self, queue: list[tuple[Path, _Origin]], flows: list[FlowSpec]
                  ) -> list[FlowSpec]:
        """Read the queued files and, breadth first, the files they include; each file once."""
        seen = {f.path.resolve() for f in flows}
        while queue:
            path, origin = queue.pop(0)
            resolved = path.resolve()
            if resolved in seen:
                continue  # given twice, or an include cycle: loaded once
            seen.add(resolved)
            flow = self._load_file(path, origin)
            if flow is not None:
                flows.append(flow)
                queue.extend(self._include_queue(flow))
        return flows

    @staticmethod
    def _include_queue(flow: FlowSpec) -> list[tuple[Path, _Origin]]:
        queue: list[tuple[Path, _Origin]] = []
        for path, key in zip(flow.includes, flow.include_keys, strict=True):
            targets = expand_paths([path]) if path.is_dir() else [path]
            queue.extend((target, (flow, key)) for target in targets)
        return queue

    def _load_file(self, path: Path, origin: _Origin) -> FlowSpec | None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if origin is None:
                self.errors.append(LoadError(str(path), 1, 1, f"cannot read flow file: {reason}"))
            else:
                flow, key = origin
                self.report(flow.document, str(flow.path), key,
                            f"cannot read included flow file '{path}': {reason}")
            return None
        return self._parse(text, path)

    def _parse(self, text: str, path: Path) -> FlowSpec | None:
        """Parse one file and check its structure; None if it has no usable content."""
        source_errors: list[SourceError] = []
        environ = self.environ

        def choose(key: PathKey, built: dict[Any, Any]) -> Any:
            # The env block is read against the process environment; everything else (read
            # after it) against the flow's env first; nodes and groups later, against theirs.
            if key[0] in SCOPED_SECTIONS:
                return None
            flow_env = built.get("env") if key != ("env",) else None
            flow_env = flow_env if isinstance(flow_env, dict) else None
            return lambda text, _path: substitute(text, environ, flow_env)

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
            self.errors.append(LoadError(file, 1, 1, "a flow file must be a mapping with 'flow', "
                                         "'nodes' and the other keys of docs/flow-format.md"))
            return None
        for err_path, message in _schema_errors(FILE_SCHEMA, data):
            self.report(doc, file, err_path, message, at_key=message.startswith("unknown field"))
        env = data.get("env")
        if not isinstance(env, dict):
            env = {}
        description = data.get("description")
        info = FlowInfo(name=self._flow_name(doc, path), file=file,
                        description=description if isinstance(description, str) else "",
                        env={str(k): v for k, v in env.items()})
        flow = FlowSpec(info=info, path=path, document=doc)
        includes = data.get("include")
        entries = ([(includes, ("include",))] if isinstance(includes, str) else
                   [(inc, ("include", i)) for i, inc in enumerate(includes)]
                   if isinstance(includes, list) else [])
        for inc, key in entries:
            if isinstance(inc, str):
                flow.includes.append(path.parent / inc)
                flow.include_keys.append(key)
        tests = data.get("tests")
        flow.tests = list(tests) if isinstance(tests, list) else []
        settings = data.get("settings")
        flow.settings = _resolve_setting_paths(settings if isinstance(settings, dict) else {},
                                               path.parent)
        return flow

    def _flow_name(self, doc: SourceDocument, path: Path) -> str:
        """The ``flow:`` name, or the file name without suffix; reports invalid names."""
        name = doc.data.get("flow")
        file = str(path)
        if name is None:
            # Only what the context scopes cannot hold is refused here: a file name may
            # contain spaces or brackets ("<test>"), but not ':' and not a reserved name.
            stem = path.stem
            if ":" in stem or stem in RESERVED_FLOW_NAMES:
                self.errors.append(LoadError(
                    file, 1, 1, f"the flow name would be '{stem}' (the file name), which is "
                    f"{_name_problem(stem)}; give the flow a name with 'flow:'"))
            return stem
        if not isinstance(name, str):
            return path.stem  # reported by the file schema
        if not _ID.match(name):
            self.report(doc, file, ("flow",), f"invalid flow name '{name}': {ID_RULE}")
        elif name in RESERVED_FLOW_NAMES:
            self.report(doc, file, ("flow",), f"the flow name '{name}' is "
                        f"{_name_problem(name)}")
        return name

    # -- all files together ---------------------------------------------------------------------

    def _assemble(self, flows: list[FlowSpec]) -> FlowSet:
        nodes: dict[str, NodeSpec] = {}
        # Later definitions of an id already defined: reported, and still checked like any
        # other node, so that a duplicate id does not hide the errors inside them.
        duplicates: list[NodeSpec] = []
        names: dict[str, FlowSpec] = {}
        for flow in flows:
            other = names.get(flow.info.name)
            if other is not None:
                self.report(flow.document, str(flow.path), ("flow",),
                            f"flow name '{flow.info.name}' is already used by {other.path}")
            names.setdefault(flow.info.name, flow)
            read_subflows(self, flow.document, str(flow.path), flow.document.data.get("subflows"),
                          self.subflows)
        instances: list[NodeSpec] = []
        for flow in flows:
            doc, file = flow.document, str(flow.path)
            groups = read_groups(self, doc, file, ("groups",), doc.data.get("groups"), flow.info,
                                 lambda group_id, key, doc=doc, file=file:
                                 self._claim(group_id, doc, file, key))
            for section in SECTIONS:
                entries = flow.document.data.get(section)
                for raw_id, definition in (entries if isinstance(entries, dict) else {}).items():
                    node_id = str(raw_id)
                    if not self._claim(node_id, doc, file, (section, raw_id)):
                        spec = self.node_spec(doc, file, (section, raw_id), node_id, definition,
                                              section, flow.info, groups)
                        duplicates.extend([spec] if spec is not None else [])
                        continue
                    spec = self.node_spec(doc, file, (section, raw_id), node_id, definition,
                                          section, flow.info, groups)
                    if spec is None:
                        self.broken_ids.add(node_id)
                        continue
                    nodes[node_id] = spec
                    flow.node_ids.append(node_id)
                    if spec.type.startswith(INSTANCE_PREFIX):
                        instances.append(spec)
        for spec in instances:
            expand(self, spec, nodes)
        for subflow in self.subflows.values():
            if not any(s.type == subflow.node_class.type for s in nodes.values()):
                self.report(subflow.document, subflow.file, subflow.key, f"subflow "
                            f"'{subflow.name}' has no instance: its nodes are not checked",
                            warning=True, at_key=True)
        settings = self._merge_settings(flows)
        graph.check(self, nodes, duplicates)
        self._convert([*nodes.values(), *duplicates], settings.get("data_dir"))
        self._instantiate([*nodes.values(), *duplicates])
        if self.errors:
            # Warnings are left out: the errors are what must be fixed first.
            raise FlowLoadError(sorted(self.errors, key=lambda e: (e.file, e.line, e.column)))
        return FlowSet(flows=flows, nodes=nodes, settings=settings, warnings=self.warnings)

    def _claim(self, item_id: str, doc: SourceDocument, file: str, key: PathKey) -> bool:
        """Reserve an id (node, config node or group) for the file and key defining it; a
        duplicate is reported."""
        first = self._defined.get(item_id)
        if first is not None:
            first_doc, first_file, first_key = first
            line = first_doc.key_position(first_key).line
            self.report(doc, file, key, f"duplicate node id '{item_id}' (first defined at "
                        f"{first_file}:{line})", at_key=True)
            return False
        self._defined[item_id] = (doc, file, key)
        return True

    def is_defined(self, item_id: str) -> bool:
        """True when a node, config node or group of a file has this id."""
        return item_id in self._defined

    def node_spec(self, doc: SourceDocument, file: str, key: PathKey, node_id: str,
                  definition: Any, section: str, scope: FlowInfo,
                  groups: dict[str, GroupInfo], members: Mapping[str, str] | None = None
                  ) -> NodeSpec | None:
        """The node written at ``key`` of ``doc`` as a spec with id ``node_id``, running in
        ``scope``: its group found (or made), its ``${NAME}`` read, its configuration
        validated. For the
        copy of a subflow's node, ``members`` maps the subflow's node ids to the copies' ids
        (its wires and node references are remapped)."""
        raw_id = key[-1]
        if raw_id != str(raw_id):
            _rekey(doc, key, (*key[:-1], str(raw_id)))  # `123:` is read as an int
        base: PathKey = (*key[:-1], str(raw_id))
        if not _ID.match(node_id):
            self.report(doc, file, base, f"invalid node id '{node_id}': {ID_RULE}", at_key=True)
        if not isinstance(definition, dict):
            self.report(doc, file, base, "expected a mapping with 'type' and the node's fields, "
                        f"got {definition!r}")
            return None
        type_name = definition.get("type")
        if type_name is None:
            self.report(doc, file, base, "'type' is required", at_key=True)
            return None
        if not isinstance(type_name, str):
            self.report(doc, file, (*base, "type"), f"expected a node type name, got "
                        f"{type_name!r}")
            return None
        node_class = self._node_class(doc, file, base, type_name)
        if node_class is None:
            return None
        if node_class.is_config != (section == "config"):
            kind, expected = ("config", "config") if node_class.is_config else ("flow", "nodes")
            self.report(doc, file, (*base, "type"), f"'{type_name}' is a {kind} node type; "
                        f"define it under '{expected}:'")
            return None
        group = None
        group_id = definition.get("group")
        if isinstance(group_id, str):
            # A name no `groups:` entry declares is a group of its own, without env (drawn as
            # one box by the flow view, heard by `scope: group`).
            group = groups.setdefault(group_id, GroupInfo(group_id, group_id))
        name = definition.get("name")
        env = ScopeEnv(group, scope, (node_id, name if isinstance(name, str) else None))
        keep = ("env",) if type_name.startswith(INSTANCE_PREFIX) else ()  # read per instance
        definition = {k: v if k in keep else self._substituted(doc, file, (*base, k), v, env)
                      for k, v in definition.items()}
        errors = _schema_errors(COMMON_SCHEMA, definition)
        errors += [(("wires", *path), message)
                   for path, message in _wires_errors(definition.get("wires"))]
        own = {k: copy.deepcopy(v) for k, v in definition.items() if k not in COMMON_FIELDS}
        schemas.apply_defaults(node_class.schema, own)
        errors += _schema_errors(node_class.schema, own)
        for err_path, message in errors:
            self.report(doc, file, (*base, *err_path), message, node=node_id,
                        at_key=message.startswith("unknown field") or not err_path)
        if errors:
            self._invalid.add((file, section, node_id))
        pos = doc.key_position(base)
        name = definition.get("name")
        description = definition.get("description")
        spec = NodeSpec(
            id=node_id, type=node_class.type, flow=scope, config=own,
            definition=definition, node_class=node_class, line=pos.line, column=pos.column,
            name=name if isinstance(name, str) else None,
            wires=normalize_wires(definition.get("wires")),
            disabled=definition.get("disabled") is True,
            description=description if isinstance(description, str) else "",
            document=doc, key=base, group=group)
        if members is not None:
            self._remap(spec, members)
        return spec

    def _node_class(self, doc: SourceDocument, file: str, base: PathKey, type_name: str
                    ) -> type[Node] | None:
        if type_name.startswith(INSTANCE_PREFIX):
            subflow = self.subflows.get(type_name[len(INSTANCE_PREFIX):])
            if subflow is not None:
                return subflow.node_class
            close = difflib.get_close_matches(type_name[len(INSTANCE_PREFIX):],
                                              list(self.subflows), n=1)
            hint = f" (did you mean 'subflow:{close[0]}'?)" if close else ""
            self.report(doc, file, (*base, "type"), f"unknown subflow "
                        f"'{type_name[len(INSTANCE_PREFIX):]}'{hint}")
            return None
        node_class = self.registry.get(type_name)
        if node_class is None:
            self.report(doc, file, (*base, "type"), self.registry.unknown_type(type_name))
        return node_class

    def _substituted(self, doc: SourceDocument, file: str, path: PathKey, value: Any,
                     env: Mapping[str, Any]) -> Any:
        """``value`` with every ``${NAME}`` read from ``env`` (then the process environment);
        an unset variable without a default is reported where it is written."""
        if isinstance(value, str):
            if "${" not in value:
                return value
            try:
                return substitute(value, self.environ, env)
            except SourceError as exc:
                self.report(doc, file, path, exc.message)
                return value
        if isinstance(value, dict):
            return {k: self._substituted(doc, file, (*path, k), v, env)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._substituted(doc, file, (*path, i), v, env)
                    for i, v in enumerate(value)]
        return value

    def _remap(self, spec: NodeSpec, members: Mapping[str, str]) -> None:
        """A subflow node's copy: wires and references to the subflow's nodes lead to the
        instance's copies; a wire leaving the subflow is an error (use its ``out``)."""
        from flowengine.loader.graph import _references

        raw = spec.definition.get("wires")
        wires: list[list[str]] = []
        for i, targets in enumerate(spec.wires):
            kept = []
            for j, target in enumerate(targets):
                if target in members:
                    kept.append(members[target])
                else:
                    self.node_error(spec, ("wires", *graph.yaml_index(raw, i, j)),
                                    f"wire to '{target}', which is not a node of this "
                                    "subflow (a subflow's nodes send out through its 'out')")
            wires.append(kept)
        spec.wires = wires
        for path, ref, _kind, _wanted in list(_references(spec.node_class.schema,
                                                          spec.config, ())):
            if ref in members:
                holder: Any = spec.config
                for part in path[:-1]:
                    holder = holder[part]
                holder[path[-1]] = members[ref]

    def _convert(self, specs: list[NodeSpec], data_dir: str | None) -> None:
        """Give each valid node its typed values (durations, sizes, folders: docs/plugins.md),
        once, before it is created; a value that does not convert is reported at its field."""
        for spec in specs:
            section = "config" if spec.is_config else "nodes"
            if (spec.flow.file, section, spec.id) in self._invalid:
                continue
            folders = schemas.Folders(Path(spec.flow.file).parent, data_dir)
            errors = schemas.convert(spec.node_class.schema, spec.config, folders)
            for err_path, message in errors:
                self.node_error(spec, err_path, message)
            if errors:
                self._invalid.add((spec.flow.file, section, spec.id))

    def _instantiate(self, specs: list[NodeSpec]) -> None:
        """Create every enabled node whose configuration is valid (its ``configure`` runs)."""
        for spec in specs:
            section = "config" if spec.is_config else "nodes"
            if spec.disabled or (spec.flow.file, section, spec.id) in self._invalid:
                continue
            doc = spec.document or SourceDocument(None)
            try:
                spec.instance = spec.node_class(spec.id, copy.deepcopy(spec.config),
                                                name=spec.name, flow=spec.flow,
                                                group=spec.group, alias=spec.alias)
            except ConfigError as exc:
                key = spec.key or (section, spec.id)
                pos = doc.position((*key, *_field_key(exc.field)))
                line, column = pos.line, pos.column
                if exc.line is not None:
                    # A line inside a code field: for a block scalar (``code: |``) the text
                    # starts on the next line, at that line's indentation.
                    line = pos.first_content_line + exc.line - 1
                    if pos.block or exc.line > 1:
                        column = doc.line_column(line)
                self._add(LoadError(spec.flow.file, line, column, exc.message, spec.id,
                                    exc.field))
            except Exception as exc:  # a broken plugin must not hide the other errors
                self._add(LoadError(spec.flow.file, spec.line, spec.column,
                                    f"cannot create node: {type(exc).__name__}: {exc}", spec.id))

    def _merge_settings(self, flows: list[FlowSpec]) -> dict[str, Any]:
        """Every file's settings in one mapping; the same setting with two values is an error."""
        merged: dict[str, Any] = {}
        origins: dict[tuple[str, ...], FlowSpec] = {}
        for flow in flows:
            for key, old, new in _deep_merge(merged, flow.settings):
                first = next((origins[key[:n]] for n in range(len(key), 0, -1)
                              if key[:n] in origins), None)
                where = f" in {first.path}" if first is not None else ""
                self.report(flow.document, str(flow.path), ("settings", *key),
                            f"conflicts with the value set{where} ({old!r} there, {new!r} here);"
                            " a setting given in several files must have the same value")
            for key in _leaf_keys(flow.settings):
                origins.setdefault(key, flow)
        return merged

    # -- reporting ------------------------------------------------------------------------------

    def node_error(self, spec: NodeSpec, path: PathKey, message: str, *, warning: bool = False,
                   at_key: bool = False) -> None:
        """Report a problem with ``spec`` at one of its fields (``path`` below the node)."""
        doc = spec.document or SourceDocument(None)
        key = spec.key or ("config" if spec.is_config else "nodes", spec.id)
        self.report(doc, spec.flow.file, (*key, *path), message, warning=warning,
                    at_key=at_key, node=spec.id)

    def report(self, doc: SourceDocument, file: str, path: PathKey, message: str,
               warning: bool = False, at_key: bool = False, node: str | None = None) -> None:
        """Report a problem at ``path`` of ``doc``; ``node`` names the node when it is not
        the one written there (the copy of a subflow's node). The same problem at the same
        place is reported once (each instance of a subflow would repeat it)."""
        pos = doc.key_position(path) if at_key else doc.position(path)
        written, field = _node_field(path)
        self._add(LoadError(file, pos.line, pos.column, message, node or written, field,
                            warning=warning))

    def _add(self, error: LoadError) -> None:
        seen = (error.file, error.line, error.column, error.message, error.field, error.warning)
        if seen not in self._reported:
            self._reported.add(seen)
            (self.warnings if error.warning else self.errors).append(error)


    def schema_errors(self, schema: dict[str, Any], instance: Any
                      ) -> list[tuple[PathKey, str]]:
        """Where ``instance`` breaks ``schema``, and how."""
        return _schema_errors(schema, instance)

    @staticmethod
    def valid_id(item_id: str) -> bool:
        return bool(_ID.match(item_id))


def _rekey(doc: SourceDocument, old: PathKey, new: PathKey) -> None:
    """Move the positions recorded under ``old`` to ``new``."""
    for positions in (doc.positions, doc.key_positions):
        for path in [p for p in positions if p[:len(old)] == old]:
            positions[new + path[len(old):]] = positions.pop(path)


def _name_problem(name: str) -> str:
    if ":" in name:
        return "not allowed: a flow name cannot contain ':'"
    return "reserved for the global context"


def _schema_errors(schema: dict[str, Any], instance: Any) -> list[tuple[PathKey, str]]:
    found: list[tuple[PathKey, str]] = []
    for error in schemas.validator_for(schema).iter_errors(instance):
        found.extend(schemas.describe_error(error))
    return found


_WIRES_SHAPE = ("expected a node id, a list of node ids, or one list of node ids per output, "
                "got {!r}")


def _is_id(value: Any) -> bool:
    """A wire target: a string, or an int (``2024``, as YAML reads an unquoted number id)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _wires_errors(wires: Any) -> list[tuple[PathKey, str]]:
    """Problems with the shape of ``wires`` (paths relative to the field)."""
    if wires is None or _is_id(wires):
        return []
    if not isinstance(wires, list):
        return [((), _WIRES_SHAPE.format(wires))]
    found: list[tuple[PathKey, str]] = []
    for i, entry in enumerate(wires):
        if isinstance(entry, list):
            found.extend(((i, j), f"expected a node id, got {target!r}")
                         for j, target in enumerate(entry) if not _is_id(target))
        elif entry is not None and not _is_id(entry):
            found.append(((i,), f"expected a node id or a list of node ids, got {entry!r}"))
    return found


def normalize_wires(wires: Any) -> list[list[str]]:
    """``a`` -> ``[[a]]``; ``[a, b]`` -> ``[[a, b]]``; ``[[a], [], b]`` -> ``[[a], [], [b]]``;
    ``[]`` -> ``[]`` (no wires)."""
    if wires is None or wires == []:
        return []
    if _is_id(wires):
        return [[str(wires)]]
    if not isinstance(wires, list):
        return []
    if any(isinstance(w, list) for w in wires):
        return [[str(x) for x in w if _is_id(x)] if isinstance(w, list)
                else ([str(w)] if _is_id(w) else []) for w in wires]
    return [[str(w) for w in wires if _is_id(w)]]


def _node_field(path: PathKey) -> tuple[str | None, str | None]:
    """The node id and the field text of a path such as ("nodes", "x", "rules", 0, "eq")
    (in a subflow: ("subflows", "s", "nodes", "x", ...))."""
    if len(path) >= 4 and path[0] == "subflows" and path[2] in SECTIONS:
        return str(path[3]), field_text(path[4:]) or None
    if len(path) >= 2 and path[0] in SECTIONS:
        return str(path[1]), field_text(path[2:]) or None
    return None, field_text(path) or None


_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _field_key(field: str | None) -> PathKey:
    if not field:
        return ()
    return tuple(int(m.group(2)) if m.group(2) is not None else m.group(1)
                 for m in _FIELD_PART.finditer(field))


def _deep_merge(target: dict[str, Any], source: Mapping[str, Any], prefix: tuple[str, ...] = ()
                ) -> list[tuple[tuple[str, ...], Any, Any]]:
    """Merge ``source`` into ``target``; return (key path, old, new) for each conflict."""
    conflicts: list[tuple[tuple[str, ...], Any, Any]] = []
    for key, value in source.items():
        if key in target and isinstance(target[key], dict) and isinstance(value, dict):
            conflicts.extend(_deep_merge(target[key], value, (*prefix, key)))
        elif key in target and target[key] != value:
            conflicts.append(((*prefix, key), target[key], value))
        else:
            target[key] = copy.deepcopy(value)
    return conflicts


def _leaf_keys(settings: Mapping[str, Any], prefix: tuple[str, ...] = ()
               ) -> Iterable[tuple[str, ...]]:
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            yield from _leaf_keys(value, (*prefix, key))
        else:
            yield (*prefix, key)


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
