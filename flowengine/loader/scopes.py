"""Groups and scope ``env`` blocks (docs/flow-format.md, "Groups", "Environment variables").

A group's or subflow instance's ``env`` is read as Node-RED reads one: values without ``${NAME}``
first, then the values that refer to variables, which see the values of their own level before
the levels around it; a value naming itself (``URL: ${URL}``) reads the level around it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flowengine.loader.envsubst import substitute
from flowengine.loader.yamlsource import PathKey, SourceDocument, SourceError
from flowengine.node import FlowInfo, GroupInfo, ScopeEnv
from flowengine.schema import env_block

if TYPE_CHECKING:
    from flowengine.loader.loader import Loader

GROUP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "group": {"type": "string"},
        "env": env_block(),
    },
    "additionalProperties": False,
}

#: One env entry as written: its value and where it is (document, file, path).
EnvEntry = tuple[Any, SourceDocument, str, PathKey]


class _Level(Mapping[str, Any]):
    """The names a templated env value sees: the level's plain values, then what is around."""

    def __init__(self, plain: Mapping[str, Any], own: str, around: Mapping[str, Any]):
        self._plain = plain
        self._own = own
        self._around = around

    def _key(self, name: str) -> tuple[bool, str]:
        if name == self._own:
            return False, "$parent." + name
        return name in self._plain, name

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        local, key = self._key(name)
        return local or key in self._around

    def __getitem__(self, name: str) -> Any:
        local, key = self._key(name)
        return self._plain[key] if local else self._around[key]

    def __iter__(self) -> Any:
        return iter(self._plain)

    def __len__(self) -> int:
        return len(self._plain)


def resolve_env(loader: Loader, entries: Mapping[str, EnvEntry],
                around: Mapping[str, Any]) -> dict[str, Any]:
    """The values of one level's env block; ``around`` is what the level sees (its own names
    such as ``NR_GROUP_NAME``, then the levels around it)."""
    plain = {name: value for name, (value, *_where) in entries.items()
             if not (isinstance(value, str) and "${" in value)}
    resolved = dict(plain)
    for name, (value, doc, file, path) in entries.items():
        if name in plain:
            continue
        try:
            resolved[name] = substitute(value, loader.environ, _Level(plain, name, around))
        except SourceError as exc:
            loader.report(doc, file, path, exc.message)
            resolved[name] = ""
    return {name: resolved[name] for name in entries}


def env_entries(block: Any, doc: SourceDocument, file: str, base: PathKey
                ) -> dict[str, EnvEntry]:
    """An ``env`` mapping as entries that remember where each value is written."""
    if not isinstance(block, dict):
        return {}
    return {str(name): (value, doc, file, (*base, name)) for name, value in block.items()}


def read_groups(loader: Loader, doc: SourceDocument, file: str, base: PathKey, block: Any,
                scope: FlowInfo, claim: Callable[[str, PathKey], bool]) -> dict[str, GroupInfo]:
    """The groups of a ``groups:`` block (at ``base`` in ``doc``), their env read, outer
    groups first. ``claim(id, key)`` reserves a group's id (False: already taken, reported)."""
    if not isinstance(block, dict):
        return {}
    groups: dict[str, GroupInfo] = {}
    definitions: dict[str, dict[str, Any]] = {}
    for raw_id, definition in block.items():
        group_id = str(raw_id)
        key = (*base, raw_id)
        if not claim(group_id, key):
            continue
        if not isinstance(definition, dict):
            definition = {} if definition is None else definition
        errors = loader.schema_errors(GROUP_SCHEMA, definition)
        for path, message in errors:
            loader.report(doc, file, (*key, *path), message,
                          at_key=message.startswith("unknown field") or not path)
        if not isinstance(definition, dict):
            continue
        name = definition.get("name")
        description = definition.get("description")
        groups[group_id] = GroupInfo(group_id, name if isinstance(name, str) else "",
                                     description=description if isinstance(description, str)
                                     else "")
        definitions[group_id] = definition
    for group_id, definition in definitions.items():
        parent = definition.get("group")
        if parent is None:
            continue
        if parent not in groups:
            loader.report(doc, file, (*base, group_id, "group"), f"no group '{parent}' in this "
                          "flow's groups")
        elif group_id in _parents(groups[parent], groups, definitions):
            loader.report(doc, file, (*base, group_id, "group"),
                          f"groups '{group_id}' and '{parent}' contain each other")
        else:
            groups[group_id].parent = groups[parent]
    done: set[str] = set()

    def resolve(group: GroupInfo) -> None:
        if group.id in done:
            return
        done.add(group.id)
        if group.parent is not None:
            resolve(group.parent)
        entries = env_entries(definitions[group.id].get("env"), doc, file,
                              (*base, group.id, "env"))
        group.env = resolve_env(loader, entries, ScopeEnv(group, scope))

    for group in groups.values():
        resolve(group)
    return groups


def _parents(group: GroupInfo, groups: dict[str, GroupInfo],
             definitions: dict[str, dict[str, Any]]) -> list[str]:
    """The ids of ``group`` and the groups its definition puts it in (through ``group:``)."""
    found: list[str] = []
    current: str | None = group.id
    while current is not None and current in groups and current not in found:
        found.append(current)
        parent = definitions[current].get("group")
        current = parent if isinstance(parent, str) else None
    return found
