"""Where each context scope lives on disk (Node-RED `context/localfilesystem.js`,
docs/reference/nodered-runtime.md §3.4).

Layout, relative to the store directory::

    global/global.json          scope "global"
    <flow>/flow.json            scope "<flow>"
    <flow>/<node_id>.json       scope "<node_id>:<flow>"

Names are percent-encoded so that any node id or flow name gives one safe file
name and the mapping can be reversed when the store loads:

- characters other than ``A-Z a-z 0-9 _ -`` and ``.`` become ``%XX`` (UTF-8 bytes),
  so ``/``, ``\\``, ``:`` and ``%`` itself can never escape or collide;
- a leading ``.`` is encoded, so no name is ``.``, ``..`` or a hidden file;
- names that would clash with the fixed names (a node called ``flow``, a flow
  called ``global``) get their first character encoded; the check ignores case so
  the layout also holds on case-insensitive file systems.

Known limit: two ids that differ only in letter case map to the same file on a
case-insensitive file system (macOS, Windows defaults).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote

from flowengine.context.store import GLOBAL_SCOPE

FLOW_FILE = "flow"
"""Base name of a flow's own context file (``<flow>/flow.json``)."""
SUFFIX = ".json"

_SAFE = re.compile(r"[A-Za-z0-9_.-]")


def _quote_char(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def encode_name(name: str, reserved: str) -> str:
    """Encode one id as a file-name component that can never equal ``reserved``."""
    if not name:
        raise ValueError("context scope has an empty node id or flow name")
    out = [ch if _SAFE.fullmatch(ch) else _quote_char(ch) for ch in name]
    if name[0] == "." or name.lower() == reserved:
        out[0] = _quote_char(name[0])
    return "".join(out)


def decode_name(component: str) -> str:
    """Reverse :func:`encode_name`."""
    return unquote(component, encoding="utf-8", errors="strict")


def scope_to_relpath(scope: str) -> PurePosixPath:
    """Relative file path for a scope id. Raises ``ValueError`` for an empty part."""
    if scope == GLOBAL_SCOPE:
        return PurePosixPath(GLOBAL_SCOPE, GLOBAL_SCOPE + SUFFIX)
    # Node ids never contain ":" (flow names are checked by the manager), so the
    # first ":" separates the node id from the flow name.
    node_id, sep, flow = scope.partition(":")
    if not sep:
        return PurePosixPath(encode_name(scope, GLOBAL_SCOPE), FLOW_FILE + SUFFIX)
    return PurePosixPath(encode_name(flow, GLOBAL_SCOPE), encode_name(node_id, FLOW_FILE) + SUFFIX)


def relpath_to_scope(directory: str, filename: str) -> str | None:
    """Scope id for ``<directory>/<filename>``, or ``None`` if it is not a context file."""
    if not filename.endswith(SUFFIX) or len(filename) == len(SUFFIX):
        return None
    base = filename[: -len(SUFFIX)]
    if directory == GLOBAL_SCOPE:
        return GLOBAL_SCOPE if base == GLOBAL_SCOPE else None
    flow = decode_name(directory)
    if base == FLOW_FILE:
        return flow
    return f"{decode_name(base)}:{flow}"
