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
                   "in its scope (`all` nodes of the flow, or of the subflow instance it is in, "
                   "by default; `group`: those of its group and the groups inside it; or a "
                   "list of ids) sets its status. Nodes it is wired to directly are left out of "
                   "its scope, so it cannot feed on itself. Statuses that nothing inside a "
                   "subflow instance hears reach the flow holding it, as statuses of the "
                   "instance (unless the subflow has a status output).")
    example = textwrap.dedent("""\
        kms-state:
          type: status
          scope: [kms-client]
          wires: [show-state]
        """)
    schema = s.obj({
        "scope": {"anyOf": [{"enum": ["all", "group"]},
                            {"type": "array", "items": {"type": "string", "x-node-ref": True}}],
                  "default": "all",
                  "description": "`all`, `group` or a list of node ids."},
    })

    def on_start(self) -> None:
        scope = self.config["scope"]
        if scope in ("all", "group"):
            self.runtime.watch_status(self, None if scope == "all" else scope)
        else:
            wired = {i for out in self.wired_ids for i in out}
            self.runtime.watch_status(self, [i for i in scope if i not in wired])
