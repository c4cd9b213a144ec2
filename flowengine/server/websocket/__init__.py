"""WebSocket endpoints shared by websocket-in and websocket-out nodes (RFC 6455).

A :class:`WebSocketListener` serves one path of the shared HTTP server and owns the sessions
(browsers) connected to it; a :class:`WebSocketClient` owns one outgoing connection to a URL,
re-established with exponential backoff. Both give nodes the same interface: ``subscribe`` to
incoming messages, connection events and state changes; ``send_to`` one session, ``broadcast`` to
all (or ``send``, which does either); ``release`` when a node closes, which closes the endpoint
once its last user is gone. An endpoint that was closed opens again on the next ``start``, so it
can stay in ``runtime.shared`` across reloads.

Why not aiohttp's ``WebSocketResponse``: it costs a future, a task switch and an ``await`` per
frame each way (a ``receive()`` loop and a writer task), which caps a flow's round trips well
below Node-RED's. Here aiohttp only routes the upgrade request; the opening handshake (§4.2.2) is
answered in :meth:`WebSocketListener.handle` and the connection's bytes go straight to a
:class:`Connection`, which parses frames (§5.2) synchronously and hands each message to the
subscribers in the same call. Sending writes the frame to the transport at once: one frame in is
one callback, one frame out one ``transport.write``; no task or future per frame.

Limits (constructor parameters; all per session unless said otherwise):

- ``max_size``: the largest message accepted, 1 MiB (several websocket-in nodes on one endpoint:
  the largest of their limits). A larger frame (or fragmented message) closes the session with
  1009 as soon as its header is read; its payload is skipped, never buffered.
- ``write_limit``: bytes the transport may hold unsent, 256 KiB. Past it the peer reads slower
  than the flow sends, and frames wait in the session's queue instead.
- ``max_queue``: frames waiting in that queue, 1024. A session whose queue overflows is closed
  with 1008 rather than buffering without bound. Memory per slow session is thus bounded by
  ``write_limit`` plus ``max_queue`` frames.
- ``heartbeat``: a ping to every session this often, 30 s (None: never). A session that sent
  nothing for a whole interval after a ping is dropped (the peer is gone without a FIN).
- ``close_timeout``: how long a closing handshake may take before the TCP connection is
  aborted, 2 s.

Pongs answering a peer's pings go through the same queue and bound as messages: a peer that
pings without reading is closed with 1008 once its queue is full, like any slow reader.

Text that has no UTF-8 form (a lone surrogate such as a ``"\ud800"`` JSON escape decodes to) is
sent with U+FFFD in its place, as a Node.js server sends it; a failure to send to one session
never stops a broadcast to the others.

Origin (listeners): a browser's upgrade request whose ``Origin`` is neither the serving host
(the request's ``Host``) nor one of the endpoint's ``origins`` is refused with 403, so a page on
another site cannot open the socket with the user's browser. ``"*"`` allows any origin; a
request without ``Origin`` (not from a browser) is accepted.

A failure of one session (a malformed or oversized frame, a full queue, a vanished peer) closes
that session only, with the close code of §7.4.1, and is reported once through the subscribers'
``report`` callback (the nodes log it with their id) naming the peer.
Text that is not UTF-8 closes the session with 1007 at the frame that holds it, also inside a
fragmented message (as Autobahn's strict cases expect).

The package, one module per part: :mod:`.codec` (frames out, opcodes, close codes, handshake
keys), :mod:`.connection` (frames in, back-pressure, closing), :mod:`.endpoints` (subscribers,
sending, heartbeat, the listener's upgrade), :mod:`.client` (the reconnecting client, its
handshake done by websockets' sans-I/O ``ClientProtocol``), :mod:`.origin` (the ``Origin``
check). Everything nodes and the server use is importable from here. tests/websocket verifies
the codec against websockets (differential and fuzz tests) and the protocol on a socket
(Autobahn-style cases).
"""

from .client import DEFAULT_OPEN_TIMEOUT, MAX_HANDSHAKE, ClientConnection, WebSocketClient
from .codec import (
    ABNORMAL,
    GOING_AWAY,
    INVALID_DATA,
    NO_STATUS,
    NORMAL,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    POLICY,
    PROTOCOL_ERROR,
    SHUTDOWN_REASON,
    TOO_BIG,
    encode,
    utf8,
)
from .connection import CLOSED, CLOSING, CONNECTING, OPEN, Connection, HandshakeError, State
from .endpoints import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_SIZE,
    DEFAULT_WRITE_LIMIT,
    EventCallback,
    MessageCallback,
    ReportCallback,
    StateCallback,
    WebSocketEndpoint,
    WebSocketListener,
)
from .origin import normalize_origin, origin_allowed

__all__ = [
    "ABNORMAL", "CLOSED", "CLOSING", "CONNECTING", "DEFAULT_CLOSE_TIMEOUT", "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_QUEUE", "DEFAULT_MAX_SIZE", "DEFAULT_OPEN_TIMEOUT", "DEFAULT_WRITE_LIMIT",
    "GOING_AWAY", "INVALID_DATA", "MAX_HANDSHAKE", "NORMAL", "NO_STATUS", "OPEN", "OP_BINARY",
    "OP_CLOSE", "OP_CONT", "OP_PING", "OP_PONG", "OP_TEXT", "POLICY", "PROTOCOL_ERROR",
    "SHUTDOWN_REASON", "TOO_BIG", "ClientConnection", "Connection", "EventCallback",
    "HandshakeError", "MessageCallback", "ReportCallback", "State", "StateCallback",
    "WebSocketClient", "WebSocketEndpoint", "WebSocketListener", "encode", "normalize_origin",
    "origin_allowed", "utf8",
]
