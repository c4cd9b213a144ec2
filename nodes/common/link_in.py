"""``link in``: the entry point of a virtual wire (docs/reference/nodered-runtime.md §6).

``link out`` and ``link call`` nodes, in any loaded flow, name this node's id in their ``links``
and deliver messages to it as if it were wired; it passes each message on unchanged. A ``link
call`` may also find it by ``name`` (dynamic targets), so give subroutines a unique name.
"""

from __future__ import annotations

import textwrap
from typing import Any

from flowengine import Node
from flowengine import schema as s


class LinkInNode(Node):
    type = "link in"
    category = "common"
    description = ("Receives the messages of the `link out` and `link call` nodes that name it "
                   "in their `links` (from any flow) and passes them on unchanged. A dynamic "
                   "`link call` can also find it by `name`.")
    example = textwrap.dedent("""\
        handler-in:
          type: link in
          name: handle request
          wires: [handle]
        """)
    schema = s.obj({})

    def on_input(self, msg: dict[str, Any]) -> dict[str, Any]:
        return msg
