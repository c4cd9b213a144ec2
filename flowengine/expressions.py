"""JSONata expressions with Node-RED's extra functions (``$flowContext``, ``$globalContext``,
``$env``), on the pure-Python ``jsonata-python`` implementation.

An expression is compiled once (at load time: a syntax error is a load error) and evaluated with
the message as input, as Node-RED does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jsonata

if TYPE_CHECKING:
    from flowengine.node import Node


class ExpressionError(ValueError):
    """A JSONata expression that does not compile or fails to evaluate."""


class Expression:
    """A compiled JSONata expression."""

    __slots__ = ("_compiled", "_node", "text")

    def __init__(self, text: str):
        self.text = text
        try:
            self._compiled = jsonata.Jsonata(text)
        except Exception as exc:  # jsonata raises its own JException
            raise ExpressionError(f"invalid JSONata expression {text!r}: {exc}") from None
        self._node: Node | None = None
        # The functions read the node of the current evaluation (evaluation is synchronous).
        self._compiled.register_lambda("flowContext", self._flow_get)
        self._compiled.register_lambda("globalContext", self._global_get)
        self._compiled.register_lambda("env", self._env_get)

    def evaluate(self, data: Any, node: Node | None = None,
                 bindings: dict[str, Any] | None = None) -> Any:
        """Evaluate against ``data`` (usually the message); ``node`` gives context and env."""
        self._node = node
        try:
            return self._compiled.evaluate(data, bindings)
        except ExpressionError:
            raise
        except Exception as exc:
            raise ExpressionError(f"JSONata expression {self.text!r} failed: {exc}") from None
        finally:
            self._node = None

    def _flow_get(self, key: str) -> Any:
        return self._node.flow_context.get(key) if self._node else None

    def _global_get(self, key: str) -> Any:
        return self._node.global_context.get(key) if self._node else None

    def _env_get(self, name: str) -> Any:
        if self._node is None:
            import os

            return os.environ.get(name, "")
        value = self._node.env.get(name)
        return "" if value is None else value
