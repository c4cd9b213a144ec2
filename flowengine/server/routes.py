"""Route patterns for http-in nodes, in Express's syntax as Node-RED uses it.

``/users/:id`` captures ``id``; ``/files/*`` captures the rest of the path as ``0``; a trailing
slash is optional and case does not matter (Express's defaults). Patterns match the raw
(percent-encoded) path and captured values are decoded, as in Express, so ``/files/a%2Fb``
gives ``:name`` = ``a/b``. The table is mutable at run time (a reload adds and removes routes),
which is why it is ours rather than aiohttp's router, which freezes when the server starts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)|\*")
METHODS = ("get", "post", "put", "delete", "patch", "head", "options")


def compile_pattern(path: str) -> re.Pattern[str]:
    """A regex for an Express-style path (``/a/:b/*``)."""
    if not path.startswith("/"):
        path = "/" + path
    parts: list[str] = []
    last = 0
    wildcard = 0
    for match in _PARAM.finditer(path):
        parts.append(re.escape(path[last:match.start()]))
        if match.group(1):
            parts.append(f"(?P<{match.group(1)}>[^/]+)")
        else:
            parts.append(f"(?P<_w{wildcard}>.*)")
            wildcard += 1
        last = match.end()
    parts.append(re.escape(path[last:].rstrip("/")))
    return re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE)


@dataclass
class Route:
    method: str
    path: str
    pattern: re.Pattern[str]
    handler: Callable[..., Awaitable[Any]]
    owner: object


class RouteTable:
    """http-in routes: (method, path pattern) -> handler; first match wins, in order added."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: Callable[..., Awaitable[Any]],
            owner: object) -> Route:
        """Add a route; ``method`` is one of METHODS or ``all``."""
        method = method.lower()
        if method not in (*METHODS, "all"):
            raise ValueError(f"unknown HTTP method {method!r}")
        route = Route(method, path, compile_pattern(path), handler, owner)
        self._routes.append(route)
        return route

    def remove_owner(self, owner: object) -> None:
        """Remove every route added by ``owner`` (a node being closed)."""
        self._routes = [r for r in self._routes if r.owner is not owner]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request and its path parameters, or None."""
        method = method.lower()
        for route in self._routes:
            if route.method not in (method, "all") and not (
                    method == "head" and route.method == "get"):
                continue
            found = route.pattern.match(path)
            if found:
                params = {(k if not k.startswith("_w") else k[2:]): unquote(v)
                          for k, v in found.groupdict().items()}
                return route, params
        return None

    def allowed_methods(self, path: str) -> list[str]:
        """Methods that some route serves at ``path`` (for 405 answers)."""
        return sorted({r.method.upper() for r in self._routes if r.pattern.match(path)})

    def __len__(self) -> int:
        return len(self._routes)
