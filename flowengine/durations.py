"""Durations in flow files: a number of seconds, or a string with a unit (docs/flow-format.md)."""

from __future__ import annotations

import re

#: JavaScript's longest timer (2^31 - 1 ms), in seconds: the bound for a delay a message sets.
MAX_WAIT = 2_147_483.647

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
#: The one duration grammar: a number of seconds, or a number with a unit (``ms s m h``).
DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$"
_DURATION = re.compile(DURATION_PATTERN)


def parse_duration(value: float | int | str) -> float:
    """Seconds for ``5``, ``0.5``, ``"250ms"``, ``"5s"``, ``"2m"``, ``"1h"``.

    Raises ValueError naming the accepted forms for anything else (a negative number too).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or ""]
    raise ValueError(f"expected a duration (seconds, or '250ms', '5s', '2m', '1h'), got {value!r}")
