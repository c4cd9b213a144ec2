"""Node types: registration and discovery (docs/plugins.md, "Discovery").

Node types come from installed packages through the ``flowengine.nodes`` entry-point group (the
built-in ``nodes`` package is found that way too) and from folders given with ``--nodes DIR`` or
``settings.nodes_dirs``. A module contributes every :class:`~flowengine.node.Node` subclass it
defines with a non-empty ``type``. A type registered twice is an error naming both sources.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from flowengine.node import Node

ENTRY_POINT_GROUP = "flowengine.nodes"


def normalize_type(name: str) -> str:
    """``"link in"`` and ``"link-in"`` name the same type."""
    return name.strip().replace(" ", "-")


class RegistryError(Exception):
    """A node type could not be registered (duplicate, broken module)."""


class NodeRegistry:
    """The node types known to a runtime, by normalized type name."""

    def __init__(self) -> None:
        self._types: dict[str, type[Node]] = {}
        self._sources: dict[str, str] = {}
        self.directories: list[Path] = []

    def register(self, cls: type[Node], source: str | None = None) -> None:
        """Add ``cls``; ``source`` names where it came from, for duplicate errors."""
        if not cls.type:
            raise RegistryError(f"{cls.__qualname__} has no 'type'")
        key = normalize_type(cls.type)
        source = source or f"{cls.__module__}.{cls.__qualname__}"
        if key in self._types and self._types[key] is not cls:
            raise RegistryError(f"node type '{cls.type}' is registered twice: by "
                                f"{self._sources[key]} and by {source}")
        self._types[key] = cls
        self._sources[key] = source

    def get(self, name: str) -> type[Node] | None:
        """The class for a type name, or None."""
        return self._types.get(normalize_type(name))

    def unknown_type(self, name: str) -> str:
        """The message for a type name that is not registered, with the closest known names
        (``unknown node type 'swich' (did you mean 'switch'?)``)."""
        close = difflib.get_close_matches(name, [c.type for c in self.types()], n=3)
        if close:
            return f"unknown node type '{name}' (did you mean {', '.join(map(repr, close))}?)"
        return (f"unknown node type '{name}': no installed package provides it (`flowrun "
                "nodes` lists the known types; add a plugin with pip install or --nodes DIR)")

    def source(self, name: str) -> str | None:
        """Where a type was registered from."""
        return self._sources.get(normalize_type(name))

    def types(self) -> list[type[Node]]:
        """All registered classes, sorted by category then type."""
        return sorted(self._types.values(), key=lambda c: (c.category, c.type))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_type(name) in self._types

    # -- discovery --------------------------------------------------------------------------

    def load_module(self, module: ModuleType, source: str | None = None) -> int:
        """Register the node classes a module defines (walking a package's submodules)."""
        count = 0
        for mod in _walk(module):
            for _, obj in inspect.getmembers(mod, inspect.isclass):
                if issubclass(obj, Node) and obj.__module__ == mod.__name__ and obj.type:
                    self.register(obj, source or mod.__name__)
                    count += 1
        return count

    def load_entry_points(self) -> None:
        """Register the node types of every installed package (``flowengine.nodes`` group)."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                target = ep.load()
            except Exception as exc:
                raise RegistryError(f"cannot load node plugin '{ep.name}' ({ep.value}): "
                                    f"{type(exc).__name__}: {exc}") from exc
            where = f"entry point '{ep.name}' ({ep.value})"
            if isinstance(target, ModuleType):
                self.load_module(target, where)
            elif inspect.isclass(target) and issubclass(target, Node):
                self.register(target, where)
            else:
                raise RegistryError(f"{where} is neither a module nor a Node subclass")

    def load_directory(self, directory: str | Path) -> int:
        """Import every ``*.py`` under ``directory`` and register its node types."""
        root = Path(directory).resolve()
        if not root.is_dir():
            raise RegistryError(f"node directory '{directory}' does not exist")
        if root in self.directories:
            return 0
        self.directories.append(root)
        count = 0
        for path in sorted(root.rglob("*.py")):
            inner = path.relative_to(root).parts
            # Test modules and folders are not node modules (a plugin package keeps its tests
            # beside its nodes).
            if (path.name.startswith("_") or path.name.startswith("test_")
                    or path.name == "conftest.py"
                    or any(p in ("test", "tests") for p in inner[:-1])):
                continue
            name = "flowengine_user_nodes." + "_".join(path.relative_to(root).with_suffix("")
                                                       .parts)
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                raise RegistryError(f"cannot import node module {path}: "
                                    f"{type(exc).__name__}: {exc}") from exc
            count += self.load_module(module, str(path))
        return count


def _walk(module: ModuleType) -> Iterable[ModuleType]:
    yield module
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
            yield importlib.import_module(info.name)


def default_registry(node_dirs: Iterable[str | Path] = ()) -> NodeRegistry:
    """A registry with every installed node type plus those in ``node_dirs``."""
    registry = NodeRegistry()
    registry.load_entry_points()
    for directory in node_dirs:
        registry.load_directory(directory)
    return registry
