"""Subflow instances at run time (docs/flow-format.md, "Subflows"; Node-RED's ``Subflow.js``).

The loader gives every instance of a subflow its own copies of the subflow's nodes, in a scope
of their own (:class:`~flowengine.node.FlowInfo` with the instance's ``env`` and flow context),
and two nodes that stand for the instance:

- :class:`SubflowInstance`, the node the flow wires to and from: it forwards what reaches its
  input to the subflow's input nodes (the copies wired to the subflow's outputs send straight
  to where the instance's outputs are wired); its status is the instance's status, which status
  nodes of the flow holding it see; errors and statuses that nothing inside the instance
  handles reach that flow as the instance's (``Runtime.report_error``/``set_status``);
- :class:`SubflowStatus`, the subflow's status output: what its nodes send there becomes the
  instance's status.

As in Node-RED, neither completes the messages it handles.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flowengine.jsvalues import inspect as js_inspect
from flowengine.node import Node
from flowengine.schema import env_block

#: Node-RED's status text limit for values that are not status objects.
STATUS_TEXT_LIMIT = 32


class SubflowInstance(Node):
    """The instance node of a subflow (one class per subflow, made by the loader)."""

    type = "subflow"
    category = "subflow"
    description = "An instance of a subflow."
    auto_done = False
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "env": env_block("Values of the subflow's env variables for this instance."),
        },
        "additionalProperties": False,
    }
    #: The subflow's name (set on each subflow's class).
    subflow: ClassVar[str] = ""

    def on_input(self, msg: dict[str, Any]) -> Any:
        return msg  # the runtime's wires of an instance lead to the subflow's input nodes

    def on_close(self, removed: bool) -> None:
        if self.last_status:
            self.status({})


class SubflowStatus(Node):
    """A subflow's status output: sets the status of the instance it belongs to."""

    type = "subflow-status"
    category = "subflow"
    description = "The status output of a subflow instance."
    outputs = 0
    auto_done = False

    def on_input(self, msg: dict[str, Any]) -> None:
        instance = self.runtime.get_node(self.flow.instance or "")
        if instance is None:
            return
        if "payload" in msg:
            payload = msg["payload"]
            if isinstance(payload, str):
                instance.status({"text": payload})
            elif isinstance(payload, dict) and (
                    not payload or {"text", "fill", "shape"} & payload.keys()):
                instance.status(payload)
            else:
                text = js_inspect(payload)
                if len(text) > STATUS_TEXT_LIMIT:
                    text = text[:STATUS_TEXT_LIMIT] + "..."
                instance.status({"text": text})
        elif isinstance(msg.get("status"), dict):
            instance.status(msg["status"])
