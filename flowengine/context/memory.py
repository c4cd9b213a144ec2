"""The in-memory context store (Node-RED `context/memory.js`,
docs/reference/nodered-runtime.md §3.2-§3.4).

Always present and the default store. Values are kept by reference, nothing is
persisted: all memory context is lost when the process stops.
"""

from __future__ import annotations

from flowengine.context.store import DictStore


class MemoryStore(DictStore):
    """Context store that keeps values in a dict, by reference (no copies).

    Unbounded by design, like Node-RED's: context holds whatever the flows put there.
    """
