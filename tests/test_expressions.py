"""JSONata glue (flowengine/expressions.py): comments anywhere, as jsonata-js parses them, and
messages holding objects JSON has no type for (msg.req, msg.res of http-in)."""

from __future__ import annotations

import pytest

from flowengine.expressions import Expression, ExpressionError


@pytest.mark.parametrize(("text", "expected"), [
    ("payload + 1 /* a comment at the end */", 4),
    ("/* first */ payload /* last */", 3),
    ("(\n  $x := payload; /* multi\n line */\n  $x * 2\n)", 6),
    ("payload & '/* not a comment */'", "3/* not a comment */"),
])
def test_comments_parse_anywhere_as_in_node_reds_jsonata(text: str, expected: object) -> None:
    assert Expression(text).evaluate({"payload": 3}) == expected


def test_unterminated_comment_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="no closing tag"):
        Expression("payload /* open")


def test_mapping_objects_in_the_message_are_read_as_objects() -> None:
    from collections.abc import Mapping

    class Req(Mapping):
        def __getitem__(self, key: str) -> object:
            return {"query": {"kind": "b"}, "hostname": "example"}[key]

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(("query", "hostname"))

        def __len__(self) -> int:
            return 2

    msg = {"payload": 1, "req": Req(), "res": object()}
    assert Expression("$$.req.query.kind & '@' & req.hostname").evaluate(msg) == "b@example"
    assert isinstance(msg["req"], Req)  # the message itself is not changed


@pytest.mark.parametrize(("text", "expected"), [
    ('$number("12")', 12), ('$number("-1.5e2")', -150), ('$number("0x1F")', 31),
    ('$number("0b101")', 5), ('$number(true)', 1), ("$number(2.5)", 2.5),
])
def test_number_converts_what_jsonata_js_converts(text: str, expected: object) -> None:
    assert Expression(text).evaluate({}) == expected


@pytest.mark.parametrize("value", ["abc", " 1", "inf", "1_000", "10e500", ""])
def test_number_refuses_what_jsonata_js_refuses(value: str) -> None:
    with pytest.raises(ExpressionError) as failed:
        Expression("$number(payload)").evaluate({"payload": value})
    assert failed.value.code == "D3030"
    # Node-RED's nodes word it so, the value as JSON.stringify writes it.
    assert str(failed.value) == (f"Invalid JSONata expression: Unable to cast value to a "
                                 f"number: \"{value}\"")
