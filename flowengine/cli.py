"""``flowrun``: run, validate, test, document and draw flows.

::

    flowrun FILE|DIR...                 run flows until SIGINT/SIGTERM
    flowrun validate FILE|DIR...        print every error of every file; exit 2 on errors
    flowrun test FILE|DIR...            run the flows' tests; exit 1 on failures
    flowrun nodes [TYPE]                list node types, or show one (schema and example)
    flowrun graph FILE|DIR...           the wired graph in Graphviz dot
    flowrun docs [-o docs/nodes.md]     write the node reference
    flowrun import flows.json -o DIR    convert a Node-RED export to flow files
    flowrun media-server [--port 8888]  run the Kurento-protocol media server
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowengine.errors import FlowLoadError
from flowengine.loader import FlowSet, Loader
from flowengine.logs import configure_logging
from flowengine.registry import NodeRegistry, RegistryError, default_registry
from flowengine.runtime import Runtime

log = logging.getLogger("flowengine.cli")

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
COMMANDS = ("run", "validate", "test", "nodes", "graph", "docs")
DELEGATED = {"media-server": "flowengine.media.cli", "import": "flowengine.importer.cli"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowrun", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser, paths: bool = True) -> None:
        p.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"], help="log verbosity")
        p.add_argument("--nodes", action="append", default=[], metavar="DIR",
                       help="load node types from this folder (repeatable)")
        if paths:
            p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="flow files or folders")

    run = sub.add_parser("run", help="run flows (the default command)")
    common(run)
    run.add_argument("--port", type=int, default=None,
                     help="HTTP port (overrides settings.http.port; 0 picks a free port)")
    run.add_argument("--watch", action="store_true",
                     help="reload changed files, restarting only the changed nodes")
    common(sub.add_parser("validate", help="check flow files and report every error"))
    test = sub.add_parser("test", help="run the tests written in flow files")
    common(test)
    test.add_argument("-k", dest="select", help="only tests whose name contains this text")
    nodes = sub.add_parser("nodes", help="list node types or describe one")
    common(nodes, paths=False)
    nodes.add_argument("type", nargs="?", help="a node type to describe")
    common(sub.add_parser("graph", help="print the flow graph in Graphviz dot"))
    docs = sub.add_parser("docs", help="write the node reference (Markdown)")
    common(docs, paths=False)
    docs.add_argument("-o", "--output", default="docs/nodes.md", help="file to write")
    docs.add_argument("--check", action="store_true",
                      help="exit 1 if the file differs from what would be written")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowrun`` console script."""
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw and raw[0] in DELEGATED:  # commands with their own argument parsers
        return int(importlib.import_module(DELEGATED[raw[0]]).main(raw[1:]))
    args_list = _with_command(raw)
    args = build_parser().parse_args(args_list)
    if args.command is None:
        build_parser().print_help()
        return EXIT_INVALID
    configure_logging(args.log_level)
    try:
        registry = default_registry(args.nodes)
    except RegistryError as exc:
        print(f"flowrun: {exc}", file=sys.stderr)
        return EXIT_INVALID
    handler = globals()[f"cmd_{args.command}"]
    try:
        return int(handler(args, registry))
    except BrokenPipeError:  # `flowrun nodes | head`
        sys.stderr.close()
        return EXIT_OK


# -- commands ---------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace, registry: NodeRegistry) -> int:
    flowset = _load_with_setting_dirs(args.paths, registry)
    if flowset is None:
        return EXIT_INVALID
    return run_event_loop(_run(flowset, args, registry))


def run_event_loop(main_coroutine: Any) -> Any:
    """Run on uvloop when it is installed (a dependency on Linux and macOS; about twice as fast
    per event-loop turn as asyncio's own loop), else on asyncio's. ``FLOWENGINE_LOOP=asyncio``
    forces the standard loop."""
    factory = None
    if os.environ.get("FLOWENGINE_LOOP", "auto") != "asyncio":
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main_coroutine)


def _with_command(args: list[str]) -> list[str]:
    """Put the command first: ``flowrun --nodes D validate f`` and ``flowrun f.yaml`` (run)."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] in ("-h", "--help"):
            return args
        i += 1 if "=" in args[i] or args[i] in ("--watch",) else 2  # flag, or option + value
    if i < len(args) and args[i] in COMMANDS:
        return [args[i], *args[:i], *args[i + 1:]]
    return ["run", *args]


def _load_with_setting_dirs(paths: Sequence[str], registry: NodeRegistry,
                            running: bool = True) -> FlowSet | None:
    """Load flows, printing every error and warning; None if there were errors.

    Node folders named by the files' ``settings.nodes_dirs`` are registered first. ``running``
    says the flows were to be started (the summary line then says nothing was).
    """
    try:
        for directory in _settings_node_dirs(paths):
            registry.load_directory(directory)
        flowset = Loader(registry).load(paths)
    except RegistryError as exc:
        print(f"flowrun: {exc}", file=sys.stderr)
        return None
    except FlowLoadError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        count = sum(1 for e in exc.errors if not e.warning)
        files = len({e.file for e in exc.errors if not e.warning})
        print(f"flowrun: {count} error{'s' if count != 1 else ''} in {files} "
              f"file{'s' if files != 1 else ''}{'; nothing started' if running else ''}",
              file=sys.stderr)
        return None
    for warning in flowset.warnings:
        print(warning, file=sys.stderr)
    return flowset


def _settings_node_dirs(paths: Sequence[str]) -> list[str]:
    """``settings.nodes_dirs`` of the given files, read without validating node types."""
    import yaml

    from flowengine.loader import expand_paths

    found: list[str] = []
    for path in expand_paths(paths):
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        dirs = ((data or {}).get("settings") or {}).get("nodes_dirs") if isinstance(
            data, dict) else None
        for d in dirs or []:
            found.append(str((path.parent / d).resolve()))
    return found


async def _run(flowset: FlowSet, args: argparse.Namespace, registry: NodeRegistry) -> int:
    if args.port is not None:
        flowset.settings.setdefault("http", {})["port"] = args.port
    runtime = Runtime(flowset, registry=registry, serve_http=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
    except OSError as exc:  # e.g. the HTTP port is taken
        print(f"flowrun: cannot start: {exc}", file=sys.stderr)
        await runtime.stop()
        return EXIT_INVALID
    # What start-up built (modules, compiled code, schemas) lives as long as the process: keep
    # it out of the garbage collector's full passes, which otherwise cost ~30 ms each.
    gc.freeze()
    watcher = None
    if args.watch:
        from flowengine.watch import watch_and_reload

        watcher = asyncio.create_task(watch_and_reload(runtime, args.paths, registry))
    print(f"flowrun: running {len(flowset.flows)} flow(s), {len(runtime.nodes)} nodes; "
          f"admin API at {runtime.http.url}/admin; Ctrl-C to stop", file=sys.stderr)
    await stop.wait()
    print("flowrun: stopping", file=sys.stderr)
    if watcher is not None:
        watcher.cancel()
        # Let a reload in progress finish its cancellation before the nodes are closed.
        await asyncio.gather(watcher, return_exceptions=True)
    await runtime.stop()
    return EXIT_OK


def cmd_validate(args: argparse.Namespace, registry: NodeRegistry) -> int:
    flowset = _load_with_setting_dirs(args.paths, registry, running=False)
    if flowset is None:
        return EXIT_INVALID
    nodes = sum(1 for s in flowset.nodes.values())
    print(f"ok: {len(flowset.flows)} flow(s), {nodes} nodes, "
          f"{len(flowset.warnings)} warning(s)")
    return EXIT_OK


def cmd_test(args: argparse.Namespace, registry: NodeRegistry) -> int:
    from flowengine.flowtests import run_flow_tests

    return run_flow_tests(args.paths, registry, select=args.select)


def cmd_nodes(args: argparse.Namespace, registry: NodeRegistry) -> int:
    from flowengine.docs import describe_type, list_types

    if args.type:
        cls = registry.get(args.type)
        if cls is None:
            print(f"flowrun: unknown node type '{args.type}'", file=sys.stderr)
            return EXIT_INVALID
        print(describe_type(cls, registry.source(args.type)))
    else:
        print(list_types(registry))
    return EXIT_OK


def cmd_graph(args: argparse.Namespace, registry: NodeRegistry) -> int:
    from flowengine.dot import to_dot

    flowset = _load_with_setting_dirs(args.paths, registry, running=False)
    if flowset is None:
        return EXIT_INVALID
    print(to_dot(flowset))
    return EXIT_OK


def cmd_docs(args: argparse.Namespace, registry: NodeRegistry) -> int:
    from flowengine.docs import node_reference

    text = node_reference(registry)
    target = Path(args.output)
    if args.check:
        current = target.read_text() if target.exists() else ""
        if current != text:
            print(f"{target} is stale: run `flowrun docs -o {target}`", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target} ({len(registry.types())} node types)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
