"""``flowrun``: run, validate, test, document and draw flows; import Node-RED flows; run the
media server.

Each command's ``--help`` reads like a manual page: what it does, its arguments, its exit
status and examples (:data:`HELP`). ``media-server`` keeps its own argument parser, given the
texts of :data:`HELP` here.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import textwrap
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
COMMANDS = ("run", "validate", "test", "nodes", "graph", "docs", "import")

PATHS_HELP = ("flow files, or folders: their *.yaml and *.yml files and those of their "
              "subfolders (hidden folders and node_modules are skipped; a folder without "
              "flow files is an error)")

#: command -> (one-line summary, description, exit status and examples).
HELP: dict[str, tuple[str, str, str]] = {
    "run": (
        "run flows until Ctrl-C or SIGTERM (the default command)",
        """\
        Load the flow files and run them until Ctrl-C (SIGINT) or SIGTERM; then stop the
        sources, let the messages in flight finish and close every node. `flowrun FILE` is
        `flowrun run FILE`. With errors in the files nothing starts: they are printed as
        `flowrun validate` prints them.

        The HTTP server (http-in routes, websockets, static files, the admin API at /admin)
        listens on settings.http.host and settings.http.port (127.0.0.1 and 1880 unless the
        files say otherwise); --host and --port override them, and flows read the address
        actually bound from env.get("FLOWENGINE_HTTP_URL") (see docs/flow-format.md).""",
        """\
        exit status:
          0  stopped by a signal   2  errors in the files, or the port cannot be bound

        examples:
          flowrun flows/kurento.yaml               the Kurento demo: open http://127.0.0.1:1880/
          flowrun flows/kurento.yaml --port 8080   the same on port 8080
          flowrun --host 0.0.0.0 flows/            the flows under flows/, reachable from
                                                   other machines
          flowrun --watch examples/flows/          reload the files whenever one changes"""),
    "validate": (
        "check flow files and print every error with file:line",
        """\
        Check flow files without running them: YAML, node types and their fields, wires,
        references between nodes, settings, function code. Every error of every file is
        printed as FILE:LINE:COLUMN: node 'ID', field 'FIELD': what is wrong; warnings (such
        as a node nothing is wired into) are printed too but do not fail.""",
        """\
        exit status:
          0  no errors (warnings may have been printed)   2  errors

        examples:
          flowrun validate flows/kurento.yaml
          flowrun validate flows/ examples/
          flowrun validate --nodes my_nodes/ my_flows/   with node types from my_nodes/"""),
    "test": (
        "run the tests written inside flow files",
        """\
        Run the `tests:` of flow files (docs/flow-tests.md): each test sends messages into
        the flow, with stubbed nodes where it says so, and checks what nodes receive, send and
        store. One line per test, then a summary.""",
        """\
        exit status:
          0  every test passed   1  a test failed   2  a file or its tests did not load

        examples:
          flowrun test examples/
          flowrun test flows/ -k "stats round"    only tests whose name contains the text"""),
    "nodes": (
        "list the node types, or describe one",
        """\
        Without TYPE: every node type known (built-in, installed plugins, --nodes folders)
        with its category, inputs and outputs. With TYPE: its description, its fields with
        their types and defaults, its JSON Schema and an example.""",
        """\
        exit status:
          0  listed   2  unknown type (the closest names are suggested)

        examples:
          flowrun nodes
          flowrun nodes switch
          flowrun nodes --nodes my_nodes/ my-type"""),
    "graph": (
        "print the wired graph in Graphviz dot",
        """\
        Load the flow files and print their nodes and wires (link nodes included) in the
        Graphviz dot language, one cluster per flow.""",
        """\
        exit status:
          0  printed   2  errors in the files

        examples:
          flowrun graph flows/kurento.yaml | dot -Tsvg > kurento.svg"""),
    "docs": (
        "write the node reference (Markdown)",
        """\
        Write the reference of every node type known (docs/nodes.md in the repository is
        made this way) from the types' descriptions, schemas and examples.""",
        """\
        exit status:
          0  written (or up to date with --check)   1  --check: the file is stale

        examples:
          flowrun docs                        rewrite docs/nodes.md
          flowrun docs --check                fail when docs/nodes.md is stale (CI)
          flowrun docs -o my-nodes.md --nodes my_nodes/"""),
    "import": (
        "convert a Node-RED export into flow files",
        """\
        Convert a Node-RED flows export (JSON) into flow files, one per tab, and print a
        report: what was converted, JavaScript function nodes imported disabled with their
        code kept, placeholders for unknown node types, and the differences to look at.""",
        """\
        exit status:
          0  written, valid, nothing to look at   1  written and valid, some nodes need a
          look   2  nothing usable written

        examples:
          flowrun import flows.json -o imported/
          flowrun import ~/.node-red/flows.json -o imported/ --force"""),
    "media-server": (
        "run the Kurento-protocol media server on its own",
        """\
        Run the embedded media server (WebRTC endpoints, players, recorders; the Kurento
        JSON-RPC protocol on ws://HOST:PORT/kurento) as a separate process, for flows that
        point a kurento-server config node at it.""",
        """\
        exit status:
          0  stopped by a signal   1  the port cannot be bound   2  bad arguments

        examples:
          flowrun media-server --port 8888 --media-dir /srv/media
          KMS_URL=ws://127.0.0.1:8888/kurento flowrun flows/kurento.yaml   the demo on it"""),
}

MAIN_EPILOG = """\
`flowrun COMMAND --help` tells more about a command, with examples.

examples:
  flowrun flows/kurento.yaml         run the Kurento demo, then open http://127.0.0.1:1880/
  flowrun validate flows/            check every flow file under flows/
  flowrun test examples/             run the tests written in the example flows
  flowrun nodes switch               the switch node: fields, schema, example

Documentation: README.md and docs/ in the repository."""


def _texts(command: str) -> dict[str, Any]:
    """The ArgumentParser arguments of a command's help."""
    _, description, epilog = HELP[command]
    return {"prog": f"flowrun {command}", "description": textwrap.dedent(description),
            "epilog": textwrap.dedent(epilog),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<14}{summary}" for name, (summary, _, _) in HELP.items())
    parser = argparse.ArgumentParser(
        prog="flowrun", usage="flowrun [COMMAND] [OPTIONS] [FILE|DIR ...]",
        description="Run, check, test, document and draw flow files (YAML flow graphs).\n\n"
        f"commands:\n{listing}",
        epilog=MAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", help=argparse.SUPPRESS)

    def command(name: str, paths: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, **_texts(name))
        if paths:
            p.add_argument("paths", nargs="+", metavar="FILE|DIR", help=PATHS_HELP)
        p.add_argument("--log-level", default="info", metavar="LEVEL",
                       choices=["debug", "info", "warning", "error"],
                       help="debug, info (the default), warning or error")
        p.add_argument("--nodes", action="append", default=[], metavar="DIR",
                       help="load node types from this folder (repeatable)")
        return p

    run = command("run")
    run.add_argument("--port", type=int, default=None,
                     help="HTTP port (overrides settings.http.port; 0 picks a free port)")
    run.add_argument("--host", default=None,
                     help="address to listen on (overrides settings.http.host, 127.0.0.1 by "
                     "default; 0.0.0.0 for every IPv4 interface)")
    run.add_argument("--watch", action="store_true",
                     help="reload changed files, restarting only the changed nodes")
    command("validate")
    test = command("test")
    test.add_argument("-k", dest="select", help="only tests whose name contains this text")
    nodes = command("nodes", paths=False)
    nodes.add_argument("type", nargs="?", help="a node type to describe")
    command("graph")
    docs = command("docs", paths=False)
    docs.add_argument("-o", "--output", default="docs/nodes.md", help="file to write")
    docs.add_argument("--check", action="store_true",
                      help="exit 1 if the file differs from what would be written")
    from flowengine.importer.cli import add_arguments

    add_arguments(sub.add_parser("import", **_texts("import")))  # it has its own --nodes
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowrun`` console script."""
    raw = list(sys.argv[1:] if argv is None else argv)
    if not raw:
        build_parser().print_help()
        return EXIT_INVALID
    if raw[0] == "media-server":
        return media_server(raw[1:])
    args = build_parser().parse_args(_with_command(raw))
    configure_logging(getattr(args, "log_level", "info"))
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


def media_server(argv: list[str]) -> int:
    """``flowrun media-server``: the media server's own parser answers ``--help`` and bad
    arguments with the texts of :data:`HELP`, then the server runs."""
    from flowengine.media import cli

    parser = cli.build_parser("flowrun media-server")
    texts = _texts("media-server")
    parser.description, parser.epilog = texts["description"], texts["epilog"]
    parser.formatter_class = texts["formatter_class"]
    parser.parse_args(argv)  # exits on --help and on errors
    return int(cli.main(argv))


def cmd_import(args: argparse.Namespace, registry: NodeRegistry) -> int:
    from flowengine.importer.cli import run

    return run(args, registry)


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
    for setting in ("port", "host"):  # the command line wins over the files
        if getattr(args, setting) is not None:
            flowset.settings.setdefault("http", {})[setting] = getattr(args, setting)
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
            print(f"flowrun: {registry.unknown_type(args.type)}", file=sys.stderr)
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
