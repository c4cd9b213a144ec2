"""``function``: run the flow author's Python code on each message (docs/design/function-node.md).

The code is the body of a function with ``msg``, ``node``, ``context``, ``flow``, ``global_`` and
``env`` in scope, and the ``asyncio`` module imported (the counterpart of the timers Node-RED puts
in a function's sandbox). It is compiled once at load; a syntax error is a load error pointing at
the flow file's line. Code without ``await`` compiles to a plain function and costs one call per
message; code with ``await`` becomes a coroutine and each message runs in its own task.
"""

from __future__ import annotations

import ast
import asyncio
import re
import signal
import textwrap
import threading
from collections.abc import Callable
from typing import Any

from flowengine import ConfigError, Node, NodeError
from flowengine import schema as s

ARGS = ("msg", "node", "context", "flow", "global_", "env")
SETUP_ARGS = ("node", "context", "flow", "global_", "env")
_CALLS_DONE = re.compile(r"\bnode\s*\.\s*done\s*\(")


class FunctionTimeout(BaseException):
    """The code ran longer than the node's ``timeout``.

    A ``BaseException`` so that an ``except Exception`` in the author's code cannot swallow it
    and keep a ``while True`` loop spinning.
    """


class FunctionAPI:
    """The ``node`` object inside the code: ``id``, ``name``, ``outputs``, ``send``, ``done``,
    ``warn``, ``error``, ``log``, ``debug``, ``status``."""

    # One of these is made per message, so it holds only what differs per message.
    __slots__ = ("_msg", "_node")
    _sending = True  # False in cleanup code, where sending is an error

    def __init__(self, node: FunctionNode, msg: dict[str, Any] | None = None):
        self._node = node
        self._msg = msg

    @property
    def id(self) -> str:
        return self._node.id

    @property
    def name(self) -> str:
        return self._node.name

    @property
    def outputs(self) -> int:
        return self._node._outputs

    def send(self, msgs: Any, clone: bool = True) -> None:
        """Send now (the message returned at the end is sent too). The first message is copied
        unless ``clone=False``, so the code may go on changing ``msg``."""
        if not self._sending:
            raise NodeError("cannot send from cleanup")
        if self._msg is not None:
            _stamp(msgs, self._msg.get("_msgid"))
        self._node.runtime.router.emit(self._node, msgs, self._msg, clone)

    def done(self) -> None:
        """Finish the current message (only when the code calls node.done() itself)."""
        if self._msg is not None:
            self._node.done(self._msg)

    def error(self, err: Any, msg: dict[str, Any] | None = None) -> None:
        """Report an error; with ``msg`` it goes to catch nodes."""
        self._node.error(err, msg)

    def warn(self, text: Any) -> None:
        self._node.warn(text)

    def log(self, text: Any) -> None:
        self._node.log(text)

    def debug(self, text: Any) -> None:
        self._node.debug(text)

    def status(self, status: Any) -> None:
        self._node.status(status)


class _CleanupAPI(FunctionAPI):
    """``node`` in cleanup code: everything but sending."""

    __slots__ = ()
    _sending = False


class FunctionNode(Node):
    type = "function"
    category = "function"
    description = ("Runs Python code on each message. The code is the body of a function with "
                   "msg, node, context, flow, global_ and env in scope; it may await. Return a "
                   "message (dict) for output 0, a list with one entry per output (a nested "
                   "list sends several messages on one output), or None for nothing.")
    example = textwrap.dedent("""\
        double:
          type: function
          outputs: 2
          code: |
            if not isinstance(msg.get("payload"), int):
                return [None, msg]
            msg["payload"] *= 2
            return msg
        """)
    schema = s.obj({
        "code": s.string(description="The function body; `await` is allowed."),
        "outputs": s.integer(1, "Number of outputs.", minimum=0),
        "timeout": s.duration(description="Fail a message whose code runs longer than this."),
        "setup": s.string(description="Runs once at start (Node-RED's On Start); may await."),
        "cleanup": s.string(description="Runs once at stop (Node-RED's On Stop); may await."),
    }, required=["code"])

    @classmethod
    def output_count(cls, config: Any) -> int:
        return int(config.get("outputs", 1))

    def configure(self, config: dict[str, Any]) -> None:
        self._outputs = self.output_count(config)
        self._filename = f"<function {self.id}>"
        self._fn, self._is_async = _compile(config["code"], ARGS, self._filename, "code")
        self._setup = _compile(config["setup"], SETUP_ARGS, f"<setup {self.id}>", "setup") \
            if config.get("setup") else None
        self._cleanup = _compile(config["cleanup"], SETUP_ARGS, f"<cleanup {self.id}>",
                                 "cleanup") if config.get("cleanup") else None
        self._timeout = config.get("timeout") or None
        # Code that calls node.done() finishes its messages itself (as in Node-RED).
        self.auto_done = not _CALLS_DONE.search(config["code"])  # type: ignore[misc]
        self._setup_error: str | None = None
        if self._is_async:
            self.on_input = self._run_async  # type: ignore[method-assign]
        elif self._timeout:
            self.on_input = self._run_sync_with_timeout  # type: ignore[method-assign]
        else:
            self.on_input = self._run_sync  # type: ignore[method-assign]

    async def on_start(self) -> None:
        self._scope = (self.context, self.flow_context, self.global_context, self.env)
        if self._setup is not None:
            fn, is_async = self._setup
            try:
                result = fn(FunctionAPI(self), *self._scope)
                if is_async:
                    await result
            except Exception as exc:
                self._setup_error = self._describe(exc, f"<setup {self.id}>", "setup")
                raise NodeError(self._setup_error) from exc

    async def on_close(self, removed: bool) -> None:
        if self._cleanup is not None:
            fn, is_async = self._cleanup
            result = fn(_CleanupAPI(self), *self._scope)
            if is_async:
                await result

    # -- per message ----------------------------------------------------------------------------

    def _run_sync(self, msg: dict[str, Any]) -> Any:
        if self._setup_error:
            raise NodeError(self._setup_error)
        # One API object per message, even for sync code: a callback the code schedules
        # (loop.call_later(1, node.send, ...), node.done() from a task) must act on *this*
        # message, not on whichever message the node handles when the callback runs.
        try:
            result = self._fn(msg, FunctionAPI(self, msg), *self._scope)
        except Exception as exc:
            raise self._error(exc) from exc
        return _stamped(result, msg)

    def _run_sync_with_timeout(self, msg: dict[str, Any]) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return self._run_sync(msg)
        # SIGALRM interrupts a sync loop (Node-RED's vm timeout). The outer handler also catches
        # an alarm that fires between the code's return and the timer being cleared.
        previous = signal.signal(signal.SIGALRM, _alarm)
        try:
            signal.setitimer(signal.ITIMER_REAL, self._timeout or 0)
            try:
                return self._run_sync(msg)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except FunctionTimeout as exc:
            timeout = self._timed_out().with_traceback(exc.__traceback__)
            raise self._error(timeout) from timeout
        finally:
            signal.signal(signal.SIGALRM, previous)

    async def _run_async(self, msg: dict[str, Any]) -> Any:
        if self._setup_error:
            raise NodeError(self._setup_error)
        api = FunctionAPI(self, msg)  # one per message: several may be in flight at once
        deadline = asyncio.timeout(self._timeout) if self._timeout else None
        try:
            if deadline is None:
                result = await self._fn(msg, api, *self._scope)
            else:
                async with deadline:
                    result = await self._fn(msg, api, *self._scope)
        except TimeoutError as exc:
            if deadline is None or not deadline.expired():
                raise self._error(exc) from exc  # the code's own timeout, not the node's
            # The cancellation raised inside the code says where it was waiting.
            cancelled = exc.__cause__ or exc.__context__
            timeout = self._timed_out().with_traceback(getattr(cancelled, "__traceback__", None))
            raise self._error(timeout) from timeout
        except Exception as exc:
            raise self._error(exc) from exc
        return _stamped(result, msg)

    def _error(self, exc: BaseException) -> NodeError:
        if isinstance(exc, NodeError):
            return exc
        err = NodeError(self._describe(exc, self._filename, "code"))
        err.error_type = type(exc).__name__
        # msg.error.stack shows the author's code, not the node's own frames.
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != self._filename:
            tb = tb.tb_next
        if tb is not None:
            exc.__traceback__ = tb
        return err

    def _timed_out(self) -> FunctionTimeout:
        return FunctionTimeout(f"the code ran longer than {self._timeout:g}s")

    def _describe(self, exc: BaseException, filename: str, what: str) -> str:
        """``NameError: name 'x' is not defined (node-id, line 3)``."""
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                line = tb.tb_lineno
            tb = tb.tb_next
        where = f"{self.id}, line {line}" if line else self.id
        if what != "code":
            where += f" {what}" if not line else f", in {what}"
        text = str(exc)
        return f"{type(exc).__name__}: {text} ({where})" if text else \
            f"{type(exc).__name__} ({where})"


def _alarm(signum: int, frame: Any) -> None:
    raise FunctionTimeout()


def _compile(code: str, args: tuple[str, ...], filename: str,
             field: str) -> tuple[Callable[..., Any], bool]:
    """Compile ``code`` as a function body; async if it awaits. Returns (function, is_async)."""
    body = textwrap.indent(code if code.strip() else "pass", "    ")
    source = f"async def __flow_function__({', '.join(args)}):\n{body}\n"
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        line = max((exc.lineno or 2) - 1, 1)
        raise ConfigError(f"SyntaxError: {exc.msg} (line {line} of the {field})", field,
                          line) from None
    function = tree.body[0]
    is_async = _awaits(function)
    if not is_async:
        function = ast.FunctionDef(**{k: getattr(function, k) for k in function._fields})
        tree.body[0] = ast.fix_missing_locations(ast.copy_location(function, tree.body[0]))
    # Number lines as the author does: line 1 is the first line of the code, not the wrapper.
    ast.increment_lineno(tree, -1)
    namespace: dict[str, Any] = {"__name__": f"flowengine.function.{filename}",
                                 "asyncio": asyncio}
    exec(compile(tree, filename, "exec"), namespace)
    return namespace["__flow_function__"], is_async


def _awaits(function: ast.AST) -> bool:
    """True if the body awaits (outside nested function definitions)."""
    stack = list(ast.iter_child_nodes(function))
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Await | ast.AsyncFor | ast.AsyncWith):
            return True
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        stack.extend(ast.iter_child_nodes(item))
    return False


def _stamped(result: Any, msg: dict[str, Any]) -> Any:
    """Messages a function returns carry the input's ``_msgid`` (Node-RED does the same)."""
    if result is msg:  # the common `return msg`: it has its id already
        return result
    if type(result) is dict:
        msgid = msg.get("_msgid")
        if msgid is not None:
            result["_msgid"] = msgid
        return result
    if result is not None:
        _stamp(result, msg.get("_msgid"))
    return result


def _stamp(value: Any, msgid: Any) -> None:
    if msgid is None:
        return
    if isinstance(value, dict):
        value["_msgid"] = msgid
    elif isinstance(value, list | tuple):
        for item in value:
            _stamp(item, msgid)

