"""A WebSocket client that behaves as badly as a test needs: it does the opening handshake by
hand (any headers, e.g. a foreign ``Origin``), then writes frames without reading, and reads
only when asked. A small receive buffer makes the server's buffers fill sooner."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

PING, PONG, CLOSE, TEXT = 0x89, 0x8A, 0x88, 0x81


def frame(first: int, payload: bytes) -> bytes:
    """A masked client frame (``first``: FIN and opcode)."""
    n = len(payload)
    if n < 126:
        head = bytes((first, n | 0x80))
    elif n < 65536:
        head = struct.pack("!BBH", first, 126 | 0x80, n)
    else:
        head = struct.pack("!BBQ", first, 127 | 0x80, n)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    """One TCP connection after the opening handshake (see :meth:`open`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 status: int, head: bytes):
        self.reader = reader
        self.writer = writer
        self.status = status
        self.head = head

    @classmethod
    async def open(cls, port: int, path: str, headers: dict[str, str] | None = None,
                   rcvbuf: int | None = None) -> RawWebSocket:
        """Connect to 127.0.0.1:``port`` and ask for an upgrade of ``path``; ``status`` is the
        answer's HTTP status (101 when upgraded)."""
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13",
                 *(f"{name}: {value}" for name, value in (headers or {}).items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return cls(reader, writer, int(head.split(b" ", 2)[1]), head)

    def send(self, first: int, payload: bytes) -> None:
        self.writer.write(frame(first, payload))

    def send_text(self, text: str) -> None:
        self.send(TEXT, text.encode())

    async def read_frame(self, timeout: float = 5) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first, await asyncio.wait_for(self.reader.readexactly(n), timeout)

    async def close_code(self, timeout: float = 10) -> int | None:
        """Read (and skip data) until the server's close frame: its code, or None when the
        server dropped the connection without one."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    first, payload = await self.read_frame(timeout)
                    if first & 0x0F == 8:
                        return int.from_bytes(payload[:2], "big")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    def abort(self) -> None:
        self.writer.transport.abort()
