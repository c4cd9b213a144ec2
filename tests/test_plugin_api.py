"""The plugin boundary: built-in node types (and the example plugin) import only the public
plugin API (``flowengine.PLUGIN_API``), no node module imports another, flowengine never imports
``nodes``, and docs/plugins.md lists exactly the public modules.

Imports are read from the source (an AST walk, every ``import`` wherever it stands, under
``TYPE_CHECKING`` too), so a violation is named with its file and line.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

from flowengine import PLUGIN_API

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent that is a module, not a package
        return False


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in ``path``; ``from a import b`` gives ``a.b`` when
    that is a module (``from flowengine import jsvalues``), else ``a``; relative imports are
    made absolute."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if _is_module(full) else base


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def boundary_violations() -> list[str]:
    """Every import across the plugin boundary, as ``file:line: what``."""
    found = []
    plugins = [*(ROOT / "nodes").rglob("*.py"),  # the example plugin keeps to the API too
               *(ROOT / "examples" / "plugins" / "flowengine_example_nodes").rglob("*.py")]
    for path in sorted(plugins):
        own = _module_name(path)
        for line, module in imported_modules(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if _in(module, "flowengine") and module not in PLUGIN_API:
                found.append(f"{where}: imports {module}, not a public module "
                             "(flowengine.PLUGIN_API)")
            elif _in(module, "nodes") and not _in(own, module):
                # A package may import its own parent (nothing does today); never a node module.
                found.append(f"{where}: imports the node module {module}")
    for path in sorted((ROOT / "flowengine").rglob("*.py")):
        for line, module in imported_modules(path):
            if _in(module, "nodes"):
                found.append(f"{path.relative_to(ROOT)}:{line}: flowengine imports {module}")
    return found


def test_nodes_use_only_the_public_api_and_flowengine_never_imports_nodes() -> None:
    found = boundary_violations()
    assert not found, "imports across the plugin boundary:\n" + "\n".join(found)


def test_every_public_module_exists() -> None:
    assert [m for m in PLUGIN_API if not _is_module(m)] == []


def test_plugin_guide_lists_exactly_the_public_modules() -> None:
    guide = (ROOT / "docs" / "plugins.md").read_text()
    section = guide.split("## The public API", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(flowengine(?:\.\w+)*)` \|", section, re.MULTILINE)
    assert sorted(listed) == sorted(PLUGIN_API)
