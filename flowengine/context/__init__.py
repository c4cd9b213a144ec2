"""Node, flow and global context with pluggable stores (runtime design "Context").

- :class:`Context`: what a node uses (``get``/``set``/``delete``/``keys``).
- :class:`ContextManager`: builds the stores from settings and hands out contexts.
- :class:`ContextStore`: the store interface; :class:`MemoryStore` and
  :class:`FileStore` implement it.
"""

from flowengine.context.context import Context
from flowengine.context.filestore import FileStore
from flowengine.context.manager import ContextManager
from flowengine.context.memory import MemoryStore
from flowengine.context.store import ContextStore

__all__ = ["Context", "ContextManager", "ContextStore", "FileStore", "MemoryStore"]
