"""Each node type's colour and icon in the flow view, as Node-RED's editor draws them.

The colours are those the Node-RED 5 core nodes register (``color`` in their ``.html`` files);
the icons are Node-RED's own SVGs, shipped under ``static/icons/`` with their licence. A type
not listed here (a plugin's) gets its category's colour and a generic icon.
"""

from __future__ import annotations

from typing import NamedTuple

from flowengine.registry import normalize_type


class Look(NamedTuple):
    color: str
    icon: str  # a file name under static/icons/


_NETWORK = "rgb(231, 231, 174)"
_WEBSOCKET = "rgb(215, 215, 160)"

#: Built-in node types, by normalized name (``link in`` is ``link-in``).
TYPES: dict[str, Look] = {
    "inject": Look("#a6bbcf", "inject.svg"),
    "debug": Look("#87a980", "debug.svg"),
    "complete": Look("#c0edc0", "alert.svg"),
    "catch": Look("#e49191", "alert.svg"),
    "status": Look("#94c1d0", "status.svg"),
    "link-in": Look("#dddddd", "link-out.svg"),
    "link-out": Look("#dddddd", "link-out.svg"),
    "link-call": Look("#dddddd", "link-call.svg"),
    "comment": Look("#ffffff", "comment.svg"),
    "junction": Look("#dddddd", ""),
    "function": Look("#fdd0a2", "function.svg"),
    "switch": Look("#e2d96e", "switch.svg"),
    "change": Look("#e2d96e", "swap.svg"),
    "range": Look("#e2d96e", "range.svg"),
    "template": Look("rgb(243, 181, 103)", "template.svg"),
    "delay": Look("#e6e0f8", "timer.svg"),
    "trigger": Look("#e6e0f8", "trigger.svg"),
    "split": Look("#e2d96e", "split.svg"),
    "join": Look("#e2d96e", "join.svg"),
    "json": Look("#debd5c", "parser-json.svg"),
    "http-in": Look(_NETWORK, "white-globe.svg"),
    "http-request": Look(_NETWORK, "white-globe.svg"),
    "http-response": Look(_NETWORK, "white-globe.svg"),
    "ip": Look(_NETWORK, "white-globe.svg"),
    "websocket-in": Look(_WEBSOCKET, "white-globe.svg"),
    "websocket-out": Look(_WEBSOCKET, "white-globe.svg"),
    "postgres": Look("#7fa7c9", "db.svg"),
    "postgres-server": Look("#7fa7c9", "db.svg"),
    "kurento-client": Look("#f0a35e", "bridge.svg"),
    "kurento-server": Look("#f0a35e", "bridge.svg"),
}

#: A plugin's type: the colour of its palette category.
CATEGORIES: dict[str, str] = {
    "common": "#dddddd", "function": "#e2d96e", "sequence": "#e2d96e", "parsers": "#debd5c",
    "network": _NETWORK, "storage": "burlywood", "kurento": "#f0a35e",
}
DEFAULT = Look("#dddddd", "cog.svg")


def look(node_type: str, category: str) -> Look:
    """The colour and icon of a node type of this palette category."""
    known = TYPES.get(normalize_type(node_type))
    if known is not None:
        return known
    return Look(CATEGORIES.get(category, DEFAULT.color), DEFAULT.icon)
