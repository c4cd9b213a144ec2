"""JSONata expressions with Node-RED's extra functions (``$flowContext``, ``$globalContext``,
``$env``), on the pure-Python ``jsonata-python`` implementation.

An expression is compiled once (at load time: a syntax error is a load error) and evaluated with
the message as input, as Node-RED does. Objects in the message that are mappings but not dicts
(``msg.req`` of http-in) are given to JSONata as dicts, so ``$$.req.query`` works as in Node-RED.

jsonata-python 0.7.1 fails on a ``/* comment */`` at the end of an expression (IndexError) and on
an unterminated one; :func:`_skip_space_and_comments` replaces its comment skipping (the narrowest
fix: the same scan, bounds-checked) until the library has it (tests/test_expressions.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jsonata
from jsonata import tokenizer as _tokenizer

if TYPE_CHECKING:
    from flowengine.node import Node


_original_next = _tokenizer.Tokenizer.next


def _skip_space_and_comments(self: _tokenizer.Tokenizer, prefix: bool) -> Any:
    """Tokenizer.next with JSONata's whitespace and ``/* */`` skipping done bounds-checked:
    a comment may end the expression; an unterminated one is error S0106, as in jsonata-js."""
    path, length = self.path, self.length
    while self.position < length:
        if path[self.position] in " \t\n\r":
            self.position += 1
        elif path.startswith("/*", self.position):
            end = path.find("*/", self.position + 2)
            if end < 0:
                raise jsonata.JException("S0106", self.position)
            self.position = end + 2
        else:
            break
    return _original_next(self, prefix)


_tokenizer.Tokenizer.next = _skip_space_and_comments  # type: ignore[method-assign]


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
        # Messages carry objects JSON has no type for (msg.res, bytes): JSONata sees them as
        # values it cannot navigate, as Node-RED's does, instead of refusing the whole input.
        self._compiled.set_validate_input(False)
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
            return self._compiled.evaluate(_plain(data), bindings)
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


def _plain(data: Any) -> Any:
    """``data`` with its top-level mapping objects (``msg.req``) as dicts, for JSONata, which
    reads only dicts; the message itself is not changed."""
    if type(data) is not dict:
        return data
    for value in data.values():
        if isinstance(value, Mapping) and type(value) is not dict:
            return {k: _as_dict(v) for k, v in data.items()}
    return data


def _as_dict(value: Any) -> Any:
    if isinstance(value, Mapping) and type(value) is not dict:
        return {k: _as_dict(v) for k, v in value.items()}
    return value
