"""``status``: receive status changes of nodes in this flow (Node-RED's status node)."""

from __future__ import annotations

import textwrap

from flowengine import Node
from flowengine import schema as s


class StatusNode(Node):
    type = "status"
    category = "common"
    inputs = 0
    description = ("Sends {status: {fill, shape, text, source: {id, type, name}}} when a node "
                   "in its scope (`all` nodes of the flow by default, or a list of ids) sets "
                   "its status. Nodes it is wired to directly are left out of its scope, so "
                   "it cannot feed on itself.")
    example = textwrap.dedent("""\
        kms-state:
          type: status
          scope: [kms-client]
          wires: [show-state]
        """)
    schema = s.obj({
        "scope": {"anyOf": [{"const": "all"}, {"type": "array",
                                               "items": {"type": "string", "x-node-ref": True}}],
                  "default": "all",
                  "description": "`all` or a list of node ids."},
    })

    def on_start(self) -> None:
        scope = self.config["scope"]
        if scope == "all":
            self.runtime.watch_status(self, None)
        else:
            wired = {i for out in self.wired_ids for i in out}
            self.runtime.watch_status(self, [i for i in scope if i not in wired])
