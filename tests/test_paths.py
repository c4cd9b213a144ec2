"""Tests for flowengine.paths: Node-RED property expressions (docs/reference/nodered-runtime.md §5,
CH-22 in docs/reference/nodered-cases.md)."""

from __future__ import annotations

import copy
import pickle

import pytest

from flowengine.paths import (
    MISSING,
    MsgRef,
    Path,
    PathError,
    delete_path,
    get_path,
    parse_path,
    set_path,
)

# --------------------------------------------------------------------------- MISSING


def test_missing_is_a_falsy_singleton_distinct_from_none() -> None:
    assert repr(MISSING) == "MISSING"
    assert not MISSING
    assert MISSING is not None
    assert type(MISSING)() is MISSING
    assert copy.deepcopy(MISSING) is MISSING
    assert copy.copy(MISSING) is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING


def test_path_error_is_a_value_error() -> None:
    assert issubclass(PathError, ValueError)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("expr", "segments"),
    [
        ("payload", ("payload",)),
        ("a.b.c", ("a", "b", "c")),
        ('a["b c"]', ("a", "b c")),
        ("a['b.c']", ("a", "b.c")),
        ("a[0]", ("a", 0)),
        ("a[12]", ("a", 12)),
        ("a[0][1]", ("a", 0, 1)),
        ("payload.items[0].name", ("payload", "items", 0, "name")),
        ("msg.payload", ("payload",)),
        ("msg.payload.x", ("payload", "x")),
        ("msg", ("msg",)),  # only stripped when followed by more
        ('msg["payload"]', ("msg", "payload")),  # only the exact prefix "msg." is stripped
        ("foo.0", ("foo", "0")),  # trailing numeric segment after a dot: string key
        ("foo[0]", ("foo", 0)),
        ("a.0.c", ("a", 0, "c")),  # numeric middle segment: array index (Node-RED)
        ("a.0[1]", ("a", "0", 1)),  # no numeric conversion before '['
        ('"a b"', ("a b",)),
        ("'x'.y", ("x", "y")),
        ("a.$b._c", ("a", "$b", "_c")),
        ("a.b-c", ("a", "b-c")),
        ('a["]"]', ("a", "]")),
        ("a[msg.topic]", ("a", MsgRef(("topic",)))),
        ("payload[msg.topic].x", ("payload", MsgRef(("topic",)), "x")),
        ("a[msg.b[0]]", ("a", MsgRef(("b", 0)))),
        ("a[msg.b[msg.c]].d", ("a", MsgRef(("b", MsgRef(("c",)))), "d")),
        ("a[msg['x']]", ("a", MsgRef(("msg", "x")))),
    ],
)
def test_parse_valid(expr: str, segments: tuple[object, ...]) -> None:
    assert parse_path(expr) == segments


def test_parse_segment_types() -> None:
    assert type(parse_path("foo.0")[1]) is str
    assert type(parse_path("foo[0]")[1]) is int
    assert type(parse_path("a.0.c")[1]) is int


def test_msgref_keeps_inner_source_but_compares_by_segments() -> None:
    ref = parse_path("a[msg.topic]")[1]
    assert isinstance(ref, MsgRef)
    assert ref.segments == ("topic",)
    assert ref.expr == "msg.topic"
    assert ref == MsgRef(("topic",))
    assert repr(ref) == "MsgRef(('topic',))"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "zero-length"),
        ("a[]", "unexpected ]"),
        (".a", "unexpected . at position 0"),
        ("a.", "unterminated"),
        ("a b", "unexpected ' '"),
        ("a[b]", "unexpected b"),
        ("[0]", "unexpected ["),
        ("a..b", "unexpected ."),
        ("a.-b", "unexpected -"),
        ('a[""]', "zero-length string"),
        ("a[0", "unterminated"),
        ("a['x'", "unexpected array expression"),
        ("a['x'b]", "unexpected array expression"),
        ("a[1a]", "unexpected array expression"),
        ("a[ 0]", "unexpected"),
        ('a"b"', 'unexpected "'),
        ("'a'b", "unexpected b"),
        ("a]", "unexpected ]"),
        ("a[msg]", "unexpected m"),
        ("a[msg.topic", "unmatched '['"),
        ("a[msg.]", "nested"),
        ("msg.", "unterminated"),
        ("a[", "unterminated"),
    ],
)
def test_parse_invalid(expr: str, fragment: str) -> None:
    with pytest.raises(PathError) as info:
        parse_path(expr)
    message = str(info.value)
    assert fragment in message
    assert repr(expr) in message  # the expression is quoted


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(PathError, match="not a string"):
        parse_path(5)  # type: ignore[arg-type]


def test_parse_is_cached() -> None:
    assert parse_path("cached.expr[3]") is parse_path("cached.expr[3]")


# --------------------------------------------------------------------------- Path basics


def test_path_attributes_and_equality() -> None:
    p = Path("msg.payload.a")
    assert p.expr == "msg.payload.a"
    assert p.segments == ("payload", "a")
    assert p == Path("payload.a")
    assert hash(p) == hash(Path("payload.a"))
    assert repr(p) == "Path('msg.payload.a')"


def test_path_invalid_expression_raises() -> None:
    with pytest.raises(PathError):
        Path("a b")


# --------------------------------------------------------------------------- get

DATA = {
    "payload": {"items": [{"name": "first"}, {"name": "second"}], "n": None},
    "topic": "items",
    "idx": 1,
    "sidx": "1",
    "flag": True,
    "text": "abc",
    "buf": b"\x01\x02",
    "tup": (10, 20),
    "weird": {"b c": 1, "b.c": 2, "0": "zero"},
    "intkeys": {5: "five"},
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("payload", DATA["payload"]),
        ("msg.topic", "items"),
        ("payload.items[0].name", "first"),
        ("payload.items.1.name", "second"),  # middle numeric after a dot indexes
        ("payload.items[1].name", "second"),
        ("payload['items'][0]['name']", "first"),
        ("payload.items.length", 2),
        ("text.length", 3),
        ("buf.length", 2),
        ("tup.length", 2),
        ("tup[1]", 20),
        ("text[1]", "b"),  # JS "abc"[1]
        ("buf[0]", 1),  # Buffer index gives a byte value
        ('weird["b c"]', 1),
        ("weird['b.c']", 2),
        ("weird.0", "zero"),
        ("weird[0]", "zero"),  # JS obj[0] is obj["0"]
        ("intkeys[5]", "five"),  # Python int keys still found
        ("intkeys.5", "five"),
        ("payload.n", None),
        ("payload[msg.topic][0].name", "first"),
        ("payload.items[msg.idx].name", "second"),
        ("payload.items[msg.sidx].name", "second"),
    ],
)
def test_get_present(expr: str, expected: object) -> None:
    assert Path(expr).get(DATA) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "nothing",
        "payload.nothing",
        "payload.items[5]",
        "payload.items[2].name",  # child of a missing element
        "payload.items.x",  # named property of an array
        "payload.n.x",  # child of null
        "text.foo",  # property of a primitive
        "text[10]",
        "flag.length",
        "idx.x",
        "payload.items.01",  # "01" is not a canonical array index
        "payload[msg.nope]",  # undefined nested reference
        "nothing.deeper.still",
    ],
)
def test_get_missing_returns_missing(expr: str) -> None:
    assert Path(expr).get(DATA) is MISSING


def test_get_leaf_missing_strict_returns_missing() -> None:
    assert Path("payload.nothing").get(DATA, strict=True) is MISSING
    assert Path("text.foo").get(DATA, strict=True) is MISSING  # primitive parent: undefined


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("nothing.deeper", "of undefined"),
        ("payload.n.x", "of null"),
        ("payload.items[5].name", "of undefined"),
        ("payload[msg.nope]", "undefined reference"),
    ],
)
def test_get_strict_raises_for_missing_parent(expr: str, fragment: str) -> None:
    with pytest.raises(PathError) as info:
        Path(expr).get(DATA, strict=True)
    assert fragment in str(info.value)
    assert repr(expr) in str(info.value)


def test_get_on_non_container_root() -> None:
    assert Path("payload").get(None) is MISSING
    assert Path("payload").get("str") is MISSING
    assert Path("length").get("str") == 3


def test_get_uses_separate_msg_for_references() -> None:
    obj = {"lookup": {"a": 1, "b": 2}}
    msg = {"topic": "b"}
    assert Path("lookup[msg.topic]").get(obj, msg) == 2
    assert Path("lookup[msg.topic]").get(obj) is MISSING


@pytest.mark.parametrize(
    ("topic", "expected"),
    [(True, "T"), (None, "N"), (1.0, "one"), (2.5, "frac")],
)
def test_get_reference_values_become_js_keys(topic: object, expected: str) -> None:
    msg = {"topic": topic, "payload": {"true": "T", "null": "N", "1": "one", "2.5": "frac"}}
    assert Path("payload[msg.topic]").get(msg) == expected


def test_get_negative_reference_does_not_index_from_end() -> None:
    msg = {"i": -1, "payload": [1, 2, 3]}
    assert Path("payload[msg.i]").get(msg) is MISSING


def test_get_fast_path_for_plain_key() -> None:
    msg = {"payload": 5}
    p = Path("payload")
    assert p.get(msg) == 5
    assert p.get({}) is MISSING
    assert p.get({"payload": None}) is None


# --------------------------------------------------------------------------- set


def test_set_creates_parents_ch03() -> None:
    msg: dict[str, object] = {}
    assert Path("foo.bar").set(msg, "bar") is True
    assert msg == {"foo": {"bar": "bar"}}


def test_set_existing_nested() -> None:
    msg = {"foo": {"bar": "foo", "keep": 1}}
    assert set_path(msg, "foo.bar", "bar") is True
    assert msg == {"foo": {"bar": "bar", "keep": 1}}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("foo.0", {"foo": {"0": "x"}}),  # CH-22: trailing numeric after dot -> key
        ("foo[0]", {"foo": ["x"]}),  # CH-22: bracket index -> array
        ("foo[2]", {"foo": [None, None, "x"]}),  # holes padded with null
        ("a.0.c", {"a": [{"c": "x"}]}),  # middle numeric -> array index
        ("a[0].b[1]", {"a": [{"b": [None, "x"]}]}),
        ("a['b.c'].d", {"a": {"b.c": {"d": "x"}}}),
        ("msg.payload", {"payload": "x"}),
    ],
)
def test_set_on_empty_object(expr: str, expected: dict[str, object]) -> None:
    msg: dict[str, object] = {}
    assert Path(expr).set(msg, "x") is True
    assert msg == expected


def test_set_under_primitive_does_nothing_ch22() -> None:
    msg = {"payload": "str"}
    assert Path("payload.a").set(msg, 1) is False
    assert msg == {"payload": "str"}


@pytest.mark.parametrize(
    ("msg", "expr"),
    [
        ({"payload": 5}, "payload.a.b"),
        ({"payload": None}, "payload.a"),
        ({"payload": True}, "payload.a"),
        ({"payload": (1, 2)}, "payload[0]"),  # tuples are immutable
        ({"payload": b"ab"}, "payload[0]"),
        ({"payload": [1]}, "payload.name"),  # named property on an array
        ({"payload": "abc"}, "payload.length"),
        ({"lookup": {}}, "lookup[msg.missing]"),  # undefined reference
    ],
)
def test_set_refused(msg: dict[str, object], expr: str) -> None:
    before = copy.deepcopy(msg)
    assert Path(expr).set(msg, "x") is False
    assert msg == before


def test_set_on_primitive_root() -> None:
    assert Path("a").set("text", 1) is False
    assert Path("a.b").set(None, 1) is False


def test_set_list_elements() -> None:
    msg = {"payload": [1, 2, 3]}
    assert set_path(msg, "payload[1]", "b") is True
    assert set_path(msg, "payload.2", "c") is True  # "2" indexes the array
    assert msg == {"payload": [1, "b", "c"]}


def test_set_int_key_on_dict_uses_js_string_key() -> None:
    msg: dict[object, object] = {"o": {}}
    assert set_path(msg, "o[3]", "x") is True
    assert msg == {"o": {"3": "x"}}
    existing: dict[object, object] = {"o": {3: "old"}}
    assert set_path(existing, "o[3]", "new") is True
    assert existing == {"o": {3: "new"}}


def test_set_with_nested_reference_ch10() -> None:
    msg = {"lookup": {"a": 1, "b": 2}, "topic": "b", "payload": "newValue"}
    assert Path("lookup[msg.topic]").set(msg, msg["payload"]) is True
    assert msg["lookup"] == {"a": 1, "b": "newValue"}


def test_set_reference_with_separate_msg_and_numeric_value() -> None:
    target: dict[str, object] = {}
    assert Path("arr[msg.i].v").set(target, 1, {"i": 1}) is True
    assert target == {"arr": [None, {"v": 1}]}


def test_set_missing_deletes() -> None:
    msg = {"payload": 1, "a": {"b": 2}}
    assert Path("payload").set(msg, MISSING) is True
    assert Path("a.b").set(msg, MISSING) is True
    assert msg == {"a": {}}


def test_set_keeps_reference_not_copy() -> None:
    value = {"deep": [1]}
    msg: dict[str, object] = {}
    set_path(msg, "a.b", value)
    assert get_path(msg, "a.b") is value


# --------------------------------------------------------------------------- delete


def test_delete_ch18() -> None:
    msg = {"payload": 1, "foo": {"bar": 2, "keep": 3}}
    assert delete_path(msg, "payload") is True
    assert delete_path(msg, "foo.bar") is True
    assert msg == {"foo": {"keep": 3}}


@pytest.mark.parametrize(
    "expr",
    ["nothing", "foo.nothing", "nothing.bar", "foo.keep.x", "arr[5]", "arr.x", "foo[msg.none]"],
)
def test_delete_missing_returns_false(expr: str) -> None:
    msg = {"foo": {"keep": 3}, "arr": [1]}
    before = copy.deepcopy(msg)
    assert delete_path(msg, expr) is False
    assert msg == before


def test_delete_array_element_splices() -> None:
    msg = {"arr": [1, 2, 3]}
    assert delete_path(msg, "arr[1]") is True
    assert msg == {"arr": [1, 3]}


def test_delete_with_reference_and_msg() -> None:
    obj = {"lookup": {"a": 1, "b": 2}}
    assert Path("lookup[msg.k]").delete(obj, {"k": "a"}) is True
    assert obj == {"lookup": {"b": 2}}


def test_delete_int_key_on_dict() -> None:
    msg = {"o": {"0": "zero", "1": "one"}}
    assert delete_path(msg, "o[0]") is True
    assert msg == {"o": {"1": "one"}}


# --------------------------------------------------------------------------- convenience


def test_get_path_default() -> None:
    msg = {"a": {"b": None}}
    assert get_path(msg, "a.b") is None
    assert get_path(msg, "a.c") is MISSING
    assert get_path(msg, "a.c", default=7) == 7
    assert get_path(msg, "x.y.z", default="d") == "d"


def test_convenience_functions_validate_expression() -> None:
    with pytest.raises(PathError):
        get_path({}, "a[]")
    with pytest.raises(PathError):
        set_path({}, ".a", 1)
    with pytest.raises(PathError):
        delete_path({}, "")
