"""``UriEndpoint``: the ``uri`` and ``state`` (STOP/START/PAUSE) shared by player and recorder,
and the URI policy of the settings (recorders confined to the media directory, players to the
allowed schemes and hosts, and to public addresses unless ``player_allow`` says otherwise).

The address check (SSRF): a player's http(s)/rtsp(s) host that is an IP address is checked when
the player is created (:func:`check_player_uri`); a host name is resolved and every address it
has is checked before the player is registered (:meth:`UriEndpointImpl.check_access`). Refusals
are 40107 errors that name the host and nothing the server learnt about it (no port state, no
fetch error). Not covered: a source that redirects, or an HLS playlist that names segments,
elsewhere; the media engine follows those.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from flowengine.kurento import model
from flowengine.kurento.errors import MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, KurentoError
from flowengine.media.elements.media_element import MediaElementImpl
from flowengine.media.settings import MediaServerSettings


def _illegal(message: str) -> KurentoError:
    return KurentoError(MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, message)


def file_path(uri: str, settings: MediaServerSettings) -> Path:
    """The local path of a ``file://`` URI (or a bare path); relative ones are taken inside
    the media directory. Raises 40107 on another scheme."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        raw = unquote(parts.netloc + parts.path) if parts.scheme == "file" else uri
        path = Path(raw)
        if not path.is_absolute():
            path = settings.media_dir / path
        return path.resolve()
    raise _illegal(f"Unsupported URI scheme '{parts.scheme}' in '{uri}'")


def inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def check_recorder_uri(uri: str, settings: MediaServerSettings) -> Path:
    """Where a recorder may write ``uri``: a file inside the media directory, or 40107."""
    path = file_path(uri, settings)
    if not inside(path, settings.media_dir):
        raise _illegal(f"Recorder URI '{uri}' is outside the media directory")
    return path


def check_player_uri(uri: str, settings: MediaServerSettings) -> str:
    """The source PyAV should open for ``uri``, or 40107 when the settings forbid it."""
    parts = urlsplit(uri)
    scheme = parts.scheme or "file"
    if scheme not in settings.player_schemes:
        raise _illegal(f"URI scheme '{scheme}' is not allowed for players")
    if scheme == "file":
        path = file_path(uri, settings)
        if not settings.player_files_anywhere and not inside(path, settings.media_dir):
            raise _illegal(f"Player URI '{uri}' is outside the media directory")
        return str(path)
    if not parts.hostname:
        raise _illegal(f"Player URI '{uri}' has no host")
    if settings.player_hosts is not None and parts.hostname not in settings.player_hosts:
        raise _illegal(f"Host '{parts.hostname}' is not allowed for players")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return uri  # a name: resolved and checked by check_player_address
    check_addresses(parts.hostname, [address], settings)
    return uri


NETWORK_SCHEMES = ("http", "https", "rtsp", "rtsps")
RESOLVE_TIMEOUT = 10.0  # seconds a player's host name may take to resolve


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast


def _allowed_networks(settings: MediaServerSettings) -> tuple[list[Any], set[str]]:
    networks, names = [], set()
    for entry in settings.player_allow:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return networks, names


def check_addresses(host: str, addresses: list[Any], settings: MediaServerSettings) -> None:
    """40107 unless every address of ``host`` is public or allowed by ``player_allow``."""
    networks, names = _allowed_networks(settings)
    if host.lower().rstrip(".") in names:
        return
    for address in addresses:
        mapped = getattr(address, "ipv4_mapped", None) or address
        if _public(address) or any(mapped in network for network in networks):
            continue
        raise _illegal(f"Host '{host}' is an internal address: players may reach it only when "
                       "the media server's player_allow setting allows it")


async def check_player_address(uri: str, settings: MediaServerSettings) -> None:
    """Resolve a network player URI's host name and check every address it has (40107 when
    one is internal and not allowed, or when the name does not resolve)."""
    parts = urlsplit(uri)
    host = parts.hostname
    if parts.scheme not in NETWORK_SCHEMES or not host:
        return
    try:
        ipaddress.ip_address(host)
        return  # checked when the player was created
    except ValueError:
        pass
    _networks, names = _allowed_networks(settings)
    if host.lower().rstrip(".") in names:
        return
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise _illegal(f"Host '{host}' cannot be resolved") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    check_addresses(host, addresses, settings)


class UriEndpointImpl(MediaElementImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["UriEndpoint"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.uri: str = self.params.get("uri") or ""
        self.state = "STOP"

    def get_uri(self) -> str:
        return self.uri

    def get_state(self) -> str:
        return self.state

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.emit("UriEndpointStateChanged", state=state)

    async def check_access(self) -> None:
        """Before the object is registered: a network URI's host must resolve to addresses the
        settings allow (see the module docstring). A recorder's file URI passes."""
        await check_player_address(self.uri, self.ctx.settings)

    def on_upstream_end_of_stream(self) -> None:
        """Hook: a source connected to this element reached its end (player EOS)."""
