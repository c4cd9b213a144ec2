"""The security tests use the raw websocket client of tests/reliability (``rawws``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reliability"))
