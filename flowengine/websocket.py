"""Public API: WebSocket endpoints for node types, server and client side.

The runtime's shared HTTP server accepts WebSocket peers on a path (:class:`WebSocketListener`);
:class:`WebSocketClient` connects to a ws:// or wss:// URL and reconnects with backoff; both
are a :class:`WebSocketEndpoint` that nodes subscribe to. :class:`WebSocketEndpointNode` is the
base of websocket-in and websocket-out (their ``path``/``url`` fields, :data:`ENDPOINT_FIELDS`):
it finds the endpoint shared by every node on the same path or URL and shows its state as the
node status. The endpoints live in :mod:`flowengine.server.websocket`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flowengine import schema as s
from flowengine.errors import ConfigError
from flowengine.node import Node
from flowengine.server.websocket import (
    DEFAULT_MAX_SIZE,
    GOING_AWAY,
    SHUTDOWN_REASON,
    WebSocketClient,
    WebSocketEndpoint,
    WebSocketListener,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ENDPOINT_FIELDS",
    "GOING_AWAY",
    "SHUTDOWN_REASON",
    "WebSocketClient",
    "WebSocketEndpoint",
    "WebSocketEndpointNode",
    "WebSocketListener",
]

ENDPOINT_FIELDS: dict[str, Any] = {
    "path": s.string(description="Listener mode: the path on the shared HTTP server, e.g. "
                     "/signaling.", minLength=1),
    "url": s.string(description="Client mode: connect to this ws:// or wss:// URL, "
                    "reconnecting with backoff (0.5 s doubling up to 30 s).",
                    pattern=r"^[wW][sS][sS]?://"),
}


class WebSocketEndpointNode(Node):
    """Base of websocket-in and websocket-out: finds the shared endpoint and shows its state as
    the node status (Node-RED's: "connected N" in green, "disconnected" in red)."""

    type = ""  # not a node type itself

    def configure(self, config: dict[str, Any]) -> None:
        path, url = config.get("path"), config.get("url")
        if (path is None) == (url is None):
            raise ConfigError("set either path (listen on the shared server) or url (connect "
                              "to a server), not both" if path is not None else
                              "missing websocket endpoint: set path (listen on the shared "
                              "server) or url (connect to a ws:// or wss:// URL)", "path")
        if path is not None:
            self._where_key = "path"
            self._where = path if path.startswith("/") else "/" + path
        else:
            parts = urlsplit(url)
            if not parts.hostname:
                raise ConfigError(f"no host in {url!r}", "url")
            self._where_key = "url"
            self._where = url
        self._endpoint: WebSocketEndpoint | None = None

    def session(self, session_id: str) -> dict[str, Any]:
        """The ``_session`` of a message from (or for) one peer of this endpoint."""
        return {"type": "websocket", "id": session_id, self._where_key: self._where}

    def endpoint(self) -> WebSocketEndpoint:
        """The shared listener or client of this node's path or URL."""
        runtime = self.runtime
        if self._where_key == "path":
            path = self._where
            return runtime.shared(("ws-listener", path),
                                  lambda: WebSocketListener(runtime.http, path))
        url = self._where
        return runtime.shared(("ws-client", url), lambda: WebSocketClient(url))

    async def attach(self, **callbacks: Any) -> WebSocketEndpoint:
        """Subscribe to the shared endpoint (with the status callbacks) and start it."""
        endpoint = self._endpoint = self.endpoint()
        endpoint.subscribe(self, on_state=self._on_state, report=self._report, **callbacks)
        endpoint.start()
        if isinstance(endpoint, WebSocketClient):
            if endpoint.state == "connected":
                self._on_state("connected", "")
            return endpoint
        server = self.runtime.http
        if (self.is_source or self.runtime.started) and not server.listening:
            # The runtime listens before starting sources only when a node used the server
            # by then; a flow whose only HTTP user is a source (or a reload adding the first
            # one) would otherwise never listen.
            await server.start()
        return endpoint

    async def on_close(self, removed: bool) -> None:
        if self._endpoint is not None:
            endpoint, self._endpoint = self._endpoint, None
            await endpoint.release(self)
        self.status({})

    def connection_status(self, event: str, count: int) -> None:
        """Status after a peer connected or went away (listener mode)."""
        if count > 0:
            self.status({"fill": "green", "shape": "dot", "text": f"connected {count}"})
        elif event == "disconnect":
            self.status({"fill": "red", "shape": "ring", "text": "disconnected"})

    def _on_state(self, state: str, detail: str) -> None:
        if state == "connected":
            self.status({"fill": "green", "shape": "dot", "text": "connected"})
        elif state == "connecting":
            self.status({"fill": "yellow", "shape": "ring", "text": "connecting"})
        elif state == "error":
            self.status({"fill": "red", "shape": "ring", "text": f"error: {detail}"[:64]})
        else:
            self.status({"fill": "red", "shape": "ring", "text": "disconnected"})

    def _report(self, level: int, text: str) -> None:
        if level >= logging.WARNING:
            self.warn(text)
        elif level >= logging.INFO:
            self.log(text)
        else:
            self.debug(text)
