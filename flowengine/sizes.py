"""Sizes in flow files: a number of bytes, or a string with a unit (docs/flow-format.md)."""

from __future__ import annotations

import re

#: The size grammar: bytes, or a number with ``B``, ``kB``/``KB``, ``MB``, ``GB`` (powers of
#: 1000) or ``KiB``, ``MiB``, ``GiB`` (powers of 1024).
SIZE_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*([kKMG]i?B|B)?\s*$"
_SIZE = re.compile(SIZE_PATTERN)
_UNITS = {"": 1, "B": 1, "KB": 1000, "KIB": 1024, "MB": 1000 ** 2, "MIB": 1024 ** 2,
          "GB": 1000 ** 3, "GIB": 1024 ** 3}


def parse_size(value: int | str) -> int:
    """Bytes for ``1048576``, ``"1MiB"``, ``"64KiB"``, ``"500kB"`` (kB = 1000, KiB = 1024).

    Raises ValueError naming the accepted forms for anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a size such as 1048576, '64KiB' or '1MiB', got {value!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])
