"""JSON.parse's error messages, as V8 (Node.js 22.23, Node-RED 5's) words them: each case below
was recorded from ``JSON.parse`` in that Node.js. tests/nodered_diff/test_differential.py also
compares random texts with the real Node.js."""

from __future__ import annotations

import pytest

from flowengine.jsonerrors import JSONParseError, loads, v8_message

V8 = [
    ("{bad", "Expected property name or '}' in JSON at position 1 (line 1 column 2)"),
    ("[bad", "Unexpected token 'b', \"[bad\" is not valid JSON"),
    ("", "Unexpected end of JSON input"),
    (" \n ", "Unexpected end of JSON input"),
    ("abc", "Unexpected token 'a', \"abc\" is not valid JSON"),
    ("{", "Expected property name or '}' in JSON at position 1 (line 1 column 2)"),
    ("[1,", "Unexpected end of JSON input"),
    ("[1,]", "Unexpected token ']', \"[1,]\" is not valid JSON"),
    ('{"a":1,}', "Expected double-quoted property name in JSON at position 7 (line 1 column 8)"),
    ('{"a" 1}', "Expected ':' after property name in JSON at position 5 (line 1 column 6)"),
    ('{"a":}', "Unexpected token '}', \"{\"a\":}\" is not valid JSON"),
    ('"abc', "Unterminated string in JSON at position 4 (line 1 column 5)"),
    ("tru", "Unexpected end of JSON input"),
    ("1.", "Unterminated fractional number in JSON at position 2 (line 1 column 3)"),
    ("-", "No number after minus sign in JSON at position 1 (line 1 column 2)"),
    ("01", "Unexpected number in JSON at position 1 (line 1 column 2)"),
    ("1e+", "Exponent part is missing a number in JSON at position 3 (line 1 column 4)"),
    ("[1 2]", "Expected ',' or ']' after array element in JSON at position 3 (line 1 column 4)"),
    ('{"a":1}}', "Unexpected non-whitespace character after JSON at position 7 "
                 "(line 1 column 8)"),
    ('"a\\qb"', "Bad escaped character in JSON at position 3 (line 1 column 4)"),
    ('"\t"', "Bad control character in string literal in JSON at position 1 (line 1 column 2)"),
    ("NaN", '"NaN" is not valid JSON'),
    ('{"a":1\r\n,"b":x}', "Unexpected token 'x', \"{\"a\":1\r\n,\"b\":x}\" is not valid JSON"),
    ("x" * 40, "Unexpected token 'x', \"xxxxxxxxxx\"... is not valid JSON"),
    ('{"aaaaaaaaaaaaaaaaaaaaaa": bbbbbbbbbbbbbbbbbbbbbbbb}',
     "Unexpected token 'b', ...\"aaaaaaa\": bbbbbbbbbb\"... is not valid JSON"),
    ('["0123456789abcdef", x]', "Unexpected token 'x', ...\"9abcdef\", x]\" is not valid JSON"),
    ('{"a":1', "Expected ',' or '}' after property value in JSON at position 6 (line 1 column 7)"),
    ('"\\u12x"', "Bad Unicode escape in JSON at position 5 (line 1 column 6)"),
    ('"\\', "Unexpected end of JSON input"),
    ("é", "Unexpected token 'é', \"é\" is not valid JSON"),
    ('{"😀😀": y}', "Unexpected token 'y', \"{\"😀😀\": y}\" is not valid JSON"),
    # Positions and columns in UTF-16 code units; lines end at \r\n, \r or \n.
    ('["😀" 1]', "Expected ',' or ']' after array element in JSON at position 6 (line 1 column 7)"),
    ('\r\n{"a"\r\n1}', "Expected ':' after property name in JSON at position 8 (line 3 column 1)"),
    ("\n\n{bad", "Expected property name or '}' in JSON at position 3 (line 3 column 2)"),
    ('"' + "😀" * 12 + '" x', "Unexpected non-whitespace character after JSON at position 27 "
                             "(line 1 column 28)"),
]


@pytest.mark.parametrize(("text", "message"), V8)
def test_json_parse_error_messages_are_v8s(text: str, message: str) -> None:
    assert v8_message(text) == message
    with pytest.raises(JSONParseError) as failed:
        loads(text)
    assert str(failed.value) == message


def test_a_character_outside_the_bmp_is_shown_whole() -> None:
    # V8 shows its first UTF-16 half ('\ud83d'), which no UTF-8 log or socket can carry.
    assert v8_message("😀 x") == "Unexpected token '😀', \"😀 x\" is not valid JSON"


def test_loads_parses_what_json_parse_parses() -> None:
    assert loads(' {"a": [1, 2.5e3, "\\u00e9", true, null]} ') == {"a": [1, 2500.0, "é", True,
                                                                        None]}
    for constant in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(JSONParseError):
            loads(constant)
