"""The public node API: every node type, built-in or a plugin's, subclasses :class:`Node`.

A node type declares its ``type`` name, a JSON Schema for its configuration, its number of inputs
and outputs, a description and an example (docs/plugins.md). The runtime does routing, cloning,
errors, status and completion, so a node's code is short::

    class Upper(Node):
        type = "upper"
        description = "Upper-cases msg.payload."
        schema = {"type": "object", "properties": {}, "additionalProperties": False}

        def on_input(self, msg):
            msg["payload"] = str(msg.get("payload", "")).upper()
            return msg

``on_input`` may be a plain function (it then costs one call per message) or ``async def`` (each
message then runs in its own task, so a node waiting on I/O never stalls other messages). Its
return value is sent as a function node's would be: a dict goes to output 0, a list gives one
entry per output, ``None`` sends nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from flowengine.errors import NodeError

if TYPE_CHECKING:
    from flowengine.context import Context
    from flowengine.runtime import Runtime

log = logging.getLogger("flowengine.node")

# Node states. Invariant: only RUNNING nodes get on_input calls; messages that reach a STARTING
# node wait in its backlog and are handled, in order, once on_start has returned.
CREATED, STARTING, RUNNING, CLOSED = "created", "starting", "running", "closed"


@dataclass(eq=False)
class GroupInfo:
    """A group of nodes in a flow (Node-RED's group): a name, ``env`` variables its nodes see
    before the flow's, and the group it sits in."""

    id: str
    name: str = ""
    env: dict[str, Any] = field(default_factory=dict)
    parent: GroupInfo | None = None
    description: str = ""

    def builtin(self, name: str) -> Any:
        if name == "NR_GROUP_NAME":
            return self.name
        if name == "NR_GROUP_ID":
            return self.id
        return _ABSENT

    def chain(self) -> list[GroupInfo]:
        """This group and the groups around it, innermost first."""
        found: list[GroupInfo] = []
        group: GroupInfo | None = self
        while group is not None and group not in found:
            found.append(group)
            group = group.parent
        return found


@dataclass
class FlowInfo:
    """The scope a node runs in: a flow (file), or one instance of a subflow.

    A subflow instance's scope has the instance's ``env`` (its own values over the subflow's
    defaults) and names what holds it: ``parent`` (the flow or instance it sits in), ``group``
    (the instance's group there) and ``instance`` (the instance node's id). Its name is
    ``<parent name>/<instance id>`` (its flow context's scope).
    """

    name: str
    file: str = "<memory>"
    description: str = ""
    env: dict[str, Any] = field(default_factory=dict)
    parent: FlowInfo | None = None
    instance: str | None = None
    instance_name: str | None = None
    group: GroupInfo | None = None
    #: The subflow's name (instances only).
    subflow: str | None = None
    #: True when the subflow has a status output (instances only): the statuses of its nodes
    #: then stay inside it instead of reaching the parent as the instance's.
    status_output: bool = False

    def builtin(self, name: str) -> Any:
        if self.instance is None:
            if name in ("NR_FLOW_NAME", "NR_FLOW_ID"):
                return self.name
        elif name in ("NR_SUBFLOW_NAME", "NR_NODE_NAME"):
            return self.instance_name
        elif name in ("NR_SUBFLOW_ID", "NR_NODE_ID"):
            return self.instance
        return _ABSENT

    @property
    def top(self) -> FlowInfo:
        """The flow (file) this scope is part of."""
        scope = self
        while scope.parent is not None:
            scope = scope.parent
        return scope


def env_lookup(name: str, group: GroupInfo | None, scope: FlowInfo) -> Any:
    """Node-RED's environment lookup from a group (or none) in a scope, without the node's
    own ``NR_NODE_*`` names and the process environment: the groups innermost first, then
    the scope (a subflow instance, then the instance's groups and what holds it, up to the
    flow). At each level its own names (``NR_GROUP_NAME``...) come before its ``env``;
    ``$parent.NAME`` skips one level. Returns ``_ABSENT`` when no level has the name."""
    skip = 0
    while name.startswith("$parent."):
        name = name[len("$parent."):]
        skip += 1
    for level in _levels(group, scope):
        if skip:
            skip -= 1
            continue
        value = level.builtin(name)
        if value is not _ABSENT:
            return value
        if name in level.env:
            return level.env[name]
    return _ABSENT


def _levels(group: GroupInfo | None, scope: FlowInfo | None) -> Iterator[GroupInfo | FlowInfo]:
    while scope is not None:
        if group is not None:
            yield from group.chain()
        yield scope
        group, scope = scope.group, scope.parent


class ScopeEnv(Mapping[str, Any]):
    """The variables ``${NAME}`` reads when a node's configuration is loaded: what
    :func:`env_lookup` finds from the node's group and scope, and the node's own
    ``NR_NODE_ID``/``NR_NODE_NAME`` (the process environment is the loader's)."""

    def __init__(self, group: GroupInfo | None, scope: FlowInfo,
                 node: tuple[str, str | None] | None = None):
        self._group = group
        self._scope = scope
        self._node = node

    def _get(self, name: str) -> Any:
        if self._node is not None and name in ("NR_NODE_ID", "NR_NODE_NAME"):
            return self._node[0] if name == "NR_NODE_ID" else self._node[1]
        return env_lookup(name, self._group, self._scope)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._get(name) is not _ABSENT

    def __getitem__(self, name: str) -> Any:
        value = self._get(name)
        if value is _ABSENT:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for level in _levels(self._group, self._scope):
            for key in level.env:
                if key not in seen:
                    seen.add(key)
                    yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Env:
    """``env.get(NAME, default)``: Node-RED's lookup (:func:`env_lookup`) from the node's group
    and scope, then the process environment.

    The node's own ``NR_NODE_ID`` and ``NR_NODE_NAME`` come first; groups answer
    ``NR_GROUP_NAME``/``NR_GROUP_ID``, subflow instances ``NR_SUBFLOW_NAME``/``NR_SUBFLOW_ID``,
    flows ``NR_FLOW_NAME``/``NR_FLOW_ID`` (the flow's name). Where the runtime's HTTP server
    listens is provided too, after the flows' env (``FLOWENGINE_HTTP_URL``, ``..._HOST``,
    ``..._PORT``: see :meth:`Runtime.provided_env`).
    """

    __slots__ = ("_node",)

    def __init__(self, node: Node):
        self._node = node

    def get(self, name: str, default: Any = None) -> Any:
        node = self._node
        if name == "NR_NODE_ID":
            return node.id
        if name == "NR_NODE_NAME":
            return node._given_name
        value = env_lookup(name, node.group, node.flow)
        if value is not _ABSENT:
            return value
        if name.startswith("FLOWENGINE_HTTP_") and node._runtime is not None:
            provided = node._runtime.provided_env(name)
            if provided is not None:
                return provided
        return os.environ.get(name.rpartition("$parent.")[2], default)

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, _ABSENT)
        if value is _ABSENT:
            raise KeyError(name)
        return value


_ABSENT: Any = object()


class Node:
    """Base class of every node type. Subclasses set the class attributes and override hooks.

    Hooks (each may be sync or ``async``):

    - ``configure(config)``: read and compile the configuration at load time; raise
      :class:`flowengine.errors.ConfigError` for problems JSON Schema cannot express. No I/O.
    - ``on_start()``: open connections, start timers. Config nodes start before flow nodes,
      and source nodes (``is_source = True``) after all others.
    - ``on_input(msg)``: handle one message; the return value is sent (see module docstring).
    - ``on_close(removed)``: release everything; ``removed`` is True when the node is deleted
      rather than restarted. Bounded by the runtime's close timeout.
    """

    #: The node type's name, e.g. ``"switch"``; ``"link in"`` and ``"link-in"`` both resolve.
    type: ClassVar[str] = ""
    #: Palette category, used by ``flowrun nodes`` and the docs (``common``, ``function``...).
    category: ClassVar[str] = "other"
    #: One paragraph: what the node does.
    description: ClassVar[str] = ""
    #: A YAML example of the node in a flow file.
    example: ClassVar[str] = ""
    #: JSON Schema of the node's own configuration fields (the common fields are added).
    schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    #: Number of inputs (0 or 1).
    inputs: ClassVar[int] = 1
    #: Number of outputs; override :meth:`output_count` when configuration decides it.
    outputs: ClassVar[int] = 1
    #: Source nodes (inject, websocket-in, http-in) start after every other node.
    is_source: ClassVar[bool] = False
    #: Config nodes hold shared connections, live under ``config:`` and have no wires.
    is_config: ClassVar[bool] = False
    #: When False the node calls :meth:`done` itself (e.g. a delay node, when it emits).
    auto_done: ClassVar[bool] = True

    @classmethod
    def output_count(cls, config: Mapping[str, Any]) -> int:
        """The number of outputs for this configuration."""
        return cls.outputs

    def __init__(self, node_id: str, config: dict[str, Any], *, name: str | None = None,
                 flow: FlowInfo | None = None, group: GroupInfo | None = None,
                 alias: str | None = None):
        self.id = node_id
        self.name = name or node_id
        self._given_name = name or None
        self.config = config
        #: The scope the node runs in: its flow, or the subflow instance it is part of.
        self.flow = flow or FlowInfo("main")
        #: The group the node is in (None: none).
        self.group = group
        #: Inside a subflow instance: the id of the subflow's node this one is a copy of.
        self.alias = alias
        self.env = Env(self)
        self.state = CREATED
        self.last_status: dict[str, Any] | None = None
        # Counters, read by the admin API and /metrics.
        self.msgs_in = 0
        self.msgs_out = 0
        self.error_count = 0
        self.handler_seconds = 0.0
        # Set by the runtime when the node is bound and wired.
        self._runtime: Runtime | None = None
        self._wires: tuple[tuple[Node, ...], ...] = ()
        self._complete_nodes: tuple[Node, ...] = ()
        # ``on_input`` as the runtime calls it: exactly one is set when the node is bound.
        self._sync_handler: Callable[[dict[str, Any]], Any] | None = None
        self._async_handler: Callable[[dict[str, Any]], Awaitable[Any]] | None = None
        # ``auto_done`` as bound: the runtime finishes each message after ``on_input``.
        self._auto_complete = self.auto_done
        self._backlog: list[dict[str, Any]] = []
        self._failed_msg: dict[str, Any] | None = None
        self._unheard_status = False  # set while on_start runs its first steps
        self.configure(config)

    # -- hooks ------------------------------------------------------------------------------

    def configure(self, config: dict[str, Any]) -> None:
        """Read the (validated, defaulted) configuration. Raise ConfigError on problems."""

    def on_start(self) -> Any:
        """Start: open connections and timers. May be ``async``."""

    def on_input(self, msg: dict[str, Any]) -> Any:
        """Handle one message; return what to send. May be ``async``."""
        return None

    def on_close(self, removed: bool) -> Any:
        """Stop: release resources. May be ``async``."""

    # -- the runtime, as a node sees it -------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        """The runtime this node runs in (node lookup, settings, events, delivery)."""
        if self._runtime is None:
            raise RuntimeError(f"node '{self.id}' is not attached to a runtime")
        return self._runtime

    @property
    def context(self) -> Context:
        """This node's own context scope (inside a subflow instance, keyed as Node-RED does by
        the subflow's node id within the instance's scope)."""
        return self.runtime.contexts.node_context(self.alias or self.id, self.flow.name)

    @property
    def flow_context(self) -> Context:
        """The context shared by the nodes of this node's flow (inside a subflow instance: the
        instance's own, whose ``$parent`` is the context of the flow holding it)."""
        parent = self.flow.parent
        return self.runtime.contexts.flow_context(self.flow.name,
                                                  parent.name if parent else None)

    @property
    def global_context(self) -> Context:
        """The context shared by every flow."""
        return self.runtime.contexts.global_context()

    @property
    def output_total(self) -> int:
        """The number of outputs this node has."""
        return len(self._wires)

    @property
    def wired_ids(self) -> list[list[str]]:
        """The ids of the nodes each output is wired to (running nodes only)."""
        return [[n.id for n in out] for out in self._wires]

    def send(self, msg: Any, clone: bool = False) -> None:
        """Send a message (dict), or a list with one entry per output (see module docstring).

        With ``clone=True`` the first recipient gets a copy too, so the caller may keep changing
        ``msg`` afterwards (what Node-RED's ``node.send`` does by default in function nodes).
        """
        self.runtime.router.emit(self, msg, None, clone)

    def done(self, msg: dict[str, Any], error: BaseException | str | None = None) -> None:
        """Finish ``msg`` (for ``auto_done = False`` nodes): complete nodes, or catch on error."""
        if error is not None:
            self.error(error, msg)
        else:
            self.runtime.complete(self, msg)

    def error(self, err: BaseException | str, msg: dict[str, Any] | None = None) -> None:
        """Report an error. With ``msg`` it reaches catch nodes; otherwise it is logged."""
        self.runtime.report_error(self, err, msg)

    def warn(self, text: Any) -> None:
        """Log a warning from this node."""
        self.runtime.log_node(self, logging.WARNING, text)

    def log(self, text: Any) -> None:
        """Log an informational line from this node."""
        self.runtime.log_node(self, logging.INFO, text)

    def debug(self, text: Any) -> None:
        """Log a debug line from this node."""
        self.runtime.log_node(self, logging.DEBUG, text)

    def status(self, status: Mapping[str, Any] | str | int | float | bool | None) -> None:
        """Set the node's status (``{"fill", "shape", "text"}``; ``{}`` clears it)."""
        self.runtime.set_status(self, status)

    def source_info(self) -> dict[str, Any]:
        """``{id, type, name}`` as catch, status and complete messages name their source;
        ``name`` only when the node has one (Node-RED leaves it out for unnamed nodes)."""
        info = {"id": self.id, "type": self.type}
        if self._given_name:
            info["name"] = self._given_name
        return info

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type!r} id={self.id!r}>"


def error_text(err: BaseException | str | Any) -> str:
    """The text of ``msg.error.message``: ``"Type: text"`` for exceptions, as Node-RED's
    ``String(err)`` gives ``"Error: boom"``; a NodeError or a plain value is used as is."""
    if isinstance(err, NodeError):
        return str(err)
    if isinstance(err, BaseException):
        text = str(err)
        return f"{type(err).__name__}: {text}" if text else type(err).__name__
    if isinstance(err, str):
        return err
    import json

    try:
        return json.dumps(err, separators=(",", ":"))  # JSON.stringify's compact form
    except (TypeError, ValueError):
        return str(err)
