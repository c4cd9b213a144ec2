"""``catch``: receive the errors that nodes of this flow report with a
message (docs/design/runtime.md)."""

from __future__ import annotations

import textwrap
from typing import Any

from flowengine import Node
from flowengine import schema as s


class CatchNode(Node):
    type = "catch"
    category = "common"
    inputs = 0
    description = ("Sends on the messages whose handling failed in the nodes of its scope, with "
                   "msg.error = {message, source: {id, type, name, count}, type, stack}. "
                   "`scope: all` (default) covers every node of the flow (or of the subflow "
                   "instance it is in); `group` the nodes of its group and of the groups inside "
                   "it; a list of ids only those; `uncaught: true` only errors that no other "
                   "catch node handled. Errors that no catch node inside a subflow instance "
                   "handles reach the flow holding it, as errors of the instance.")
    example = textwrap.dedent("""\
        on-error:
          type: catch
          scope: [process-offer, save-stats]
          wires: [reply-error]
        """)
    schema = s.obj({
        "scope": {"anyOf": [{"enum": ["all", "group"]},
                            {"type": "array", "items": {"type": "string", "x-node-ref": True}}]},
        "uncaught": s.boolean(False, "Only errors no other catch node handled."),
    })
    schema["properties"]["scope"].update({"default": "all",
                                          "description": "`all`, `group` or a list of node ids."})

    def on_start(self) -> None:
        scope = self.config["scope"]
        self.runtime.watch_errors(self, None if scope == "all" else scope,
                                  self.config["uncaught"])

    def on_input(self, msg: dict[str, Any]) -> Any:
        return msg
