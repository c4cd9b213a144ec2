"""``comment``: documentation inside a flow; does nothing."""

from __future__ import annotations

from flowengine import Node
from flowengine import schema as s


class CommentNode(Node):
    type = "comment"
    category = "common"
    inputs = 0
    outputs = 0
    description = "A note in the flow file: `name` and `info`. It has no wires and does nothing."
    example = "note:\n  type: comment\n  name: Signaling\n  info: Routes browser messages.\n"
    schema = s.obj({"info": s.string("", "Free text.")})
