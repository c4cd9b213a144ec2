"""One converter per Node-RED node type: its properties as our node type's YAML fields.

A converter takes the Node-RED node (a dict, as in flows.json) and the conversion context
(:class:`Context`, implemented by the importer) and returns a :class:`Converted`; it raises
:class:`Unsupported` when the node cannot be expressed, and the node then becomes a disabled
placeholder. Common fields (id, name, wires, disabled, description) are the importer's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowengine.importer.values import js_number


class Unsupported(Exception):
    """The node uses something with no equivalent; the text says what."""


@dataclass
class Converted:
    """A converted node: our type, its own fields, and comment lines for the YAML file."""

    type: str
    config: dict[str, Any]
    comment: list[str] = field(default_factory=list)
    disabled: bool = False
    #: A JavaScript function node (reported as such).
    javascript: bool = False


class Context(Protocol):
    """What a converter may ask of the importer, for the node being converted."""

    def value(self, value: Any, kind: str | None, what: str) -> Any:
        """A typed value (see :mod:`flowengine.importer.values`); noted and kept as text
        when it has no equivalent."""

    def text(self, value: Any) -> str:
        """A plain string field: a whole ``${NAME}`` stays a load-time reference."""

    def ref(self, node_id: Any, what: str) -> str | None:
        """The flow-file id of a node named in a property (None, with a problem, if absent)."""

    def config(self, node_id: Any, *types: str) -> dict[str, Any] | None:
        """A Node-RED config node of one of ``types`` (None, with a problem, if absent)."""

    def use_config(self, node_id: Any) -> str | None:
        """The flow-file id of a config node this node refers to (it is imported with the
        flow that uses it)."""

    def link_targets(self) -> list[str]:
        """A link out's targets: its ``links`` and the link in nodes naming it."""

    def note(self, text: str) -> None:
        """Record a difference for the report."""


Converter = Callable[[dict[str, Any], Context], Converted]
CONVERTERS: dict[str, Converter] = {}
#: Converters of Node-RED config node types that become our config nodes.
CONFIG_CONVERTERS: dict[str, Converter] = {}
#: Node-RED config types read by the converters of the nodes using them (not imported alone).
ABSORBED_CONFIG_TYPES = {"websocket-listener", "websocket-client", "tls-config", "global-config"}


def converts(*types: str, config: bool = False) -> Callable[[Converter], Converter]:
    """Register the decorated function as the converter of these Node-RED types."""
    def register(fn: Converter) -> Converter:
        for name in types:
            (CONFIG_CONVERTERS if config else CONVERTERS)[name] = fn
        return fn
    return register


# -- helpers ------------------------------------------------------------------------------------

def truthy(value: Any) -> bool:
    """Node-RED's booleans are ``true`` or the strings ``"true"``."""
    return value is True or value == "true"


def seconds(value: Any, unit_ms: float = 1000.0) -> float | int:
    """A duration in seconds from a Node-RED number of units (``unit_ms`` per unit)."""
    number = js_number(value)
    if number != number:  # NaN
        return 0
    result = number * unit_ms / 1000.0
    return int(result) if result == int(result) else round(result, 6)


def duration(value: Any, unit_ms: float = 1000.0) -> float | int | str:
    """A flow-file duration: whole seconds as a number, else milliseconds (``"250ms"``)."""
    secs = seconds(value, unit_ms)
    if isinstance(secs, int) or secs >= 1:
        return secs
    ms = secs * 1000
    return f"{int(ms)}ms" if ms == int(ms) else secs


#: Milliseconds per unit, for the units Node-RED's delay and trigger nodes store.
UNIT_MS = {"milliseconds": 1, "ms": 1, "seconds": 1000, "s": 1000, "second": 1000,
           "minutes": 60_000, "min": 60_000, "minute": 60_000, "hours": 3_600_000,
           "hr": 3_600_000, "hour": 3_600_000, "days": 86_400_000, "day": 86_400_000}


def as_list(value: Any) -> list[Any]:
    """A list property, or ``[]`` for anything else (an export edited by hand)."""
    return value if isinstance(value, list) else []


def prop_path(value: Any, default: str = "payload") -> str:
    """A message property path as Node-RED stores it; empty means ``default``."""
    return value if isinstance(value, str) and value else default


def target(cx: Context, prop: Any, kind: Any) -> Any:
    """A property a node writes or reads: a message path, or ``{flow: key}``/``{global: key}``."""
    kind = kind or "msg"
    if kind == "msg":
        return prop_path(prop)
    if kind in ("flow", "global"):
        return {kind: prop_path(prop)}
    raise Unsupported(f"a '{kind}' property")


# The modules register their converters when imported.
from flowengine.importer.converters import (  # noqa: E402
    common,
    function,
    network,
    sequence,
    storage,
)

__all__ = ["ABSORBED_CONFIG_TYPES", "CONFIG_CONVERTERS", "CONVERTERS", "Context", "Converted",
           "Unsupported", "as_list", "common", "function", "network", "sequence", "storage"]
