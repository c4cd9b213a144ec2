"""ip: the host's addresses, checked against what the ``ip`` command (iproute2) reports."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess

import pytest

from flowengine.testing import NodeHarness


def iproute_addresses() -> dict[str, set[str]]:
    """Non-loopback addresses from ``ip -j addr`` (IPv6 link-local left out, as the node does)."""
    if shutil.which("ip") is None:
        pytest.skip("the ip command is not installed")
    listing = json.loads(subprocess.run(["ip", "-j", "addr"], check=True, capture_output=True,
                                        text=True).stdout)
    found: dict[str, set[str]] = {"ipv4": set(), "ipv6": set()}
    for interface in listing:
        for info in interface.get("addr_info", []):
            address = ipaddress.ip_address(info["local"])
            if address.is_loopback or (address.version == 6 and address.is_link_local):
                continue
            found["ipv4" if address.version == 4 else "ipv6"].add(str(address))
    return found


async def test_payload_lists_every_interface_address() -> None:
    async with NodeHarness("ip") as h:
        h.send({"payload": "go", "topic": "t"})
        [msg] = await h.output(0)
    payload = msg["payload"]
    assert msg["topic"] == "t"
    assert set(payload) == {"ipv4", "ipv6", "hostname"}
    assert payload["hostname"] == socket.gethostname()
    expected = iproute_addresses()
    # Every interface address is listed; the host name may resolve to one more (e.g. Debian's
    # 127.0.1.1 is loopback and left out, but a name in /etc/hosts may point elsewhere).
    assert expected["ipv4"] <= set(payload["ipv4"])
    assert expected["ipv6"] <= set(payload["ipv6"])
    for family, version in (("ipv4", 4), ("ipv6", 6)):
        for text in payload[family]:
            address = ipaddress.ip_address(text)
            assert address.version == version and not address.is_loopback
        assert len(payload[family]) == len(set(payload[family]))


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
async def test_family_limits_the_answer(family: str) -> None:
    async with NodeHarness("ip", {"family": family}) as h:
        h.send({})
        [msg] = await h.output(0)
    assert set(msg["payload"]) == {family, "hostname"}
    assert iproute_addresses()[family] <= set(msg["payload"][family])
