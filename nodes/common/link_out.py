"""``link out``: the exit of a virtual wire, or the return of a link-call subroutine
(docs/reference/nodered-runtime.md §6).

``mode: link`` sets ``msg._event = "node:<id>"`` and delivers the message to every ``link in``
named in ``links``, in any loaded flow, cloning it for every target after the first as wires
do. ``mode: return`` hands the message back to the ``link call`` node that called the
subroutine: the last entry of ``msg._linkSource`` names it.
"""

from __future__ import annotations

import textwrap
from typing import Any

from flowengine import Node, clone_message
from flowengine import schema as s

LINK, RETURN = "link", "return"
MISSING_RETURN = "Missing return node information"  # Node-RED's link.errors.missingReturn


class LinkOutNode(Node):
    type = "link out"
    category = "common"
    outputs = 0
    description = ("Sends messages to the `link in` nodes listed in `links` (in any flow), as "
                   "if wired to them; sets `msg._event` to `node:<id>`. With `mode: return` it "
                   "instead returns the message to the `link call` node that called this "
                   "subroutine (found through `msg._linkSource`).")
    example = textwrap.dedent("""\
        to-handler:
          type: link out
          links: [handler-in]
        reply:
          type: link out
          mode: return
        """)
    schema = s.obj({
        "links": s.node_ref("link in", many=True, default=[],
                            description="Ids of the `link in` nodes to send to."),
        "mode": s.enum([LINK, RETURN], LINK,
                       "link: send to `links`; return: back to the calling `link call`."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._links: list[str] = list(config["links"])
        self._event = f"node:{self.id}"
        self._return = config["mode"] == RETURN

    def on_input(self, msg: dict[str, Any]) -> None:
        msg["_event"] = self._event  # in both modes, as Node-RED's link out
        if self._return:
            self._return_to_caller(msg)
            return
        runtime = self.runtime
        # Targets are looked up per message: a reload may have replaced (or stopped) them.
        targets = [node for node_id in self._links
                   if (node := runtime.get_node(node_id)) is not None]
        if not targets:
            return
        # Copies are made before anything is delivered, as on a wire with several targets.
        copies = [clone_message(msg) for _ in targets[1:]]
        runtime.deliver(targets[0], msg)
        for target, copy in zip(targets[1:], copies, strict=True):
            runtime.deliver(target, copy)
        self.msgs_out += len(targets)

    def _return_to_caller(self, msg: dict[str, Any]) -> None:
        sources = msg.get("_linkSource")
        if not isinstance(sources, list) or not sources:
            self.warn(MISSING_RETURN)
            return
        entry = sources.pop()
        caller = self.runtime.get_node(entry.get("node", "")) if isinstance(entry, dict) else None
        returner = getattr(caller, "return_message", None)
        if returner is None:
            self.warn(MISSING_RETURN)
            return
        self.msgs_out += 1
        returner(entry.get("id"), msg)
