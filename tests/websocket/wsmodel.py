"""Drive our frame parser in process and compute what websockets' sans-I/O protocol does with the
same bytes: the two sides of the differential and fuzz tests.

Our side is the real :class:`~flowengine.server.websocket.Connection` of a real endpoint; only
asyncio's transport is replaced by :class:`RecordingTransport` (it keeps what the connection
writes), so thousands of generated streams run in seconds. The Autobahn-style cases
(test_autobahn.py) run the same parser behind a real socket.
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import struct
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from flowengine.server.websocket import OPEN, Connection, WebSocketEndpoint

MAX_SIZE = 300  # the message limit of generated streams: small, so that messages cross it


@dataclass
class Outcome:
    """What a server does with a stream of client frames."""

    messages: list[str | bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    close: int | None = None  # the code of the close frame sent (1005: empty), None if none
    waiting: bool = field(default=False, compare=False)  # inside an incomplete frame (ours)
    error: str = field(default="", compare=False)  # why websockets failed the connection


def raw_frame(first: int, payload: bytes, key: bytes | None = b"\x01\x02\x03\x04",
              long_length: bool = False) -> bytes:
    """A frame with any first byte (FIN, RSV, opcode); masked with ``key`` unless None;
    ``long_length`` uses the 64-bit length form for any size (legal, if unusual)."""
    n = len(payload)
    bit = 0x80 if key is not None else 0
    if long_length:
        head = struct.pack("!BBQ", first, 127 | bit, n)
    elif n < 126:
        head = bytes((first, n | bit))
    elif n < 65536:
        head = struct.pack("!BBH", first, 126 | bit, n)
    else:
        head = struct.pack("!BBQ", first, 127 | bit, n)
    if key is None:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse_frames(data: bytes, mask: bool = False) -> list[Frame]:
    """The complete frames in ``data``, parsed by websockets (unchecked: we read our output)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while True:
        parser = Frame.parse(reader.read_exact, mask=mask)
        try:
            while True:
                next(parser)
        except StopIteration as done:
            frames.append(done.value)
        except EOFError:
            return frames


def close_code(frame: Frame) -> int:
    return int.from_bytes(frame.data[:2], "big") if frame.data else 1005


class RecordingTransport(asyncio.Transport):
    """An asyncio transport that keeps what is written (never congested)."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def write(self, data: Any) -> None:
        assert not self.closing, "written after the transport was closed"
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


class Endpoint(WebSocketEndpoint):
    where = "test"


async def ours(chunks: list[bytes], max_size: int) -> Outcome:
    """Feed ``chunks`` to a server connection, as aiohttp would, and collect the outcome."""
    outcome = Outcome()
    endpoint = Endpoint(max_size=max_size, heartbeat=None)
    endpoint.subscribe(object(), lambda _sid, data: outcome.messages.append(data),
                       report=lambda _level, _text: None)
    conn = Connection(endpoint, "127.0.0.1:1", client=False)
    transport = RecordingTransport()
    conn.transport = transport
    conn.state = OPEN
    endpoint._add(conn)
    for chunk in chunks:
        conn.feed_data(chunk)
    outcome.waiting = bool(conn._pending) or conn._skip > 0
    conn.abort()  # cancels the close timer; what was written is all there is
    conn.connection_lost(None)
    for frame in parse_frames(bytes(transport.written)):
        if frame.opcode is Opcode.CLOSE:
            outcome.close = close_code(frame)
            break
        if frame.opcode is Opcode.PONG:
            outcome.pongs.append(frame.data)
        else:
            raise AssertionError(f"the server sent {frame}")
    return outcome


# What websockets checks in a frame's first two bytes, before its length and mask key.
EARLY_CHECKS = ("incorrect masking", "invalid opcode")


def agree(ours: Outcome, theirs: Outcome) -> bool:
    """The same outcome, except where the stream ends inside a frame and one side has judged
    it sooner: we judge a frame by its whole header (a bad one fails at once, 1002; a too big
    one is refused before its payload, 1009), websockets checks the opcode and the mask bit
    after two bytes but the rest once the payload is read."""
    if ours == theirs:
        return True
    if (ours.messages, ours.pongs) != (theirs.messages, theirs.pongs):
        return False
    if theirs.close is None:
        return ours.close in (1002, 1009)
    return ours.close is None and ours.waiting and theirs.error in EARLY_CHECKS


def reference(data: bytes, max_size: int) -> Outcome:
    """What websockets' ServerProtocol does with ``data``, completed with what its sans-I/O
    layer leaves to the application: message assembly, the message size limit and UTF-8
    validation, both failing as soon as the offending frame arrives (as ours)."""
    protocol = ServerProtocol(state=State.OPEN, max_size=None)
    protocol.receive_data(data)
    outcome = Outcome()
    parts: list[bytes] = []
    size = 0
    decoder: Any = None
    for frame in protocol.events_received():
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if frame.opcode is not Opcode.CONT:
                decoder = (codecs.getincrementaldecoder("utf-8")()
                           if frame.opcode is Opcode.TEXT else None)
                parts, size = [], 0
            size += len(frame.data)
            if size > max_size:
                outcome.close = 1009
                return outcome
            parts.append(frame.data)
            if decoder is not None:
                try:
                    decoder.decode(frame.data, final=frame.fin)
                except UnicodeDecodeError:
                    outcome.close = 1007
                    return outcome
            if frame.fin:
                whole = b"".join(parts)
                outcome.messages.append(whole.decode() if decoder is not None else whole)
        elif frame.opcode is Opcode.PING:
            outcome.pongs.append(frame.data)
    if protocol.close_sent is not None:
        outcome.close = protocol.close_sent.code
        outcome.error = str(protocol.parser_exc or "")
        if str(protocol.parser_exc) == "incomplete fragmented message":
            # A close frame inside a fragmented message: websockets fails (1002); RFC 6455
            # allows control frames there (§5.4) and we answer the close as any other.
            outcome.close = protocol.close_rcvd.code if protocol.close_rcvd else 1005
    return outcome


# -- generated client streams ---------------------------------------------------------------

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
texts = st.text(max_size=80).map(str.encode)
AT_LIMITS = [124, 125, 126, MAX_SIZE - 1, MAX_SIZE, MAX_SIZE + 1]  # sizes where checks change
broken_utf8 = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"])


@st.composite
def client_frames(draw: st.DrawFn) -> bytes:
    """One client frame, mostly valid, sometimes broken in one way."""
    kind = draw(st.sampled_from(["text", "binary", "cont", "ping", "pong", "close", "odd"]))
    fin = draw(st.booleans()) if kind in ("text", "binary", "cont") else True
    payload = draw(st.one_of(texts, st.binary(max_size=160),
                             st.tuples(texts, broken_utf8, texts).map(b"".join),
                             st.sampled_from(AT_LIMITS).map(b"a".__mul__)))
    if kind in ("ping", "pong"):  # now and then one byte too long
        payload = payload[:draw(st.sampled_from([125, 125, 125, 126]))]
    if kind == "close":
        code = draw(st.sampled_from(VALID_CODES) | st.sampled_from(INVALID_CODES))
        status = code.to_bytes(2, "big") + payload[:60]
        payload = draw(st.sampled_from([b"", b"\x03", status, status]))
    opcode = {"text": 1, "binary": 2, "cont": 0, "ping": 9, "pong": 10, "close": 8}.get(kind)
    if opcode is None:  # a frame no valid client sends
        opcode = draw(st.sampled_from([3, 7, 11, 15, 9, 8, 1]))
        if opcode in (8, 9):
            fin = draw(st.booleans())
            if fin:  # too long for a control frame, else fragmented
                payload = bytes(draw(st.sampled_from([126, 127, 300])))
    first = (0x80 if fin else 0) | opcode
    if kind == "odd" and draw(st.booleans()):
        first |= draw(st.sampled_from([0x40, 0x20, 0x10]))  # a reserved bit
    key = None if kind == "odd" and draw(st.booleans()) else draw(st.binary(min_size=4,
                                                                              max_size=4))
    return raw_frame(first, payload, key, long_length=draw(st.booleans()))


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """Frames and the same bytes cut into chunks at arbitrary places."""
    data = b"".join(draw(st.lists(client_frames(), min_size=1, max_size=8)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]
