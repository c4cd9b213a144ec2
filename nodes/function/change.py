"""``change``: set, change (search and replace), delete and move message or context properties
(Node-RED's change node).

Rules run in order on each message. A target is a message path (``payload.x``) or a context key
(``{flow: key}``, ``{global: key}``; ``[msg.topic]`` inside a key is resolved per message).
Node-RED semantics kept (cases CH-01..CH-22 of ``docs/reference/nodered-cases.md``):

- ``set`` from a missing message property deletes the target; reading beneath a missing parent
  (``{msg: a.b}`` without ``a``) skips the rule; setting beneath a primitive warns and skips.
- ``change`` replaces every occurrence inside a string; a whole-string match of a string, number
  or boolean ``from`` replaces the value itself, keeping the type of ``to``; a number or boolean
  property changes only when it equals ``from`` of the same type; ``{regex: ...}`` is a global
  JavaScript RegExp with ``$1`` groups in ``to``.
- ``move`` moves by reference (to a child or a parent of the source too).
- A JSONata error, or a ``from`` reference that is not a string, number or boolean, is a
  catchable error and the message is dropped.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import Any

from flowengine import (
    MISSING,
    ConfigError,
    MsgRef,
    Node,
    NodeError,
    Path,
    PathError,
    clone_message,
    compile_path,
    compile_value,
    is_reference,
    parse_path,
)
from flowengine import schema as s
from flowengine.js import compile_js_regex, js_replace, loose_eq, to_string
from flowengine.jsonata import ExpressionError

ACTIONS = ("set", "change", "delete", "move")
# A context key may name its store: "#:(file)::key".
_STORE_PREFIX = re.compile(r"^(#:\(\S+?\)::)(.*)$")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")

Reader = Callable[[Node, dict[str, Any]], Any]

_TARGET: s.Schema = {
    "anyOf": [
        s.path(),
        s.obj({"flow": s.string(minLength=1)}, required=["flow"]),
        s.obj({"global": s.string(minLength=1)}, required=["global"]),
        s.obj({"msg": s.string(minLength=1)}, required=["msg"]),
    ],
    "description": "A message path, or {flow: key} / {global: key}.",
}
RULE_SCHEMA = s.obj({
    "set": _TARGET,
    "change": _TARGET,
    "delete": _TARGET,
    "move": _TARGET,
    "to": s.value(description="set/change: the new value (literal or reference); move: the "
                              "target (a message path, or {flow: key} / {global: key})."),
    "from": s.value(description="change: what to replace: a string, number or boolean, "
                                "{regex: pattern}, or a reference."),
    "deep_copy": s.boolean(description="set: store a deep copy of the value, not a reference "
                                       "(default false)."),
}, description="One action (set, change, delete, move) with its operands.")


class ChangeNode(Node):
    type = "change"
    category = "function"
    description = ("Sets, changes (search and replace), deletes or moves message properties and "
                   "flow/global context values, applying its rules in order. Values may be "
                   "literals or references ({msg: path}, {flow: key}, {env: NAME}, "
                   "{jsonata: expr}...); `from` may be {regex: pattern} with $1 groups in `to`.")
    example = textwrap.dedent("""\
        tidy:
          type: change
          rules:
            - set: payload.user
              to: {msg: req.user}
            - change: payload.text
              from: {regex: "\\\\d+"}
              to: "#"
            - delete: req
            - move: topic
              to: {flow: last_topic}
          wires: [next]
        """)
    schema = s.obj({
        "rules": {"type": "array", "items": RULE_SCHEMA, "default": [],
                  "description": "The rules, applied in order."},
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._rules = [_compile_rule(rule, f"rules[{i}]") for i, rule in enumerate(config["rules"])]

    def on_input(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        for rule in self._rules:
            try:
                rule(self, msg)
            except PathError:
                # Node-RED: reading beneath a missing parent, or an undefined [msg.x] reference,
                # throws inside the rule and is swallowed; the rule is skipped.
                continue
            except (ExpressionError, NodeError) as exc:
                self.error(NodeError(str(exc)), msg)
                return None
        return msg


# -- targets -------------------------------------------------------------------------------------

class MsgTarget:
    """A message property."""

    __slots__ = ("expr", "path")

    def __init__(self, expr: str, field: str):
        self.expr = expr
        self.path = compile_path(expr, field)

    def get(self, node: Node, msg: dict[str, Any]) -> Any:
        """The value (MISSING if absent); PathError beneath a missing parent, as Node-RED."""
        return self.path.get(msg, strict=True)

    def set(self, node: Node, msg: dict[str, Any], value: Any) -> None:
        if not self.path.set(msg, value):
            node.warn(f"cannot set '{self.expr}': a parent is not an object")

    def delete(self, node: Node, msg: dict[str, Any]) -> None:
        self.path.delete(msg)


class ContextTarget:
    """A flow or global context key; ``[msg.x]`` references in it are resolved per message."""

    __slots__ = ("expr", "scope", "store", "with_refs")

    def __init__(self, scope: str, key: str, field: str):
        self.scope = scope
        match = _STORE_PREFIX.match(key)
        self.store, self.expr = (match.group(1), match.group(2)) if match else ("", key)
        compile_path(self.expr, field)  # a malformed key is a load error
        self.with_refs = any(isinstance(seg, MsgRef) for seg in parse_path(self.expr))

    def _context(self, node: Node) -> Any:
        return node.flow_context if self.scope == "flow" else node.global_context

    def key(self, msg: dict[str, Any]) -> str:
        """The key for this message (store prefix kept, nested references resolved)."""
        if not self.with_refs:
            return self.store + self.expr
        return self.store + _resolved_key(parse_path(self.expr), msg, self.expr)

    def get(self, node: Node, msg: dict[str, Any]) -> Any:
        return self._context(node).get(self.key(msg), default=MISSING)

    def set(self, node: Node, msg: dict[str, Any], value: Any) -> None:
        if value is MISSING:
            self._context(node).delete(self.key(msg))
        else:
            self._context(node).set(self.key(msg), value)

    def delete(self, node: Node, msg: dict[str, Any]) -> None:
        self._context(node).delete(self.key(msg))


Target = MsgTarget | ContextTarget


def _resolved_key(segments: tuple[Any, ...], msg: dict[str, Any], expr: str) -> str:
    """Write a parsed key back as text with each ``[msg.x]`` replaced by its value (Node-RED's
    ``normalisePropertyExpression(key, msg, true)``); PathError for an undefined reference."""
    parts: list[str] = []
    for position, segment in enumerate(segments):
        if isinstance(segment, MsgRef):
            segment = Path(segment.expr).get(msg, strict=True)
            if segment is MISSING:
                raise PathError(f"Invalid expression {expr!r}: undefined reference")
            if not isinstance(segment, int) or isinstance(segment, bool):
                segment = to_string(segment)
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _IDENTIFIER.fullmatch(segment):
            parts.append(segment if position == 0 else "." + segment)
        else:
            quote = "'" if '"' in segment else '"'
            parts.append(f"[{quote}{segment}{quote}]")
    return "".join(parts)


def _target(spec: Any, field: str) -> Target:
    if isinstance(spec, str):
        return MsgTarget(spec, field)
    if isinstance(spec, dict) and len(spec) == 1:
        kind, key = next(iter(spec.items()))
        if kind == "msg" and isinstance(key, str):
            return MsgTarget(key, f"{field}.msg")
        if kind in ("flow", "global") and isinstance(key, str) and key:
            return ContextTarget(kind, key, f"{field}.{kind}")
    raise ConfigError("expected a message path, or {flow: key} / {global: key}", field)


# -- values ----------------------------------------------------------------------------------------

def _reader(spec: Any, field: str) -> Reader:
    """A value for each message. Message and context references go through the targets, so a
    missing parent skips the rule and a missing property reads as MISSING (JS undefined)."""
    if is_reference(spec) and next(iter(spec)) in ("msg", "flow", "global"):
        return _target(spec, field).get
    value = compile_value(spec, field)
    return value.evaluate


class _From:
    """What a change rule replaces: its kind ("str", "num", "bool" or "re"), the value, and the
    pattern source used for replacing inside strings."""

    __slots__ = ("kind", "pattern", "value")

    def __init__(self, kind: str, value: Any, pattern: str):
        self.kind = kind
        self.value = value
        self.pattern = pattern

    @classmethod
    def of(cls, value: Any) -> _From:
        """Classify a literal or a reference's value: a string, a number or a boolean."""
        if isinstance(value, bool):
            return cls("bool", value, to_string(value))
        if isinstance(value, int | float):
            return cls("num", value, to_string(value))
        if isinstance(value, str):
            return cls("str", value, value)
        raise NodeError(f"invalid 'from' value: unsupported type {type(value).__name__}"
                        if value is not MISSING else "invalid 'from' value: undefined")

    def replace(self, current: Any, value: Any) -> Any:
        """The new value of a property holding ``current``, or MISSING for no change."""
        kind = self.kind
        if isinstance(current, str):
            if kind != "re" and current == self.pattern:
                return value  # a whole match takes the new value, with its own type
            return js_replace(current, self.pattern, value, regex=kind == "re")
        if kind == "num" and isinstance(current, int | float) and not isinstance(current, bool):
            return value if loose_eq(current, self.value) else MISSING
        if kind == "bool" and isinstance(current, bool):
            return value if current is self.value else MISSING
        return MISSING


def _compile_from(spec: Any, field: str) -> Callable[[Node, dict[str, Any]], _From]:
    if isinstance(spec, dict) and len(spec) == 1 and "regex" in spec:
        pattern = spec["regex"]
        if not isinstance(pattern, str):
            raise ConfigError("regex must be a string", f"{field}.regex")
        try:
            compile_js_regex(pattern)
        except ValueError as exc:
            raise ConfigError(str(exc), f"{field}.regex") from None
        static = _From("re", pattern, pattern)
        return lambda node, msg: static
    if is_reference(spec) and next(iter(spec)) != "literal":
        read = _reader(spec, field)
        return lambda node, msg: _From.of(read(node, msg))
    if is_reference(spec):
        spec = spec["literal"]
    try:
        static = _From.of(spec)
    except NodeError:
        raise ConfigError("from must be a string, number, boolean, {regex: pattern} or a "
                          "reference", field) from None
    return lambda node, msg: static


# -- rules -----------------------------------------------------------------------------------------

Rule = Callable[[Node, dict[str, Any]], None]


def _compile_rule(rule: dict[str, Any], field: str) -> Rule:
    actions = [a for a in ACTIONS if a in rule]
    if len(actions) != 1:
        raise ConfigError(f"a rule has exactly one of {', '.join(ACTIONS)}", field)
    action = actions[0]
    allowed = {"set": {"to", "deep_copy"}, "change": {"from", "to"}, "delete": set(),
               "move": {"to"}}[action]
    needed = {"set": ("to",), "change": ("from", "to"), "delete": (), "move": ("to",)}[action]
    for key in rule:
        if key != action and key not in allowed:
            raise ConfigError(f"'{key}' does not apply to a {action} rule", f"{field}.{key}")
    for key in needed:
        if key not in rule:
            raise ConfigError(f"a {action} rule needs '{key}'", field)
    target = _target(rule[action], f"{field}.{action}")
    if action == "set":
        return _set_rule(target, _reader(rule["to"], f"{field}.to"), bool(rule.get("deep_copy")))
    if action == "change":
        return _change_rule(target, _compile_from(rule["from"], f"{field}.from"),
                            _reader(rule["to"], f"{field}.to"))
    if action == "delete":
        return target.delete
    return _move_rule(target, _target(rule["to"], f"{field}.to"))


def _set_rule(target: Target, read: Reader, deep_copy: bool) -> Rule:
    def set_value(node: Node, msg: dict[str, Any]) -> None:
        value = read(node, msg)
        target.set(node, msg, clone_message(value) if deep_copy else value)
    return set_value


def _change_rule(target: Target, read_from: Callable[[Node, dict[str, Any]], _From],
                 read_to: Reader) -> Rule:
    def change_value(node: Node, msg: dict[str, Any]) -> None:
        value = read_to(node, msg)  # Node-RED evaluates `to` first, then `from`
        changed = read_from(node, msg).replace(target.get(node, msg), value)
        if changed is not MISSING:
            target.set(node, msg, changed)
    return change_value


def _move_rule(source: Target, destination: Target) -> Rule:
    # Read, delete, then write: this order also moves a property to its own child
    # (payload -> payload.foo) or parent (payload.foo -> payload), and onto itself.
    def move_value(node: Node, msg: dict[str, Any]) -> None:
        value = source.get(node, msg)
        source.delete(node, msg)
        destination.set(node, msg, value)
    return move_value
