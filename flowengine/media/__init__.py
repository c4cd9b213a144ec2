"""The embedded Kurento-protocol media server (aiortc and PyAV underneath).

Layout: :mod:`~flowengine.media.server` (WebSocket, connections),
:mod:`~flowengine.media.dispatch` (the protocol methods), :mod:`~flowengine.media.sessions`
(sessions, object registry, GC), :mod:`~flowengine.media.marshal` (parameter checks against
the kmd object model, :mod:`flowengine.kurento.model`, which the client shares),
:mod:`~flowengine.media.elements` (one module per Kurento class) and
:mod:`~flowengine.media.engine` (hubs, transcoding, aiortc and PyAV plumbing).

Run it with ``python -m flowengine.media`` or embed it::

    async with MediaServer(MediaServerSettings(port=0)) as server:
        ...  # server.url
"""

from flowengine.media.cli import main
from flowengine.media.server import MediaServer
from flowengine.media.settings import MediaServerSettings

__all__ = ["MediaServer", "MediaServerSettings", "main"]
