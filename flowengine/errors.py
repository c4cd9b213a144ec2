"""Error types shared by the loader, the runtime and node plugins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadError:
    """One problem found while loading flow files: where it is and what was expected."""

    file: str
    line: int
    column: int
    message: str
    node: str | None = None
    field: str | None = None
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        what = []
        if self.node:
            what.append(f"node '{self.node}'")
        if self.field:
            what.append(f"field '{self.field}'")
        prefix = "warning: " if self.warning else ""
        subject = (", ".join(what) + ": ") if what else ""
        return f"{where}: {prefix}{subject}{self.message}"


class FlowLoadError(Exception):
    """Raised when flow files cannot be loaded; carries every error found, not just the first."""

    def __init__(self, errors: list[LoadError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class ConfigError(Exception):
    """Raised by a node type while reading its configuration (at load time).

    ``field`` names the configuration field (a path such as ``rules[2].regex``); ``line`` is an
    optional 1-based line inside that field's text (for code fields), so the loader can point at
    the exact line of the flow file.
    """

    def __init__(self, message: str, field: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.line = line


class NodeError(Exception):
    """An error a node reports with a ready-made message text (no exception type prefix).

    The runtime copies the attributes below into ``msg.error`` for catch nodes when set.
    """

    #: ``msg.error.type`` (default: the exception class's name).
    error_type: str | None = None
    #: ``msg.error.code`` and ``msg.error.cause``, as Node-RED copies them from a Node.js error.
    code: Any = None
    cause: Any = None
