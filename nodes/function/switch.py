"""``switch``: route a message to the outputs whose rules match a property (Node-RED's switch).

Every rule of Node-RED's switch node is here, with the same JavaScript comparison semantics
(``jsvalues``: ``==``, ``<``, ``String(v)``...). The one change is typing: in YAML a comparand's
type is what the YAML says (``eq: 1`` is a number, ``eq: "1"`` a string), where Node-RED guesses
"number if ``Number(v)`` is not NaN".

Sequences (messages with ``msg.parts``, from split): the rules ``head``, ``tail`` and ``index``
test a message's place in its sequence, and ``jsonata_exp`` sees it as ``$I`` and ``$N``. With
``repair`` (Node-RED's "recreate message sequences"), or a ``tail`` rule, the parts of a
sequence are held until it is complete; with ``repair`` each output then gets the parts it
matched as a sequence of their own (new ``parts.id``, ``index`` and ``count``).

Rules are compiled at load time into small test functions, ``test(prop, msg) -> bool``, so that
a message costs one property read and one call per rule (cases SW-01..SW-24, SW-31 of
``docs/reference/nodered-cases.md``).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from flowengine import (
    MISSING,
    ConfigError,
    Node,
    NodeError,
    clone_message,
    compile_path,
    compile_value,
    is_reference,
    new_msgid,
)
from flowengine import schema as s
from flowengine.js import (
    compile_js_regex,
    is_empty,
    is_not_empty,
    is_type,
    js_ge,
    js_gt,
    js_le,
    js_lt,
    loose_eq,
    to_number,
    to_string,
)
from flowengine.jsonata import Expression, ExpressionError

# A compiled rule: does the property (first argument) of this message (second) match?
Test = Callable[[Any, dict[str, Any]], bool]
# A comparand, read for each message.
Operand = Callable[[dict[str, Any]], Any]

BARE_RULES = ("true", "false", "null", "nnull", "empty", "nempty", "else")
COMPARE_RULES = {"eq": None, "neq": None, "lt": js_lt, "lte": js_le, "gt": js_gt, "gte": js_ge}
VALUE_RULES = (*COMPARE_RULES, "cont", "hask")
TYPES = ("string", "number", "boolean", "array", "buffer", "object", "json", "null", "undefined")
SEQUENCE_RULES = ("head", "tail", "index")
OPERATORS = (*VALUE_RULES, "btwn", "regex", "istype", "jsonata_exp", *SEQUENCE_RULES)
#: Node-RED's text (switch.errors.too-many).
TOO_MANY = "Too many pending messages in switch node"

_FAST_EQ_TYPES = (str, int, float)  # same-type == is plain Python == for these
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


class _Else:
    """Marker for the ``else`` rule, which depends on the rules before it, not on the value."""


ELSE = _Else()

_rule_value = s.value(description="A literal, a value reference, or {prev: true}: the "
                                  "property's value in the previous message.")
RULE_SCHEMA: s.Schema = {
    "anyOf": [
        {"enum": [*BARE_RULES, True, False, None],
         "description": "A rule without a value: true, false, null, nnull, empty, nempty, else."},
        s.obj({
            **{op: _rule_value for op in VALUE_RULES},
            "btwn": {"type": "array", "minItems": 2, "maxItems": 2, "items": _rule_value,
                     "description": "[low, high], inclusive, either order."},
            "regex": s.string(description="A JavaScript regular expression."),
            "ignore_case": s.boolean(description="Match `regex` case-insensitively."),
            "istype": {"enum": [*TYPES, None], "description": "One of " + ", ".join(TYPES)},
            "jsonata_exp": s.string(description="Matches when the expression gives true; in a "
                                                "sequence $I is msg.parts.index, $N its count."),
            "head": _rule_value | {"description": "The first N messages of a sequence."},
            "tail": _rule_value | {"description": "The last N messages of a sequence."},
            "index": {"type": "array", "minItems": 2, "maxItems": 2, "items": _rule_value,
                      "description": "[first, last]: the messages of a sequence at these "
                                     "indexes (from 0, inclusive)."},
        }, description="One operator and its value."),
    ],
}


class SwitchNode(Node):
    type = "switch"
    category = "function"
    # Node-RED 5's switch takes its input with a one-argument handler: it never calls done,
    # so complete nodes never fire for it (checked with the differential test).
    auto_done = False
    description = ("Routes each message by the value of a property (default msg.payload): one "
                   "output per rule, in order; the message goes to every output whose rule "
                   "matches (or only the first, with checkall: false). Rules compare with "
                   "JavaScript semantics as Node-RED does: eq, neq, lt, lte, gt, gte, btwn, "
                   "cont, regex, true, false, null, nnull, empty, nempty, istype, hask, "
                   "jsonata_exp, and else (no rule matched since the previous else).")
    example = textwrap.dedent("""\
        route:
          type: switch
          property: payload.id
          rules:
            - eq: start
            - regex: "^view"
              ignore_case: true
            - else
          wires: [[start], [view], [unknown]]
        """)
    schema = s.obj({
        "property": {"anyOf": [s.path(), {"type": "object"}], "default": "payload",
                     "description": "What to test: a message path, or a value reference "
                                    "({flow: key}, {global: key}, {env: NAME}, {jsonata: expr})."},
        "rules": {"type": "array", "items": RULE_SCHEMA, "default": [],
                  "description": "The rules, one output each, in order."},
        "checkall": s.boolean(True, "Check every rule; false stops at the first match."),
        "repair": s.boolean(False, "Recreate message sequences: hold the parts of a sequence "
                                   "until it is complete, then send each output the parts it "
                                   "matched as a sequence of its own."),
        "max_queue": s.integer(10000, "Messages of incomplete sequences held at most; more is "
                                      "a catchable error and drops what is held.", minimum=1),
    })

    @classmethod
    def output_count(cls, config: Mapping[str, Any]) -> int:
        return len(config.get("rules") or [])

    def configure(self, config: dict[str, Any]) -> None:
        self._read_property = _compile_property(config["property"])
        self._checkall = bool(config["checkall"])
        self._previous: Any = None  # Node-RED starts "previous value" at null
        self._tests: list[Test | _Else] = [
            self._compile_rule(rule, f"rules[{i}]") for i, rule in enumerate(config["rules"])
        ]
        self._repair = bool(config["repair"])
        # Sequences are held until complete to repair them, or to know their count (tail).
        self._hold = self._repair or any(isinstance(r, dict) and "tail" in r
                                         for r in config["rules"])
        self._max_queue = config["max_queue"]
        self._held: dict[Any, tuple[list[dict[str, Any]], list[Any]]] = {}  # id -> msgs, count
        self._matched: dict[Any, list[list[dict[str, Any] | None]]] = {}  # id -> per message
        self._held_count = 0

    def on_input(self, msg: dict[str, Any]) -> Any:
        if self._hold and _in_sequence(msg):
            self._hold_part(msg)
            return None
        return self._route(msg)

    def on_close(self, removed: bool) -> None:
        self._held.clear()
        self._matched.clear()
        self._held_count = 0

    # -- sequences ------------------------------------------------------------------------------

    def _hold_part(self, msg: dict[str, Any]) -> None:
        parts = msg["parts"]
        msgs, count = self._held.setdefault(parts["id"], ([], [None]))
        msgs.append(msg)
        self._held_count += 1
        if self._held_count > self._max_queue:
            self.on_close(False)
            self.error(NodeError(TOO_MANY), msg)
            return
        if "count" in parts:
            count[0] = parts["count"]
        if count[0] != len(msgs):
            return
        del self._held[parts["id"]]
        self._held_count -= len(msgs)
        for part in msgs:  # the complete sequence, each part knowing the count
            part["parts"]["count"] = count[0]
            try:
                onward = self._route(part)
            except Exception as exc:  # Node-RED stops draining the sequence at an error
                self.error(exc, part)
                return
            if onward is not None:
                self.send(onward)

    def _repaired(self, onward: list[dict[str, Any] | None], msg: dict[str, Any]) -> None:
        """Hold what a part of a sequence matched; once every part is in, send each output
        its matches as a sequence of their own."""
        parts = msg["parts"]
        matched = self._matched.setdefault(parts["id"], [])
        matched.append(onward)
        if len(matched) != parts.get("count"):
            return
        del self._matched[parts["id"]]
        ports = len(onward)
        counts = [sum(1 for row in matched if row[j] is not None) for j in range(ports)]
        ids = [new_msgid() for _ in range(ports)]
        indexes = [0] * ports
        for row in matched:
            out: list[dict[str, Any] | None] = [None] * ports
            for j, sent in enumerate(row):
                if sent is not None:
                    copy = clone_message(sent)
                    copy["parts"].update(id=ids[j], index=indexes[j], count=counts[j])
                    indexes[j] += 1
                    out[j] = copy
            self.send(out)

    # -- routing --------------------------------------------------------------------------------

    def _route(self, msg: dict[str, Any]) -> Any:
        """The outputs of one message (sent as the handler's result), or None."""
        try:
            prop = self._read_property(self, msg)
        except ExpressionError as exc:
            # Node-RED: switch.errors.invalid-expr is a warning and the message is dropped.
            self.warn(f"invalid property expression: {exc}")
            return None
        checkall = self._checkall
        onward: list[dict[str, Any] | None] | None = None
        hits = 0
        else_open = True  # no rule has matched since the start or the previous else
        try:
            for index, test in enumerate(self._tests):
                if test is ELSE:
                    hit = else_open
                    else_open = True
                else:
                    hit = test(prop, msg)  # type: ignore[operator]
                if not hit:
                    continue
                else_open = False
                if onward is None:
                    onward = [None] * len(self._tests)
                onward[index] = msg
                hits += 1
                if not checkall:
                    break
        except ExpressionError as exc:
            self.error(exc, msg)  # a JSONata comparand failed: node.error in Node-RED too
            return None
        self._previous = prop
        if self._repair and _in_sequence(msg):
            self._repaired(onward or [None] * len(self._tests), msg)
            return None
        if onward is None:
            return None
        if hits == 1 and onward[0] is msg:
            return msg  # the router's fast path for output 0
        return onward

    # -- compiling rules -------------------------------------------------------------------

    def _compile_rule(self, rule: Any, field: str) -> Test | _Else:
        if not isinstance(rule, dict):
            return _bare_rule(rule, field)
        operators = [k for k in rule if k in OPERATORS]
        extra = [k for k in rule if k not in OPERATORS and k != "ignore_case"]
        if len(operators) != 1 or extra:
            raise ConfigError("a rule has exactly one operator (" + ", ".join(OPERATORS)
                              + f"), got {', '.join(map(str, rule)) or 'none'}", field)
        op = operators[0]
        arg = rule[op]
        where = f"{field}.{op}"
        if "ignore_case" in rule and op != "regex":
            raise ConfigError("ignore_case applies to regex rules only", f"{field}.ignore_case")
        if op == "regex":
            return _regex_rule(arg, bool(rule.get("ignore_case")), where)
        if op == "istype":
            type_name = "null" if arg is None else arg
            return lambda p, m: _is_type(p, type_name)
        if op == "jsonata_exp":
            expression = _expression(arg, where)
            return lambda p, m: expression.evaluate(m, self, _sequence_bindings(m)) is True
        if op in ("head", "tail"):
            count = self._operand(arg, where)
            return _head(count) if op == "head" else _tail(count)
        if op == "index":
            first = self._operand(arg[0], f"{where}[0]")
            last = self._operand(arg[1], f"{where}[1]")
            return lambda p, m: (to_number(first(m)) <= _parts(m)["index"]
                                 <= to_number(last(m)))
        if op == "btwn":
            low = self._operand(arg[0], f"{where}[0]")
            high = self._operand(arg[1], f"{where}[1]")
            return lambda p, m: _between(p, low(m), high(m))
        return self._value_rule(op, arg, where)

    def _value_rule(self, op: str, arg: Any, where: str) -> Test:
        operand = self._operand(arg, where)
        constant = getattr(operand, "constant", MISSING)
        if op in ("eq", "neq") and constant is not MISSING:
            # The hot path: equality with a literal. Same-type str/number compare as Python ==.
            ctype = type(constant)
            if ctype in _FAST_EQ_TYPES:
                def eq(p: Any, m: dict[str, Any]) -> bool:
                    return p == constant if type(p) is ctype else loose_eq(p, constant)
            else:
                def eq(p: Any, m: dict[str, Any]) -> bool:
                    return loose_eq(p, constant)
            if op == "eq":
                return eq
            return lambda p, m: not eq(p, m)
        if op == "eq":
            return lambda p, m: loose_eq(p, operand(m))
        if op == "neq":
            return lambda p, m: not loose_eq(p, operand(m))
        if op == "cont":
            return lambda p, m: to_string(operand(m)) in to_string(p)
        if op == "hask":
            return lambda p, m: has_key(p, operand(m))
        compare = COMPARE_RULES[op]
        assert compare is not None
        return lambda p, m: compare(p, operand(m))

    def _operand(self, spec: Any, field: str) -> Operand:
        """A comparand: ``{prev: true}``, or any value (literal or reference)."""
        if isinstance(spec, dict) and len(spec) == 1 and "prev" in spec:
            if spec["prev"] is not True:
                raise ConfigError("write {prev: true} for the previous value", f"{field}.prev")
            return lambda m: self._previous
        value = compile_value(spec, field)
        if value.constant:
            constant = value.evaluate(None, {})  # one copy, never handed out: no clone per use

            def literal(m: dict[str, Any]) -> Any:
                return constant
            literal.constant = constant  # type: ignore[attr-defined]
            return literal
        return lambda m: value.evaluate(self, m)


# -- operators (Node-RED's `operators` table) ----------------------------------------------------

def _in_sequence(msg: dict[str, Any]) -> bool:
    parts = msg.get("parts")
    return isinstance(parts, dict) and "id" in parts and "index" in parts


def _parts(msg: dict[str, Any]) -> dict[str, Any]:
    parts = msg.get("parts")
    if not isinstance(parts, dict):  # as Node-RED's `msg.parts.index` fails
        raise NodeError("TypeError: Cannot read properties of undefined (reading 'index')")
    return parts


def _sequence_bindings(msg: dict[str, Any]) -> dict[str, Any] | None:
    if not _in_sequence(msg):
        return None
    return {"I": msg["parts"]["index"], "N": msg["parts"].get("count")}


def _head(count: Operand) -> Test:
    return lambda p, m: _parts(m)["index"] < to_number(count(m))


def _tail(count: Operand) -> Test:
    def tail(p: Any, m: dict[str, Any]) -> bool:
        parts = _parts(m)
        total = parts.get("count")
        if not isinstance(total, int | float):
            return False  # NaN <= index
        return total - to_number(count(m)) <= parts["index"]
    return tail


def _bare_rule(rule: Any, field: str) -> Test | _Else:
    name = {True: "true", False: "false", None: "null"}.get(rule, rule) \
        if not isinstance(rule, str) else rule
    if name == "else":
        return ELSE
    tests: dict[str, Test] = {
        "true": lambda p, m: p is True,
        "false": lambda p, m: p is False,
        "null": lambda p, m: p is None or p is MISSING,
        "nnull": lambda p, m: p is not None and p is not MISSING,
        "empty": lambda p, m: is_empty(p),
        "nempty": lambda p, m: is_not_empty(p),
    }
    if name not in tests:
        raise ConfigError(f"unknown rule {rule!r} (expected a rule without a value: "
                          f"{', '.join(BARE_RULES)}, or a map such as {{eq: value}})", field)
    return tests[name]


def _regex_rule(pattern: str, ignore_case: bool, field: str) -> Test:
    try:
        compiled = compile_js_regex(pattern, ignore_case)
    except ValueError as exc:
        raise ConfigError(str(exc), field) from None
    search = compiled.search
    return lambda p, m: search(p if type(p) is str else to_string(p)) is not None


def _expression(text: str, field: str) -> Expression:
    try:
        return Expression(text)
    except ExpressionError as exc:
        raise ConfigError(str(exc), field) from None


def _between(value: Any, low: Any, high: Any) -> bool:
    """``(a >= b && a <= c) || (a <= b && a >= c)``: inclusive, bounds in either order."""
    return (js_ge(value, low) and js_le(value, high)) or (js_le(value, low) and js_ge(value, high))


def _is_type(value: Any, type_name: str) -> bool:
    if type_name == "undefined":
        return value is MISSING
    return is_type(value, type_name)


def has_key(value: Any, key: Any) -> bool:
    """Node-RED's ``hask``: ``value.hasOwnProperty(key + "")`` for a non-null value and a key
    that is not an object (SW-14). Strings and arrays own ``length`` and their indexes; a
    Buffer owns its indexes only; numbers and booleans own nothing."""
    if value is None or value is MISSING:
        return False
    if key is None or isinstance(key, dict | list | tuple | bytes | bytearray):
        return False  # typeof key === "object"
    name = to_string(key)
    if isinstance(value, Mapping):
        if name in value:
            return True
        # A Python dict may use int keys where JavaScript has their string form.
        return _ARRAY_INDEX.fullmatch(name) is not None and int(name) in value
    if isinstance(value, str | list | tuple | bytes | bytearray):
        if name == "length":
            return not isinstance(value, bytes | bytearray)
        return _ARRAY_INDEX.fullmatch(name) is not None and int(name) < len(value)
    return False


# -- the property ---------------------------------------------------------------------------------

def _compile_property(spec: Any) -> Callable[[Node, dict[str, Any]], Any]:
    """The property reader: a message path, or a value reference evaluated per message."""
    if isinstance(spec, str):
        path = compile_path(spec, "property")
        key = spec if path.segments == (spec,) else None
        if key is not None:
            return lambda node, msg: msg.get(key, MISSING)  # the common "payload"
        return lambda node, msg: path.get(msg)
    if not is_reference(spec) or next(iter(spec)) == "literal":
        raise ConfigError("expected a message path or a value reference ({flow: key}, "
                          "{global: key}, {env: NAME}, {jsonata: expr})", "property")
    value = compile_value(spec, "property")
    return value.evaluate
