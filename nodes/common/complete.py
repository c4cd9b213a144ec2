"""``complete``: receive the messages that the listed nodes finished (Node-RED's complete)."""

from __future__ import annotations

import textwrap

from flowengine import Node
from flowengine import schema as s


class CompleteNode(Node):
    type = "complete"
    category = "common"
    inputs = 0
    description = ("Sends a copy of each message that a node in `scope` finished handling, with "
                   "msg.complete = {source: {id, type, name}}. A node finishes a message when "
                   "its handler returns without error (or, for nodes that finish later, such "
                   "as delay, when they say so). Nodes wired directly from this one are left "
                   "out of its scope.")
    example = textwrap.dedent("""\
        saved:
          type: complete
          scope: [save-stats]
          wires: [next-round]
        """)
    schema = s.obj({"scope": s.node_ref(many=True, description="Ids of the watched nodes.")},
                   required=["scope"])

    def on_start(self) -> None:
        wired = {i for out in self.wired_ids for i in out}
        self.runtime.watch_complete(self, [i for i in self.config["scope"] if i not in wired])
