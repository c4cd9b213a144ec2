"""Fuzzing the frame parser: arbitrary bytes, valid client streams with bytes flipped, inserted
or cut, and complete frames with random first bytes, fed in arbitrary chunks, never raise out
of the connection and end the same way as in websockets (:mod:`wsmodel`). Bounded by count
(examples are small: a few seconds)."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsmodel import MAX_SIZE, agree, client_frames, ours, reference, streams

FUZZ = settings(max_examples=400, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.timeout(60)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid-looking stream with a few bytes changed, inserted or removed."""
    data = bytearray(draw(streams())[0])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=9))
        else:
            del data[at:at + draw(st.integers(1, 9))]
    return bytes(data)


@st.composite
def first_bytes_fuzzed(draw: st.DrawFn) -> bytes:
    """Complete frames whose first bytes (FIN, RSV, opcode) are random: nothing is left
    incomplete, so both sides judge every frame."""
    frames = draw(st.lists(client_frames(), min_size=1, max_size=6))
    for i in draw(st.lists(st.integers(0, len(frames) - 1), min_size=1, max_size=3)):
        frames[i] = bytes((draw(st.integers(0, 255)),)) + frames[i][1:]
    return b"".join(frames)


@FUZZ
@given(data=st.binary(max_size=512) | mutated() | first_bytes_fuzzed(),
       cuts=st.lists(st.integers(0, 2 ** 16), max_size=8))
def test_parser_survives_and_agrees_on_any_bytes(data: bytes, cuts: list[int]) -> None:
    assert agree(asyncio.run(ours(chunked(data, cuts), MAX_SIZE)), reference(data, MAX_SIZE))


@FUZZ
@given(length=st.integers(0, 2 ** 64 - 1), first=st.integers(0, 255),
       rest=st.binary(max_size=32))
def test_any_declared_length_is_refused_or_awaited_not_buffered(length: int, first: int,
                                                                rest: bytes) -> None:
    # A 64-bit length up to 2**64-1: refused at the header when too big (nothing buffered
    # past max_size), as websockets does.
    data = bytes((first, 0x80 | 127)) + length.to_bytes(8, "big") + b"\0\0\0\0" + rest
    outcome = asyncio.run(ours([data], MAX_SIZE))
    assert agree(outcome, reference(data, MAX_SIZE))
    if length > MAX_SIZE:
        assert outcome.close in (1002, 1009)
