"""One WebSocket connection (RFC 6455) over an asyncio transport: frames in (§5.2) parsed
synchronously and handed to the endpoint in the same call, frames out written at once or, while
the peer reads slowly, queued under the endpoint's bounds (back-pressure), and the closing
handshake (§7). Server connections are fed by aiohttp once the listener answered the upgrade;
client connections do their opening handshake in :mod:`.client` first."""

from __future__ import annotations

import asyncio
import codecs
import enum
import itertools
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from .codec import (
    ABNORMAL,
    CLOSE,
    INVALID_DATA,
    NO_STATUS,
    NORMAL,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PING,
    POLICY,
    PONG,
    PROTOCOL_ERROR,
    TOO_BIG,
    apply_mask,
    build_frame,
    close_payload,
    valid_close_code,
)

if TYPE_CHECKING:
    from .endpoints import WebSocketEndpoint

DRAIN_POLL = 0.01  # seconds between checks of a congested session's transport buffer

_ids = itertools.count(1)
_UTF8 = codecs.getincrementaldecoder("utf-8")


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


class _Skip(Exception):
    """Raised by header checks: skip this frame's payload (closing, or too big)."""


class Connection(asyncio.Protocol):
    """One WebSocket connection over an asyncio transport.

    A client connection is the transport's protocol; a server connection's bytes come from
    aiohttp's request protocol through ``feed_data``/``feed_eof`` (aiohttp's payload-parser
    interface), so aiohttp keeps doing its own connection bookkeeping.
    """

    __slots__ = (
        "_backlog",
        "_close_handle",
        "_congested",
        "_decoder",
        "_discard",
        "_drain_handle",
        "_eof_sent",
        "_fragment_op",
        "_fragment_size",
        "_fragments",
        "_mask",
        "_needed",
        "_pending",
        "_pending_size",
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
        self._fragments: list[Any] = []  # bytes, or str as decoded so far for text
        self._fragment_op = 0  # opcode of the fragmented message being read, 0 if none
        self._fragment_size = 0
        self._decoder: codecs.IncrementalDecoder | None = None  # of a fragmented text message
        # Writer: frames waiting while the transport holds more than write_limit bytes.
        self._backlog: deque[bytes] = deque()
        self._congested = False
        self._drain_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._eof_sent = False

    # -- aiohttp's payload-parser interface (server side) --------------------------------------

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.data_received(data)
        return False, b""

    def feed_eof(self) -> None:
        self.connection_lost(None)

    # -- asyncio.Protocol (client side; the server side arrives here through feed_*) ------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

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
            self._end_fragments()
            raise _Skip

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        fin = first & 0x80
        if opcode in (OP_TEXT, OP_BINARY):
            if fin:
                self._message(opcode, payload)
            else:
                self._fragment_op = opcode
                self._decoder = _UTF8() if opcode == OP_TEXT else None
                self._fragment(payload, 0)
        elif opcode == OP_CONT:
            self._fragment(payload, fin)
        elif opcode == OP_PING:
            # Counted like any frame sent: a peer that pings without reading fills its queue.
            self.send_frame(build_frame(PONG, payload, self._mask))
        elif opcode == OP_CLOSE:
            self._close_frame(payload)
        # OP_PONG: nothing to do; ``seen`` was set when it arrived.

    def _fragment(self, payload: bytes, fin: int) -> None:
        """A frame of a fragmented message. Text is decoded as it arrives, so that invalid
        UTF-8 fails the connection at the frame holding it (§8.1), not at the last frame."""
        self._fragment_size += len(payload)
        decoder = self._decoder
        if decoder is None:
            self._fragments.append(payload)
        else:
            try:
                self._fragments.append(decoder.decode(payload, bool(fin)))
            except UnicodeDecodeError:
                self._end_fragments()
                self._fail(INVALID_DATA, "text message is not valid UTF-8", discard=False)
                return
        if fin:
            parts = self._fragments
            whole = "".join(parts) if decoder is not None else b"".join(parts)
            self._end_fragments()
            self.endpoint._dispatch(self.id, whole)

    def _end_fragments(self) -> None:
        self._fragments = []
        self._fragment_op = self._fragment_size = 0
        self._decoder = None

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
        if payload:  # the reason is checked first, as websockets does
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                self._fail(INVALID_DATA, "close reason is not valid UTF-8")
                return
            code = int.from_bytes(payload[:2], "big")
            if not valid_close_code(code):
                self._fail(PROTOCOL_ERROR, f"invalid close code {code}")
                return
        if self.state is OPEN:
            # The peer closes first: answer with its code (§5.5.1), then end the connection.
            self.state = CLOSING
            self.close_code, self.close_reason = code, reason
            self._backlog.clear()
            self._write(build_frame(CLOSE, close_payload(code, reason), self._mask), force=True)
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
        self._write(build_frame(PING, b"", self._mask))

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
        self._write(build_frame(CLOSE, close_payload(code, reason), self._mask), force=True)
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

    def _handshake_data(self, data: bytes) -> None:
        """Bytes that came before the connection was OPEN: only a client connection reads a
        handshake response (:class:`.client.ClientConnection`)."""
        raise NotImplementedError
