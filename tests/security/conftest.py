"""The security tests: the raw websocket client (``rawws``) and the demo fixtures (``demokit``)
of tests/reliability."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reliability"))

from demokit import clients, data_root, demo_app, demo_env, loopback_ice  # noqa: F401
