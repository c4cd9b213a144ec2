"""The RFC 6455 frame codec: opcodes, close codes, frames out, and the checks both ends of the
opening handshake and the closing handshake rely on. No I/O and no state; frames in are parsed
by :class:`.connection.Connection`, where parsing is one loop over
the received bytes (a parser object here would cost a call per frame)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct

try:  # the C implementation; websockets ships a pure-Python fallback
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

__all__ = ["apply_mask"]  # re-exported: the parser unmasks with the same function

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack

# Opcodes (§5.2) and the first header byte of unfragmented frames (FIN set).
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
TEXT, BINARY, CLOSE, PING, PONG = 0x81, 0x82, 0x88, 0x89, 0x8A

# Close codes (§7.4.1).
NORMAL, GOING_AWAY, PROTOCOL_ERROR = 1000, 1001, 1002
SHUTDOWN_REASON = "server shutting down"  # the close reason when the runtime stops
NO_STATUS, ABNORMAL, INVALID_DATA, POLICY, TOO_BIG = 1005, 1006, 1007, 1008, 1009


def build_frame(first: int, payload: bytes, mask: bool) -> bytes:
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
        return build_frame(TEXT, utf8(data), mask)
    return build_frame(BINARY, bytes(data), mask)


def close_payload(code: int, reason: str) -> bytes:
    """A close frame's payload (§5.5.1): no status is an empty payload. The reason is cut to
    fit a control frame (125 bytes) on a character boundary: the peer checks it is UTF-8."""
    if code == NO_STATUS:
        return b""
    text = utf8(reason)[:123].decode(errors="ignore").encode()
    return code.to_bytes(2, "big") + text


def valid_close_code(code: int) -> bool:
    """Whether a peer may send ``code`` in a close frame (§7.4)."""
    # 1004-1006 and 1015 are reserved, never sent; 3000-4999 belong to applications.
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                    1014) or 3000 <= code <= 4999


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (§4.2.2, item 5.4)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def valid_key(key: str) -> bool:
    """Whether ``key`` is a Sec-WebSocket-Key: base64 of 16 bytes (§4.2.1, item 7)."""
    try:
        return len(base64.b64decode(key.encode(), validate=True)) == 16
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
