"""``ip``: the host's IPv4 and IPv6 addresses in ``msg.payload``.

Standard library only, from several sources because none is complete everywhere: the addresses
of every interface (Linux ``SIOCGIFCONF`` for IPv4, ``/proc/net/if_inet6`` for IPv6), what the
host name resolves to, and the source address of the default route (a UDP socket ``connect``,
which sends nothing). A source that is unavailable on this system is skipped. Loopback addresses
are left out, and so are IPv6 link-local ones (``fe80::/10``), which need an interface to be used.
"""

from __future__ import annotations

import array
import asyncio
import ipaddress
import socket
import struct
import sys
import textwrap
from collections.abc import Iterable
from typing import Any

from flowengine import Node
from flowengine import schema as s

SIOCGIFCONF = 0x8912  # Linux: list the interfaces that have an IPv4 address
_IF_INET6 = "/proc/net/if_inet6"
# Documentation addresses (RFC 5737, RFC 3849): connecting a UDP socket towards them picks the
# source address of the default route without sending a packet.
_PROBE_V4 = ("192.0.2.1", 9)
_PROBE_V6 = ("2001:db8::1", 9)


class IpNode(Node):
    type = "ip"
    category = "network"
    description = ("On each message, sets msg.payload to the host's addresses: "
                   "{ipv4: [...], ipv6: [...], hostname}. Loopback and IPv6 link-local "
                   "addresses are left out; `family` limits the answer to one family.")
    example = textwrap.dedent("""\
        my-address:
          type: ip
          family: ipv4
          wires: [announce]
        """)
    schema = s.obj({
        "family": s.enum(("all", "ipv4", "ipv6"), "all", "The address families to list."),
    })

    async def on_input(self, msg: dict[str, Any]) -> dict[str, Any]:
        # Resolving the host name may block on DNS: keep it off the event loop.
        msg["payload"] = await asyncio.to_thread(host_addresses, self.config["family"])
        return msg


def host_addresses(family: str = "all") -> dict[str, Any]:
    """``{"ipv4": [...], "ipv6": [...], "hostname": ...}`` (only the asked family's list)."""
    hostname = socket.gethostname()
    result: dict[str, Any] = {}
    if family in ("all", "ipv4"):
        result["ipv4"] = _usable(_collect(_interface_ipv4, lambda: _resolved(hostname,
                                          socket.AF_INET), lambda: _route_source(
                                          socket.AF_INET, _PROBE_V4)))
    if family in ("all", "ipv6"):
        result["ipv6"] = _usable(_collect(_interface_ipv6, lambda: _resolved(hostname,
                                          socket.AF_INET6), lambda: _route_source(
                                          socket.AF_INET6, _PROBE_V6)))
    result["hostname"] = hostname
    return result


def _collect(*sources: Any) -> list[str]:
    found: list[str] = []
    for source in sources:
        try:
            found.extend(source())
        except OSError:
            continue  # this source does not exist here (another OS, no network): skip it
    return found


def _usable(addresses: Iterable[str]) -> list[str]:
    """Unique, in the order found, without loopback and IPv6 link-local addresses."""
    seen: set[str] = set()
    result: list[str] = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if address.is_loopback or address.is_unspecified or (
                address.version == 6 and address.is_link_local):
            continue
        shown = str(address)
        if shown not in seen:
            seen.add(shown)
            result.append(shown)
    return result


def _interface_ipv4() -> list[str]:
    """Every interface's IPv4 address, with the ``SIOCGIFCONF`` ioctl (Linux)."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl

    # struct ifreq: a 16-byte name and a 24-byte union (16 on 32-bit systems).
    size = 40 if struct.calcsize("P") == 8 else 32
    capacity = 128 * size
    buffer = array.array("B", bytes(capacity))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("iL", capacity, buffer.buffer_info()[0])
        length = struct.unpack("iL", fcntl.ioctl(sock.fileno(), SIOCGIFCONF, request))[0]
    data = buffer.tobytes()
    # ifr_addr is a sockaddr_in after the name: family (2), port (2), then the address.
    return [socket.inet_ntoa(data[i + 20:i + 24]) for i in range(0, length, size)]


def _interface_ipv6() -> list[str]:
    """Every interface's IPv6 address, from ``/proc/net/if_inet6`` (Linux)."""
    with open(_IF_INET6) as table:
        return [str(ipaddress.IPv6Address(bytes.fromhex(line.split()[0])))
                for line in table if line.strip()]


def _resolved(hostname: str, family: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(hostname, None, family, socket.SOCK_DGRAM)
    except socket.gaierror:
        return []
    return [str(info[4][0]) for info in infos]


def _route_source(family: int, probe: tuple[str, int]) -> list[str]:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect(probe)  # UDP: no packet is sent
        return [str(sock.getsockname()[0])]
