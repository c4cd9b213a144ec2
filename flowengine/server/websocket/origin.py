"""Which browser pages may open a websocket: ``Origin`` normalized as browsers send it and
compared with the serving host and an allow-list (the listeners and ``/admin/events``)."""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(origin: str) -> str:
    """An origin as browsers send it (``scheme://host[:port]``, lower case, no default port),
    or the text unchanged (e.g. ``*`` or ``null``) when it is not a URL."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return origin
    if not parts.scheme or not parts.hostname:
        return origin.strip().lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origin_allowed(origin: str | None, host: str | None, allowed: set[str] | frozenset[str]
                   ) -> bool:
    """Whether a websocket upgrade with this ``Origin`` may proceed: no Origin (not a browser),
    the serving host (``host``: the request's Host header, compared by name and port), or one
    of ``allowed`` (normalized origins; ``"*"`` allows any)."""
    if origin is None or "*" in allowed:
        return True
    if normalize_origin(origin) in allowed:
        return True
    try:
        parts = urlsplit(origin.strip().lower())
        served = urlsplit("//" + (host or "").strip().lower())
        origin_port, served_port = parts.port, served.port
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname or parts.hostname != served.hostname:
        return False
    return (origin_port or default) == (served_port or default)

