"""flowengine: a Node-RED-style flow runtime in Python.

The public API for node plugins is what this module exports: :class:`Node` and its hooks,
the schema helpers in :mod:`flowengine.schema`, value references (:func:`compile_value`),
property paths (:class:`Path`), and the errors a node may raise; :mod:`flowengine.util` has the
counterparts of Node-RED's ``RED.util``.
"""

from flowengine.durations import parse_duration
from flowengine.errors import ConfigError, FlowLoadError, LoadError, NodeError
from flowengine.messages import clone_message, new_msgid
from flowengine.node import FlowInfo, Node
from flowengine.paths import MISSING, Path, PathError
from flowengine.values import Value, compile_path, compile_value

__all__ = [
    "MISSING",
    "ConfigError",
    "FlowInfo",
    "FlowLoadError",
    "LoadError",
    "Node",
    "NodeError",
    "Path",
    "PathError",
    "Value",
    "clone_message",
    "compile_path",
    "compile_value",
    "new_msgid",
    "parse_duration",
]

__version__ = "0.1.0"
