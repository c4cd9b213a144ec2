"""Read a YAML flow file into plain Python values while remembering where each value came from.

PyYAML's composer gives a node tree with marks; we construct the values ourselves so that
(1) every value's line and column is kept in a position index keyed by its path
(``("nodes", "parse", "wires", 0)``), (2) a duplicate mapping key is an error instead of a silent
overwrite, and (3) ``${NAME}`` substitution happens on each string as it is read, with errors
pointing at that string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


def field_text(path: Iterable[Any]) -> str:
    """A path as an error names the field: ``("rules", 0, "eq")`` -> ``rules[0].eq``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_BOOL_TAG = "tag:yaml.org,2002:bool"


class FlowYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only ``true`` and ``false`` are booleans.

    YAML 1.1 also reads ``yes``, ``no``, ``on``, ``off``, ``y`` and ``n`` as booleans, which
    would turn a node id such as ``off`` (or ``wires: [on]``) into ``False``/``True``.
    """


FlowYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
FlowYamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@dataclass(frozen=True)
class Position:
    """A 1-based line and column; ``block`` is True for ``|`` and ``>`` scalars."""

    line: int
    column: int
    block: bool = False

    @property
    def first_content_line(self) -> int:
        """The line of the first character of a string value (block scalars start below)."""
        return self.line + 1 if self.block else self.line


@dataclass
class SourceDocument:
    """The values of one YAML document and the position of each of them.

    ``positions`` holds where each value starts, ``key_positions`` where the mapping key that
    names it starts (``parse:`` for ``("nodes", "parse")``); ``lines`` is the source text.
    """

    data: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)
    key_positions: dict[PathKey, Position] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def position(self, path: PathKey) -> Position:
        """The position of ``path``, or of its nearest ancestor that has one."""
        while path:
            pos = self.positions.get(path)
            if pos is not None:
                return pos
            path = path[:-1]
        return self.positions.get((), Position(1, 1))

    def key_position(self, path: PathKey) -> Position:
        """The position of the key naming ``path`` (its value's position if it has no key)."""
        return self.key_positions.get(path) or self.position(path)

    def line_column(self, line: int) -> int:
        """The 1-based column of the first non-blank character of ``line`` (1 if unknown)."""
        if 1 <= line <= len(self.lines):
            text = self.lines[line - 1]
            return len(text) - len(text.lstrip()) + 1
        return 1


class SourceError(Exception):
    """A problem located in the source text (YAML syntax, duplicate key, unknown variable)."""

    def __init__(self, message: str, line: int, column: int, path: PathKey = ()):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path


# Substitutes variables in one string; given the string and its path, returns the new value.
Substitute = Callable[[str, PathKey], Any]


class _Builder:
    def __init__(self, substitute: Substitute | None, collect: list[SourceError]):
        self.positions: dict[PathKey, Position] = {}
        self.key_positions: dict[PathKey, Position] = {}
        self.substitute = substitute
        self.errors = collect
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        mark = node.start_mark
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        self.positions[path] = Position(mark.line + 1, mark.column + 1, block)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._scalars.construct_object(node)
        if isinstance(value, str) and self.substitute is not None and "${" in value:
            try:
                value = self.substitute(value, path)
            except SourceError as exc:
                exc.line, exc.column, exc.path = mark.line + 1, mark.column + 1, path
                self.errors.append(exc)
        return value

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        explicit = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
        self._scalars.flatten_mapping(node)  # resolves YAML merge keys (<<), merged pairs first
        merged = len(node.value) - explicit
        result: dict[Any, Any] = {}
        # PyYAML lists merged pairs so that the last one must win (it reverses the merge
        # sources); an explicit key then overrides any merged one.
        from_merge: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            self.entry(result, key_node, value_node, path, from_merge, merged=index < merged)
        return result

    def entry(self, result: dict[Any, Any], key_node: yaml.Node, value_node: yaml.Node,
              path: PathKey, from_merge: set[Any] | None = None, merged: bool = False) -> None:
        """Build one ``key: value`` pair into ``result``, refusing non-scalar and duplicate
        keys (a duplicate is an error, never a silent overwrite). ``from_merge`` holds the keys
        whose value came from a YAML merge ``<<`` (``merged``: this pair did): the next pair
        with that key replaces it once."""
        mark = key_node.start_mark
        try:
            key = self._scalars.construct_object(key_node)
        except yaml.YAMLError:
            key = None
        if not isinstance(key, str | int | float | bool):
            self.errors.append(SourceError("a mapping key must be a string",
                                           mark.line + 1, mark.column + 1, path))
            return
        key_path = (*path, key)
        if from_merge and key in from_merge:
            from_merge.discard(key)
            result.pop(key, None)
        if key in result:
            first = self.key_positions.get(key_path)
            where = f" (first defined at line {first.line})" if first else ""
            self.errors.append(SourceError(f"duplicate key '{key}'{where}", mark.line + 1,
                                           mark.column + 1, key_path))
            return
        self.key_positions[key_path] = Position(mark.line + 1, mark.column + 1)
        result[key] = self.build(value_node, key_path)
        if merged and from_merge is not None:
            from_merge.add(key)


def parse_yaml(
    text: str,
    substitute: Callable[[PathKey, dict[Any, Any]], Substitute | None] | None = None,
    errors: list[SourceError] | None = None,
) -> SourceDocument:
    """Parse one YAML document.

    ``substitute(key, built)`` chooses a substitution function per top-level key, given the
    top-level values built so far; ``env`` is built first, so the rest of the file can use it.
    Problems are appended to ``errors`` when given (and parsing continues); otherwise the first
    one is raised.
    """
    collected: list[SourceError] = [] if errors is None else errors
    try:
        root = yaml.compose(text, Loader=FlowYamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc)
        err = SourceError(f"invalid YAML: {problem}", line, col)
        if errors is None:
            raise err from None
        collected.append(err)
        return SourceDocument(None)
    lines = text.splitlines()
    if root is None:
        return SourceDocument(None, {(): Position(1, 1)}, lines=lines)
    builder = _Builder(None, collected)
    if isinstance(root, yaml.MappingNode) and substitute is not None:
        data = _build_top_level(builder, root, substitute)
    else:
        data = builder.build(root, ())
    if errors is None and collected:
        raise collected[0]
    return SourceDocument(data, builder.positions, builder.key_positions, lines)


def _build_top_level(builder: _Builder, root: yaml.MappingNode,
                     substitute: Callable[[PathKey, dict[Any, Any]], Substitute | None],
                     ) -> dict[Any, Any]:
    """Build the top mapping key by key, ``env`` first, choosing the substitution per key."""
    mark = root.start_mark
    builder.positions[()] = Position(mark.line + 1, mark.column + 1)
    builder._scalars.flatten_mapping(root)
    # The first ``env`` is read first (a stable sort), so the rest of the file can use it.
    pairs = sorted(root.value, key=lambda kv: 0 if _is_env_key(kv[0]) else 1)
    result: dict[Any, Any] = {}
    for key_node, value_node in pairs:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        builder.substitute = substitute((key,), result) if isinstance(key, str) else None
        builder.entry(result, key_node, value_node, ())
    builder.substitute = None
    # Keep the file's key order (env was only read first).
    order = sorted(result, key=lambda k: (builder.key_positions[(k,)].line,
                                          builder.key_positions[(k,)].column))
    return {k: result[k] for k in order}


def _is_env_key(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value == "env"
