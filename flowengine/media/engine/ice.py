"""ICE configuration for the server's aiortc peers
(docs/reference/aiortc-notes.md pitfalls 1, 2 and 4).

* No default STUN: ``rtc_configuration`` builds an ``RTCConfiguration`` with only the servers the
  endpoint was given (``stunServerAddress``/``stunServerPort``, ``turnUrl``). aiortc would use
  ``stun:stun.l.google.com:19302`` when given no configuration at all.
* Host candidates: aioice offers every non-loopback address and never 127.0.0.1. The server
  chooses the addresses per gathering with :func:`host_addresses`: aioice's module-level
  ``get_host_addresses`` is wrapped once (process-wide) by a function that returns the addresses
  of the current context (a ``ContextVar``) when set, and aioice's own answer otherwise. aiortc
  gathers inside ``setLocalDescription``, in tasks that inherit the caller's context, so::

      with host_addresses(["127.0.0.1"]):
          await pc.setLocalDescription(offer)

  gathers loopback candidates for that peer only. A test's own aiortc peer can do the same, or
  monkeypatch ``aioice.ice.get_host_addresses`` (that is how loopback-only tests are usually
  written; it also affects the server when it runs in the test's process).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

_addresses: ContextVar[list[str] | None] = ContextVar("flowengine_ice_addresses", default=None)
_original = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _addresses.get()
    if chosen is None:
        return _original(use_ipv4, use_ipv6)
    return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def install() -> None:
    """Wrap aioice's address lookup (idempotent)."""
    if getattr(aioice.ice.get_host_addresses, "__name__", "") != "_get_host_addresses":
        aioice.ice.get_host_addresses = _get_host_addresses


install()  # at import, so a test's monkeypatch of aioice (applied later) wins and is undone cleanly


@contextlib.contextmanager
def host_addresses(addresses: list[str] | None) -> Iterator[None]:
    """Gather host candidates only on ``addresses`` within this block (``None``: aioice's)."""
    install()
    token = _addresses.set(list(addresses) if addresses is not None else None)
    try:
        yield
    finally:
        _addresses.reset(token)


_TURN_URL = re.compile(
    r"^(?P<user>[^:@]*):(?P<password>[^@]*)@(?P<host>\[[^\]]+\]|[^:?]+):(?P<port>\d+)"
    r"(?:\?transport=(?P<transport>udp|tcp|tls))?$"
)


def parse_turn_url(turn_url: str) -> RTCIceServer:
    """Kurento's ``user:password@address:port[?transport=udp|tcp|tls]`` as an ``RTCIceServer``.

    Raises ``ValueError`` on another shape. Unlike KMS, a host name is accepted (aioice
    resolves it).
    """
    match = _TURN_URL.match(turn_url.strip())
    if match is None:
        raise ValueError(f"invalid turnUrl {turn_url!r}: expected user:password@host:port")
    transport = match["transport"] or "udp"
    scheme = "turns" if transport == "tls" else "turn"
    query = "?transport=tcp" if transport in ("tcp", "tls") else "?transport=udp"
    return RTCIceServer(
        urls=f"{scheme}:{match['host']}:{match['port']}{query}",
        username=match["user"],
        credential=match["password"],
    )


def rtc_configuration(
    stun_address: str | None, stun_port: int | None, turn_url: str | None
) -> RTCConfiguration:
    """Only the configured servers; an empty list when none (never aiortc's default STUN)."""
    servers: list[RTCIceServer] = []
    if stun_address:
        servers.append(RTCIceServer(urls=f"stun:{stun_address}:{stun_port or 3478}"))
    if turn_url:
        servers.append(parse_turn_url(turn_url))
    return RTCConfiguration(iceServers=servers)
