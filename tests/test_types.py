"""The type checker's contract: mypy (configured in pyproject.toml) finds no more errors in any
file than tests/mypy-baseline.txt allows, and the baseline only ever shrinks.

A file with more errors than its baseline fails with those errors listed; a file with fewer
fails too, asking for its number to be lowered, so that a fixed error cannot come back
unnoticed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "tests" / "mypy-baseline.txt"
_ERROR = re.compile(r"^(?P<file>[^:\s]+\.py):\d+(?::\d+)?: error: ")


def read_baseline(text: str) -> dict[str, int]:
    """``path count`` lines; ``#`` starts a comment."""
    baseline: dict[str, int] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            path, count = line.rsplit(None, 1)
            baseline[path] = int(count)
    return baseline


def errors_by_file(output: str) -> dict[str, list[str]]:
    """mypy's error lines, grouped by file (notes are not errors)."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = _ERROR.match(line)
        if match:
            found.setdefault(match["file"], []).append(line)
    return found


def compare(baseline: dict[str, int], errors: dict[str, list[str]]) -> list[str]:
    """One problem per file whose error count differs from its baseline."""
    counts = Counter({path: len(lines) for path, lines in errors.items()})
    problems = []
    for path in sorted(set(baseline) | set(counts)):
        allowed, found = baseline.get(path, 0), counts[path]
        if found > allowed:
            problems.append(f"{path}: {found} mypy errors, the baseline allows {allowed}:\n"
                            + "\n".join(f"    {line}" for line in errors[path]))
        elif found < allowed:
            problems.append(f"{path}: {found} mypy errors, fewer than its baseline: lower it "
                            f"to {found} in tests/mypy-baseline.txt"
                            + (" (remove the line)" if found == 0 else ""))
    return problems


def test_mypy_errors_do_not_exceed_the_baseline(tmp_path: Path) -> None:
    # A fresh cache in a temporary folder: nothing written into the repository; a full run
    # takes about ten seconds.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary", "--no-pretty"],
        cwd=ROOT, capture_output=True, text=True, timeout=110)  # paths relative to ROOT
    # Exit 1 is "errors found", and also Python's "No module named mypy": only errors count.
    ran = result.returncode == 0 or any(map(_ERROR.match, result.stdout.splitlines()))
    assert ran, f"mypy failed to run (pip install -e '.[test]'):\n{result.stdout}{result.stderr}"
    problems = compare(read_baseline(BASELINE.read_text()), errors_by_file(result.stdout))
    assert not problems, "\n".join(problems)


def test_the_comparison_names_new_errors_and_asks_to_lower_the_baseline() -> None:
    baseline = read_baseline("# comment\nflowengine/a.py 2\nnodes/b.py 1  # why\n")
    assert baseline == {"flowengine/a.py": 2, "nodes/b.py": 1}
    output = ("flowengine/a.py:3: error: Bad  [arg-type]\n"
              "flowengine/a.py:3: note: a note, not an error\n"
              "flowengine/a.py:9: error: Worse  [assignment]\n"
              "flowengine/c.py:1:5: error: New  [misc]\n")
    problems = compare(baseline, errors_by_file(output))
    assert problems == [
        "flowengine/c.py: 1 mypy errors, the baseline allows 0:\n"
        "    flowengine/c.py:1:5: error: New  [misc]",
        "nodes/b.py: 0 mypy errors, fewer than its baseline: lower it to 0 in "
        "tests/mypy-baseline.txt (remove the line)",
    ]
    assert compare({"flowengine/a.py": 2}, errors_by_file(output)) != []
    assert compare({"flowengine/a.py": 2, "flowengine/c.py": 1}, errors_by_file(output)) == []
