"""Regenerate the pictures of the README and docs/demo.md: ``docs/screenshots/*.png``.

    python tools/screenshots.py [--out DIR]

It runs the browser tests that take them (``tests/demo/test_e2e_webapp.py``: the metrics test,
a webcam watched from a second tab, an HLS stream played, three stats rounds, the dashboard; and
the tests of the page's states: a recording stopped, a viewer's row while its source records,
a player at its end, a player error, the file hint) with ``FLOWENGINE_SCREENSHOTS`` pointing at
DIR (default ``docs/screenshots``), so the pictures always show a state the tests check. The
test suite itself saves its screenshots in a temporary folder and never rewrites these files.
Needs what the browser tests need (Debian's chromium).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = "tests/demo/test_e2e_webapp.py"
TESTS = ("test_record_then_stop_gives_a_playable_file",
         "test_metrics_reach_postgres_and_the_dashboard",
         "test_a_viewer_row_shows_its_source_recording_and_stops_it",
         "test_an_ended_player_is_marked_left_out_of_the_averages_and_removable",
         "test_a_player_error_reads_plainly",
         "test_file_urls_are_explained_and_confined_to_the_media_folder")
PICTURES = ("webapp.png", "dashboard.png", "recording-stopped.png", "viewer-row-recording.png",
            "player-ended.png", "player-error.png", "file-hint.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/screenshots.py",
        description="Regenerate the web app's pictures in docs/screenshots from the browser "
        "tests that take them.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots",
                        help="the folder to write them to (default docs/screenshots)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    env = {**os.environ, "FLOWENGINE_SCREENSHOTS": str(out)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             *(f"{MODULE}::{test}" for test in TESTS)], cwd=ROOT, env=env)
    if result.returncode != 0:
        print("screenshots: a browser test failed; its pictures were not regenerated",
              file=sys.stderr)
        return result.returncode
    print(f"wrote {', '.join(str(out / name) for name in PICTURES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
