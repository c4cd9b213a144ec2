"""WebSocket endpoints shared by websocket-in and websocket-out nodes (RFC 6455).

A :class:`WebSocketListener` serves one path of the shared HTTP server and owns the sessions
(browsers) connected to it; a :class:`WebSocketClient` owns one outgoing connection to a URL,
re-established with exponential backoff. Both give nodes the same interface: ``subscribe`` to
incoming messages, connection events and state changes; ``send_to`` one session, ``broadcast`` to
all (or ``send``, which does either); ``release`` when a node closes, which closes the endpoint
once its last user is gone. An endpoint that was closed opens again on the next ``start``, so it
can stay in ``runtime.shared`` across reloads.

Why not aiohttp's ``WebSocketResponse``: it costs a future, a task switch and an ``await`` per
frame each way (a ``receive()`` loop and a writer task), which caps a flow's round trips well
below Node-RED's. Here aiohttp only routes the upgrade request; the opening handshake (§4.2.2) is
answered in :meth:`WebSocketListener.handle` and the connection's bytes go straight to
:class:`_Connection`, which parses frames (§5.2) synchronously and hands each message to the
subscribers in the same call. Sending writes the frame to the transport at once: one frame in is
one callback, one frame out one ``transport.write``; no task or future per frame.

Limits (constructor parameters; all per session unless said otherwise):

- ``max_size``: the largest message accepted, 1 MiB (several websocket-in nodes on one endpoint:
  the largest of their limits). A larger frame (or fragmented message) closes the session with
  1009 as soon as its header is read; its payload is skipped, never buffered.
- ``write_limit``: bytes the transport may hold unsent, 256 KiB. Past it the peer reads slower
  than the flow sends, and frames wait in the session's queue instead.
- ``max_queue``: frames waiting in that queue, 1024. A session whose queue overflows is closed
  with 1008 rather than buffering without bound. Memory per slow session is thus bounded by
  ``write_limit`` plus ``max_queue`` frames.
- ``heartbeat``: a ping to every session this often, 30 s (None: never). A session that sent
  nothing for a whole interval after a ping is dropped (the peer is gone without a FIN).
- ``close_timeout``: how long a closing handshake may take before the TCP connection is
  aborted, 2 s.

Pongs answering a peer's pings go through the same queue and bound as messages: a peer that
pings without reading is closed with 1008 once its queue is full, like any slow reader.

Text that has no UTF-8 form (a lone surrogate such as a ``"\ud800"`` JSON escape decodes to) is
sent with U+FFFD in its place, as a Node.js server sends it; a failure to send to one session
never stops a broadcast to the others.

Origin (listeners): a browser's upgrade request whose ``Origin`` is neither the serving host
(the request's ``Host``) nor one of the endpoint's ``origins`` is refused with 403, so a page on
another site cannot open the socket with the user's browser. ``"*"`` allows any origin; a
request without ``Origin`` (not from a browser) is accepted.

A failure of one session (a malformed or oversized frame, a full queue, a vanished peer) closes
that session only, with the close code of §7.4.1, and is reported once through the subscribers'
``report`` callback (the nodes log it with their id) naming the peer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import hashlib
import itertools
import logging
import os
import re
import ssl
import struct
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

try:  # the C implementation; websockets ships a pure-Python fallback
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

log = logging.getLogger("flowengine.websocket")

DEFAULT_MAX_SIZE = 1024 * 1024
DEFAULT_MAX_QUEUE = 1024
DEFAULT_WRITE_LIMIT = 256 * 1024
DEFAULT_HEARTBEAT = 30.0
DEFAULT_CLOSE_TIMEOUT = 2.0
DEFAULT_OPEN_TIMEOUT = 10.0
MAX_HANDSHAKE = 64 * 1024  # bytes of a server's handshake response we read at most
DRAIN_POLL = 0.01  # seconds between checks of a congested session's transport buffer

# on_message(session_id, data: str | bytes)
MessageCallback = Callable[[str, Any], None]
# on_event(session_id, "connect" | "disconnect", {"remote", "code", "reason", "count"})
EventCallback = Callable[[str, str, dict[str, Any]], None]
# on_state(state, detail): a client's "connecting", "connected", "disconnected", "error"
StateCallback = Callable[[str, str], None]
# report(logging level, text): a failure worth logging, once
ReportCallback = Callable[[int, str], None]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_ids = itertools.count(1)
_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack

# Opcodes (§5.2) and the first header byte of unfragmented frames (FIN set).
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
_TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x81, 0x82, 0x88, 0x89, 0x8A

# Close codes (§7.4.1).
NORMAL, GOING_AWAY, PROTOCOL_ERROR = 1000, 1001, 1002
SHUTDOWN_REASON = "server shutting down"  # the close reason when the runtime stops
NO_STATUS, ABNORMAL, INVALID_DATA, POLICY, TOO_BIG = 1005, 1006, 1007, 1008, 1009


class State(enum.Enum):
    """A connection's state. Invariants: messages reach subscribers, and ``send_*`` writes,
    only in OPEN; an endpoint's ``sessions`` holds exactly its OPEN and CLOSING connections;
    nothing is written after the closing handshake shut the transport for writing."""

    CONNECTING = "connecting"  # client only: TCP open, handshake response not read yet
    OPEN = "open"
    CLOSING = "closing"  # a close frame was sent: only a close frame or EOF is awaited
    CLOSED = "closed"  # the TCP connection is gone


CONNECTING, OPEN, CLOSING, CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED


class HandshakeError(Exception):
    """The server refused or botched a client's opening handshake."""


def _accept(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (§4.2.2, item 5.4)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def _frame(first: int, payload: bytes, mask: bool) -> bytes:
    """One frame: ``first`` is the FIN/opcode byte; a client masks its frames (§5.3)."""
    n = len(payload)
    if mask:
        key = os.urandom(4)
        body = key + apply_mask(payload, key)
        if n < 126:
            return bytes((first, n | 0x80)) + body
        if n < 65536:
            return _PACK_16(first, 126 | 0x80, n) + body
        return _PACK_64(first, 127 | 0x80, n) + body
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return _PACK_16(first, 126, n) + payload
    return _PACK_64(first, 127, n) + payload


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8(text: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate (no UTF-8 form) becomes U+FFFD, as Node.js writes it."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode()


def encode(data: str | bytes | bytearray | memoryview, mask: bool = False) -> bytes:
    """A text frame for a str, a binary frame for bytes."""
    if type(data) is str:
        return _frame(_TEXT, utf8(data), mask)
    return _frame(_BINARY, bytes(data), mask)


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(origin: str) -> str:
    """An origin as browsers send it (``scheme://host[:port]``, lower case, no default port),
    or the text unchanged (e.g. ``*`` or ``null``) when it is not a URL."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return origin
    if not parts.scheme or not parts.hostname:
        return origin.strip().lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origin_allowed(origin: str | None, host: str | None, allowed: set[str] | frozenset[str]
                   ) -> bool:
    """Whether a websocket upgrade with this ``Origin`` may proceed: no Origin (not a browser),
    the serving host (``host``: the request's Host header, compared by name and port), or one
    of ``allowed`` (normalized origins; ``"*"`` allows any)."""
    if origin is None or "*" in allowed:
        return True
    if normalize_origin(origin) in allowed:
        return True
    try:
        parts = urlsplit(origin.strip().lower())
        served = urlsplit("//" + (host or "").strip().lower())
        origin_port, served_port = parts.port, served.port
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname or parts.hostname != served.hostname:
        return False
    return (origin_port or default) == (served_port or default)


def _close_payload(code: int, reason: str) -> bytes:
    if code == NO_STATUS:
        return b""
    return code.to_bytes(2, "big") + reason.encode()[:123]  # control frames: <= 125 bytes


def _valid_close_code(code: int) -> bool:
    # 1004-1006 and 1015 are reserved, never sent; 3000-4999 belong to applications.
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                    1014) or 3000 <= code <= 4999


class _Skip(Exception):
    """Raised by header checks: skip this frame's payload (closing, or too big)."""


class _Connection(asyncio.Protocol):
    """One WebSocket connection over an asyncio transport.

    A client connection is the transport's protocol; a server connection's bytes come from
    aiohttp's request protocol through ``feed_data``/``feed_eof`` (aiohttp's payload-parser
    interface), so aiohttp keeps doing its own connection bookkeeping.
    """

    __slots__ = (
        "_backlog",
        "_close_handle",
        "_congested",
        "_discard",
        "_drain_handle",
        "_eof_sent",
        "_expect",
        "_fragment_op",
        "_fragment_size",
        "_fragments",
        "_head",
        "_mask",
        "_needed",
        "_pending",
        "_pending_size",
        "_request",
        "_skip",
        "close_code",
        "close_reason",
        "done",
        "endpoint",
        "id",
        "opened",
        "remote",
        "seen",
        "state",
        "transport",
    )

    def __init__(self, endpoint: WebSocketEndpoint, remote: str, *, client: bool):
        loop = asyncio.get_running_loop()
        self.endpoint = endpoint
        self.id = f"{next(_ids):x}"
        self.remote = remote
        self.state = CONNECTING
        self.transport: Any = None
        self.seen = True  # something arrived since the last heartbeat ping
        self.close_code: int | None = None  # the first close frame sent or received
        self.close_reason = ""
        self.done: asyncio.Future[None] = loop.create_future()  # set once the TCP link is gone
        self.opened: asyncio.Future[None] | None = None  # client: set when the handshake is done
        self._mask = client  # a client masks what it sends and expects unmasked frames
        # Parser: the bytes of an incomplete frame, and how many are needed to go on.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._needed = 0
        self._skip = 0  # payload bytes still to ignore (a frame too big, or data while closing)
        self._discard = False  # after a protocol error nothing more is parsed (§7.1.7)
        self._fragments: list[bytes] = []
        self._fragment_op = 0  # opcode of the fragmented message being read, 0 if none
        self._fragment_size = 0
        # Writer: frames waiting while the transport holds more than write_limit bytes.
        self._backlog: deque[bytes] = deque()
        self._congested = False
        self._drain_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._eof_sent = False
        # Client handshake.
        self._request = b""
        self._expect = ""
        self._head = bytearray()

    # -- aiohttp's payload-parser interface (server side) --------------------------------------

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.data_received(data)
        return False, b""

    def feed_eof(self) -> None:
        self.connection_lost(None)

    # -- asyncio.Protocol (client side; the server side arrives here through feed_*) ------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self._request:
            transport.write(self._request)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.state is CLOSED:
            return
        was_connecting = self.state is CONNECTING
        self.state = CLOSED
        for handle in (self._drain_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        self._drain_handle = self._close_handle = None
        self._backlog.clear()
        self._pending.clear()
        self._fragments.clear()
        if self.close_code is None:
            self.close_code = ABNORMAL
            self.close_reason = str(exc) if exc else "connection lost without a close frame"
        if was_connecting:
            if self.opened is not None and not self.opened.done():
                self.opened.set_exception(HandshakeError(
                    f"connection closed during the handshake: {self.close_reason}"))
        else:
            self.endpoint._remove(self)
        if not self.done.done():
            self.done.set_result(None)

    def pause_writing(self) -> None:
        self._congested = True  # the drain poll resumes sending

    def resume_writing(self) -> None:
        if self._drain_handle is None and self.state is OPEN:
            self._drain()

    def data_received(self, data: bytes) -> None:
        self.seen = True
        if self._discard:
            return
        if self.state is CONNECTING:
            self._handshake_data(data)
            return
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                return
            data = b"".join(self._pending)
            self._pending.clear()
        self._parse(data)

    # -- frames in (§5.2) ----------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        pos = head = 0
        end = len(data)
        while pos < end:
            if self._skip:
                n = min(self._skip, end - pos)
                pos += n
                self._skip -= n
                continue
            head = pos + 2
            if head > end:
                break
            first = data[pos]
            length = data[pos + 1] & 0x7F
            masked = data[pos + 1] & 0x80
            if length == 126:
                head += 2
                if head > end:
                    break
                length = int.from_bytes(data[head - 2:head], "big")
            elif length == 127:
                head += 8
                if head > end:
                    break
                length = int.from_bytes(data[head - 8:head], "big")
            if masked:
                head += 4
                if head > end:
                    break
            # The header is complete: refuse a bad or oversized frame before its payload.
            try:
                self._check(first, masked, length)
            except _Skip:
                self._skip = head + length - pos
                continue
            if self._discard:
                return
            stop = head + length
            if stop > end:
                self._needed = stop - pos
                self._pending.append(data[pos:])
                self._pending_size = end - pos
                return
            payload = data[head:stop]
            if masked and length:
                payload = apply_mask(payload, data[head - 4:head])
            pos = stop
            if first == 0x81 or first == 0x82:  # the common case: one unfragmented message
                self._message(first & 0x0F, payload)
            else:
                self._frame(first, payload)
            if self._discard:
                return
        if pos < end:  # an incomplete header: wait for the bytes known to be needed so far
            self._needed = head - pos
            self._pending.append(data[pos:])
            self._pending_size = end - pos

    def _check(self, first: int, masked: int, length: int) -> None:
        """Validate a frame header (§5.2, §5.5); fail the connection or raise _Skip."""
        opcode = first & 0x0F
        if first & 0x70:
            self._fail(PROTOCOL_ERROR, "reserved bits set (no extension was negotiated)")
        elif (not masked) is not self._mask:
            self._fail(PROTOCOL_ERROR, "masked frame from a server" if self._mask
                       else "unmasked frame from a client")
        elif opcode >= 8:
            if opcode > OP_PONG:
                self._fail(PROTOCOL_ERROR, f"unknown opcode {opcode}")
            elif not first & 0x80:
                self._fail(PROTOCOL_ERROR, "fragmented control frame")
            elif length > 125:
                self._fail(PROTOCOL_ERROR, "control frame longer than 125 bytes")
        elif opcode > OP_BINARY:
            self._fail(PROTOCOL_ERROR, f"unknown opcode {opcode}")
        elif self.state is not OPEN:
            raise _Skip  # closing: data is no longer read
        elif opcode == OP_CONT and not self._fragment_op:
            self._fail(PROTOCOL_ERROR, "continuation frame without a message to continue")
        elif opcode != OP_CONT and self._fragment_op:
            self._fail(PROTOCOL_ERROR, "new message inside a fragmented message")
        elif self._fragment_size + length > self.endpoint.max_size:
            self._fail(TOO_BIG, f"message of {self._fragment_size + length} bytes exceeds "
                       f"max_size {self.endpoint.max_size}", discard=False)
            self._fragments.clear()
            self._fragment_op = self._fragment_size = 0
            raise _Skip

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        fin = first & 0x80
        if opcode in (OP_TEXT, OP_BINARY):
            if fin:
                self._message(opcode, payload)
            else:
                self._fragment_op = opcode
                self._fragments.append(payload)
                self._fragment_size = len(payload)
        elif opcode == OP_CONT:
            self._fragments.append(payload)
            self._fragment_size += len(payload)
            if fin:
                opcode, whole = self._fragment_op, b"".join(self._fragments)
                self._fragments.clear()
                self._fragment_op = self._fragment_size = 0
                self._message(opcode, whole)
        elif opcode == OP_PING:
            # Counted like any frame sent: a peer that pings without reading fills its queue.
            self.send_frame(_frame(_PONG, payload, self._mask))
        elif opcode == OP_CLOSE:
            self._close_frame(payload)
        # OP_PONG: nothing to do; ``seen`` was set when it arrived.

    def _message(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_TEXT:
            try:
                text = payload.decode()
            except UnicodeDecodeError:
                self._fail(INVALID_DATA, "text message is not valid UTF-8", discard=False)
                return
            self.endpoint._dispatch(self.id, text)
        else:
            self.endpoint._dispatch(self.id, payload)

    def _close_frame(self, payload: bytes) -> None:
        code, reason = NO_STATUS, ""
        if len(payload) == 1:
            self._fail(PROTOCOL_ERROR, "close frame with a 1-byte payload")
            return
        if payload:
            code = int.from_bytes(payload[:2], "big")
            if not _valid_close_code(code):
                self._fail(PROTOCOL_ERROR, f"invalid close code {code}")
                return
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                self._fail(INVALID_DATA, "close reason is not valid UTF-8")
                return
        if self.state is OPEN:
            # The peer closes first: answer with its code (§5.5.1), then end the connection.
            self.state = CLOSING
            self.close_code, self.close_reason = code, reason
            self._backlog.clear()
            self._write(_frame(_CLOSE, _close_payload(code, reason), self._mask), force=True)
        self._shutdown()

    # -- frames out ----------------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> bool:
        """Write an encoded frame now, or queue it while the peer reads slowly."""
        if self.state is not OPEN:
            return False
        if self._congested:
            if len(self._backlog) >= self.endpoint.max_queue:
                self._fail(POLICY, f"{len(self._backlog)} messages waiting to be sent",
                           discard=False)
                return False
            self._backlog.append(frame)
            if self._drain_handle is None:
                self._drain_handle = asyncio.get_running_loop().call_later(DRAIN_POLL,
                                                                           self._drain)
            return True
        transport = self.transport
        if transport.is_closing():
            return False
        transport.write(frame)
        if transport.get_write_buffer_size() > self.endpoint.write_limit:
            self._congested = True
            self._drain_handle = asyncio.get_running_loop().call_later(DRAIN_POLL, self._drain)
        return True

    def _drain(self) -> None:
        """Move queued frames to the transport while its buffer is below write_limit."""
        self._drain_handle = None
        transport = self.transport
        if self.state is not OPEN or transport.is_closing():
            return
        limit = self.endpoint.write_limit
        backlog = self._backlog
        while backlog and transport.get_write_buffer_size() <= limit:
            transport.write(backlog.popleft())
        if backlog or transport.get_write_buffer_size() > limit:
            self._drain_handle = asyncio.get_running_loop().call_later(DRAIN_POLL, self._drain)
        else:
            self._congested = False

    def _write(self, frame: bytes, force: bool = False) -> None:
        """Write a control frame (pong, close): after queued data, or at once with ``force``."""
        transport = self.transport
        if self._eof_sent or transport is None or transport.is_closing():
            return
        if self._congested and not force:
            self._backlog.append(frame)
            return
        transport.write(frame)

    def ping(self) -> None:
        self._write(_frame(_PING, b"", self._mask))

    # -- closing (§7) --------------------------------------------------------------------------

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the closing handshake; the connection ends when the peer answers (or after
        close_timeout)."""
        if self.state is not OPEN:
            if self.state is CONNECTING:
                self.abort()
            return
        self.state = CLOSING
        self.close_code, self.close_reason = code, reason
        self._backlog.clear()
        self._write(_frame(_CLOSE, _close_payload(code, reason), self._mask), force=True)
        self._arm_abort()

    def _fail(self, code: int, reason: str, discard: bool = True) -> None:
        """Close because of what the peer sent. With ``discard`` (the framing itself is broken)
        nothing more is parsed and the connection is shut at once (§7.1.7)."""
        if self.state is OPEN:
            self.endpoint._report(logging.WARNING, f"closing session {self.id} ({self.remote}) "
                                  f"with {code}: {reason}")
        self.close(code, reason)
        if discard:
            self._discard = True
            self._pending.clear()
            self._shutdown()

    def _shutdown(self) -> None:
        """End of the closing handshake: half-close, so the peer reads everything we sent and
        closes its side; its EOF then ends the connection. (A full close with unread input
        would make the kernel reset the connection and lose the close frame.)"""
        transport = self.transport
        if transport is None or self._eof_sent:
            return
        self._eof_sent = True
        if not transport.is_closing():
            if transport.can_write_eof():
                transport.write_eof()
            else:  # TLS has no half-close
                transport.close()
        self._arm_abort()

    def _arm_abort(self) -> None:
        if self._close_handle is None and self.state is not CLOSED:
            self._close_handle = asyncio.get_running_loop().call_later(
                self.endpoint.close_timeout, self.abort)

    def abort(self) -> None:
        """Drop the TCP connection now."""
        self._close_handle = None
        if self.transport is not None:
            self.transport.abort()
        elif self.state is not CLOSED:
            self.connection_lost(None)

    # -- client handshake (§4.1) ---------------------------------------------------------------

    def start_handshake(self, request: bytes, expect: str) -> None:
        loop = asyncio.get_running_loop()
        self._request = request
        self._expect = expect
        self.opened = loop.create_future()

    def _handshake_data(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HANDSHAKE:
                self._refused("handshake response too long")
            return
        lines = self._head[:end].decode("latin-1").split("\r\n")
        rest = bytes(self._head[end + 4:])
        self._head.clear()
        status = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(status) < 2 or status[1] != "101":
            self._refused(f"server answered {' '.join(status[1:]) or lines[0]!r}")
        elif headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in [
                t.strip().lower() for t in headers.get("connection", "").split(",")]:
            self._refused("server did not upgrade to websocket")
        elif headers.get("sec-websocket-accept") != self._expect:
            self._refused("wrong Sec-WebSocket-Accept")
        else:
            self.state = OPEN
            self.endpoint._add(self)
            assert self.opened is not None
            if not self.opened.done():
                self.opened.set_result(None)
            if rest:
                self.data_received(rest)

    def _refused(self, reason: str) -> None:
        assert self.opened is not None
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(reason))
        self._discard = True
        self.transport.close()


class WebSocketEndpoint:
    """What listeners and clients share: subscribers, sessions, sending, heartbeat."""

    #: Frames this endpoint sends are masked (a client's).
    masked = False

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE, max_queue: int = DEFAULT_MAX_QUEUE,
                 write_limit: int = DEFAULT_WRITE_LIMIT,
                 heartbeat: float | None = DEFAULT_HEARTBEAT,
                 close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
                 origins: tuple[str, ...] | list[str] = ()):
        self.default_origins = frozenset(normalize_origin(o) for o in origins)
        self.origins = self.default_origins
        self._origin_lists: dict[object, frozenset[str]] = {}
        self.default_max_size = max_size
        self.max_size = max_size
        self.max_queue = max_queue
        self.write_limit = write_limit
        self.heartbeat = heartbeat
        self.close_timeout = close_timeout
        self.sessions: dict[str, _Connection] = {}
        self._owners: dict[object, tuple[Any, ...]] = {}
        self._sizes: dict[object, int] = {}
        self._on_message: tuple[MessageCallback, ...] = ()
        self._on_event: tuple[EventCallback, ...] = ()
        self._on_state: tuple[StateCallback, ...] = ()
        self._reporters: tuple[ReportCallback, ...] = ()
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self.closed = True

    @property
    def where(self) -> str:
        """The path or URL, for log lines."""
        raise NotImplementedError

    def start(self) -> None:
        """Open (again, after :meth:`close`): serve the path, or start connecting."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close every session and stop serving or connecting; :meth:`start` reopens."""
        raise NotImplementedError

    # -- subscribers ----------------------------------------------------------------------------

    def subscribe(self, owner: object, on_message: MessageCallback | None = None,
                  on_event: EventCallback | None = None, *,
                  on_state: StateCallback | None = None, report: ReportCallback | None = None,
                  max_size: int | None = None, origins: list[str] | None = None) -> None:
        """Register ``owner`` as a user of the endpoint (a sender needs no callback) and route
        incoming messages, connect/disconnect events, client states and failures to it.
        ``max_size`` raises the endpoint's message limit to at least this; ``origins`` adds
        browser origins allowed to connect (listeners)."""
        self._owners[owner] = (on_message, on_event, on_state, report)
        if max_size is not None:
            self._sizes[owner] = max_size
        if origins:
            self._origin_lists[owner] = frozenset(normalize_origin(o) for o in origins)
        self._rebuild()

    def unsubscribe(self, owner: object) -> None:
        """Stop routing to ``owner``; the endpoint stays open (see :meth:`release`)."""
        self._owners.pop(owner, None)
        self._sizes.pop(owner, None)
        self._origin_lists.pop(owner, None)
        self._rebuild()

    async def release(self, owner: object) -> None:
        """Unsubscribe ``owner`` and close the endpoint if nobody uses it any more."""
        self.unsubscribe(owner)
        if not self._owners:
            await self.close()

    def _rebuild(self) -> None:
        entries = list(self._owners.values())
        self._on_message = tuple(e[0] for e in entries if e[0] is not None)
        self._on_event = tuple(e[1] for e in entries if e[1] is not None)
        self._on_state = tuple(e[2] for e in entries if e[2] is not None)
        # Failures are mostly about what peers sent: receivers report them first.
        self._reporters = tuple(e[3] for e in sorted(entries, key=lambda e: e[0] is None)
                                if e[3] is not None)
        self.max_size = max(self._sizes.values(), default=self.default_max_size)
        self.origins = self.default_origins.union(*self._origin_lists.values())

    @property
    def users(self) -> int:
        """How many owners are subscribed."""
        return len(self._owners)

    # -- sending --------------------------------------------------------------------------------

    def send_to(self, session_id: Any, data: str | bytes) -> bool:
        """Send to one session; False if it is not (or no longer) connected here."""
        conn = self.sessions.get(session_id)
        if conn is None:
            return False
        return conn.send_frame(encode(data, self.masked))

    def broadcast(self, data: str | bytes) -> int:
        """Send to every session (the frame is encoded once); returns how many got it."""
        if not self.sessions:
            return 0
        if self.masked:  # a client's frames each carry their own mask
            return sum(conn.send_frame(encode(data, True)) for conn in list(self.sessions.values()))
        frame = encode(data)
        count = 0
        for conn in list(self.sessions.values()):
            try:
                if conn.send_frame(frame):
                    count += 1
            except Exception:  # one session's failure never stops the others' messages
                log.exception("websocket %s: sending to %s failed", self.where, conn.remote)
        return count

    def send(self, data: str | bytes, session_id: str | None = None) -> int:
        """Send to one session, or to every session when ``session_id`` is None."""
        if session_id is None:
            return self.broadcast(data)
        return 1 if self.send_to(session_id, data) else 0

    # -- what connections call ------------------------------------------------------------------

    def _dispatch(self, session_id: str, data: str | bytes) -> None:
        for callback in self._on_message:
            try:
                callback(session_id, data)
            except Exception:
                log.exception("websocket %s: a subscriber failed on a message", self.where)

    def _add(self, conn: _Connection) -> None:
        self.sessions[conn.id] = conn
        self._event(conn, "connect", {"remote": conn.remote})

    def _remove(self, conn: _Connection) -> None:
        if self.sessions.pop(conn.id, None) is None:
            return
        if conn.close_code == ABNORMAL:
            self._report(logging.INFO, f"session {conn.id} ({conn.remote}) lost: "
                         f"{conn.close_reason}")
        self._event(conn, "disconnect", {"remote": conn.remote, "code": conn.close_code,
                                         "reason": conn.close_reason})

    def _event(self, conn: _Connection, event: str, details: dict[str, Any]) -> None:
        details["count"] = len(self.sessions)
        for callback in self._on_event:
            try:
                callback(conn.id, event, details)
            except Exception:
                log.exception("websocket %s: a subscriber failed on %s of %s", self.where,
                              event, conn.remote)

    def _report(self, level: int, text: str) -> None:
        """Log a failure once: through the first receiving subscriber's reporter (a node logs it
        with its id), or this module's logger."""
        text = f"websocket {self.where}: {text}"
        if self._reporters:
            try:
                self._reporters[0](level, text)
                return
            except Exception:
                log.exception("websocket %s: reporter failed", self.where)
        log.log(level, text)

    # -- heartbeat ------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self.heartbeat and self._heartbeat_handle is None:
            self._heartbeat_handle = asyncio.get_running_loop().call_later(self.heartbeat,
                                                                           self._sweep)

    def _stop_heartbeat(self) -> None:
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None

    def _sweep(self) -> None:
        """Ping every session; drop those that stayed silent since the previous ping."""
        self._heartbeat_handle = None
        for conn in list(self.sessions.values()):
            if conn.state is not OPEN:
                continue
            if not conn.seen:
                conn.close_code = ABNORMAL
                conn.close_reason = f"no answer to a ping within {self.heartbeat:g}s"
                conn.abort()
            else:
                conn.seen = False
                conn.ping()
        self._start_heartbeat()

    async def close_sessions(self, code: int, reason: str) -> None:
        """Close every session (``code``, ``reason``) and wait until they are gone."""
        conns = list(self.sessions.values())
        for conn in conns:
            conn.close(code, reason)
        if conns:
            # Each connection aborts itself after close_timeout; this only waits for that.
            await asyncio.wait([c.done for c in conns], timeout=self.close_timeout + 1)


class WebSocketListener(WebSocketEndpoint):
    """The sessions of one path of the shared server (``server.add_websocket``)."""

    def __init__(self, server: Any, path: str, **limits: Any):
        super().__init__(**limits)
        self.server = server
        self.path = path
        self.start()

    @property
    def where(self) -> str:
        return self.path

    def start(self) -> None:
        """Serve the path (again, after a close). Idempotent."""
        if self.closed:
            self.server.add_websocket(self.path, self.handle, self)
            self.closed = False
        with contextlib.suppress(RuntimeError):  # no running loop: at the first session
            self._start_heartbeat()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer an upgrade request (§4.2) and serve the connection until it ends."""
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        remote = f"{peer[0]}:{peer[1]}" if peer else str(request.remote)
        headers = request.headers
        key = headers.get("Sec-WebSocket-Key", "")
        problem = None
        if request.method != "GET":
            problem = f"method {request.method}"
        elif "upgrade" not in [t.strip().lower() for t in headers.get("Connection", "")
                               .split(",")]:
            problem = "no 'Connection: upgrade'"
        elif not _valid_key(key):
            problem = "missing or invalid Sec-WebSocket-Key"
        elif headers.get("Sec-WebSocket-Version") != "13":
            self._report(logging.INFO, f"refused upgrade from {remote}: unsupported version")
            raise web.HTTPUpgradeRequired(headers={"Sec-WebSocket-Version": "13"},
                                          text="WebSocket version 13 required")
        if problem is not None:
            self._report(logging.INFO, f"refused upgrade from {remote}: {problem}")
            raise web.HTTPBadRequest(text=f"bad websocket upgrade: {problem}")
        if self.closed or transport is None or transport.is_closing():
            raise web.HTTPNotFound()
        origin = headers.get("Origin")
        if not origin_allowed(origin, request.host, self.origins | self.server.origins):
            self._report(logging.WARNING, f"refused upgrade from {remote}: origin {origin!r} "
                         "is not allowed")
            raise web.HTTPForbidden(text="origin not allowed")
        self._start_heartbeat()
        response = web.StreamResponse(status=101, headers={
            "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Accept": _accept(key)})
        await response.prepare(request)
        conn = _Connection(self, remote, client=False)
        conn.transport = transport
        conn.state = OPEN
        self._add(conn)
        # From here on aiohttp feeds the connection's bytes to ``conn`` (any that came with
        # the request right away).
        request.protocol.set_parser(conn)  # type: ignore[arg-type]
        try:
            await asyncio.shield(conn.done)
        except asyncio.CancelledError:  # the server is shutting down
            conn.abort()
            raise
        return response

    async def close(self) -> None:
        """Stop serving the path and close every session (1001, going away)."""
        if not self.closed:
            self.closed = True
            self.server.remove(self)
        self._stop_heartbeat()
        await self.close_sessions(GOING_AWAY, "server closing")


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.encode(), validate=True)) == 16
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False


class WebSocketClient(WebSocketEndpoint):
    """One outgoing connection to ``url`` (ws:// or wss://), re-established after a failure
    or a close with exponential backoff (``min_backoff`` doubling up to ``max_backoff``).

    State changes go to subscribers' ``on_state``: ``connecting``, ``connected``,
    ``disconnected`` (with the close code and reason), ``error`` (why connecting failed). The
    first failure of a series is reported once; retries stay quiet until a connection succeeds.
    """

    masked = True

    def __init__(self, url: str, *, min_backoff: float = 0.5, max_backoff: float = 30.0,
                 open_timeout: float = DEFAULT_OPEN_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None,
                 on_state: Callable[[str], None] | None = None, **limits: Any):
        super().__init__(**limits)
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
        self.url = url
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.open_timeout = open_timeout
        self.ssl_context = ssl_context
        self.on_state = on_state
        self.state = "disconnected"
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: _Connection | None = None

    @property
    def where(self) -> str:
        return self.url

    def start(self) -> None:
        """Start connecting (again, after a close). Idempotent."""
        self.closed = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        backoff = self.min_backoff
        failing = False
        while True:
            self._state("connecting", "")
            try:
                conn = await self._open()
            except (OSError, TimeoutError, HandshakeError, ssl.SSLError) as exc:
                detail = str(exc) or type(exc).__name__
                self._state("error", detail)
                if not failing:
                    self._report(logging.WARNING, f"cannot connect: {detail}; retrying")
                    failing = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if failing:
                self._report(logging.INFO, "connected again")
                failing = False
            backoff = self.min_backoff
            self._conn = conn
            self.connected.set()
            self._start_heartbeat()
            self._state("connected", "")
            try:
                await asyncio.shield(conn.done)
            finally:
                self._conn = None
                self.connected.clear()
                self._stop_heartbeat()
            self._state("disconnected", f"{conn.close_code} {conn.close_reason}".strip())
            await asyncio.sleep(backoff)

    async def _open(self) -> _Connection:
        parts = urlsplit(self.url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        conn = _Connection(self, self.url, client=True)
        conn.start_handshake(request, _accept(key))
        context = (self.ssl_context or ssl.create_default_context()) if secure else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.open_timeout):
                await loop.create_connection(lambda: conn, parts.hostname, port, ssl=context)
                assert conn.opened is not None
                await conn.opened
        except BaseException:
            conn.abort()
            opened = conn.opened
            if opened is not None and opened.done() and not opened.cancelled():
                opened.exception()  # retrieved: the caller gets the exception raised here
            raise
        return conn

    def _state(self, state: str, detail: str) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(f"{state}: {detail}" if detail else state)
        for callback in self._on_state:
            try:
                callback(state, detail)
            except Exception:
                log.exception("websocket %s: a subscriber failed on state %s", self.url, state)

    async def close(self) -> None:
        """Close the connection (1000) and stop reconnecting."""
        self.closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._stop_heartbeat()
        await self.close_sessions(NORMAL, "")
        self.state = "disconnected"
