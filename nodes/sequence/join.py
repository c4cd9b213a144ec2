"""``join``: sequences of messages back into one message (Node-RED's join).

Three modes, as in Node-RED (cases JN-01..JN-18 of ``docs/reference/nodered-cases.md``):

- ``auto`` reverses a ``split``: ``msg.parts`` (id, index, count, type, ch, key, len, property)
  says how each group is rebuilt, so parts may arrive in any order.
- ``manual`` builds a string, bytes, a list, a key/value dict (``key`` names the message
  property holding each key) or a merged dict from a property of each message (or whole
  messages), and sends it after ``count`` messages, after ``timeout``, or when a message has
  ``msg.complete``. The other properties of the output are those of the messages received,
  later ones overwriting earlier ones. ``accumulate`` keeps a dict growing and sends it again
  for every later message.
- ``reduce`` folds each group (by ``msg.parts``) with a JSONata ``expression`` in which ``$A``
  is the accumulated value, ``$I`` the part's index and ``$N`` the group's size; ``fixup``
  runs on the result.

``msg.reset`` drops the group a message belongs to (in auto mode a reset without ``msg.parts``
drops every group), ``msg.restartTimeout`` restarts the group's timeout. ``max_queue`` bounds the
messages held in all groups (Node-RED's ``nodeMessageBufferMaxLength``): past it every group is
dropped and the message that overflowed fails with "too many pending messages in join node".

A message is finished (complete nodes) when the group it belongs to is sent or dropped.

Differences from Node-RED: a part that never arrived is ``None`` in a list (JavaScript leaves a
hole); ``max_queue`` applies in every mode (Node-RED bounds reduce mode only) and defaults to
10000 like the delay node's; ``count: 0`` stands for Node-RED's empty count.
"""

from __future__ import annotations

import asyncio
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from flowengine import (
    MISSING,
    ConfigError,
    Node,
    NodeError,
    Path,
    clone_message,
    compile_path,
    compile_value,
)
from flowengine import schema as s
from flowengine.js import to_number, to_string
from flowengine.jsonata import Expression, ExpressionError

AUTO, MANUAL, REDUCE = "auto", "manual", "reduce"
BUILDS = ("string", "array", "object", "merged", "buffer")
DEFAULT_MAX_QUEUE = 10_000  # as the delay node's; Node-RED's default is no limit
MANUAL_ID = "_"  # the one group of manual mode (unless msg.parts.id is used)

# Node-RED's English texts.
TOO_MANY = "too many pending messages in join node"
NO_PARTS = "Message missing msg.parts property - cannot join in 'auto' mode"
NO_PARTS_KEY = "Message missing 'msg.parts.key' property - cannot add to object"
NOT_MERGEABLE = "Cannot merge non-object types"

_HOLE: Any = object()  # an index not filled (yet): a JavaScript array hole


@dataclass
class _Group:
    """One sequence being joined."""

    kind: str  # string, array, object (also merged), buffer
    target: int  # messages (or keys) that complete the group; 0: no count
    msg: dict[str, Any]  # the output message: every input's properties, later ones winning
    prop: Path  # where the result goes
    items: Any  # a list (string, array, buffer) or a dict (object)
    joiner: Any = None  # string/buffer: what goes between the items
    chunk: Any = None  # array: parts.len of a split into chunks (they are flattened)
    filled: int = 0  # items (or keys) received
    inputs: list[dict[str, Any]] = field(default_factory=list)  # to finish when sent/dropped
    timer: asyncio.TimerHandle | None = None


@dataclass
class _ReduceGroup:
    count: int | None
    msgs: list[dict[str, Any]] = field(default_factory=list)


class JoinNode(Node):
    type = "join"
    category = "sequence"
    auto_done = False  # a message is finished when its group is sent
    description = ("Joins a sequence of messages into one. `mode: auto` reverses a split using "
                   "msg.parts; `manual` builds a string, bytes, list, key/value dict or merged "
                   "dict from a property of each message and sends it after `count` messages, "
                   "after `timeout`, or on a message with msg.complete; `reduce` folds each "
                   "sequence with a JSONata expression ($A accumulated value, $I index, $N "
                   "count). msg.reset drops the partial result, msg.restartTimeout restarts "
                   "the timeout.")
    example = textwrap.dedent("""\
        collect:
          type: join
          mode: manual
          build: object
          key: topic
          count: 3
          timeout: 5s
          wires: [report]
        """)
    schema = s.obj({
        "mode": s.enum([AUTO, MANUAL, REDUCE], AUTO,
                       "auto: reverse a split (msg.parts); manual: build what `build` says; "
                       "reduce: fold each sequence with `reduce.expression`."),
        "build": s.enum(BUILDS, "array", "manual: what to build: a string, a list, a "
                        "key/value dict (see `key`), a merged dict, or bytes."),
        "property": s.path("payload", "manual: the message property collected (and where "
                           "the result goes)."),
        "whole_message": s.boolean(False, "manual: collect whole messages instead of "
                                   "`property`; the result goes to msg.payload."),
        "key": s.path("topic", "manual, build object: the message property holding each "
                      "value's key."),
        "joiner": {"anyOf": [s.string(), s.obj({"bytes": {
            "anyOf": [s.string(), {"type": "array", "items": s.integer(minimum=0, maximum=255)}]
        }}, required=["bytes"])], "default": "\n",
            "description": "manual, build string or buffer: what goes between the items "
                           "(text, or {bytes: [...]})."},
        "count": s.integer(0, "manual: send after this many messages (dict builds: keys); "
                           "0: only on timeout or msg.complete (or msg.parts.count with "
                           "`use_parts`).", minimum=0),
        "use_parts": s.boolean(False, "manual: keep the messages' msg.parts (Node-RED's "
                               "\"use existing msg.parts\"): without `count`, a group ends "
                               "after msg.parts.count messages of the same msg.parts.id."),
        "timeout": s.duration(0, "manual: send what has arrived this long after the "
                              "first message of a group (0: no timeout)."),
        "accumulate": s.boolean(False, "manual, object/merged: after the count is reached, "
                                "send the growing dict again for every later message."),
        "max_queue": s.integer(DEFAULT_MAX_QUEUE, "Most messages held in unfinished groups "
                               "(0: no limit); past it every group is dropped and the "
                               "message fails.", minimum=0),
        "reduce": s.obj({
            "expression": s.string(description="JSONata over each message; $A is the "
                                   "accumulated value, $I the index, $N the count."),
            "init": s.value(0, "The first $A: a literal or a value reference."),
            "fixup": s.string(description="JSONata applied to the result ($A, $N)."),
            "right": s.boolean(False, "Fold from the last part to the first."),
        }, required=["expression"], description="reduce mode: how each sequence is folded."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._mode = config["mode"]
        self._build = config["build"]
        self._whole = config["whole_message"]
        self._property = compile_path("payload" if self._whole else config["property"],
                                      "property")
        self._key = compile_path(config["key"], "key")
        self._count = config["count"]
        self._use_parts = config["use_parts"]
        self._timeout = config["timeout"] if self._mode != AUTO else 0.0
        self._accumulate = config["accumulate"]
        self._max_queue = config["max_queue"]
        joiner = config["joiner"]
        self._joiner = (compile_value(joiner, "joiner").evaluate(None, {})
                        if isinstance(joiner, dict) else joiner)
        self._groups: dict[Any, _Group] = {}
        self._held = 0  # messages held in groups (max_queue)
        self._reduce_groups: dict[Any, _ReduceGroup] = {}
        if self._mode == REDUCE:
            spec = config.get("reduce")
            if spec is None:
                raise ConfigError("reduce mode needs reduce.expression", "reduce")
            self._expression = _expression(spec["expression"], "reduce.expression")
            self._fixup = _expression(spec["fixup"], "reduce.fixup") if spec.get("fixup") \
                else None
            self._init = compile_value(spec["init"], "reduce.init")
            self._right = spec["right"]

    def on_input(self, msg: dict[str, Any]) -> None:
        if self._mode == REDUCE:
            self._reduce_input(msg)
            return
        parts = msg.get("parts")
        if self._mode == AUTO and not (isinstance(parts, dict) and "id" in parts):
            if "reset" in msg:  # a reset without parts drops every group
                for group_id in list(self._groups):
                    self._drop(group_id)
            else:
                self.warn(NO_PARTS)
            self.done(msg)
            return
        if self._mode == MANUAL and isinstance(parts, dict) and not self._use_parts:
            # The sequence this message came in is not ours: forget it (or pop it).
            if "parts" in parts:
                msg["parts"] = parts = {"parts": parts["parts"]}
            else:
                del msg["parts"]
                parts = None
        self._collect(msg, parts if isinstance(parts, dict) else None)

    # -- auto and manual --------------------------------------------------------------------------

    def _collect(self, msg: dict[str, Any], parts: dict[str, Any] | None) -> None:
        group_id: Any = MANUAL_ID
        key: Any = MISSING
        index: Any = MISSING
        if self._mode == AUTO:
            assert parts is not None
            group_id = parts["id"]
            kind = parts.get("type")
            if kind not in ("string", "buffer", "object"):
                kind = "array"  # Node-RED collects any other type into a list
            target = parts.get("count")
            joiner = parts.get("ch", MISSING)
            key = parts.get("key", MISSING)
            index = parts.get("index", MISSING)
            prop_name = parts.get("property") or "payload"
            prop = _PAYLOAD if prop_name == "payload" else compile_path(prop_name)
            value = prop.get(msg)
        else:
            kind = self._build
            target = self._count
            joiner = self._joiner
            prop = self._property
            value = msg if self._whole else prop.get(msg)
            if not self._count and parts is not None:
                # Node-RED: without a count, msg.parts (when kept) says how many and which group.
                target = parts.get("count") or 0
                group_id = parts.get("id", MANUAL_ID)
            if kind == "object":
                key = self._key.get(msg)

        if "restartTimeout" in msg and group_id in self._groups:
            self._start_timer(group_id, self._groups[group_id])
        if "reset" in msg:
            self._drop(group_id)
            self.done(msg)
            return
        if kind == "object" and (key is MISSING or key is None or key == ""):
            group = self._groups.get(group_id)
            if self._mode == AUTO:
                self.warn(NO_PARTS_KEY)
            elif "complete" in msg:
                if group is not None:
                    group.msg["complete"] = msg["complete"]
                    self._send(group_id)
            else:
                self.warn(f"Message missing key property 'msg.{self.config['key']}' - cannot "
                          "add to object")
            self.done(msg)
            return
        if kind == "buffer" and value is not MISSING and \
                not isinstance(value, str | bytes | bytearray | list):
            self.error(NodeError(f"Cannot join {_js_typeof(value)} to buffer"), msg)
            return

        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = self._new_group(kind, target, msg, prop, joiner,
                                                             parts)
            if self._timeout > 0:
                self._start_timer(group_id, group)
        group.inputs.append(msg)
        self._held += 1
        self._add(group, kind, value, key, index, msg)
        group.msg.update(msg)
        if parts is not None:
            group.target = _count(group.target) or _count(msg["parts"].get("count"))
        if (group.target > 0 and group.filled >= group.target) or "complete" in msg:
            self._send(group_id)
        elif self._max_queue and self._held > self._max_queue:
            self._overflow(msg)

    def _new_group(self, kind: Any, target: Any, msg: dict[str, Any], prop: Path, joiner: Any,
                   parts: dict[str, Any] | None) -> _Group:
        is_dict = kind in ("object", "merged")
        return _Group(kind="object" if is_dict else str(kind), target=_count(target),
                      msg=clone_message(msg), prop=prop, items={} if is_dict else [],
                      joiner=joiner, chunk=parts.get("len") if parts and kind == "array" else None)

    def _add(self, group: _Group, kind: Any, value: Any, key: Any, index: Any,
             msg: dict[str, Any]) -> None:
        """Put one message's value into its group."""
        if kind == "object":
            group.items[key if isinstance(key, str) else to_string(key)] = value
            group.filled = len(group.items)
        elif kind == "merged":
            if not isinstance(value, dict):
                if "complete" not in msg:
                    self.warn(NOT_MERGEABLE)
                return
            group.items.update((k, v) for k, v in value.items() if k != "_msgid")
            group.filled = len(group.items)
        else:
            position = _array_index(index)
            items = group.items
            if position is not None:
                if position >= len(items):
                    items.extend([_HOLE] * (position + 1 - len(items)))
                if items[position] is _HOLE or items[position] is None:
                    group.filled += 1
                items[position] = value
            elif value is not MISSING:
                items.append(value)
                group.filled += 1

    def _send(self, group_id: Any) -> None:
        """Build the group's result, send it and finish its messages."""
        group = self._groups[group_id]
        self._cancel_timer(group)
        if self._mode == AUTO or not self._accumulate or "complete" in group.msg:
            del self._groups[group_id]
        group.prop.set(group.msg, self._result(group))
        sent = clone_message(group.msg)
        parts = sent.get("parts")
        if isinstance(parts, dict) and "parts" in parts:
            sent["parts"] = parts["parts"]
        else:
            sent.pop("parts", None)
        sent.pop("complete", None)
        group.msg.pop("complete", None)
        self.send(sent)
        self._finish(group)

    def _result(self, group: _Group) -> Any:
        items = group.items
        if group.kind == "object":
            return items
        values = [None if v is _HOLE else v for v in items]
        if group.kind == "array":
            if _count(group.chunk) > 1:  # a list split into chunks: flatten them back
                return [x for v in values for x in (v if isinstance(v, list) else [v])]
            return values
        if group.kind == "buffer":
            joiner = _to_bytes(group.joiner) if group.joiner is not MISSING else None
            pieces = [_to_bytes(v) for v in values if v is not None and v is not MISSING]
            return (joiner or b"").join(pieces)
        joiner = group.joiner
        if isinstance(joiner, list | bytes | bytearray):
            joiner = bytes(joiner).decode("utf-8", errors="replace")
        elif joiner is MISSING or joiner is None:
            joiner = ","  # Array.prototype.join's default
        return to_string(joiner).join(
            "" if v is None or v is MISSING else to_string(v) for v in values)

    def _drop(self, group_id: Any) -> None:
        """Forget a group without sending it; its messages are finished."""
        group = self._groups.pop(group_id, None)
        if group is not None:
            self._cancel_timer(group)
            self._finish(group)

    def _finish(self, group: _Group) -> None:
        self._held -= len(group.inputs)
        inputs, group.inputs = group.inputs, []
        for msg in inputs:
            self.done(msg)

    def _overflow(self, msg: dict[str, Any]) -> None:
        """Too many messages held: drop every group; ``msg`` fails, the others finish."""
        for group in self._groups.values():
            self._cancel_timer(group)
            group.inputs = [m for m in group.inputs if m is not msg]
        for group_id in list(self._groups):
            self._drop(group_id)
        self._held = 0
        self.error(NodeError(TOO_MANY), msg)

    # -- timers -----------------------------------------------------------------------------------

    def _start_timer(self, group_id: Any, group: _Group) -> None:
        self._cancel_timer(group)
        if self._timeout > 0:
            loop = asyncio.get_running_loop()
            group.timer = loop.call_later(self._timeout, self._on_timeout, group_id, group)

    def _on_timeout(self, group_id: Any, group: _Group) -> None:
        group.timer = None
        if self._groups.get(group_id) is group:
            self._send(group_id)

    @staticmethod
    def _cancel_timer(group: _Group) -> None:
        if group.timer is not None:
            group.timer.cancel()
            group.timer = None

    def on_close(self, removed: bool) -> None:
        for group in self._groups.values():
            self._cancel_timer(group)
        self._groups.clear()
        self._reduce_groups.clear()

    # -- reduce -----------------------------------------------------------------------------------

    def _reduce_input(self, msg: dict[str, Any]) -> None:
        parts = msg.get("parts")
        if not isinstance(parts, dict):
            self.send(msg)  # not part of a sequence: passed on as it is
            self.done(msg)
            return
        group_id = parts.get("id")
        group = self._reduce_groups.get(group_id)
        if group is None:
            group = self._reduce_groups[group_id] = _ReduceGroup(parts.get("count"))
        elif group.count is None:
            group.count = parts.get("count")
        group.msgs.append(msg)
        self._held += 1
        if len(group.msgs) == group.count:
            del self._reduce_groups[group_id]
            self._held -= len(group.msgs)
            try:
                self._reduce_and_send(group)
            except ExpressionError as exc:
                for other in group.msgs:
                    if other is not msg:
                        self.done(other)
                self.error(exc, msg)
                return
            for done_msg in group.msgs:
                self.done(done_msg)
        if self._max_queue and self._held > self._max_queue:
            for other_group in self._reduce_groups.values():
                for other in other_group.msgs:
                    if other is not msg:
                        self.done(other)
            self._reduce_groups.clear()
            self._held = 0
            self.error(NodeError(TOO_MANY), msg)

    def _reduce_and_send(self, group: _ReduceGroup) -> None:
        accumulated = self._init.evaluate(self, {})
        ordered = sorted(group.msgs, key=lambda m: _sort_key(m["parts"].get("index")),
                         reverse=self._right)
        count = group.count
        for msg in ordered:
            accumulated = self._expression.evaluate(msg, self, {
                "A": _binding(accumulated), "I": msg["parts"].get("index"), "N": count})
        if self._fixup is not None:
            accumulated = self._fixup.evaluate({}, self, {"A": _binding(accumulated), "N": count})
        last = ordered[-1]
        last["payload"] = accumulated
        self.send(last)


_PAYLOAD = Path("payload")


def _expression(text: str, field: str) -> Expression:
    try:
        return Expression(text)
    except ExpressionError as exc:
        raise ConfigError(str(exc), field) from None


def _count(value: Any) -> int:
    """A count from msg.parts or the configuration; anything not a positive number is 0."""
    if value is None or value is MISSING or isinstance(value, bool):
        return 0
    try:
        number = to_number(value)
    except (TypeError, ValueError):
        return 0
    return int(number) if number == number and number > 0 and math.isfinite(number) else 0


def _array_index(index: Any) -> int | None:
    """``msg.parts.index`` as a list position, or None (the value is appended instead)."""
    if index is MISSING or isinstance(index, bool):
        return None
    number = 0 if index is None else to_number(index)  # Number(null) is 0
    if number != number or number < 0 or number != int(number):
        return None
    return int(number)


def _sort_key(index: Any) -> float:
    number = to_number(index) if index is not MISSING else math.nan
    return number if number == number else math.inf


def _binding(value: Any) -> Any:
    """A value as a JSONata variable: the undefined stand-in becomes null."""
    return None if value is MISSING else value


def _to_bytes(value: Any) -> bytes:
    """``Buffer.from(value)``: bytes as they are, text as UTF-8, a list of byte values."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):
        return bytes(int(to_number(v)) & 0xFF for v in value)
    return to_string(value).encode()


def _js_typeof(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "object"

