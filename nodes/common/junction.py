"""``junction``: a wiring point that passes messages straight through (Node-RED's junction)."""

from __future__ import annotations

import textwrap
from typing import Any

from flowengine import Node
from flowengine import schema as s


class JunctionNode(Node):
    type = "junction"
    category = "common"
    description = ("Passes every message on unchanged: a point where wires meet or fan out, "
                   "kept so that imported Node-RED flows keep their shape.")
    example = textwrap.dedent("""\
        fan-out:
          type: junction
          wires: [log, store, notify]
        """)
    schema = s.obj({})

    def on_input(self, msg: dict[str, Any]) -> dict[str, Any]:
        return msg
