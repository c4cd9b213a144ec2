"""Node-RED import: ``flowrun import flows.json -o DIR``
(docs/design/flow-format.md, "Node-RED import").

:func:`import_nodered` turns a Node-RED export into flow files, one per tab, and returns an
:class:`ImportReport` naming what was converted and what needs a look. See
:mod:`flowengine.importer.core` for the steps and :mod:`flowengine.importer.converters` for the
node-by-node mapping.
"""

from flowengine.importer.core import import_nodered
from flowengine.importer.report import ImportReport, NodeNote

__all__ = ["ImportReport", "NodeNote", "import_nodered"]
