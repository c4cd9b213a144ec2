"""A config node's status shown on the nodes that use it.

Config nodes have no place of their own on the canvas, so Node-RED shows a connection's state
(an mqtt-broker's, say) as the status of every node using it. A config node owns a
:class:`SharedStatus`; each user node attaches itself when it starts and detaches when it
closes, and from then on sees every status the config node shows, starting with the current one.
"""

from __future__ import annotations

from typing import Any

from flowengine.node import Node

REASON_MAX = 60  # characters of a failure reason worth showing in a status text


def shorten(text: str, limit: int = REASON_MAX) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: a status is one short line."""
    return text if len(text) <= limit else text[:limit] + "…"


class SharedStatus:
    """The status of ``owner`` (a config node), mirrored on every attached node."""

    def __init__(self, owner: Node) -> None:
        self.owner = owner
        self.current: dict[str, Any] = {}
        self._users: list[Node] = []

    def attach(self, node: Node) -> None:
        """Show the owner's status on ``node`` from now on (the current one at once)."""
        self._users.append(node)
        if self.current:
            node.status(self.current)

    def detach(self, node: Node) -> None:
        """Stop showing the owner's status on ``node``."""
        if node in self._users:
            self._users.remove(node)

    def show(self, fill: str, shape: str, text: str) -> None:
        """Set the status of the owner and of every attached node; an empty text clears it."""
        self.current = {"fill": fill, "shape": shape, "text": text} if text else {}
        self.owner.status(self.current)
        for node in self._users:
            node.status(self.current)
