"""The flow view at ``/admin/``: the running flows drawn as Node-RED's editor draws them, with
live status and counters, a debug sidebar, inject buttons and each node's configuration.

The page (``static/``) is served by the admin API (``flowengine.server.admin``) and reads only
the admin API: ``/admin/view`` (:mod:`.model`: what to draw), ``/admin/nodes`` (states and
counters), ``/admin/events?counters=1`` (debug output, status, errors, reloads and, from
:mod:`.live`, counters), ``/admin/source/{id}`` (:mod:`.source`: a node's configuration,
secrets masked) and ``POST /admin/inject/{id}``. The layout is computed in the browser by elkjs
(ELK's layered algorithm, left to right), shipped in ``static/vendor/``.
"""

from __future__ import annotations

from aiohttp import web

from flowengine.server.admin_ui.assets import asset, page
from flowengine.server.admin_ui.live import CounterFeed, counters
from flowengine.server.admin_ui.model import flow_view
from flowengine.server.admin_ui.source import node_source

__all__ = ["CounterFeed", "asset", "counters", "flow_view", "node_source", "page", "wants_page"]


def wants_page(request: web.Request) -> bool:
    """A browser navigating to ``/admin/`` (it asks for HTML); API clients get JSON."""
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")
