"""Make ``flowengine_example_nodes`` importable when the package is not pip-installed (the
flowengine repository runs these tests from its root without installing the example)."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("flowengine_example_nodes") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
