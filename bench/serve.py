"""Serve a benchmark flow over HTTP for the shared Node-RED bench driver (bench.py).

bench.py starts a server per run from a command template whose ``{flows}`` is the path of one of
*its* Node-RED flow files (``.../flows/chain.json``); this maps that name onto our flow file
(``bench/flows/chain.yaml``) and runs it with ``flowrun`` on ``$BENCH_PORT`` (which bench.py
exports)::

    SERVER_CMD="$PWD/.venv/bin/python $PWD/bench/serve.py {flows}" ../shared/bench/nodered/run.sh

The flow answers ``GET /ping`` and ``GET /bench/<name>/run?n=N&batch=B`` as Node-RED's does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from flowengine.cli import main as flowrun

FLOW_DIR = Path(__file__).resolve().parent / "flows"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: serve.py <chain|switch|fanout>[.json|.yaml] (a path is fine)",
              file=sys.stderr)
        return 2
    name = Path(argv[0]).name.split(".")[0]
    flow = FLOW_DIR / f"{name}.yaml"
    if not flow.exists():
        print(f"serve.py: no flowengine flow for '{name}' ({flow} is missing)", file=sys.stderr)
        return 2
    return flowrun(["run", "--log-level", "warning", str(flow)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
