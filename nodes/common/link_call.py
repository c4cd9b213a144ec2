"""``link call``: call a ``link in`` ... ``link out (mode: return)`` subroutine and wait for its
answer (docs/reference/nodered-runtime.md §6).

Each call pushes ``{"id": <random hex>, "node": <this node's id>}`` onto ``msg._linkSource`` (a
list, so subroutines may call subroutines) and delivers the message itself, not a copy, to the
target ``link in``. The return ``link out`` pops that entry and calls :meth:`return_message`,
which sends the message on this node's output. A call with no return within ``timeout`` is
reported as the catchable error ``timeout``, carrying the message as it was when called.
"""

from __future__ import annotations

import asyncio
import textwrap
from dataclasses import dataclass
from random import getrandbits
from typing import Any

from flowengine import ConfigError, Node, NodeError, clone_message
from flowengine import schema as s

STATIC, DYNAMIC = "static", "dynamic"
LINK_IN = "link in"  # the type of the nodes called


@dataclass
class _PendingCall:
    """A call waiting for its return: the message as it was called, and the timeout timer."""

    msg: dict[str, Any]
    timer: asyncio.TimerHandle


class LinkCallNode(Node):
    type = "link call"
    category = "common"
    auto_done = False  # a message is done when its subroutine returns, not when it is sent off
    description = ("Calls a subroutine: delivers the message to a `link in` (the one in `links`, "
                   "or with `link_type: dynamic` the one `msg.target` names by id or name) and "
                   "sends on what a `link out` with `mode: return` hands back. Without a "
                   "return within `timeout`, reports the catchable error `timeout`.")
    example = textwrap.dedent("""\
        lookup-user:
          type: link call
          links: [user-lookup-in]
          timeout: 5s
          wires: [use-user]
        """)
    schema = s.obj({
        "links": {**s.node_ref("link in", many=True, default=[],
                               description="The target `link in` (one id) for a static call."),
                  "maxItems": 1},
        "link_type": s.enum([STATIC, DYNAMIC], STATIC,
                            "static: call `links`; dynamic: call the `link in` that "
                            "`msg.target` names (id, else name: same flow first)."),
        "timeout": s.duration(30, "How long to wait for the subroutine's return."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._dynamic = config["link_type"] == DYNAMIC
        links = config["links"]
        if not self._dynamic and not links:
            raise ConfigError("a static link call needs its target link in node in 'links'",
                              "links")
        self._target: str | None = links[0] if links else None
        self._timeout = config["timeout"]
        if self._timeout <= 0:
            raise ConfigError("timeout must be greater than 0", "timeout")
        self._pending: dict[str, _PendingCall] = {}

    def on_input(self, msg: dict[str, Any]) -> None:
        target = self._find_target(msg)  # raises NodeError: reported with msg, to catch nodes
        sources = msg.get("_linkSource")
        if not isinstance(sources, list):
            sources = msg["_linkSource"] = []
        # The copy a timeout reports is taken before this call's entry is pushed (Node-RED's
        # timeout message shows the _linkSource the message arrived with).
        snapshot = clone_message(msg)
        call_id = f"{getrandbits(112):028x}"
        sources.append({"id": call_id, "node": self.id})
        timer = asyncio.get_running_loop().call_later(self._timeout, self._expire, call_id)
        self._pending[call_id] = _PendingCall(snapshot, timer)
        self.runtime.deliver(target, msg)

    def return_message(self, call_id: str | None, msg: dict[str, Any]) -> None:
        """Called by a returning ``link out``: send ``msg`` on and finish the call ``call_id``.

        The ``link out`` has already popped this call's entry from ``msg._linkSource``; the list
        is removed once empty. A return that arrives after its timeout is still sent on, as
        Node-RED does, but the message was already finished by the timeout error.
        """
        sources = msg.get("_linkSource")
        if isinstance(sources, list) and not sources:
            del msg["_linkSource"]
        pending = self._pending.pop(call_id, None) if call_id is not None else None
        self.send(msg)
        if pending is not None:
            pending.timer.cancel()
            self.done(msg)

    def on_close(self, removed: bool) -> None:
        for pending in self._pending.values():
            pending.timer.cancel()
        self._pending.clear()

    def _expire(self, call_id: str) -> None:
        pending = self._pending.pop(call_id, None)
        if pending is not None:
            self.error("timeout", pending.msg)

    def _find_target(self, msg: dict[str, Any]) -> Node:
        """The ``link in`` to call: the static one, or the one ``msg.target`` names."""
        runtime = self.runtime
        wanted = msg.get("target") if self._dynamic else self._target
        if isinstance(wanted, str):
            node = runtime.get_node(wanted)
            if node is not None and node.type == LINK_IN:
                return node
            if self._dynamic:
                named = runtime.find_nodes(type=LINK_IN, name=wanted)
                # A unique name in this flow wins; else a name unique among all flows.
                local = [n for n in named if n.flow.name == self.flow.name]
                for candidates in (local, named):
                    if len(candidates) == 1:
                        return candidates[0]
                    if len(candidates) > 1:
                        raise NodeError(f"Multiple link-in nodes named '{wanted}' found")
        shown = "undefined" if wanted is None else wanted
        raise NodeError(f"target link-in node '{shown}' not found")
