"""The page and its files, shipped in this package (``static/``): nothing comes from a CDN.

``static/vendor/elk.bundled.js`` is elkjs (the Eclipse Layout Kernel compiled to JavaScript,
EPL-2.0, licence beside it), installed from the npm registry and committed as built;
``static/icons/`` are Node-RED's node icons (Apache-2.0, licence beside them).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
    ".md": "text/plain; charset=utf-8", "": "text/plain; charset=utf-8",  # LICENSE
}
# The page talks only to its own server; no other site may frame it (its buttons inject).
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page() -> web.StreamResponse:
    """The flow view (``GET /admin/``)."""
    return web.FileResponse(STATIC / "index.html",
                            headers={**HEADERS, "Content-Type": CONTENT_TYPES[".html"]})


def asset(parts: tuple[str, ...]) -> web.StreamResponse | None:
    """A file under ``static/`` (``/admin/ui/<parts>``); None when there is no such file."""
    try:
        path = STATIC.joinpath(*parts).resolve()
    except (OSError, ValueError):  # a NUL byte, a too long name
        return None
    if not path.is_relative_to(STATIC) or not path.is_file():
        return None
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type is None:
        return None
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": content_type})
