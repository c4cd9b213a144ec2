"""``websocket-out``: send messages to WebSocket peers (Node-RED's "websocket out").

``msg.payload`` is sent: a str as a text frame, bytes as a binary frame, anything else as text
(objects and arrays as JSON, numbers and booleans as JavaScript writes them). A message with a
``_session`` from websocket-in goes to that peer only (if it belongs to another endpoint, or the
peer is gone, it is dropped); without one it goes to every peer of the endpoint. With
``wholemsg`` the whole message minus ``_session`` is sent as JSON.
"""

from __future__ import annotations

import textwrap
from typing import Any

from flowengine import schema as s
from flowengine.js import json_dumps as dumps
from flowengine.js import to_string
from flowengine.websocket import ENDPOINT_FIELDS, WebSocketEndpointNode

_BYTES = (bytes, bytearray, memoryview)


class WebSocketOutNode(WebSocketEndpointNode):
    type = "websocket-out"
    category = "network"
    outputs = 0
    description = (
        "Sends msg.payload to WebSocket peers: to the peer in msg._session (set by "
        "websocket-in) when it belongs to this node's `path` or `url`, to every peer when the "
        "message has no _session. A str is sent as a text frame, bytes as a binary frame, "
        "anything else as JSON text. A message without payload (or with an empty string) "
        "sends nothing. `wholemsg` sends the whole message minus _session as JSON.")
    example = textwrap.dedent("""\
        reply:
          type: websocket-out
          path: /signaling
        """)
    schema = s.obj({
        **ENDPOINT_FIELDS,
        "wholemsg": s.boolean(False, "Send the whole message (minus _session) as JSON."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        super().configure(config)
        self._wholemsg = bool(config["wholemsg"])

    async def on_start(self) -> None:
        await self.attach(on_event=self._on_event)

    def on_input(self, msg: dict[str, Any]) -> None:
        # Synchronous and task-free: the frame is written (or queued) before this returns.
        if self._wholemsg:
            data: str | bytes = dumps({k: v for k, v in msg.items() if k != "_session"})
        elif "payload" not in msg:
            return  # WS-05 in docs/reference/nodered-cases.md: nothing to send
        else:
            payload = msg["payload"]
            if type(payload) is str:
                data = payload
            elif isinstance(payload, _BYTES):
                data = bytes(payload)
            elif payload is None or isinstance(payload, dict | list | tuple):
                data = dumps(payload)  # RED.util.ensureString: JSON.stringify for objects
            else:
                data = to_string(payload)
        if data == "":
            return  # Node-RED sends nothing for an empty string (``if (payload)``)
        endpoint = self._endpoint
        if endpoint is None:
            return
        session = msg.get("_session")
        if type(session) is dict and session.get("type") == "websocket":
            # WS-07: an id from another endpoint (or a peer that left) matches nothing here.
            endpoint.send_to(session.get("id"), data)
        else:
            endpoint.broadcast(data)

    def _on_event(self, session_id: str, event: str, details: dict[str, Any]) -> None:
        if self._where_key == "path":
            self.connection_status(event, details["count"])
