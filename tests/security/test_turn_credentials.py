"""Short-lived TURN credentials (issue 12, point 6): with TURN_SECRET (coturn's
`use-auth-secret` / `static-auth-secret`) every browser gets credentials of the TURN REST API
scheme, made for it and expiring after TURN_TTL, instead of the long-term password; the secret
is never sent. Checked against a real coturn: the handed-out credentials allocate relays (for
the browser and for the media server's endpoints), tampered or expired ones do not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import time
from collections.abc import Iterator

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from demokit import DemoApp, wait_until
from e2ekit import Coturn, free_port, require_turnserver, wait_for_port

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180),
              pytest.mark.usefixtures("loopback_ice")]

SECRET = "coturn-static-auth-secret"


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """coturn on 127.0.0.1 with the TURN REST API's shared secret (no static users)."""
    log_path = tmp_path_factory.mktemp("coturn") / "turnserver.log"
    port = free_port()
    relay_low = 49000 + (port % 40) * 20
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [require_turnserver(), "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
             f"--listening-port={port}", "--use-auth-secret",
             f"--static-auth-secret={SECRET}", "--realm=flowengine.test", "--no-cli",
             "--no-tls", "--no-dtls", "--allow-loopback-peers", f"--min-port={relay_low}",
             f"--max-port={relay_low + 19}", "--fingerprint", "--verbose",
             "--log-file=stdout", "--simple-log"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    server = Coturn(process, port, log_path)
    try:
        wait_for_port(port, 15, "turnserver", alive=lambda: process.poll() is None)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo_env(coturn: Coturn) -> dict[str, str]:
    return {"TURN_URL": f"alice@127.0.0.1:{coturn.port}", "TURN_SECRET": SECRET,
            "TURN_TTL": "600"}


async def relay_candidates(server: dict) -> int:
    """How many relay candidates a peer gathers with this ICE server (each one is a
    successful allocation on coturn)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(**server)]))
    pc.createDataChannel("probe")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp.count("typ relay")
    finally:
        await pc.close()


def signed(username: str) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), username.encode(),
                                     hashlib.sha1).digest()).decode()


async def test_each_browser_gets_short_lived_credentials_that_coturn_accepts(
        demo_app: DemoApp, clients, coturn: Coturn) -> None:
    first, second = await clients(), await clients()
    [server] = first.ice_servers
    assert server["urls"] == f"turn:127.0.0.1:{coturn.port}"
    expiry, user = server["username"].split(":")
    assert user == "alice" and 590 <= int(expiry) - time.time() <= 610
    assert server["credential"] == signed(server["username"])
    assert SECRET not in str(first.received) + str(second.received)
    assert await relay_candidates(server) >= 1

    tampered = {**server, "credential": signed(server["username"] + "x")}
    assert await relay_candidates(tampered) == 0
    past = f"{int(time.time()) - 60}:alice"
    assert await relay_candidates({**server, "username": past,
                                   "credential": signed(past)}) == 0


async def test_the_media_server_relays_with_credentials_of_its_own(
        demo_app: DemoApp, clients, coturn: Coturn) -> None:
    before = coturn.allocations()
    publisher = await clients()
    await publisher.publish()
    # The endpoint gathers a relay candidate through coturn with the turnUrl it was given.
    await wait_until(lambda: coturn.allocations() > before, "an allocation by the media server")
