"""``JSON.parse`` error messages as V8 (Node.js 22) words them, for the texts users see where
Node-RED shows them (a json node's error, a template's JSON output...).

Python's ``json`` module parses; when it refuses a text, :func:`v8_message` scans the text the
way V8's JSON parser does (``src/json/json-parser.cc``) to find where V8 stops and what it says:
``Unexpected token 'b', "[bad" is not valid JSON``, ``Expected property name or '}' in JSON at
position 1 (line 1 column 2)``, ``Unexpected end of JSON input``... Positions and columns count
UTF-16 code units, as JavaScript strings do; an unexpected character outside the BMP is shown
whole (V8 shows its first UTF-16 half, a lone surrogate no log or socket could carry).
"""

from __future__ import annotations

import json
from typing import Any

#: V8's context around an unexpected token in a long text (kMaxContextCharacters), and the
#: length from which it is given (kMinOriginalSourceLengthForContext).
_CONTEXT = 10
_MIN_LENGTH_FOR_CONTEXT = 2 * _CONTEXT + 1
_WHITESPACE = " \t\r\n"
_SPECIAL = ("[object Object]", "undefined", "Infinity", "NaN")
_SELF_ESCAPES = '"\\/bfnrt'
_HEX = "0123456789abcdefABCDEF"


class JSONParseError(ValueError):
    """A text ``JSON.parse`` refuses; ``str()`` is V8's message."""


def loads(text: str) -> Any:
    """``JSON.parse(text)``: ``json.loads`` without NaN and Infinity, raising
    :class:`JSONParseError` with V8's message."""
    try:
        return json.loads(text, parse_constant=_refuse)
    except ValueError:
        raise JSONParseError(v8_message(text)) from None


def _refuse(name: str) -> Any:
    raise ValueError(name)


def v8_message(text: str) -> str:
    """The message of the SyntaxError V8's ``JSON.parse(text)`` throws (the text must be
    invalid JSON; for valid JSON the result is meaningless)."""
    try:
        _Scanner(text).parse()
    except _Failure as failure:
        return failure.message
    return "Unexpected end of JSON input"


class _Failure(Exception):
    def __init__(self, message: str):
        self.message = message


class _Scanner:
    """V8's JSON grammar and error positions, without building values."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    # -- errors ---------------------------------------------------------------------------------

    def fail(self, what: str | None = None, kind: str = "illegal") -> None:
        """V8's ReportUnexpectedToken at the current position: ``what`` is an explicit
        message; otherwise the message depends on the token there (``kind``)."""
        text, pos = self.text, self.pos
        units = _utf16_length(text[:pos])
        line, column = _line_column(text, pos)
        where = f"at position {units} (line {line} column {column})"
        if what is not None:
            # "... after JSON at position N", else "... in JSON at position N"
            raise _Failure(f"{what} {where}" if what.endswith("JSON") else
                           f"{what} in JSON {where}")
        if kind == "eos" or pos >= len(text):
            raise _Failure("Unexpected end of JSON input")
        if kind == "number":
            raise _Failure(f"Unexpected number in JSON {where}")
        if kind == "string":
            raise _Failure(f"Unexpected string in JSON {where}")
        if text in _SPECIAL:
            raise _Failure(f'"{text}" is not valid JSON')
        token = text[pos]
        length = _utf16_length(text)
        if length < _MIN_LENGTH_FOR_CONTEXT:
            raise _Failure(f"Unexpected token '{token}', \"{text}\" is not valid JSON")
        if units < _CONTEXT:
            shown = _utf16_slice(text, 0, units + _CONTEXT)
            raise _Failure(f"Unexpected token '{token}', \"{shown}\"... is not valid JSON")
        if units < length - _CONTEXT:
            shown = _utf16_slice(text, units - _CONTEXT, units + _CONTEXT)
            raise _Failure(f"Unexpected token '{token}', ...\"{shown}\"... is not valid JSON")
        shown = _utf16_slice(text, units - _CONTEXT, length)
        raise _Failure(f"Unexpected token '{token}', ...\"{shown}\" is not valid JSON")

    def unexpected(self) -> None:
        """ReportUnexpectedCharacter: the message for the character (or end) here."""
        if self.pos >= len(self.text):
            self.fail(kind="eos")
        char = self.text[self.pos]
        kind = "number" if char == "-" or _is_digit(char) else \
            "string" if char == '"' else "illegal"
        self.fail(kind=kind)

    # -- grammar --------------------------------------------------------------------------------

    def skip(self) -> str:
        """Skip whitespace; the next character ("" at the end)."""
        text = self.text
        while self.pos < len(text) and text[self.pos] in _WHITESPACE:
            self.pos += 1
        return text[self.pos] if self.pos < len(text) else ""

    def expect(self, char: str, message: str) -> None:
        if self.skip() != char:
            self.fail(message)
        self.pos += 1

    def parse(self) -> None:
        self.value()
        if self.skip() != "":
            self.fail("Unexpected non-whitespace character after JSON")

    def value(self) -> None:
        char = self.skip()
        if char == '"':
            self.pos += 1
            self.string()
        elif char == "-" or _is_digit(char):
            self.number()
        elif char in ("t", "f", "n"):
            self.literal({"t": "true", "f": "false", "n": "null"}[char])
        elif char == "{":
            self.pos += 1
            self.object()
        elif char == "[":
            self.pos += 1
            self.array()
        else:
            self.unexpected()

    def object(self) -> None:
        if self.skip() == "}":
            self.pos += 1
            return
        message = "Expected property name or '}'"
        while True:
            self.expect('"', message)
            message = "Expected double-quoted property name"
            self.string()
            self.expect(":", "Expected ':' after property name")
            self.value()
            if self.skip() != ",":
                break
            self.pos += 1
        self.expect("}", "Expected ',' or '}' after property value")

    def array(self) -> None:
        if self.skip() == "]":
            self.pos += 1
            return
        while True:
            self.value()
            if self.skip() != ",":
                break
            self.pos += 1
        self.expect("]", "Expected ',' or ']' after array element")

    def literal(self, word: str) -> None:
        for expected in word:
            if self.pos >= len(self.text) or self.text[self.pos] != expected:
                self.unexpected()
            self.pos += 1

    def number(self) -> None:
        if self.peek() == "-":
            self.pos += 1
        if self.peek() == "0":
            self.pos += 1
            if _is_digit(self.peek()):
                self.fail(kind="number")
        else:
            start = self.pos
            self.digits()
            if self.pos == start:
                self.fail("No number after minus sign")
        if self.peek() == ".":
            self.pos += 1
            if not _is_digit(self.peek()):
                self.fail("Unterminated fractional number")
            self.digits()
        if self.peek() in ("e", "E"):
            self.pos += 1
            if self.peek() in ("+", "-"):
                self.pos += 1
            if not _is_digit(self.peek()):
                self.fail("Exponent part is missing a number")
            self.digits()

    def string(self) -> None:
        text = self.text
        while True:
            if self.pos >= len(text):
                self.fail("Unterminated string")
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return
            if char < " ":
                self.fail("Bad control character in string literal")
            if char == "\\":
                self.pos += 1
                escaped = self.peek()
                if escaped == "" or ord(escaped) > 0xFF:
                    self.unexpected()
                if escaped == "u":
                    for _ in range(4):
                        self.pos += 1
                        if self.peek() == "" or self.peek() not in _HEX:
                            self.fail("Bad Unicode escape")
                elif escaped not in _SELF_ESCAPES:
                    self.fail("Bad escaped character")
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def digits(self) -> None:
        while _is_digit(self.peek()):
            self.pos += 1


def _is_digit(char: str) -> bool:
    return char != "" and "0" <= char <= "9"


def _utf16_length(text: str) -> int:
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _utf16_slice(text: str, start: int, end: int) -> str:
    """``text.substring(start, end)`` in UTF-16 code units (a cut pair keeps its half)."""
    units = text.encode("utf-16-le", "surrogatepass")
    return units[2 * start:2 * end].decode("utf-16-le", "surrogatepass")


def _line_column(text: str, pos: int) -> tuple[int, int]:
    """V8's line and column of ``pos``: ``\\r\\n``, ``\\r`` and ``\\n`` end lines."""
    line, last_break, i = 1, 0, 0
    while i < pos:
        if text[i] == "\r" and i < pos - 1 and text[i + 1] == "\n":
            i += 1
        if text[i] in "\r\n":
            line += 1
            last_break = i + 1
        i += 1
    return line, 1 + _utf16_length(text[last_break:pos])
