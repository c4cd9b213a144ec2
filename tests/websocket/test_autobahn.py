"""Autobahn-style protocol cases against the echo flow (websocket-in wired to websocket-out) on
a real socket on 127.0.0.1: framing, pings and pongs, reserved bits and opcodes, fragmentation
with control frames interleaved, UTF-8 (valid and invalid, split across fragments), close codes
and reasons, and the size limit. Each case sends its frames (one write each, some byte by byte),
then a normal close, and compares every frame the server sends back until it closes the TCP
connection. Numbers in the case names follow the Autobahn TestSuite's sections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from rawws import RawWebSocket
from wsmodel import raw_frame

from flowengine.testing import FlowHarness

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

LIMIT = 70_000  # the websocket-in node's max_size: above the 64-bit length form's threshold
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x81, 0x82, 0x00, 0x88, 0x89, 0x8A
FIN = 0x80


def close(code: int | None, reason: bytes = b"") -> bytes:
    return raw_frame(CLOSE, b"" if code is None else code.to_bytes(2, "big") + reason)


def echo(payload: bytes, first: int = TEXT) -> tuple[int, bytes]:
    return first, payload


def closed(code: int | None) -> tuple[int, bytes]:
    return CLOSE, b"" if code is None else code.to_bytes(2, "big")


BYTE_BY_BYTE = object()  # marks the next frame to be written one byte at a time
KOSME = "κόσμε".encode()  # Autobahn 6.2's text: 2-byte sequences
# Invalid UTF-8 (Autobahn 6.3-6.21): a stray continuation byte, an overlong form, a surrogate,
# a code point above U+10FFFF, a truncated sequence at the end.
INVALID_UTF8 = [b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xe2\x82"]
VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000,
                     4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1012 + 4, 1100, 2000, 2999, 5000, 65535]

# name -> (what the client sends, what the server answers). Each case is followed by a normal
# close, answered with 1000 unless the server closed before.
CASES: dict[str, tuple[list[Any], list[tuple[int, bytes]]]] = {
    # 1: framing, the three length forms.
    **{f"1.1 text of {n} bytes": ([raw_frame(TEXT, b"*" * n)], [echo(b"*" * n)])
       for n in (1, 125, 126, 127, 65535, 65536)},
    # (websocket-out sends nothing for an empty string, as Node-RED: the pong shows it was read)
    "1.1 empty text": ([raw_frame(TEXT, b""), raw_frame(PING, b"read")], [(PONG, b"read")]),
    "1.2 binary": ([raw_frame(BINARY, bytes(range(256)))], [echo(bytes(range(256)), BINARY)]),
    "1.x 64-bit length form for a short frame": (
        [raw_frame(TEXT, b"short", long_length=True)], [echo(b"short")]),
    # 2: pings and pongs.
    "2.1 empty ping": ([raw_frame(PING, b"")], [(PONG, b"")]),
    "2.3 binary ping of 125 bytes": ([raw_frame(PING, bytes(range(125)))],
                                     [(PONG, bytes(range(125)))]),
    "2.5 ping of 126 bytes": ([raw_frame(PING, bytes(126))], [closed(1002)]),
    "2.6 ping written byte by byte": ([BYTE_BY_BYTE, raw_frame(PING, b"slow")],
                                      [(PONG, b"slow")]),
    "2.7 unsolicited pong": ([raw_frame(PONG, b"x"), raw_frame(TEXT, b"after")],
                             [echo(b"after")]),
    "2.10 ten pings": ([raw_frame(PING, b"%d" % i) for i in range(10)],
                       [(PONG, b"%d" % i) for i in range(10)]),
    # 3: reserved bits (no extension negotiated).
    **{f"3.{i} RSV {bit:#x} after a message": (
        [raw_frame(TEXT, b"ok"), raw_frame(TEXT | bit, b"rsv"), raw_frame(PING, b"no")],
        [echo(b"ok"), closed(1002)]) for i, bit in enumerate((0x40, 0x20, 0x10), 1)},
    # 4: reserved opcodes.
    **{f"4 opcode {op}": ([raw_frame(FIN | op, b"x"), raw_frame(TEXT, b"no")], [closed(1002)])
       for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)},
    # 5: fragmentation.
    "5.1 fragmented ping": ([raw_frame(0x09, b"a"), raw_frame(FIN, b"b")], [closed(1002)]),
    "5.2 fragmented pong": ([raw_frame(0x0A, b"a"), raw_frame(FIN, b"b")], [closed(1002)]),
    "5.3 text in two fragments": ([raw_frame(0x01, b"frag"), raw_frame(FIN, b"ment")],
                                  [echo(b"fragment")]),
    "5.6 ping between fragments": (
        [raw_frame(0x01, b"frag"), raw_frame(PING, b"p"), raw_frame(FIN, b"ment")],
        [(PONG, b"p"), echo(b"fragment")]),
    "5.8 pong between fragments": (
        [raw_frame(0x02, b"a"), raw_frame(PONG, b"p"), raw_frame(CONT, b"b"),
         raw_frame(FIN, b"c")], [echo(b"abc", BINARY)]),
    "5.15 many 1-byte fragments, pings between": (
        [raw_frame(0x01, b"x"), *[f for _ in range(20) for f in
                                  (raw_frame(PING, b""), raw_frame(CONT, b"y"))],
         raw_frame(FIN, b"z")], [*[(PONG, b"")] * 20, echo(b"x" + b"y" * 20 + b"z")]),
    "5.9 continuation without a message": ([raw_frame(FIN, b"orphan")], [closed(1002)]),
    "5.10 new message inside a fragmented one": (
        [raw_frame(0x01, b"a"), raw_frame(TEXT, b"b")], [closed(1002)]),
    "5.x empty fragments": ([raw_frame(0x01, b""), raw_frame(CONT, b""), raw_frame(FIN, b"z")],
                            [echo(b"z")]),
    # 6: UTF-8.
    "6.2 valid text split at every byte": (
        [raw_frame(0x01, KOSME[:1]), *[raw_frame(CONT, KOSME[i:i + 1])
                                       for i in range(1, len(KOSME) - 1)],
         raw_frame(FIN, KOSME[-1:])], [echo(KOSME)]),
    "6.x 4-byte character split across two fragments": (
        [raw_frame(0x01, "😀".encode()[:2]), raw_frame(FIN, "😀".encode()[2:])],
        [echo("😀".encode())]),
    **{f"6.x invalid UTF-8 {bad!r}": ([raw_frame(TEXT, bad)], [closed(1007)])
       for bad in INVALID_UTF8},
    **{f"6.4 invalid UTF-8 {bad!r} in a first fragment fails at once": (
        # The ping after the bad fragment is not answered: the session closed at that frame.
        [raw_frame(0x01, bad + b"x"), raw_frame(PING, b"late"), raw_frame(FIN, b"end")],
        [closed(1007)]) for bad in INVALID_UTF8[:4]},
    "6.4 invalid sequence completed by a later fragment": (
        [raw_frame(0x01, b"\xf4"), raw_frame(PING, b"p"), raw_frame(FIN, b"\x90\x80\x80")],
        [(PONG, b"p"), closed(1007)]),
    # 7: closing.
    "7.1 data after the close is not read": (
        [close(1000), raw_frame(TEXT, b"late"), raw_frame(PING, b"late")], [closed(1000)]),
    "7.3 close without a status": ([close(None)], [closed(None)]),
    "7.3 close with a 1-byte payload": ([raw_frame(CLOSE, b"\x03")], [closed(1002)]),
    "7.3 close with a 123-byte reason": ([close(1000, b"r" * 123)], [closed(1000)]),
    "7.5 close reason not UTF-8": ([close(1000, b"\xff")], [closed(1007)]),
    "7.x close inside a fragmented message": ([raw_frame(0x01, b"half"), close(3000)],
                                              [closed(3000)]),
    **{f"7.7 close code {code}": ([close(code)], [closed(code)]) for code in VALID_CLOSE_CODES},
    **{f"7.9 close code {code}": ([close(code)], [closed(1002)])
       for code in INVALID_CLOSE_CODES},
    # 9: the size limit (the node's max_size), single frame and fragmented.
    "9.x message of exactly max_size": ([raw_frame(BINARY, bytes(LIMIT))],
                                        [echo(bytes(LIMIT), BINARY)]),
    "9.x frame over max_size": ([raw_frame(BINARY, bytes(LIMIT + 1)),
                                 raw_frame(TEXT, b"no")], [closed(1009)]),
    "9.x fragments over max_size": (
        [raw_frame(0x02, bytes(LIMIT // 2)), raw_frame(PING, b"p"),
         raw_frame(CONT, bytes(LIMIT // 2)), raw_frame(FIN, b"!")], [(PONG, b"p"), closed(1009)]),
    # Masking (§5.1): a client must mask.
    "x unmasked client frame": ([raw_frame(TEXT, b"plain", key=None)], [closed(1002)]),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def port() -> AsyncIterator[int]:
    flow = {"flow": "autobahn", "settings": {"http": {"port": 0, "host": "127.0.0.1"}},
            "nodes": {"in": {"type": "websocket-in", "path": "/ws", "max_size": LIMIT,
                             "wires": ["out"]},
                      "out": {"type": "websocket-out", "path": "/ws"}}}
    async with FlowHarness.from_dict(flow) as h:
        yield h.runtime.http.port


async def exchange(port: int, sends: list[Any], expected: int) -> list[tuple[int, bytes]]:
    """Send the case's frames, read ``expected`` frames (or up to a close), send a normal
    close, and read on until the server ends the connection. A close frame's payload is cut to
    its code. (Echoes go through the flow: the close waits for them.)"""
    ws = await RawWebSocket.open(port, "/ws")
    assert ws.status == 101
    byte_by_byte = False
    for item in sends:
        if item is BYTE_BY_BYTE:
            byte_by_byte = True
            continue
        chunks = [item[i:i + 1] for i in range(len(item))] if byte_by_byte else [item]
        for chunk in chunks:
            ws.writer.write(chunk)
            await ws.writer.drain()
            if byte_by_byte:
                await asyncio.sleep(0.002)
        byte_by_byte = False
    received: list[tuple[int, bytes]] = []
    try:
        while len(received) < expected and (not received or received[-1][0] != CLOSE):
            first, payload = await ws.read_frame(timeout=5)
            received.append((first, payload[:2] if first == CLOSE else payload))
        ws.writer.write(close(1000))
        while True:
            first, payload = await ws.read_frame(timeout=5)
            received.append((first, payload[:2] if first == CLOSE else payload))
    except (asyncio.IncompleteReadError, ConnectionResetError):  # the server closed TCP
        pass
    finally:
        ws.writer.close()
    return received


@pytest.mark.parametrize("name", CASES)
async def test_case(port: int, name: str) -> None:
    sends, answers = CASES[name]
    if answers[-1][0] != CLOSE:
        answers = [*answers, closed(1000)]
    assert await exchange(port, sends, len(answers) - 1) == answers
