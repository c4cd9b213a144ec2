"""Messages: plain dicts with a ``_msgid``, and the cheap deep copy used on fan-out.

Node-RED clones a message for every wire after the first (docs/design/runtime.md, "Messages").
Copying walks ``dict``, ``list``, ``tuple`` and ``bytearray``; every other object (a Kurento
element, a connection, an HTTP request) is shared by reference, which is what makes ``msg["req"]``
and media objects safe to carry through a flow.
"""

from __future__ import annotations

from random import getrandbits
from typing import Any


def new_msgid() -> str:
    """A fresh 16-hex-digit message id, as Node-RED's ``RED.util.generateId``."""
    return f"{getrandbits(64):016x}"


def clone_message(value: Any) -> Any:
    """Deep-copy containers (dict, list, tuple, bytearray); share every other object."""
    t = type(value)
    if t is dict:
        return {k: _clone(v) for k, v in value.items()}
    return _clone(value)


def _clone(value: Any) -> Any:
    # Scalars are the common case: test the container types first by exact type (fast), then
    # fall back to isinstance for subclasses (e.g. OrderedDict), which are rare in messages.
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return value
    if t is dict:
        return {k: _clone(v) for k, v in value.items()}
    if t is list:
        return [_clone(v) for v in value]
    if t is tuple:
        return tuple(_clone(v) for v in value)
    if t is bytearray:
        return bytearray(value)
    if isinstance(value, dict):
        return t((k, _clone(v)) for k, v in value.items())
    if isinstance(value, list):
        return t(_clone(v) for v in value)
    return value
