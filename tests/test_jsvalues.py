"""Tests for flowengine.jsvalues: JS value semantics used by switch/change/template
(docs/reference/nodered-cases.md SW-04, SW-05, SW-07, SW-12, SW-13, SW-24, CH-14)."""

from __future__ import annotations

import math
import re

import pytest

from flowengine.jsvalues import (
    compile_js_regex,
    is_empty,
    is_not_empty,
    is_type,
    js_ge,
    js_gt,
    js_le,
    js_lt,
    js_replace,
    js_typeof,
    loose_eq,
    node_red_type,
    strict_eq,
    to_number,
    to_string,
)
from flowengine.paths import MISSING

NAN = float("nan")
INF = float("inf")

# --------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MISSING, "undefined"),
        (None, "object"),
        (True, "boolean"),
        (0, "number"),
        (1.5, "number"),
        (NAN, "number"),
        ("s", "string"),
        ([], "object"),
        ({}, "object"),
        (b"", "object"),
        (len, "function"),
        (object(), "object"),
    ],
)
def test_js_typeof(value: object, expected: str) -> None:
    assert js_typeof(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Hello", "string"),
        (999, "number"),
        (NAN, "number"),
        (True, "boolean"),
        ([1, 2, 3, "a", "b"], "array"),
        ((1,), "array"),
        (b"\x01", "buffer"),
        (bytearray(b"x"), "buffer"),
        ({"a": 1}, "object"),
        (None, "null"),
        (MISSING, "undefined"),
    ],
)
def test_node_red_type(value: object, expected: str) -> None:
    assert node_red_type(value) == expected


# SW-13 istype
@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        ("Hello", "string", True),
        (999, "number", True),
        (0, "number", True),
        (NAN, "number", False),
        (INF, "number", True),
        (True, "boolean", True),
        ([1, 2, 3, "a", "b"], "array", True),
        (b"Hello", "buffer", True),
        ({"a": 1, "b": "two"}, "object", True),
        ([], "object", False),
        (None, "object", False),
        (b"x", "object", False),
        ('{"a":1,"b":"b","c":true}', "json", True),
        ("Hello", "json", False),
        ("NaN", "json", False),  # JSON.parse rejects NaN although Python's json accepts it
        (123, "json", True),  # JSON.parse(String(123))
        ({"a": 1}, "json", False),  # "[object Object]"
        (MISSING, "json", False),
        (None, "null", True),
        (MISSING, "null", False),
        (MISSING, "undefined", True),
        (None, "undefined", False),
        ("1", "number", False),
        (1, "string", False),
    ],
)
def test_is_type_sw13(value: object, type_name: str, expected: bool) -> None:
    assert is_type(value, type_name) is expected


# --------------------------------------------------------------------------- String(v)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (MISSING, "undefined"),
        (1, "1"),
        (1.0, "1"),
        (-0.0, "0"),
        (0.5, "0.5"),
        (-2.5, "-2.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (123.456, "123.456"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e22, "1.5e+22"),
        (10**21, "1e+21"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (NAN, "NaN"),
        (INF, "Infinity"),
        (-INF, "-Infinity"),
        ("text", "text"),
        ([1, 2, 3], "1,2,3"),
        ([1, None, MISSING, "a"], "1,,,a"),
        ([1, [2, [3]], {}], "1,2,3,[object Object]"),
        ([], ""),
        ({"a": 1}, "[object Object]"),
        (b"abc", "abc"),
        (bytearray(b"hi"), "hi"),
        (b"\xff", "\ufffd"),
    ],
)
def test_to_string(value: object, expected: str) -> None:
    assert to_string(value) == expected


def test_to_string_cyclic_array() -> None:
    items: list[object] = [1]
    items.append(items)
    assert to_string(items) == "1,"


# --------------------------------------------------------------------------- Number(v)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", 0),
        ("   ", 0),
        (" 1 ", 1),
        ("\t\n1\u00a0", 1),
        ("1.0", 1),
        ("01", 1),
        ("1.5", 1.5),
        ("-1.5", -1.5),
        ("+2", 2),
        (".5", 0.5),
        ("5.", 5),
        ("1e3", 1000),
        ("0x10", 16),
        ("0X1f", 31),
        ("0o17", 15),
        ("0b101", 5),
        ("Infinity", INF),
        ("-Infinity", -INF),
        (True, 1),
        (False, 0),
        (None, 0),
        ([], 0),
        ([5], 5),
        (["7"], 7),
        (b"12", 12),
        (3, 3),
        (2.5, 2.5),
        (4.0, 4),
    ],
)
def test_to_number(value: object, expected: float) -> None:
    result = to_number(value)
    assert result == expected
    assert not isinstance(result, bool)


@pytest.mark.parametrize(
    "value",
    ["abc", "1a", "-0x10", "0x", "0xg", "inf", "nan", "1_0", "1 2", MISSING, {}, [1, 2], NAN],
)
def test_to_number_nan(value: object) -> None:
    assert math.isnan(to_number(value))


@pytest.mark.parametrize(
    ("value", "expected_type"),
    [("1", int), ("1.0", int), (True, int), (4.0, int), ("1.5", float), (NAN, float)],
)
def test_to_number_result_type(value: object, expected_type: type) -> None:
    assert type(to_number(value)) is expected_type


def test_to_number_keeps_negative_zero_sign() -> None:
    assert math.copysign(1.0, to_number("-0")) == -1.0


# --------------------------------------------------------------------------- equality


# SW-04: rule {t:"eq", v:"1", vt:"str"} -> out0 gets 1, "1", true
@pytest.mark.parametrize(
    ("payload", "expected"),
    [(1, True), ("1", True), ("01", False), (True, True), ("1.0", False)],
)
def test_loose_eq_sw04_string_rule(payload: object, expected: bool) -> None:
    assert loose_eq(payload, "1") is expected


# SW-05: rule {t:"eq", v:"1", vt:"num"} -> all five pass
@pytest.mark.parametrize("payload", ["1", " 1 ", "1.0", True, 1])
def test_loose_eq_sw05_number_rule(payload: object) -> None:
    assert loose_eq(payload, 1) is True


SHARED_LIST = [1]
SHARED_DICT = {"a": 1}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (None, MISSING, True),
        (MISSING, MISSING, True),
        (None, None, True),
        (None, 0, False),
        (MISSING, 0, False),
        (None, "", False),
        (None, False, False),
        (0, "", True),
        (0, "0", True),
        ("", "0", False),
        (False, "0", True),
        (False, "", True),
        (True, "1", True),
        (True, 2, False),
        (NAN, NAN, False),
        (0, -0.0, True),
        ([1, 2], "1,2", True),
        ([1], 1, True),
        ([], False, True),
        ([], "", True),
        ({"a": 1}, "[object Object]", True),
        (b"ab", "ab", True),
        ([1], [1], False),  # two distinct arrays
        (SHARED_LIST, SHARED_LIST, True),
        ({"a": 1}, {"a": 1}, False),
        (SHARED_DICT, SHARED_DICT, True),
        ("a", "a", True),
        ("a", "b", False),
        (1, 1.0, True),
    ],
)
def test_loose_eq(a: object, b: object, expected: bool) -> None:
    assert loose_eq(a, b) is expected
    assert loose_eq(b, a) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, 1.0, True),
        (1, "1", False),
        (True, 1, False),
        (None, MISSING, False),
        (None, None, True),
        (MISSING, MISSING, True),
        (NAN, NAN, False),
        ("x", "x", True),
        ([1], [1], False),
        (SHARED_LIST, SHARED_LIST, True),
    ],
)
def test_strict_eq(a: object, b: object, expected: bool) -> None:
    assert strict_eq(a, b) is expected


# --------------------------------------------------------------------------- relations


# SW-24: {t:"lt", v:"10", vt:"num"}
@pytest.mark.parametrize(
    ("payload", "expected"),
    [("9", True), ("10", False), ("abc", False), (None, True), ("", True)],
)
def test_js_lt_sw24(payload: object, expected: bool) -> None:
    assert js_lt(payload, 10) is expected


@pytest.mark.parametrize(
    ("a", "b", "lt", "le", "gt", "ge"),
    [
        (1, 2, True, True, False, False),
        (2, 2, False, True, False, True),
        ("a", "b", True, True, False, False),
        ("10", "9", True, True, False, False),  # two strings compare as text
        ("10", 9, False, False, True, True),  # a number involved: numeric
        (MISSING, 1, False, False, False, False),  # undefined -> NaN
        (NAN, NAN, False, False, False, False),
        (None, 0, False, True, False, True),  # null -> 0
        (True, 1, False, True, False, True),
        ([2], 3, True, True, False, False),  # [2] -> "2" -> 2
        ([2], "3", True, True, False, False),  # string comparison "2" < "3"
        ({}, 1, False, False, False, False),  # "[object Object]" -> NaN
        ("\uffff", "\U0001f600", False, False, True, True),  # UTF-16 code units
    ],
)
def test_relational(a: object, b: object, lt: bool, le: bool, gt: bool, ge: bool) -> None:
    assert (js_lt(a, b), js_le(a, b), js_gt(a, b), js_ge(a, b)) == (lt, le, gt, ge)


def _between(a: object, b: object, c: object) -> bool:
    # The switch node's btwn: (a >= b && a <= c) || (a <= b && a >= c)
    return (js_ge(a, b) and js_le(a, c)) or (js_le(a, b) and js_ge(a, c))


# SW-07: {t:"btwn", v:10, v2:5} (reversed, inclusive); "7" passes
@pytest.mark.parametrize(
    ("payload", "expected"),
    [(4, False), (5, True), (7, True), (10, True), (11, False), ("7", True)],
)
def test_between_sw07(payload: object, expected: bool) -> None:
    assert _between(payload, 10, 5) is expected


# --------------------------------------------------------------------------- empty


# SW-12
@pytest.mark.parametrize(
    ("value", "empty", "not_empty"),
    [
        ("", True, False),
        ([], True, False),
        (b"", True, False),
        (bytearray(), True, False),
        ({}, True, False),
        ("1", False, True),
        ([1], False, True),
        (b"\x00", False, True),
        ({"a": 1}, False, True),
        (None, False, False),
        (MISSING, False, False),
        (0, False, False),
        (5, False, False),
        (False, False, False),
        (True, False, False),
    ],
)
def test_empty_sw12(value: object, empty: bool, not_empty: bool) -> None:
    assert is_empty(value) is empty
    assert is_not_empty(value) is not_empty


# --------------------------------------------------------------------------- regex / replace


# CH-14
@pytest.mark.parametrize(
    ("text", "pattern", "replacement", "expected"),
    [
        (
            "Replace all numbers 12 and 14",
            r"\d+",
            "NUMBER",
            "Replace all numbers NUMBER and NUMBER",
        ),
        ("Hello World", "(Hello)", "$1-$1-$1", "Hello-Hello-Hello World"),
        ("a1 b2 c3", r"(\w)(\d)", "$2$1", "1a 2b 3c"),
        ("on", "on", "true", "true"),
        ("off", "off", "false", "false"),
        ("a this (hi)", r"\(.*\)", "[new]", "a this [new]"),  # CH-21 third rule
    ],
)
def test_js_replace_regex_ch14(text: str, pattern: str, replacement: str, expected: str) -> None:
    assert js_replace(text, pattern, replacement, regex=True) == expected


def test_invalid_regex_ch14() -> None:
    with pytest.raises(ValueError, match=r"Invalid regular expression /\\\+\*\*\+/"):
        compile_js_regex(r"\+**+")
    with pytest.raises(ValueError):
        js_replace("x", r"\+**+", "y", regex=True)


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        ("[$&]", "x[b]x[b]"),
        ("$$", "x$x$"),
        ("$", "x$x$"),
        ("$0", "x$0x$0"),  # $0 is not a group reference
        ("$1", "x$1x$1"),  # no groups in the pattern: literal
        ("$<n>", "x$<n>x$<n>"),  # no named groups: literal
        ("<$`|$'>", "x<x|xb>x<xbx|>"),
    ],
)
def test_js_replace_patterns_without_groups(replacement: str, expected: str) -> None:
    assert js_replace("xbxb", "b", replacement, regex=True) == expected


@pytest.mark.parametrize(
    ("pattern", "replacement", "expected"),
    [
        ("(a)(b)?", "[$2]", "[]c"),  # non-participating group -> ""
        ("(a)", "$10", "a0c"),  # $10 with one group is $1 then "0"
        ("(a)", "$01", "ac"),
        ("(?<first>a)", "<$<first>>", "<a>c"),
        ("(?<first>a)", "<$<nope>>", "<>c"),  # unknown name -> ""
        ("(?<first>a)", "$<first", "$<firstc"),  # unterminated -> literal
        (r"(?<ch>a)\k<ch>?", "$<ch>!", "a!c"),
        ("(a)", "\\1", "\\1c"),  # backslashes are literal in JS replacements
    ],
)
def test_js_replace_groups(pattern: str, replacement: str, expected: str) -> None:
    assert js_replace("ac", pattern, replacement, regex=True) == expected


@pytest.mark.parametrize(
    ("text", "pattern", "replacement", "expected"),
    [
        ("abcABCabc", "ABC", "123", "abc123abc"),  # CH-15: literal, case-sensitive
        ("a1b1", "1", "X", "aXbX"),  # CH-16: every occurrence
        ("1+1=2", "1+1", "two", "two=2"),  # regex metacharacters are literal
        ("a.b.c", ".", "$&$&", "a..b..c"),  # $& still works (Node-RED uses a RegExp)
        ("abc", "", "-", "-a-b-c-"),
    ],
)
def test_js_replace_literal(text: str, pattern: str, replacement: str, expected: str) -> None:
    assert js_replace(text, pattern, replacement, regex=False) == expected


def test_js_replace_ignore_case() -> None:
    assert js_replace("abcABC", "abc", "x", regex=False, ignore_case=True) == "xx"
    assert js_replace("oneTWOthree", "two", "2", regex=True, ignore_case=True) == "one2three"
    assert js_replace("oneTWOthree", "two", "2", regex=True) == "oneTWOthree"


def test_js_replace_converts_non_strings() -> None:
    assert js_replace(123, "2", 9, regex=False) == "193"
    assert js_replace("a", "a", True, regex=False) == "true"


# JS-vs-Python regex differences the translator smooths over
@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^\d+$", "\u0661\u0662", False),  # JS \d is ASCII only (Arabic-Indic digits do not match)
        (r"^\w+$", "é", False),  # JS \w is ASCII only
        (r"^[\d]+$", "\u0661", False),
        (r"^[\w]+$", "ab_9", True),
        (r"a$", "a\n", False),  # JS $ is end of input only
        (r"^.$", "\r", False),  # JS . excludes \r too
        (r"^[^]$", "\n", True),  # [^] matches anything
        (r"[]", "abc", False),  # [] matches nothing
        (r"^a{,2}$", "a{,2}", True),  # {,2} is literal in JS
        (r"^\/$", "/", True),  # identity escape
        (r"^\e$", "e", True),  # Annex B identity escape
        (r"^\cJ$", "\n", True),
        (r"^\x41\u0042$", "AB", True),
        (r"^a*?b$", "aab", True),  # lazy quantifier
        (r"^a??b$", "ab", True),
        (r"^[[]$", "[", True),
        (r"^[a&&b]$", "&", True),
        (r"x\b", "xé", True),  # \b is ASCII: é is not a word character in JS
        (r"é\b", "é", False),
    ],
)
def test_compile_js_regex_semantics(pattern: str, text: str, matches: bool) -> None:
    assert (compile_js_regex(pattern).search(text) is not None) is matches


def test_compile_js_regex_named_group_and_case() -> None:
    compiled = compile_js_regex("(?<word>héllo)", ignore_case=True)
    assert isinstance(compiled, re.Pattern)
    match = compiled.search("say HÉLLO")
    assert match is not None
    assert match.group("word") == "HÉLLO"


def test_compile_js_regex_lookbehind_still_works() -> None:
    assert compile_js_regex(r"(?<=a)b").search("ab") is not None
    assert compile_js_regex(r"(?<!a)b").search("ab") is None


@pytest.mark.parametrize(
    "pattern",
    [r"\+**+", "a**", "a++", "a*+", "a{2}{3}", "(?>a)", "(", "[a", "a\\", "*a", "(?<n>a)(?<n>b)"],
)
def test_compile_js_regex_invalid(pattern: str) -> None:
    with pytest.raises(ValueError) as info:
        compile_js_regex(pattern)
    assert f"/{pattern}/" in str(info.value)
