"""An example flowengine node package: one node type, ``rate-meter``.

flowengine registers every :class:`flowengine.Node` subclass with a ``type`` defined in this
package's modules, through the ``flowengine.nodes`` entry point in ``pyproject.toml``.
"""

from flowengine_example_nodes.rate_meter import RateMeter

__all__ = ["RateMeter"]
