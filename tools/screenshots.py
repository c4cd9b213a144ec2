"""Regenerate the pictures of the README and docs/demo.md: ``docs/screenshots/*.png``.

    python tools/screenshots.py [--out DIR]

It runs the browser test that takes them (``tests/demo/test_e2e_webapp.py``, the metrics test:
a webcam watched from a second tab, an HLS stream played, three stats rounds, the dashboard)
with ``FLOWENGINE_SCREENSHOTS`` pointing at DIR (default ``docs/screenshots``), so the pictures
always show a state the tests check. The test suite itself saves its screenshots in a temporary
folder and never rewrites these files. Needs what the browser tests need (Debian's chromium).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/demo/test_e2e_webapp.py::test_metrics_reach_postgres_and_the_dashboard"
PICTURES = ("webapp.png", "dashboard.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/screenshots.py",
        description="Regenerate docs/screenshots/webapp.png and dashboard.png from the browser "
        "test that takes them.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots",
                        help="the folder to write them to (default docs/screenshots)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    env = {**os.environ, "FLOWENGINE_SCREENSHOTS": str(out)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             TEST], cwd=ROOT, env=env)
    if result.returncode != 0:
        print("screenshots: the browser test failed; nothing was regenerated", file=sys.stderr)
        return result.returncode
    print(f"wrote {', '.join(str(out / name) for name in PICTURES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
