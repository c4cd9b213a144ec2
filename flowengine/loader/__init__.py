"""Loading flow files: YAML with positions, ``${NAME}`` substitution, validation, graph checks."""

from flowengine.loader.loader import Loader, expand_paths, find_flow_files, load_flows
from flowengine.loader.model import FlowSet, FlowSpec, NodeSpec

__all__ = ["FlowSet", "FlowSpec", "Loader", "NodeSpec", "expand_paths", "find_flow_files",
           "load_flows"]
