"""The runtime: one asyncio process running every loaded flow (docs/design/runtime.md).

Start order: context stores, config nodes, flow nodes, then sources. Stop order: sources first,
in-flight messages drain within a timeout, flow nodes close in reverse order, config nodes last,
each close bounded by a timeout. Errors go to catch nodes, status to status nodes, completion to
complete nodes, all with Node-RED's message shapes (docs/reference/nodered-runtime.md §1.5, §2).

Where a message goes next is in :mod:`flowengine.routing`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowengine.context import ContextManager
from flowengine.durations import parse_duration
from flowengine.loader.model import FlowSet, NodeSpec
from flowengine.messages import clone_message, new_msgid
from flowengine.node import CLOSED, RUNNING, STARTING, FlowInfo, Node, error_text
from flowengine.routing import Router

if TYPE_CHECKING:
    from flowengine.registry import NodeRegistry
    from flowengine.server import HttpServer

log = logging.getLogger("flowengine.runtime")
flow_log = logging.getLogger("flowengine.flow")

ERROR_LOOP_LIMIT = 10  # Node-RED stops re-delivering an error to a catch after 9 rounds


@dataclass
class _Watcher:
    """A catch or status node: which nodes of its scope (flow or subflow instance) it hears."""

    node: Node
    scope: frozenset[str] | None  # None: every node of the watcher's scope
    uncaught: bool = False
    group: bool = False  # scope "group": the nodes of the watcher's group and groups inside it

    def distance(self, reporting: Node) -> int | None:
        """How many groups lie between ``reporting`` and this watcher's group, or None when
        the watcher does not hear ``reporting`` (Node-RED's Flow.js handleError/Status)."""
        own = self.node.group
        if own is not None and self.group and reporting.group is None:
            return None
        if self.scope is not None and reporting.id not in self.scope:
            return None
        distance = 0
        if reporting.group is not None:
            chain = reporting.group.chain()
            inside = next((i for i, g in enumerate(chain) if own is not None and g is own),
                          None)
            if inside is None and own is not None and self.group:
                return None
            distance = len(chain) if inside is None else inside
        return distance

    @property
    def rank(self) -> int:
        """Node-RED's order of catch nodes: scoped first, then all, then ``uncaught``."""
        if self.scope is not None or self.group:
            return 0
        return 2 if self.uncaught else 1


class EventBus:
    """Runtime events for the admin API and tools: ``status``, ``debug``, ``error``, ``log``,
    ``reload`` (new flows applied: the ids added, changed and removed).

    Subscribers are called synchronously with ``(kind, data)``; a failing subscriber is logged
    and skipped. There is no queue here: a subscriber that does I/O must queue itself.
    """

    def __init__(self) -> None:
        self._subscribers: list[Callable[[str, dict[str, Any]], None]] = []

    def subscribe(self, callback: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for callback in list(self._subscribers):
            try:
                callback(kind, data)
            except Exception:
                log.exception("event subscriber failed")


class Runtime:
    """Runs a :class:`~flowengine.loader.FlowSet`.

    Public API for node plugins: :attr:`settings`, :attr:`events`, :attr:`contexts`,
    :meth:`get_node`, :meth:`find_nodes`, :meth:`deliver`, :meth:`watch_errors`,
    :meth:`watch_status`, :meth:`watch_complete`, :meth:`add_cleanup`, :attr:`http`,
    :meth:`shared`.
    """

    def __init__(self, flowset: FlowSet, *, base_dir: str | Path | None = None,
                 registry: NodeRegistry | None = None, serve_http: bool = False):
        self.flowset = flowset
        self.registry = registry
        # flowrun always serves HTTP (admin API, static files); tests only when a node asks.
        self.serve_http = serve_http
        self._http: HttpServer | None = None
        self._shared: dict[Any, Any] = {}
        self._reload_lock = asyncio.Lock()
        self.settings: dict[str, Any] = flowset.settings
        self.base_dir = Path(base_dir) if base_dir else (
            flowset.flows[0].path.parent if flowset.flows else Path.cwd())
        self.router = Router(self)
        self.events = EventBus()
        self.contexts = ContextManager.from_settings(
            self.settings, base_dir=self.base_dir,
            global_seed=self.settings.get("global_context"))
        self.nodes: dict[str, Node] = {}
        self.close_timeout = parse_duration(self.settings.get("close_timeout", 15))
        self.drain_timeout = parse_duration(self.settings.get("drain_timeout", 5))
        self._error_watchers: list[_Watcher] = []
        self._status_watchers: list[_Watcher] = []
        self._complete_watchers: dict[str, list[Node]] = {}
        self._cleanups: list[Callable[[], Any]] = []
        self.started = False

    # -- lookup ---------------------------------------------------------------------------------

    def get_node(self, node_id: str) -> Node | None:
        """The running node (or config node) with this id."""
        return self.nodes.get(node_id)

    def find_nodes(self, *, type: str | None = None, name: str | None = None,
                   flow: str | None = None) -> list[Node]:
        """Running nodes matching every given criterion (type names are normalized)."""
        from flowengine.registry import normalize_type

        wanted = normalize_type(type) if type else None
        return [n for n in self.nodes.values()
                if (wanted is None or normalize_type(n.type) == wanted)
                and (name is None or n.name == name)
                and (flow is None or n.flow.name == flow)]

    @property
    def http(self) -> HttpServer:
        """The shared HTTP server (created on first use; listening once the runtime started)."""
        if self._http is None:
            from flowengine.server import HttpServer

            self._http = HttpServer(self, self.settings.get("http"))
        return self._http

    def provided_env(self, name: str) -> Any:
        """A value the runtime provides to ``env.get(name)`` (docs/flow-format.md, "Environment
        variables"): where the HTTP server listens, once it does; None otherwise."""
        return self._http.env.get(name) if self._http is not None else None

    def shared(self, key: Any, factory: Callable[[], Any]) -> Any:
        """A resource shared by several nodes (a websocket endpoint, a connection pool):
        created by ``factory()`` on first use, closed (``close()``, sync or async) when the
        runtime stops."""
        if key not in self._shared:
            self._shared[key] = factory()
        return self._shared[key]

    def deliver(self, node: Node | str, msg: dict[str, Any]) -> None:
        """Put ``msg`` on a node's input, as if a wire delivered it."""
        target = self.nodes[node] if isinstance(node, str) else node
        self.router.deliver(target, msg)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open context stores, then start config nodes, flow nodes and sources in that order."""
        await self.contexts.start()
        specs = self._live_specs(self.flowset.nodes.values())
        for spec in specs:
            self._bind(spec.instance)  # type: ignore[arg-type]
        self._wire_all()
        order = self._start_order([s.instance for s in specs])  # type: ignore[misc]
        sources = [n for n in order if n.is_source]
        # Listen before any node starts, as Node-RED does, so that a node connecting to this
        # server at start (a websocket client of its own listener) finds it; routes are looked
        # up per request, so nothing is served before its node has started. A taken port
        # stops everything before any message flows.
        if self.serve_http:
            try:
                await self.http.start()
            except OSError:
                await self.contexts.stop()
                raise
        for node in order:
            if not node.is_source:
                await self._start_node(node)
        try:
            if self._http is not None and not self._http.listening:  # created by a node
                await self.http.start()
        except OSError:
            for node in reversed(order):
                if not node.is_source:
                    await self._close_node(node, removed=True)
            await self.contexts.stop()
            raise
        for node in sources:
            await self._start_node(node)
        if self._http is not None and not self._http.listening:  # created by a source
            await self._http.start()
        self.started = True
        log.info("started %d nodes in %d flows", len(self.nodes), len(self.flowset.flows))

    async def stop(self) -> None:
        """Stop sources, drain in-flight messages, close nodes in reverse order, flush context."""
        if not self.started:
            await self.contexts.stop()
            return
        self.started = False
        order = self._start_order(list(self.nodes.values()))
        sources = [n for n in order if n.is_source]
        for node in reversed(sources):
            await self._close_node(node, removed=True)
        if not await self.router.wait_idle(self.drain_timeout):
            log.warning("stopping with %d messages still in flight after %.1fs",
                        self.router.pending, self.drain_timeout)
        for node in reversed(order):
            if not node.is_source:
                await self._close_node(node, removed=True)
        for task in list(self.router.tasks):
            task.cancel()
        if self._http is not None:
            await self._http.stop()
        for key, resource in reversed(list(self._shared.items())):
            close = getattr(resource, "close", None)
            if close is not None:
                await _call_bounded(close, self.close_timeout, f"closing {key}")
        self._shared.clear()
        for cleanup in reversed(self._cleanups):
            await _call_bounded(cleanup, self.close_timeout, "cleanup")
        self._cleanups.clear()
        await self.contexts.stop()
        log.info("stopped")

    def add_cleanup(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` (sync or async) when the runtime stops, after every node closed."""
        self._cleanups.append(callback)

    async def reload(self, flowset: FlowSet) -> dict[str, list[str]]:
        """Apply new flows, restarting only the nodes whose definition changed (Node-RED's
        "modified nodes" deploy). Returns the ids that were added, changed and removed.
        Reloads (from --watch and the admin API) run one at a time."""
        async with self._reload_lock:
            return await self._reload(flowset)

    async def _reload(self, flowset: FlowSet) -> dict[str, list[str]]:
        old = self.flowset.nodes
        new = flowset.nodes
        # A node restarts when its definition, or the env of its groups and scopes, changed.
        changed = {i for i in new if i in old and (
            old[i].type != new[i].type or old[i].signature() != new[i].signature()
            or old[i].disabled != new[i].disabled or old[i].flow.name != new[i].flow.name)}
        while more := _dependents(new, changed):  # nodes using a changed config node, transitively
            changed |= more
        added = [i for i in new if i not in old]
        removed = [i for i in old if i not in new]
        restart = sorted(changed)
        # Close what goes away or changes, sources first.
        closing = [self.nodes[i] for i in removed + restart if i in self.nodes]
        for node in sorted(closing, key=lambda n: (not n.is_source, n.is_config)):
            await self._close_node(node, removed=node.id in removed)
            self.nodes.pop(node.id, None)
            # As in Node-RED, a restarted or removed node starts over with an empty node
            # context unless a persistent store is configured (flow/global context stay).
            if not self.contexts_configured:
                self.contexts.delete_node_context(node.alias or node.id, node.flow.name)
        # Unchanged nodes keep running with their existing instance.
        for node_id, spec in new.items():
            if node_id in self.nodes:
                running = self.nodes[node_id]
                spec.instance = running
                running.flow = spec.flow
                running.group = spec.group
        self.flowset = flowset
        starting = [spec.instance for spec in (new[i] for i in added + restart)
                    if not spec.disabled and spec.instance is not None]
        for node in starting:
            self._bind(node)
        self._wire_all()
        for node in self._start_order(starting):
            await self._start_node(node)
        summary = {"added": added, "changed": restart, "removed": removed}
        self.events.publish("reload", summary)
        return summary

    @property
    def contexts_configured(self) -> bool:
        """True when persistent context stores are configured (node context then survives)."""
        return len(self.contexts.store_names) > 1

    # -- node lifecycle helpers -----------------------------------------------------------------

    @staticmethod
    def _live_specs(specs: Iterable[NodeSpec]) -> list[NodeSpec]:
        return [s for s in specs if not s.disabled and s.instance is not None]

    @staticmethod
    def _start_order(nodes: list[Node]) -> list[Node]:
        """Config nodes, then flow nodes, then sources; file order within each group."""
        return ([n for n in nodes if n.is_config]
                + [n for n in nodes if not n.is_config and not n.is_source]
                + [n for n in nodes if n.is_source and not n.is_config])

    def _bind(self, node: Node) -> None:
        node._runtime = self
        handler = node.on_input
        if inspect.iscoroutinefunction(handler):
            node._sync_handler = None
            node._async_handler = handler
        else:
            node._sync_handler = handler
            node._async_handler = None
        node._auto_complete = node.auto_done
        self.nodes[node.id] = node

    def _wire_all(self) -> None:
        """Resolve every running node's wires to node objects (cheap; redone on reload)."""
        for spec in self.flowset.nodes.values():
            node = spec.instance
            if node is None or node.id not in self.nodes or spec.is_config:
                continue
            if spec.routes is not None:
                routes, outputs = spec.routes, len(spec.routes)
            else:
                routes, outputs = spec.wires, spec.node_class.output_count(spec.config)
            wires = [tuple(self.nodes[t] for t in targets if t in self.nodes)
                     for targets in routes[:outputs]]
            wires += [()] * (outputs - len(wires))
            node._wires = tuple(wires)
        for node in self.nodes.values():
            node._complete_nodes = tuple(self._complete_watchers.get(node.id, ()))

    async def _start_node(self, node: Node) -> None:
        node.state = STARTING
        # What a node shows while it starts, before it first waits (Node-RED: in its
        # constructor), is shown but reaches no status node: Node-RED builds its list of status
        # nodes after creating the nodes.
        node._unheard_status = True
        try:
            result = node.on_start()
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                await asyncio.sleep(0)  # the task runs up to its first wait
                node._unheard_status = False
                await task
        except Exception as exc:
            self._log(logging.ERROR, node, f"failed to start: {error_text(exc)}")
            self.set_status(node, {"fill": "red", "shape": "ring", "text": "start failed"})
        finally:
            node._unheard_status = False
        node.state = RUNNING
        backlog, node._backlog = node._backlog, []
        for msg in backlog:
            self.router.deliver(node, msg)

    async def _close_node(self, node: Node, removed: bool) -> None:
        if node.state is CLOSED:
            return
        node.state = CLOSED
        self._unwatch(node)
        timeout = getattr(node, "close_timeout", None) or self.close_timeout
        await _call_bounded(lambda: node.on_close(removed), timeout, f"node '{node.id}' close",
                            node=node, runtime=self)

    # -- errors, status, completion -------------------------------------------------------------

    def watch_errors(self, node: Node, scope: Iterable[str] | str | None = None,
                     uncaught: bool = False) -> None:
        """Make ``node`` receive (and send on) errors of the nodes in ``scope`` (None: every
        node of its flow or subflow instance; ``"group"``: the nodes of its group and of the
        groups inside it); ``uncaught``: only errors no other catch node handled."""
        self._error_watchers.append(_watcher(node, scope, uncaught))

    def watch_status(self, node: Node, scope: Iterable[str] | str | None = None) -> None:
        """Make ``node`` receive (and send on) status changes of the nodes in ``scope`` (as
        for :meth:`watch_errors`)."""
        self._status_watchers.append(_watcher(node, scope))

    def watch_complete(self, node: Node, node_ids: Iterable[str]) -> None:
        """Make ``node`` receive (and send on) messages the given nodes finish."""
        for node_id in node_ids:
            self._complete_watchers.setdefault(node_id, []).append(node)
            target = self.nodes.get(node_id)
            if target is not None:
                target._complete_nodes = tuple(self._complete_watchers[node_id])

    def _unwatch(self, node: Node) -> None:
        self._error_watchers = [w for w in self._error_watchers if w.node is not node]
        self._status_watchers = [w for w in self._status_watchers if w.node is not node]
        for node_id, watchers in list(self._complete_watchers.items()):
            if node in watchers:
                watchers.remove(node)
                target = self.nodes.get(node_id)
                if target is not None:
                    target._complete_nodes = tuple(watchers)

    def report_error(self, node: Node, err: BaseException | str | Any,
                     msg: dict[str, Any] | None) -> None:
        """Route an error to catch nodes (with ``msg``) or log it (without, or when uncaught)."""
        node.error_count += 1
        if msg is not None:
            node._failed_msg = msg  # a failed message does not complete (Node-RED's done(err))
        text = error_text(err)
        msgid = msg.get("_msgid") if isinstance(msg, dict) else None
        self.events.publish("error", {"node": node.id, "flow": node.flow.name, "type": node.type,
                                      "message": text, "msgid": msgid})
        try:
            if isinstance(msg, dict) and self._route_error(node, err, text, msg):
                return
        except Exception:  # e.g. a message too deeply nested to copy for the catch node
            log.exception("could not route an error of node '%s' to catch nodes", node.id)
        self._log(logging.ERROR, node, text, msgid)
        if isinstance(msg, dict):
            self._fail_request(msg, text)

    def _fail_request(self, msg: dict[str, Any], text: str) -> None:
        """No catch node took the error of a message that carries an HTTP request's answer
        (``msg.res`` of http-in, which has ``fail``): answer 500 now instead of leaving the
        client waiting for the request timeout. The body is the error's text only when
        ``settings.http.error_details`` allows it (texts can tell internals)."""
        fail = getattr(msg.get("res"), "fail", None)
        if callable(fail) and self._http is not None:
            fail(text if self._http.error_details else None)

    def _route_error(self, node: Node, err: Any, text: str, msg: dict[str, Any]) -> bool:
        previous = msg.get("error")
        count = 1
        if isinstance(previous, dict):
            source = previous.get("source")
            if isinstance(source, dict) and source.get("id") == node.id:
                count = int(source.get("count", 0)) + 1
        if count >= ERROR_LOOP_LIMIT:
            self._log(logging.WARNING, node, "message stopped: it looped through a catch node "
                      f"{ERROR_LOOP_LIMIT - 1} times", msg.get("_msgid"))
            return False
        error: dict[str, Any] = {
            "message": text,
            "source": {**node.source_info(), "count": count},
        }
        if isinstance(err, BaseException):
            error["type"] = getattr(err, "error_type", None) or type(err).__name__
            # Node-RED copies err.code (a SQLSTATE, ECONNREFUSED...) and err.cause too.
            for extra in ("code", "cause"):
                value = getattr(err, extra, None)
                if value is not None:
                    error[extra] = value
            cause = err.__cause__ or err
            error["stack"] = "".join(traceback.format_exception(cause)).rstrip()
        # The catch nodes of the node's scope; then, if none handled it and the scope is a
        # subflow instance, those of the scope around it, hearing it from the instance.
        for scope, reporting in self._scopes(node):
            watchers = sorted((w for w in self._error_watchers if w.node.flow.name == scope.name
                               and w.node.state is RUNNING), key=lambda w: w.rank)
            handled = by_uncaught = False
            for watcher in _nearest(watchers, reporting):
                if watcher.uncaught and not by_uncaught:
                    if handled:
                        continue
                    by_uncaught = True
                out = clone_message(msg)
                if "error" in out:
                    out["_error"] = out.pop("error")
                out["error"] = clone_message(error)
                self.router.emit(watcher.node, out)
                handled = True
            if handled:
                return True
        return False

    def _scopes(self, node: Node, status: bool = False) -> Iterator[tuple[FlowInfo, Node]]:
        """The scopes an error (or status) of ``node`` may be handled in, with the node they
        hear it from: the node's own, then the flows holding its subflow instance, reported
        by the instance (not for statuses of a subflow that has a status output)."""
        scope, reporting = node.flow, node
        while True:
            yield scope, reporting
            if scope.instance is None or (status and scope.status_output):
                return
            instance = self.nodes.get(scope.instance)
            if instance is None or scope.parent is None:
                return
            scope, reporting = scope.parent, instance

    def set_status(self, node: Node, status: Any) -> None:
        """Record a node's status and pass it to status nodes and event subscribers."""
        if status is None:
            shown: dict[str, Any] = {}
        elif isinstance(status, dict):
            shown = dict(status)
            if "text" in shown and not isinstance(shown["text"], str):
                shown["text"] = _text(shown["text"])
        else:
            shown = {"text": _text(status)}
        node.last_status = shown
        self.events.publish("status", {"node": node.id, "flow": node.flow.name,
                                       "status": shown})
        if node._unheard_status or not self._status_watchers:
            return
        for scope, reporting in self._scopes(node, status=True):
            watchers = [w for w in self._status_watchers if w.node.flow.name == scope.name
                        and w.node is not node and w.node.state is RUNNING]
            heard = _nearest(watchers, reporting)
            for watcher in heard:
                status_msg = {**shown, "source": node.source_info()}
                self.router.emit(watcher.node, {"status": status_msg, "_msgid": new_msgid()})
            if heard:
                return

    def finish(self, node: Node, msg: dict[str, Any]) -> None:
        """A handler returned: complete ``msg`` unless the node reported an error on it."""
        if node._failed_msg is msg:
            node._failed_msg = None
            return
        self.complete(node, msg)

    def complete(self, node: Node, msg: dict[str, Any]) -> None:
        """``node`` finished ``msg``: complete nodes watching it send a copy with
        ``msg["complete"] = {"source": {...}}``."""
        for watcher in node._complete_nodes:
            if watcher.state is RUNNING:
                out = clone_message(msg)
                out["complete"] = {"source": node.source_info()}
                self.router.emit(watcher, out)

    # -- logging --------------------------------------------------------------------------------

    def log_node(self, node: Node, level: int, text: Any) -> None:
        """Log a line on behalf of a node (node.log/warn/debug)."""
        self._log(level, node, text if isinstance(text, str) else _text(text))

    def _log(self, level: int, node: Node, text: str, msgid: str | None = None) -> None:
        flow_log.log(level, text, extra={"flow": node.flow.name, "file": node.flow.file,
                                         "node": node.id, "msgid": msgid})
        if level >= logging.WARNING:
            self.events.publish("log", {"node": node.id, "flow": node.flow.name,
                                        "level": logging.getLevelName(level), "message": text})


def _watcher(node: Node, scope: Iterable[str] | str | None, uncaught: bool = False
             ) -> _Watcher:
    if scope == "group":
        return _Watcher(node, None, uncaught, group=True)
    if isinstance(scope, str):
        raise ValueError(f"a scope is None, 'group' or a list of node ids, not {scope!r}")
    return _Watcher(node, None if scope is None else frozenset(scope), uncaught)


def _nearest(watchers: Iterable[_Watcher], reporting: Node) -> list[_Watcher]:
    """The watchers that hear ``reporting``, the nearest (by group) first, keeping the given
    order among equals."""
    heard = [(d, w) for w in watchers if (d := w.distance(reporting)) is not None]
    heard.sort(key=lambda item: item[0])
    return [w for _d, w in heard]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _dependents(nodes: dict[str, NodeSpec], changed: set[str]) -> set[str]:
    """Nodes that refer to a changed config node restart with it."""
    from flowengine.loader.graph import _references

    found: set[str] = set()
    for spec in nodes.values():
        for _path, ref, kind, _wanted in _references(spec.node_class.schema, spec.config, ()):
            if kind == "x-config-ref" and ref in changed:
                found.add(spec.id)
    return found - changed


async def _call_bounded(call: Callable[[], Any], timeout: float, what: str,
                        node: Node | None = None, runtime: Runtime | None = None) -> None:
    """Run a sync or async close/cleanup with a timeout; report, never raise.

    An async close that overruns is cancelled but not awaited: one that ignores cancellation
    must not hold up the stop either. (A sync close cannot be interrupted.)
    """
    def report(level: int, message: str) -> None:
        if node is not None and runtime is not None:
            runtime._log(level, node, message)
        else:
            log.log(level, message)

    try:
        result = call()
        if not inspect.isawaitable(result):
            return
        task = asyncio.ensure_future(result)
        await asyncio.wait({task}, timeout=timeout)
        if not task.done():
            task.cancel()
            task.add_done_callback(_retrieve)
            report(logging.ERROR, f"{what} timed out after {timeout:g}s; continuing without it")
            return
        if task.cancelled():
            report(logging.WARNING, f"{what} was cancelled")
            return
        task.result()
    except Exception as exc:
        report(logging.ERROR, f"{what} failed: {error_text(exc)}")


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Collect the outcome of an abandoned close so asyncio does not warn about it."""
    if not task.cancelled():
        task.exception()
