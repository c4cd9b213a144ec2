"""The websocket verification tests: the differential model (``wsmodel``) and the raw client
(``rawws``, shared with the reliability tests) are importable by name."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "reliability"))
