"""``flowrun import flows.json -o DIR``: convert a Node-RED export into flow files.

Prints what was converted and what was not (JavaScript function nodes imported disabled,
placeholders for unknown types, problems of the input, differences). Exit status: 0 when the
files were written, validate, and nothing needs a look; 1 when they were written and validate but
some nodes or problems need a look; 2 when nothing usable was written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flowengine.importer.core import import_nodered
from flowengine.importer.report import FAILED
from flowengine.registry import NodeRegistry, RegistryError, default_registry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (for wiring into ``flowrun``'s parser)."""
    parser.add_argument("source", metavar="flows.json", help="a Node-RED export (Export menu, "
                        "GET /flows, or the flows file of a Node-RED user folder)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="the folder to write the flow files to (created if needed)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--keep-ids", action="store_true",
                        help="keep Node-RED's node ids instead of ids made from node names")
    parser.add_argument("--nodes", action="append", default=[], metavar="DIR",
                        help="load node types from this folder (repeatable)")


def run(args: argparse.Namespace, registry: NodeRegistry) -> int:
    """Run the import for parsed arguments; print the report; return the exit status."""
    report = import_nodered(args.source, args.output, registry=registry,
                            readable_ids=not args.keep_ids, force=args.force)
    print(report.text(), file=sys.stdout if report.exit_code != FAILED else sys.stderr)
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """``flowrun import`` with its own arguments (``argv`` without the command name)."""
    parser = argparse.ArgumentParser(prog="flowrun import", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        registry = default_registry(args.nodes)
    except RegistryError as exc:
        print(f"flowrun: {exc}", file=sys.stderr)
        return FAILED
    return run(args, registry)


if __name__ == "__main__":  # python -m flowengine.importer.cli
    sys.exit(main())
