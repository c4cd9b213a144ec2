"""flowengine: a Node-RED-style flow runtime in Python.

The public API for node plugins is the modules in :data:`PLUGIN_API` (docs/plugins.md, "The
public API", says what each is for). This module exports :class:`Node` and its hooks, value
references (:func:`compile_value`), property paths (:class:`Path`), and the errors a node may
raise. Built-in node types import nothing else from flowengine (tests/test_plugin_api.py).
"""

from flowengine.durations import parse_duration
from flowengine.errors import ConfigError, FlowLoadError, LoadError, NodeError
from flowengine.messages import clone_message, new_msgid
from flowengine.node import FlowInfo, Node
from flowengine.paths import MISSING, MsgRef, Path, PathError, parse_path
from flowengine.values import Value, compile_path, compile_value, is_reference

__all__ = [
    "MISSING",
    "PLUGIN_API",
    "ConfigError",
    "FlowInfo",
    "FlowLoadError",
    "LoadError",
    "MsgRef",
    "Node",
    "NodeError",
    "Path",
    "PathError",
    "Value",
    "clone_message",
    "compile_path",
    "compile_value",
    "is_reference",
    "new_msgid",
    "parse_duration",
    "parse_path",
]

__version__ = "0.1.0"

#: The modules a node type, built-in or a plugin's, may import from flowengine.
PLUGIN_API = (
    "flowengine",
    "flowengine.schema",
    "flowengine.util",
    "flowengine.durations",
    "flowengine.js",
    "flowengine.jsonata",
    "flowengine.mustache",
    "flowengine.http",
    "flowengine.websocket",
    "flowengine.shared_status",
    "flowengine.config_nodes",
    "flowengine.pg",
    "flowengine.kurento",
    "flowengine.testing",
)
