"""``kurento-client``: put the connected Kurento client on the message and pass it on.

As the seed application's ``kurento-client-node``: the next nodes (usually function nodes) find
a :class:`~flowengine.kurento.KurentoClient` in ``msg["kurento"]`` (the property is configurable)
and create pipelines and endpoints with it::

    pipeline = await msg["kurento"].create("MediaPipeline")

The client is the ``kurento-server`` node's shared one (one per URL for the whole runtime), so
passing it along costs nothing; message cloning shares it rather than copying it. A failed
connection is a node error (catch nodes get it; the text names the URL); the node's status shows
whether the server is connected.
"""

from __future__ import annotations

import textwrap
from typing import Any, cast

from flowengine import Node, compile_path
from flowengine import schema as s
from flowengine.config_nodes import KurentoServer


class KurentoClientNode(Node):
    type = "kurento-client"
    category = "kurento"
    description = ("Attaches the connected Kurento client of a kurento-server to the message "
                   "(msg.kurento unless `property` says otherwise) and passes the message on, "
                   "so that function nodes can create pipelines and endpoints with "
                   "`await msg['kurento'].create('MediaPipeline')`. Connects (and starts the "
                   "embedded media server) when needed; a failed connection is an error for "
                   "catch nodes, naming the server's URL. The status shows whether the server "
                   "is connected.")
    example = textwrap.dedent("""\
        get-kurento:
          type: kurento-client
          server: kms
          wires: [create-pipeline]
        """)
    schema = s.obj({
        "server": s.config_ref("kurento-server", description="The media server."),
        "property": s.path("kurento", "The message property that receives the client."),
    }, required=["server"])

    def configure(self, config: dict[str, Any]) -> None:
        self._property = compile_path(config["property"], "property")
        self._server: KurentoServer | None = None

    def on_start(self) -> None:
        # Config nodes have started by now (and the loader checked the reference's type).
        server = cast(KurentoServer, self.runtime.get_node(self.config["server"]))
        self._server = server
        server.shared_status.attach(self)

    def on_close(self, removed: bool) -> None:
        if self._server is not None:
            self._server.shared_status.detach(self)

    async def on_input(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self._server is not None
        client = await self._server.client()
        self._property.set(msg, client, msg)
        return msg
