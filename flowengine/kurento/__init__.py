"""Kurento protocol support: the asyncio client, the shared sans-I/O JSON-RPC layer and errors.

:class:`KurentoClient` (:mod:`flowengine.kurento.client`) with its media object proxies
(:mod:`flowengine.kurento.proxies`) talks to any Kurento-protocol server;
:class:`EmbeddedMediaServer` (:mod:`flowengine.kurento.embedded`) runs ours as a child process.
:mod:`flowengine.kurento.jsonrpc` (framing, ids, session id tracking, events) and
:mod:`flowengine.kurento.errors` (:class:`KurentoError` and the code tables) are shared by the
asyncio client and the embedded media server (:mod:`flowengine.media`).
"""

from flowengine.kurento.client import (
    ClientEvent,
    ClientState,
    KurentoClient,
    KurentoConnectionError,
    KurentoTimeoutError,
    SessionLostError,
)
from flowengine.kurento.embedded import EmbeddedMediaServer, EmbeddedMediaServerError
from flowengine.kurento.errors import KurentoError
from flowengine.kurento.proxies import MediaObject, Subscription

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
