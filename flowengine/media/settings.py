"""Settings of the embedded media server: every limit and time in one documented place."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

PLAYER_ALLOW_ENV = "FLOWENGINE_PLAYER_ALLOW"
"""Environment variable with the default of ``player_allow`` (entries separated by commas or
spaces), so that a test or a deployment can allow an internal source for every media server it
starts, child processes included."""


def player_allow_from_env() -> tuple[str, ...]:
    """``player_allow`` as :data:`PLAYER_ALLOW_ENV` gives it (empty when unset)."""
    return split_list(os.environ.get(PLAYER_ALLOW_ENV, ""))


def split_list(text: str) -> tuple[str, ...]:
    """``"a, b c"`` -> ``("a", "b", "c")``."""
    return tuple(part for part in re.split(r"[\s,]+", text) if part)


@dataclass
class MediaServerSettings:
    """Configuration of :class:`flowengine.media.server.MediaServer`.

    Network:
        host, port: where the WebSocket listens (``port=0`` picks a free port).
        path: the WebSocket path, ``kurento`` as KMS; any ``?query`` is ignored.
        ice_addresses: local IP addresses offered as ICE host candidates. ``None`` means what
            aioice offers (every non-loopback interface); the default for a server listening
            on a loopback host is ``[host]`` (see :func:`default_ice_addresses`), so a local
            server never exposes media on other interfaces.

    Media:
        media_dir: where ``RecorderEndpoint`` may write and (for relative ``file://`` URIs)
            where ``PlayerEndpoint`` reads. Recorder URIs outside it are refused.
        player_schemes: URI schemes ``PlayerEndpoint`` accepts.
        player_hosts: if not ``None``, the only hosts http(s)/rtsp players may contact.
        player_allow: internal sources players may contact after all. By default an
            http(s)/rtsp(s) player whose host is, or resolves to, an address that is not
            public (loopback, private, link-local, shared, reserved) is refused, so that a
            client cannot make the server fetch from its own network (SSRF). Entries are IP
            addresses, networks (``10.1.0.0/16``) or host names (exact, any case; such a name
            is not resolved for the check). Default: the ``FLOWENGINE_PLAYER_ALLOW``
            environment variable (``127.0.0.1, cameras.lan``), else nothing.
        player_files_anywhere: whether ``file://`` players may read outside ``media_dir``.

    Sessions:
        gc_time: seconds a session without a connection survives before its objects are
            released (KMS: about 240-480 s; here a single, exact timeout).
        gc_interval: how often the collector looks (default: a quarter of ``gc_time``, at most
            30 s).
        request_cache_ttl: seconds a response is kept for duplicate ``(sessionId, id)``
            suppression (KMS: 20 s). ``0`` disables the cache.
        request_cache_size: at most this many cached responses (oldest dropped first).

    Limits (each bounds memory):
        max_frame_bytes: largest incoming WebSocket frame (an SDP is a few KB).
        max_concurrent_requests: requests of one connection executing at once; further frames
            wait in the socket (KMS: 10 worker threads).
        max_outgoing_frames: frames queued for one connection; a client that does not read
            that many is disconnected rather than let the queue grow.
        max_objects: objects the server holds at most (create answers 40009 beyond).
        media_queue_frames: per-reader media queue (frames); a slow reader loses the oldest.
    """

    host: str = "127.0.0.1"
    port: int = 8888
    path: str = "kurento"
    ice_addresses: list[str] | None = None
    media_dir: Path = field(default_factory=lambda: Path.cwd() / "media")
    player_schemes: tuple[str, ...] = ("file", "http", "https", "rtsp", "rtsps")
    player_hosts: tuple[str, ...] | None = None
    player_allow: tuple[str, ...] = field(default_factory=player_allow_from_env)
    player_files_anywhere: bool = False
    gc_time: float = 240.0
    gc_interval: float | None = None
    request_cache_ttl: float = 20.0
    request_cache_size: int = 10_000
    max_frame_bytes: int = 4 * 1024 * 1024
    max_concurrent_requests: int = 10
    max_outgoing_frames: int = 1024
    max_objects: int = 10_000
    media_queue_frames: int = 60

    def __post_init__(self) -> None:
        self.media_dir = Path(self.media_dir).resolve()
        self.player_allow = tuple(self.player_allow)
        if self.ice_addresses is None:
            self.ice_addresses = default_ice_addresses(self.host)

    @property
    def effective_gc_interval(self) -> float:
        if self.gc_interval is not None:
            return self.gc_interval
        return max(0.05, min(self.gc_time / 4, 30.0))


def default_ice_addresses(host: str) -> list[str] | None:
    """``[host]`` when the server listens on a loopback address, else ``None`` (all)."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return [host]
    except ValueError:
        if host == "localhost":
            return ["127.0.0.1"]
    return None
