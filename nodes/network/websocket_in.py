"""``websocket-in``: messages from WebSocket peers (Node-RED's "websocket in").

Listener mode (``path``) serves a path of the runtime's shared HTTP server; client mode (``url``)
connects to a ws:// or wss:// URL and reconnects with backoff. Every websocket-in and
websocket-out node on the same path (or URL) shares one endpoint
(:mod:`flowengine.server.websocket`) through ``runtime.shared``; the endpoint closes when its
last node closes.

Each frame becomes ``{payload, _session: {type: "websocket", id, path}}`` (``url`` instead of
``path`` in client mode): a text frame gives a str, a binary frame bytes. A websocket-out on the
same endpoint sends a message carrying that ``_session`` back to that peer only.

:class:`flowengine.websocket.WebSocketEndpointNode` is the part websocket-out shares: endpoint
lookup and the connection status.
"""

from __future__ import annotations

import textwrap
from typing import Any

from flowengine import schema as s
from flowengine.js import json_loads as loads
from flowengine.websocket import (
    DEFAULT_MAX_SIZE,
    ENDPOINT_FIELDS,
    GOING_AWAY,
    SHUTDOWN_REASON,
    WebSocketEndpointNode,
    WebSocketListener,
)


class WebSocketInNode(WebSocketEndpointNode):
    type = "websocket-in"
    category = "network"
    inputs = 0
    is_source = True
    description = (
        "Receives messages from WebSocket peers. With `path` it listens on the shared HTTP "
        "server (browsers connect to ws://host:port/path); with `url` it connects to a server "
        "and reconnects with backoff. Each frame becomes {payload, _session: {type: "
        "\"websocket\", id, path}} (text as a string, binary as bytes); a websocket-out on the "
        "same path or URL sends a message carrying that _session back to that peer only. "
        "`wholemsg` parses each text frame as a JSON message. `events` also sends "
        "{event: \"connect\"|\"disconnect\", _session, payload: {remote, code, reason}} when a "
        "peer comes or goes (when the runtime stops, the peers are closed with 1001 \"server "
        "shutting down\" first, so their disconnects reach the flow). A frame larger than "
        "`max_size` closes that peer's connection with code 1009; a malformed frame closes it "
        "with 1002; other peers carry on. A browser page from another site (an `Origin` that "
        "is neither this server's host nor in `origins`) is refused with 403.")
    example = textwrap.dedent("""\
        signaling-in:
          type: websocket-in
          path: /signaling
          events: true
          wires: [parse]
        """)
    schema = s.obj({
        **ENDPOINT_FIELDS,
        "wholemsg": s.boolean(False, "Parse each text frame as JSON and send the object as the "
                              "message (a frame that is not a JSON object becomes payload)."),
        "events": s.boolean(False, "Also send a message when a peer connects or disconnects: "
                            "{event, _session, payload: {remote, code, reason}}."),
        "max_size": s.size(DEFAULT_MAX_SIZE, "Largest message accepted. When several "
                           "websocket-in nodes share an endpoint, the largest limit applies."),
        "origins": {"type": "array", "items": {"type": "string"}, "default": [],
                    "description": "Listener mode: browser origins allowed "
                    "to connect besides the serving host's own (`https://app.example.org`; "
                    "`*`: any origin). Pages from other origins get 403, so a site a user "
                    "visits cannot use the user's browser to talk to this socket. Clients "
                    "that send no Origin (not browsers) are accepted. The `origins` setting "
                    "of `settings.http` adds origins for every websocket of the server."},
    })

    def configure(self, config: dict[str, Any]) -> None:
        super().configure(config)
        self._wholemsg = bool(config["wholemsg"])
        self._events = bool(config["events"])
        self._max_size = config["max_size"]
        self._origins = list(config.get("origins") or [])

    async def on_start(self) -> None:
        await self.attach(on_message=self._on_message, on_event=self._on_event,
                          max_size=self._max_size, origins=self._origins)

    async def on_close(self, removed: bool) -> None:
        endpoint = self._endpoint
        if self._events and not self.runtime.started and isinstance(endpoint,
                                                                    WebSocketListener):
            # The runtime stops: the peers are told (1001) while this node still listens, so
            # the flow gets their disconnect events and finishes what it does for a peer that
            # left (the runtime lets those messages drain before closing the other nodes).
            await endpoint.close_sessions(GOING_AWAY, SHUTDOWN_REASON)
        await super().on_close(removed)

    def _on_message(self, session_id: str, data: str | bytes) -> None:
        # The hot path: one call per frame, straight from the connection's parser.
        msg = _whole_message(data) if self._wholemsg and type(data) is str else {"payload": data}
        msg["_session"] = {"type": "websocket", "id": session_id,
                           self._where_key: self._where}
        self.send(msg)

    def _on_event(self, session_id: str, event: str, details: dict[str, Any]) -> None:
        if self._where_key == "path":
            self.connection_status(event, details["count"])
        if self._events:
            payload = {"remote": details["remote"]}
            if event == "disconnect":
                payload["code"] = details["code"]
                payload["reason"] = details["reason"]
            self.send({"event": event, "_session": self.session(session_id),
                       "payload": payload})


def _whole_message(text: str) -> dict[str, Any]:
    """Node-RED's wholemsg: a JSON object is the message; anything else is its payload."""
    try:
        value = loads(text)
    except ValueError:
        return {"payload": text}
    if type(value) is dict:
        return value
    return {"payload": value}
