"""Our codec against websockets' (``websockets.frames``) on generated frames, the way the
websockets project checks its own: frames we encode parse back in websockets to the same
opcode and payload (unmasked: byte for byte the same), and streams of client frames, valid or
not and cut at any byte, give the same messages, pongs and close code from our parser as from
websockets' sans-I/O ServerProtocol (:mod:`wsmodel`). Bounded: a few hundred examples each."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame, Opcode
from wsmodel import MAX_SIZE, ours, parse_frames, raw_frame, reference, streams

from flowengine.server.websocket import encode
from flowengine.server.websocket.codec import PING, PONG, build_frame, close_payload

BOUNDED = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Sizes around the three length forms (7-bit, 16-bit, 64-bit) and the 125-byte control limit.
sizes = st.sampled_from([0, 1, 124, 125, 126, 127, 65535, 65536, 65537]) | st.integers(0, 300)


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    n = draw(sizes)
    seed = draw(st.binary(min_size=1, max_size=64))
    return (seed * (n // len(seed) + 1))[:n]


def without_surrogates(text: str) -> str:
    """What a text frame carries for ``text``: each lone surrogate as U+FFFD (as Node.js)."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


texts = st.text() | st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010))


@BOUNDED
@given(data=texts | payloads(), mask=st.booleans())
def test_encoded_frames_parse_back_in_websockets(data: str | bytes, mask: bool) -> None:
    encoded = encode(data, mask)
    [frame] = parse_frames(encoded, mask=mask)
    assert frame.fin
    if isinstance(data, str):
        assert frame.opcode is Opcode.TEXT and frame.data.decode() == without_surrogates(data)
    else:
        assert frame.opcode is Opcode.BINARY and frame.data == data
    if not mask:  # masked frames differ by their random key only
        assert encoded == Frame(frame.opcode, frame.data).serialize(mask=False)


@BOUNDED
@given(first=st.sampled_from([PING, PONG]),
       payload=st.binary(max_size=125) | st.integers(0, 125).map(bytes),
       mask=st.booleans())
def test_control_frames_parse_back_in_websockets(first: int, payload: bytes, mask: bool
                                                 ) -> None:
    encoded = build_frame(first, payload, mask)
    [frame] = parse_frames(encoded, mask=mask)
    assert (frame.fin, frame.opcode.value, frame.data) == (True, first & 0x0F, payload)
    frame.check()  # a valid control frame for websockets
    if not mask:  # the shortest length form, as §5.2 requires (websockets does not check it)
        assert encoded == frame.serialize(mask=False)


@BOUNDED
@given(code=st.sampled_from([1000, 1001, 1002, 1007, 1008, 1009, 1011, 3000, 4999]),
       reason=texts
       | st.tuples(st.text(max_size=3), st.integers(0, 20)).map(lambda t: t[0] + "é€😀" * t[1])
       | st.just("\ud800"))
def test_close_payloads_parse_in_websockets(code: int, reason: str) -> None:
    # Close.parse checks the code and that the reason is UTF-8: a reason cut at 123 bytes in
    # the middle of a character, or holding a lone surrogate, would fail here.
    close = Close.parse(close_payload(code, reason))
    assert close.code == code
    assert without_surrogates(reason).startswith(close.reason)
    assert len(close.reason.encode()) > min(len(without_surrogates(reason).encode()), 123) - 4


# -- streams of client frames -------------------------------------------------------------------

@settings(BOUNDED, max_examples=600)
@given(stream=streams())
def test_parser_matches_websockets(stream: tuple[bytes, list[bytes]]) -> None:
    data, chunks = stream
    assert asyncio.run(ours(chunks, MAX_SIZE)) == reference(data, MAX_SIZE)


def test_the_model_sees_pongs_and_closes() -> None:
    # The differential compares non-empty outcomes: the model is not blind.
    ping = raw_frame(PING, b"hi")
    hello = raw_frame(0x81, b"hello")
    close = raw_frame(0x88, (4000).to_bytes(2, "big"))
    outcome = reference(ping + hello + close, MAX_SIZE)
    assert (outcome.pongs, outcome.messages, outcome.close) == ([b"hi"], ["hello"], 4000)
