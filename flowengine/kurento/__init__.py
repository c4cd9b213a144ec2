"""Kurento protocol support: the shared sans-I/O protocol layer, the asyncio client and errors.

The shared layer, used by the client and by the embedded media server (:mod:`flowengine.media`)
alike, loads neither the client nor ``websockets``: :mod:`flowengine.kurento.jsonrpc` (framing,
ids, session id tracking, events), :mod:`flowengine.kurento.errors` (:class:`KurentoError`, the
code tables and the client's exceptions) and :mod:`flowengine.kurento.model` (the Kurento object
model, declared once).

:class:`KurentoClient` (:mod:`flowengine.kurento.client`) with its media object proxies
(:mod:`flowengine.kurento.proxies`) talks to any Kurento-protocol server;
:class:`EmbeddedMediaServer` (:mod:`flowengine.kurento.embedded`) runs ours as a child process.
They are imported on first use of their names here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flowengine.kurento.errors import (
    KurentoConnectionError,
    KurentoError,
    KurentoTimeoutError,
    SessionLostError,
)

if TYPE_CHECKING:
    from flowengine.kurento.client import ClientEvent, ClientState, KurentoClient
    from flowengine.kurento.embedded import EmbeddedMediaServer, EmbeddedMediaServerError
    from flowengine.kurento.proxies import MediaObject, Subscription

_LAZY = {
    "ClientEvent": "client",
    "ClientState": "client",
    "KurentoClient": "client",
    "EmbeddedMediaServer": "embedded",
    "EmbeddedMediaServerError": "embedded",
    "MediaObject": "proxies",
    "Subscription": "proxies",
}
"""Names whose modules load the client's dependencies: imported when first asked for."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ClientEvent",
    "ClientState",
    "EmbeddedMediaServer",
    "EmbeddedMediaServerError",
    "KurentoClient",
    "KurentoConnectionError",
    "KurentoError",
    "KurentoTimeoutError",
    "MediaObject",
    "SessionLostError",
    "Subscription",
]
