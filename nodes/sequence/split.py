"""``split``: one message into a sequence of messages carrying ``msg.parts`` (Node-RED's split).

Strings are split on a separator (or into fixed lengths), bytes likewise, lists into items (or
chunks), dicts into one message per key. Every part is a copy of the input message with the
property replaced and ``msg.parts = {id, type, index, count, ...}`` exactly as Node-RED writes
it, so that a ``join`` in automatic mode (here or in Node-RED) reverses the split. Each part gets
a new ``_msgid``. An input that already has ``msg.parts`` keeps it as ``msg.parts.parts`` (a
stack), so nested split/join pairs work. Cases SP-01..SP-09 of ``docs/reference/nodered-cases.md``.

In stream mode (strings and bytes) the trailing piece after the last separator is held and
prepended to the next input, indexes run on across inputs and ``count`` is left out; an input is
finished (complete nodes) when its last piece has been sent. What complete nodes then see is the
input as Node-RED leaves it: with the last piece and its parts for strings, bytes and dicts,
with its own payload and parts without an index for lists.

Bytes split on a separator like strings do: a trailing separator gives an empty last part
(Node-RED leaves that part out but still counts it, so a join never completes).
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from flowengine import (
    MISSING,
    ConfigError,
    Node,
    clone_message,
    compile_path,
    compile_value,
    new_msgid,
)
from flowengine import schema as s

_BYTES = (bytes, bytearray, memoryview)


class SplitNode(Node):
    type = "split"
    category = "sequence"
    auto_done = False  # in stream mode an input is finished only when its last piece is sent
    description = ("Splits a message into a sequence: a string or bytes on `separator` (or into "
                   "pieces of `length`), a list into items (or chunks of `array_chunk`), a "
                   "dict into one message per key (the key also copied to `add_key`). Each "
                   "part carries msg.parts = {id, type, index, count, ch/len/key} as in "
                   "Node-RED, so a join in auto mode puts the sequence back together. "
                   "`stream: true` holds a trailing partial piece for the next message.")
    example = textwrap.dedent("""\
        lines:
          type: split
          separator: "\\n"
          wires: [each-line]
        """)
    schema = s.obj({
        "property": s.path("payload", "The message property to split."),
        "separator": {"anyOf": [s.string(), s.obj({"bytes": {
            "anyOf": [s.string(), {"type": "array", "items": s.integer(minimum=0, maximum=255)}]
        }}, required=["bytes"])], "description": "Strings and bytes are split on this text "
            "(default a newline), or on a byte sequence given as {bytes: [13, 10]}."},
        "length": s.integer(description="Split strings and bytes into pieces of this length "
                            "instead of on a separator.", minimum=1),
        "array_chunk": s.integer(1, "Lists are split into chunks of this many items (1: one "
                                 "message per item).", minimum=1),
        "stream": s.boolean(False, "Strings and bytes form a stream: a trailing partial "
                            "piece waits for the next message; no parts.count."),
        "add_key": s.path(description="For dicts: also copy each key to this message "
                          "property (e.g. topic)."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._path = compile_path(config["property"], "property")
        self._property = config["property"]
        self._add_key = compile_path(config["add_key"], "add_key") if "add_key" in config else None
        self._length: int | None = config.get("length")
        if self._length is not None and "separator" in config:
            raise ConfigError("give either a separator or a length, not both", "length")
        separator = config.get("separator", "\n")
        # parts.ch as Node-RED writes it: the separator text, or the byte list for a byte
        # separator (the joining side turns either back into bytes).
        self._ch: Any
        if isinstance(separator, dict):
            data = compile_value(separator, "separator").evaluate(None, {})
            self._sep_bytes = bytes(data)
            self._sep_text = self._sep_bytes.decode("utf-8", errors="replace")
            self._ch = list(self._sep_bytes)
        else:
            self._sep_text = separator
            self._sep_bytes = separator.encode()
            self._ch = separator
        self._chunk: int = config["array_chunk"]
        self._stream: bool = config["stream"]
        self._index = 0  # next parts.index in stream mode
        self._text_rest = ""  # stream mode: the partial piece held back
        self._bytes_rest = b""
        self._waiting: list[dict[str, Any]] = []  # inputs whose last piece is held back

    def on_input(self, msg: dict[str, Any]) -> None:
        value = self._path.get(msg)
        if value is MISSING:
            return  # Node-RED ignores the message entirely (it never completes)
        parts: dict[str, Any] = {"parts": msg["parts"]} if "parts" in msg else {}
        parts["id"] = new_msgid()
        if self._property != "payload":
            parts["property"] = self._property
        msg["parts"] = parts
        msg.pop("_msgid", None)  # every part gets a new id
        if isinstance(value, str):
            self._split_sequence(msg, parts, "string", value)
        elif isinstance(value, _BYTES):
            self._split_sequence(msg, parts, "buffer", bytes(value))
        elif isinstance(value, list | tuple):
            self._split_list(msg, parts, list(value))
        elif isinstance(value, dict):
            self._split_dict(msg, parts, value)
        else:
            self.done(msg)  # numbers, booleans, null: dropped, as in Node-RED

    # -- the shapes -------------------------------------------------------------------------------

    def _split_list(self, msg: dict[str, Any], parts: dict[str, Any], items: list[Any]) -> None:
        chunk = self._chunk
        count = math.ceil(len(items) / chunk)
        parts.update(type="array", count=count, len=chunk)
        # As Node-RED, the parts come from a copy: the input is finished with its own payload
        # (and no parts.index), which is what complete nodes then see.
        work = clone_message(msg)
        for index in range(count):
            piece = items[index * chunk:(index + 1) * chunk]
            self._emit(work, piece[0] if chunk == 1 else piece, index)
        self.done(msg)

    def _split_dict(self, msg: dict[str, Any], parts: dict[str, Any],
                    value: dict[str, Any]) -> None:
        parts.update(type="object", count=len(value))
        for index, (key, item) in enumerate(list(value.items())):
            if self._add_key is not None:
                self._add_key.set(msg, key)
            parts["key"] = key
            self._emit(msg, item, index)
        self.done(msg)

    def _split_sequence(self, msg: dict[str, Any], parts: dict[str, Any], kind: str,
                        data: str | bytes) -> None:
        """Strings and bytes: on the separator or into fixed lengths, streaming or not."""
        parts["type"] = kind
        text = kind == "string"
        rest = self._text_rest if text else self._bytes_rest
        data = rest + data  # type: ignore[operator]  # str + str or bytes + bytes
        if self._length is not None:
            if text:
                parts["ch"] = ""
            parts["len"] = self._length
            pieces = [data[i:i + self._length] for i in range(0, len(data), self._length)]
            complete = bool(pieces) and len(pieces[-1]) == self._length
        else:
            parts["ch"] = self._ch
            pieces = _split(data, self._sep_text if text else self._sep_bytes)
            complete = False  # the piece after the last separator may go on in the next input
        held = data[:0]  # the piece held back for the next input (stream mode)
        if not self._stream:
            self._index = 0
            pieces = pieces or [data]
            parts["count"] = len(pieces)
        elif pieces and not complete:
            held = pieces.pop()
        for piece in pieces:
            self._emit(msg, piece, self._index)
            self._index += 1
        if not self._stream:
            self._index = 0
        if text:
            self._text_rest = held  # type: ignore[assignment]
        else:
            self._bytes_rest = held  # type: ignore[assignment]
        # An input is finished once all of its data has been sent: at once, or when the piece
        # held back goes out with the next input.
        self._waiting.append(msg)
        if not held:
            self._release()
        elif pieces:
            self._release(keep_last=True)

    def _release(self, keep_last: bool = False) -> None:
        """Finish the inputs whose pieces have all been sent."""
        finished, self._waiting = (self._waiting[:-1], self._waiting[-1:]) if keep_last else \
            (self._waiting, [])
        for msg in finished:
            self.done(msg)

    def _emit(self, msg: dict[str, Any], piece: Any, index: int) -> None:
        self._path.set(msg, piece)
        msg["parts"]["index"] = index
        out = clone_message(msg)
        out["_msgid"] = new_msgid()
        self.send(out)

    def on_close(self, removed: bool) -> None:
        self._waiting.clear()


def _split(data: str | bytes, separator: str | bytes) -> list[Any]:
    """JavaScript's ``split``: an empty separator gives single characters (or bytes)."""
    if not separator:
        return [data[i:i + 1] for i in range(len(data))]
    return data.split(separator)  # type: ignore[arg-type]
