"""The demo's test fixtures (tests/demo/conftest.py) for the reliability and security tests:
that conftest is loaded once under the name ``demo_conftest`` (every conftest module is called
``conftest``), and its fixtures and helpers are re-exported here. tests/demo is put on the path
too, for ``e2ekit`` (flowrun as a child process)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "demo_conftest"
_DEMO = Path(__file__).resolve().parent.parent / "demo"
if str(_DEMO) not in sys.path:
    sys.path.append(str(_DEMO))
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, _DEMO / "conftest.py")
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)

from demo_conftest import (  # noqa: E402
    FLOW_FILE,
    REPO,
    TIMEOUT,
    DemoApp,
    SignalingClient,
    clients,
    data_root,
    demo_app,
    demo_env,
    free_port,
    loopback_ice,
    wait_until,
)


async def peer_offer() -> str:
    """The SDP offer of a real aiortc peer sending video (its candidates stripped), for tests
    that start sessions without connecting."""
    from aiortc import RTCPeerConnection
    from media_synthetic import SyntheticVideo, strip_candidates

    pc = RTCPeerConnection()
    pc.addTrack(SyntheticVideo())
    await pc.setLocalDescription(await pc.createOffer())
    offer = strip_candidates(pc.localDescription.sdp)
    await pc.close()
    return offer


__all__ = ["FLOW_FILE", "REPO", "TIMEOUT", "DemoApp", "SignalingClient", "clients",
           "data_root", "demo_app", "demo_env", "free_port", "loopback_ice", "peer_offer",
           "wait_until"]
