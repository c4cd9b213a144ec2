"""JSONata expressions with Node-RED's extra functions (``$flowContext``, ``$globalContext``,
``$env``), on the pure-Python ``jsonata-python`` implementation.

An expression is compiled once (at load time: a syntax error is a load error) and evaluated with
the message as input, as Node-RED does. Objects in the message that are mappings but not dicts
(``msg.req`` of http-in) are given to JSONata as dicts, so ``$$.req.query`` works as in Node-RED.
An evaluation error reads as Node-RED's nodes word it (``Invalid JSONata expression: ...``) and
keeps JSONata's error code.

Two narrow fixes of jsonata-python 0.7.1, until the library has them (tests/test_expressions.py;
the JSONata conformance cases, tests/test_jsonata_conformance.py, list what else differs):

- it fails on a ``/* comment */`` at the end of an expression (IndexError) and on an
  unterminated one: :func:`_skip_space_and_comments` replaces its comment skipping (the same
  scan, bounds-checked);
- its ``$number`` takes what Python's ``float`` takes (``"inf"``, ``" 1 "``, ``"1_0"``) and fails
  on the rest with a Python error: :func:`_number` is jsonata-js's (error ``D3030``, "Unable to
  cast value to a number", for text that is not a JSON number or 0x/0o/0b integer).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jsonata
from jsonata import tokenizer as _tokenizer

from flowengine.errors import NodeError

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


_tokenizer.Tokenizer.next = _skip_space_and_comments

_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?")
# jsonata-js's test, ungrouped as it is: ^0x.. or 0o.. anywhere or 0b..$
_RADIX = re.compile(r"^(0[xX][0-9A-Fa-f]+)|(0[oO][0-7]+)|(0[bB][0-1]+)$")
_RADIX_BASES = {"x": 16, "o": 8, "b": 2}


def _number(arg: Any) -> Any:
    """jsonata-js's ``$number``."""
    if arg is None:
        return None
    if isinstance(arg, bool):
        return 1 if arg else 0
    if isinstance(arg, int | float):
        return arg
    if arg is jsonata.Utils.NULL_VALUE:
        raise jsonata.JException("T0410", -1)
    if isinstance(arg, str):
        if _DECIMAL.fullmatch(arg):
            number = float(arg)
            if math.isfinite(number):
                return int(number) if number.is_integer() and abs(number) < 2 ** 53 else number
        elif _RADIX.search(arg):
            base = _RADIX_BASES.get(arg[1:2].lower()) if len(arg) > 2 and arg[0] == "0" else None
            try:
                return int(arg[2:], base) if base else math.nan
            except ValueError:
                return math.nan  # JavaScript's Number() of a text that only contains one
    # jsonata-js words the value as JSON.stringify does.
    raise jsonata.JException("D3030", -1, json.dumps(arg, default=str))


jsonata.Jsonata.static_frame.lookup("number").method = _number


class ExpressionError(NodeError, ValueError):
    """A JSONata expression that does not compile or fails to evaluate; ``code`` is JSONata's
    error code (``S0201``, ``T2001``...) when the library gave one."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


def _code(exc: BaseException) -> str | None:
    code = getattr(exc, "error", None)  # jsonata-python's JException keeps its code there
    return code if isinstance(code, str) else None


class Expression:
    """A compiled JSONata expression."""

    __slots__ = ("_compiled", "_node", "text")

    def __init__(self, text: str):
        self.text = text
        try:
            self._compiled = jsonata.Jsonata(text)
        except Exception as exc:  # jsonata raises its own JException
            raise ExpressionError(f"invalid JSONata expression {text!r}: {exc}",
                                  _code(exc)) from None
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
            raise ExpressionError(f"Invalid JSONata expression: {exc}", _code(exc)) from None
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
