"""Read a YAML flow file into plain Python values while remembering where each value came from.

PyYAML's composer gives a node tree with marks; we construct the values ourselves so that
(1) every value's line and column is kept in a position index keyed by its path
(``("nodes", "parse", "wires", 0)``), (2) a duplicate mapping key is an error instead of a silent
overwrite, and (3) ``${NAME}`` substitution happens on each string as it is read, with errors
pointing at that string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


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
    """The values of one YAML document and the position of each of them."""

    data: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)

    def position(self, path: PathKey) -> Position:
        """The position of ``path``, or of its nearest ancestor that has one."""
        while path:
            pos = self.positions.get(path)
            if pos is not None:
                return pos
            path = path[:-1]
        return self.positions.get((), Position(1, 1))


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
        self._scalars.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self._scalars.construct_object(key_node)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self.errors.append(
                    SourceError("a mapping key must be a scalar", key_node.start_mark.line + 1,
                                key_node.start_mark.column + 1, path))
                continue
            if key in result:
                first = self.positions.get((*path, key))
                where = f" (first defined at line {first.line})" if first else ""
                self.errors.append(SourceError(
                    f"duplicate key '{key}'{where}", key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1, (*path, key)))
                continue
            result[key] = self.build(value_node, (*path, key))
        return result


def parse_yaml(
    text: str,
    substitute: Callable[[PathKey, dict[Any, Any]], Substitute | None] | None = None,
    errors: list[SourceError] | None = None,
) -> SourceDocument:
    """Parse one YAML document.

    ``substitute(key, built)`` chooses a substitution function per top-level key, given the
    top-level values built so far; ``env`` is built first, so the rest of the file can use it. Problems are appended
    to ``errors`` when given (and parsing continues); otherwise the first one is raised.
    """
    collected: list[SourceError] = [] if errors is None else errors
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc)
        err = SourceError(f"invalid YAML: {problem}", line, col)
        if errors is None:
            raise err from None
        collected.append(err)
        return SourceDocument(None)
    if root is None:
        return SourceDocument(None, {(): Position(1, 1)})
    builder = _Builder(None, collected)
    if isinstance(root, yaml.MappingNode) and substitute is not None:
        data = _build_top_level(builder, root, substitute)
    else:
        data = builder.build(root, ())
    if errors is None and collected:
        raise collected[0]
    return SourceDocument(data, builder.positions)


def _build_top_level(builder: _Builder, root: yaml.MappingNode,
                     substitute: Callable[[PathKey, dict[Any, Any]], Substitute | None],
                     ) -> dict[Any, Any]:
    """Build the top mapping key by key, ``env`` first, choosing the substitution per key."""
    mark = root.start_mark
    builder.positions[()] = Position(mark.line + 1, mark.column + 1)
    pairs = list(root.value)
    pairs.sort(key=lambda kv: 0 if getattr(kv[0], "value", None) == "env" else 1)
    result: dict[Any, Any] = {}
    for key_node, value_node in pairs:
        key = builder._scalars.construct_object(key_node)
        if key in result:
            builder.errors.append(SourceError(
                f"duplicate key '{key}'", key_node.start_mark.line + 1,
                key_node.start_mark.column + 1, (key,)))
            continue
        builder.substitute = substitute((key,), result)
        result[key] = builder.build(value_node, (key,))
    builder.substitute = None
    # Keep the file's key order (env was only read first).
    order = [builder._scalars.construct_object(k) for k, _ in root.value]
    return {k: result[k] for k in dict.fromkeys(order) if k in result}
