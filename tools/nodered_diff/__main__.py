"""``python -m tools.nodered_diff FLOWS...``: the differential test against the real Node-RED.

Runs the same Node-RED flows (JSON exports: files, or folders of them) on Node-RED 5 and, after
``flowrun import``, on flowengine, and compares what debug and complete nodes receive and what
statuses nodes show (docs/nodered-differences.md, "The differential test"). Prints one line per
flow (``agree``, ``DIFFER``, ``IMPORT FAILED``), the differences, and the figures by node type.
Exit status 0 when every flow agrees, 1 otherwise.

    python -m tools.nodered_diff tests/nodered_diff/corpus
    python -m tools.nodered_diff --json result.json my-flow.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from pathlib import Path

from tools.nodered_diff.result import run_files


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.nodered_diff",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("flows", nargs="+", type=Path, help="flow files or folders of them")
    parser.add_argument("--port", type=int, default=0, help="port both runtimes listen on "
                        "(default: a free one); flows name it as ${NRDIFF_PORT}")
    parser.add_argument("--json", type=Path, help="write the full result as JSON")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args(argv)
    paths: list[Path] = []
    for given in args.flows:
        paths.extend(sorted(given.rglob("*.json")) if given.is_dir() else [given])
    result = asyncio.run(run_files(paths, args.port or _free_port()))
    print(result.text(details=not args.quiet))
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=1, default=str))
    return 0 if result.all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
