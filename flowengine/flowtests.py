"""Flow tests: the ``tests:`` section of a flow file and ``flowrun test`` (docs/flow-format.md).

A test starts the flow in isolation, sends messages into nodes and checks what nodes receive::

    tests:
      - name: routes a start message    # unique in the file; `flowrun test -k TEXT` selects
        timeout: 2s                     # time budget for the expectations (default 2s)
        env: {KMS_URL: ws://kms}        # environment for ${NAME} substitution in this test
        context:                        # set before the flow starts
          flow: {pipelines: {}}         # also global: {...}, node: {ID: {...}}
        stubs:                          # nodes replaced in this test (others stay real)
          save-stats: {reply: {payload: {rows: 1}}}  # merged into the input, sent on output 0
          reply-ws: {}                               # swallows (what it receives is recorded)
          kms: {code: "return [None, msg]"}          # function-node code runs instead
          db: {error: connection refused}            # fails each message (catch nodes see it)
        send:                           # steps in order; the flow settles after each
          - node: parse
            msg: {payload: '{"id": "start"}'}
          - inject: every-5s            # trigger an inject node
          - wait: 500ms                 # sleep (not counted in the timeout)
        expect:                         # checked in order after the steps
          - node: start-pipeline        # what the node RECEIVES on its input...
            msg: {payload: {id: start}} # ...some message matches (subset match)
          - node: route                 # what the node SENDS on output 2
            output: 2
            count: 0                    # exactly 0 (checked once the flow is idle)
          - node: collect
            messages: [{payload: 1}, {payload: 2}]   # exactly these, in order
          - context: {flow: {count: 2}}              # context values match
          - error: {node: parse, message: {$contains: JSON}}   # some reported error matches
          - errors: []                               # exactly these errors (here: none)

``msg`` with ``count`` means exactly ``count`` messages, each matching ``msg``; ``node`` alone
means at least one message arrives. Each test loads the file afresh (with its includes) and runs
it in its own runtime: fresh context (configured stores become memory stores), no HTTP port
unless ``http: true`` (the file's port) or ``http: PORT``, and the stubs in place of the nodes
they name. A stub keeps the node's id, name, type, wires and number of outputs, so it can feed
the rest of the flow; ``reply`` goes with an optional ``output: N``. Source nodes (inject)
run as they would in production; stub one with ``{}`` to silence it. The matching rules are
in :func:`differences`; the schema of one test is :data:`TEST_SCHEMA`.

``flowrun test`` runs :func:`run_flow_tests`; the project's pytest suite collects the same tests
with :func:`collect_flow_tests` and runs each with :func:`run_flow_test`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import difflib
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, TextIO

import yaml

from flowengine import schema as s
from flowengine.durations import parse_duration
from flowengine.errors import ConfigError, FlowLoadError, LoadError, NodeError
from flowengine.jsvalues import node_red_type
from flowengine.loader import FlowSet, FlowSpec, Loader, NodeSpec, find_flow_files
from flowengine.loader.yamlsource import field_text
from flowengine.logs import FlowFormatter
from flowengine.node import Node
from flowengine.paths import MISSING
from flowengine.registry import NodeRegistry, RegistryError
from flowengine.testing import FlowHarness

__all__ = [
    "TEST_SCHEMA",
    "FlowTest",
    "StubNode",
    "TestResult",
    "collect_flow_tests",
    "differences",
    "run_flow_test",
    "run_flow_tests",
]

DEFAULT_TIMEOUT = 2.0
# How long stopping a test's runtime may take: in-flight messages are dropped quickly, and a
# node whose close hangs fails the test run, not the whole suite.
DRAIN_TIMEOUT = 0.5
CLOSE_TIMEOUT = 2.0
# Extra time, on top of the test's timeout and waits, for starting and stopping the flow.
START_STOP_ALLOWANCE = 10.0
SHOWN_MESSAGES = 5
SHOWN_CHARS = 300
SHOWN_LOG_LINES = 20

# -- the format ---------------------------------------------------------------------------------

_ID = {"type": "string", "minLength": 1}
_MESSAGE = {"type": "object"}

STUB_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "`{}`: swallow what arrives; `reply`: merge into the input message and send "
                   "it on output 0 (or `output`); `code`: function-node code run instead; "
                   "`error`: fail every message with this text (reaches catch nodes).",
    "properties": {
        "reply": {"type": "object"},
        "output": s.integer(description="The output `reply` is sent on.", minimum=0),
        "code": s.string(description="Python function-node code (msg, node, context, flow, "
                                     "global_, env in scope)."),
        "error": s.string(description="Report this error for every message."),
    },
    "additionalProperties": False,
}

CONTEXT_SCHEMA: dict[str, Any] = s.obj({
    "flow": {"type": "object", "description": "Keys of the tested file's flow context."},
    "global": {"type": "object", "description": "Keys of the global context."},
    "node": {"type": "object", "additionalProperties": {"type": "object"},
             "description": "node id -> keys of that node's context."},
})

STEP_SCHEMA: dict[str, Any] = s.obj({
    "node": {**_ID, "description": "Put `msg` on this node's input."},
    "msg": {**_MESSAGE, "description": "The message to send (default `{}`)."},
    "inject": {**_ID, "description": "Trigger this inject node, as the admin API does."},
    "wait": s.duration(description="Sleep this long (not counted in the timeout)."),
})

EXPECTATION_SCHEMA: dict[str, Any] = s.obj({
    "node": {**_ID, "description": "Check what this node receives on its input..."},
    "output": s.integer(description="...or sends on this output.", minimum=0),
    "msg": {**_MESSAGE, "description": "Some message matches (with `count`: all of them)."},
    "messages": {"type": "array", "items": _MESSAGE,
                 "description": "Exactly these messages arrive, in this order."},
    "count": s.integer(description="Exactly this many messages arrive.", minimum=0),
    "context": {**CONTEXT_SCHEMA, "description": "Context keys hold matching values."},
    "error": {"type": "object", "description": "Some reported error matches "
                                               "(keys: node, type, message, flow)."},
    "errors": {"type": "array", "items": {"type": "object"},
               "description": "Exactly these errors are reported, in order."},
})

TEST_SCHEMA: dict[str, Any] = s.obj({
    "name": {**_ID, "description": "Unique within the file; `flowrun test -k` selects on it."},
    "description": {"type": "string"},
    "timeout": s.duration(DEFAULT_TIMEOUT, "How long expectations wait, in all."),
    "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
            "description": "Environment variables for `${NAME}` substitution in this test."},
    "http": {"anyOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0}],
             "description": "false (default): no HTTP port; true: the file's port; a number: "
                            "this port (0: any free port)."},
    "context": {**CONTEXT_SCHEMA, "description": "Context values set before the flow starts."},
    "stubs": {"type": "object", "additionalProperties": STUB_SCHEMA,
              "description": "node id -> stub replacing that node in this test."},
    "send": {"type": "array", "items": STEP_SCHEMA,
             "description": "Steps, in order; the flow settles (goes idle) after each."},
    "expect": {"type": "array", "items": EXPECTATION_SCHEMA,
               "description": "Checked in order once every step was sent."},
}, required=["name"])
"""JSON Schema of one entry of ``tests:``."""


# -- matching -----------------------------------------------------------------------------------

def differences(expected: Any, actual: Any, where: str = "msg") -> list[str]:
    """How ``actual`` fails to match ``expected``; an empty list when it matches.

    Rules: a mapping matches when every key it names matches (other keys of ``actual`` are
    ignored); a list matches a list of the same length element by element; scalars must be
    equal (``1`` equals ``1.0``, but ``true`` is not ``1`` and ``"1"`` is not ``1``). A one-key
    mapping whose key starts with ``$`` is a matcher: ``{$regex: "^ab"}`` (a string matching
    the regular expression), ``{$contains: x}`` (a substring, or a list element matching ``x``),
    ``{$type: string}`` (Node-RED type name: string, number, boolean, object, array, buffer,
    null, undefined), ``{$absent: true}`` (the key is missing; ``false``: present),
    ``{$exact: value}`` (equal, not a subset).
    """
    if isinstance(expected, dict) and len(expected) == 1:
        (key, arg), = expected.items()
        if isinstance(key, str) and key in _MATCHERS:
            problem = _MATCHERS[key](arg, actual)
            return [] if problem is None else [f"{where}: {problem}"]
    if actual is MISSING:
        return [f"{where}: missing, expected {show(expected)}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {show(actual)}"]
        found: list[str] = []
        for key, value in expected.items():
            found.extend(differences(value, actual.get(key, MISSING), _child(where, key)))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list | tuple):
            return [f"{where}: expected a list, got {show(actual)}"]
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} item(s), got {len(actual)}: "
                    f"{show(actual)}"]
        found = []
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found.extend(differences(want, got, f"{where}[{i}]"))
        return found
    return [] if _equal(expected, actual) else [
        f"{where}: expected {show(expected)}, got {show(actual)}"]


def _child(where: str, key: Any) -> str:
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_$][\w$]*", key):
        return f"{where}.{key}"
    return f"{where}[{json.dumps(key) if isinstance(key, str) else key}]"


def _equal(expected: Any, actual: Any) -> bool:
    """Strict equality: no bool/number mixing, no string/number coercion."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    if type(expected) is not type(actual) and not (
            isinstance(expected, bytes | bytearray) and isinstance(actual, bytes | bytearray)):
        return False
    return bool(expected == actual)


def _deep_equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(_deep_equal(v, actual[k]) for k, v in expected.items()))
    if isinstance(expected, list):
        return (isinstance(actual, list | tuple) and len(expected) == len(actual)
                and all(_deep_equal(a, b) for a, b in zip(expected, actual, strict=True)))
    return _equal(expected, actual)


def _match_regex(pattern: Any, actual: Any) -> str | None:
    if not isinstance(actual, str):
        return f"expected a string matching /{pattern}/, got {show(actual)}"
    return None if re.search(str(pattern), actual) else (
        f"expected a string matching /{pattern}/, got {show(actual)}")


def _match_contains(part: Any, actual: Any) -> str | None:
    if isinstance(actual, str) and isinstance(part, str):
        return None if part in actual else f"expected a string containing {show(part)}, " \
                                           f"got {show(actual)}"
    if isinstance(actual, list | tuple):
        if any(not differences(part, item) for item in actual):
            return None
        return f"expected a list containing {show(part)}, got {show(actual)}"
    return f"expected a string or list containing {show(part)}, got {show(actual)}"


def _match_type(name: Any, actual: Any) -> str | None:
    got = node_red_type(actual)
    return None if got == name else f"expected a value of type {name}, got {got} {show(actual)}"


def _match_absent(absent: Any, actual: Any) -> str | None:
    if absent and actual is not MISSING:
        return f"expected no value, got {show(actual)}"
    if not absent and actual is MISSING:
        return "missing, expected a value"
    return None


def _match_exact(value: Any, actual: Any) -> str | None:
    return None if _deep_equal(value, actual) else f"expected exactly {show(value)}, " \
                                                    f"got {show(actual)}"


_MATCHERS: dict[str, Callable[[Any, Any], str | None]] = {
    "$regex": _match_regex,
    "$contains": _match_contains,
    "$type": _match_type,
    "$absent": _match_absent,
    "$exact": _match_exact,
}


def show(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A compact, JSON-like rendering for failure messages (``_msgid`` left out)."""
    if value is MISSING:
        return "undefined"
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "_msgid"}
    try:
        text = json.dumps(value, ensure_ascii=False, default=_show_other)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _show_other(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return f"<bytes {bytes(value[:32]).hex()}{'...' if len(value) > 32 else ''}>"
    return repr(value)


# -- stubs --------------------------------------------------------------------------------------

class StubNode(Node):
    """A node standing in for another one in a flow test (never registered).

    It keeps the replaced node's id, name, type and output count. Without ``reply`` or
    ``error`` it swallows what it receives; with ``reply`` it merges those properties into the
    input message and sends it on ``output``; with ``error`` it fails every message with that
    text, which catch nodes receive as if the real node had failed.
    """

    def __init__(self, spec: NodeSpec, stub: Mapping[str, Any] | None):
        super().__init__(spec.id, {}, name=spec.name, flow=spec.flow)
        self.type = spec.type  # type: ignore[misc]  # errors and catch nodes show the real type
        self.is_config = spec.is_config  # type: ignore[misc]
        stub = stub or {}
        self._reply: dict[str, Any] | None = stub.get("reply")
        self._output: int = stub.get("output", 0)
        self._error: str | None = stub.get("error")

    def on_input(self, msg: dict[str, Any]) -> Any:
        if self._error is not None:
            raise NodeError(self._error)
        if self._reply is None:
            return None
        msg.update(copy.deepcopy(self._reply))
        if self._output == 0:
            return msg
        return [None] * self._output + [msg]


def _make_stub(spec: NodeSpec, stub: Mapping[str, Any] | None, registry: NodeRegistry) -> Node:
    """The stub for ``spec``: a :class:`StubNode`, or a function node for ``code`` stubs.

    Raises ConfigError (field ``code``) when the code does not compile.
    """
    if not stub or "code" not in stub:
        return StubNode(spec, stub)
    function = registry.get("function")
    if function is None:
        raise ConfigError("a `code` stub needs the 'function' node type", "code")
    outputs = spec.node_class.output_count(spec.config)
    config: dict[str, Any] = {"code": stub["code"], "outputs": outputs}
    s.apply_defaults(function.schema, config)
    node = function(spec.id, config, name=spec.name, flow=spec.flow)
    node.type = spec.type  # type: ignore[misc]
    return node


# -- collecting and validating ------------------------------------------------------------------

@dataclass
class FlowTest:
    """One entry of a file's ``tests:``, validated."""

    file: Path
    index: int
    name: str
    definition: dict[str, Any]
    line: int

    @property
    def id(self) -> str:
        """``file::name``, as printed by ``flowrun test`` and used as the pytest id."""
        return f"{self.file}::{self.name}"

    @property
    def timeout(self) -> float:
        return parse_duration(self.definition.get("timeout", DEFAULT_TIMEOUT))


@dataclass
class TestResult:
    """The outcome of one flow test."""

    __test__ = False  # not a pytest class

    test: FlowTest
    passed: bool
    seconds: float
    failures: list[str]
    logs: list[str]

    def report(self) -> str:
        """``PASS file::name (12 ms)``, or ``FAIL file::name: ...`` with details below."""
        if self.passed:
            return f"PASS {self.test.id} ({self.seconds * 1000:.0f} ms)"
        first, *rest = self.failures or ["failed"]
        head, *details = first.splitlines()
        lines = [f"FAIL {self.test.id}: {head}"]
        lines.extend(_indent(text) for text in ["\n".join(details), *rest] if text)
        if self.logs:
            lines.append("    log:")
            lines.extend(f"      {line}" for line in self.logs[-SHOWN_LOG_LINES:])
        return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def collect_flow_tests(paths: Iterable[str | Path], registry: NodeRegistry, *,
                       select: str | None = None, environ: Mapping[str, str] | None = None,
                       ) -> tuple[list[FlowTest], list[LoadError]]:
    """The tests of the flow files and folders in ``paths``, and every load error found.

    Files without a ``tests:`` key are skipped without being loaded. A file that does not load,
    or whose tests section is invalid, contributes errors (with file:line) and no tests.
    ``select`` keeps the tests whose name contains that text (case-insensitive).
    """
    tests: list[FlowTest] = []
    files, errors = find_flow_files(paths)
    for path in files:
        data = _peek(path)
        if isinstance(data, dict) and not data.get("tests"):
            continue
        try:
            _register_node_dirs(path, data, registry)
        except RegistryError as exc:
            errors.append(LoadError(str(path), 1, 1, str(exc), field="settings.nodes_dirs"))
            continue
        try:
            flowset = Loader(registry, environ).load([path])
        except FlowLoadError as exc:
            errors.extend(e for e in exc.errors if not e.warning)
            continue
        found, problems = _validate(flowset.flows[0], flowset, registry)
        errors.extend(problems)
        if not problems:
            tests.extend(found)
    if select:
        tests = [t for t in tests if select.lower() in t.name.lower()]
    return tests, errors


def _peek(path: Path) -> Any:
    """The file's YAML, read plainly (a cheap look before loading it for real); None when it
    cannot be read, which the loader then reports."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _register_node_dirs(path: Path, data: Any, registry: NodeRegistry) -> None:
    """Register the node folders of the file's ``settings.nodes_dirs``, as ``flowrun`` does."""
    settings = data.get("settings") if isinstance(data, dict) else None
    dirs = settings.get("nodes_dirs") if isinstance(settings, dict) else None
    for directory in dirs if isinstance(dirs, list) else []:
        if isinstance(directory, str) and "${" not in directory:
            registry.load_directory(path.parent / directory)


class _Checker:
    """Collects the problems of one file's tests section, with positions."""

    def __init__(self, flow: FlowSpec, flowset: FlowSet):
        self.flow = flow
        self.flowset = flowset
        self.errors: list[LoadError] = []

    def error(self, path: tuple[str | int, ...], message: str) -> None:
        pos = self.flow.document.position(("tests", *path))
        self.errors.append(LoadError(str(self.flow.path), pos.line, pos.column, message,
                                     field=field_text(("tests", *path))))

    def node(self, path: tuple[str | int, ...], node_id: str, *, allow_config: bool = False
             ) -> NodeSpec | None:
        """The node ``node_id`` names, or None after reporting why it cannot be used."""
        spec = self.flowset.nodes.get(node_id)
        if spec is None:
            close = difflib.get_close_matches(node_id, list(self.flowset.nodes), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.error(path, f"unknown node '{node_id}'{hint}")
            return None
        if spec.is_config and not allow_config:
            self.error(path, f"'{node_id}' is a config node")
            return None
        if spec.disabled:
            self.error(path, f"node '{node_id}' is disabled")
            return None
        return spec


def _validate(flow: FlowSpec, flowset: FlowSet, registry: NodeRegistry
              ) -> tuple[list[FlowTest], list[LoadError]]:
    check = _Checker(flow, flowset)
    tests: list[FlowTest] = []
    names: dict[str, int] = {}
    for index, definition in enumerate(flow.tests):
        name = definition.get("name") if isinstance(definition, dict) else None
        if isinstance(name, str) and name in names:
            check.error((index, "name"), f"duplicate test name '{name}' (first at "
                                         f"tests[{names[name]}])")
        elif isinstance(name, str):
            names[name] = index
        schema_errors = list(s.validator_for(TEST_SCHEMA).iter_errors(definition))
        for error in schema_errors:
            for err_path, message in s.describe_error(error):
                check.error((index, *err_path), message)
        if schema_errors:
            continue  # the checks below rely on the shape the schema guarantees
        before = len(check.errors)
        _check_test(check, index, definition, registry)
        if len(check.errors) == before:
            line = flow.document.position(("tests", index)).line
            tests.append(FlowTest(flow.path, index, definition["name"], definition, line))
    return tests, sorted(check.errors, key=lambda e: (e.line, e.column))


def _check_test(check: _Checker, index: int, test: dict[str, Any],
                registry: NodeRegistry) -> None:
    stubs: dict[str, Any] = test.get("stubs") or {}
    for node_id, stub in stubs.items():
        where = (index, "stubs", node_id)
        spec = check.node(where, str(node_id), allow_config=True)
        if spec is None:
            continue
        stub = stub or {}
        kinds = [k for k in ("reply", "code", "error") if k in stub]
        if len(kinds) > 1:
            check.error(where, f"a stub has one of reply, code, error; got {', '.join(kinds)}")
            continue
        if spec.is_config and stub:
            check.error(where, "a config node stub takes no options (use {})")
            continue
        outputs = spec.node_class.output_count(spec.config)
        if "output" in stub:
            if "reply" not in stub:
                check.error((*where, "output"), "`output` goes with `reply`")
            elif stub["output"] >= outputs:
                check.error((*where, "output"), f"'{node_id}' has {outputs} output(s)")
        if "reply" in stub and outputs == 0:
            check.error((*where, "reply"), f"'{node_id}' has no output to reply on")
        try:
            _make_stub(spec, stub, registry)
        except ConfigError as exc:
            pos = check.flow.document.position(("tests", *where, "code"))
            line = pos.line if exc.line is None else pos.first_content_line + exc.line - 1
            check.errors.append(LoadError(str(check.flow.path), line, pos.column, exc.message,
                                          field=field_text(("tests", *where, "code"))))
    for i, step in enumerate(test.get("send") or []):
        _check_step(check, (index, "send", i), step, stubs)
    for i, expectation in enumerate(test.get("expect") or []):
        _check_expectation(check, (index, "expect", i), expectation)
    _check_context(check, (index, "context"), test.get("context"))


def _check_step(check: _Checker, where: tuple[str | int, ...], step: dict[str, Any],
                stubs: Mapping[str, Any]) -> None:
    kinds = [k for k in ("node", "inject", "wait") if k in step]
    if len(kinds) != 1:
        check.error(where, "a send step has exactly one of node (with msg), inject, wait"
                    + (f"; got {', '.join(kinds)}" if kinds else ""))
        return
    if "msg" in step and kinds != ["node"]:
        check.error((*where, "msg"), "`msg` goes with `node`")
    if "node" in step:
        check.node((*where, "node"), step["node"])
    elif "inject" in step:
        spec = check.node((*where, "inject"), step["inject"])
        if spec is not None and (step["inject"] in stubs
                                 or not callable(getattr(spec.node_class, "inject", None))):
            check.error((*where, "inject"), f"'{spec.id}' is a '{spec.type}' node, which "
                        "cannot be triggered (use `node:` and `msg:` to send to it)")


def _check_expectation(check: _Checker, where: tuple[str | int, ...],
                       expectation: dict[str, Any]) -> None:
    kinds = [k for k in ("node", "context", "error", "errors") if k in expectation]
    if len(kinds) != 1:
        check.error(where, "an expectation has exactly one of node, context, error, errors"
                    + (f"; got {', '.join(kinds)}" if kinds else ""))
        return
    node_only = [k for k in ("output", "msg", "messages", "count") if k in expectation]
    if kinds != ["node"]:
        for key in node_only:
            check.error((*where, key), f"`{key}` goes with `node`")
        if "context" in expectation:
            _check_context(check, (*where, "context"), expectation["context"])
        return
    spec = check.node((*where, "node"), expectation["node"])
    if "messages" in expectation:
        for key in ("msg", "count"):
            if key in expectation:
                check.error((*where, key), f"`{key}` and `messages` exclude each other "
                            "(`messages` gives the count)")
    if spec is not None and "output" in expectation:
        outputs = spec.node_class.output_count(spec.config)
        if expectation["output"] >= outputs:
            check.error((*where, "output"), f"'{spec.id}' has {outputs} output(s)")


def _check_context(check: _Checker, where: tuple[str | int, ...], context: Any) -> None:
    for node_id in (context or {}).get("node") or {}:
        check.node((*where, "node", node_id), str(node_id))


# -- running ------------------------------------------------------------------------------------

async def run_flow_test(test: FlowTest, registry: NodeRegistry, *,
                        environ: Mapping[str, str] | None = None) -> TestResult:
    """Run one test in a runtime of its own; never raises for a failing flow."""
    started = perf_counter()
    waits = sum(parse_duration(step["wait"]) for step in test.definition.get("send") or []
                if "wait" in step)
    limit = test.timeout + waits + START_STOP_ALLOWANCE
    with _LogCapture() as logs:
        try:
            async with asyncio.timeout(limit):
                failures = await _run(test, registry, environ)
        except TimeoutError:
            failures = [f"the test did not finish within {limit:.1f}s (a node's start or "
                        "close hung?)"]
        except FlowLoadError as exc:  # the file changed since it was collected
            failures = ["the flow does not load:", *(str(e) for e in exc.errors)]
        except ConfigError as exc:
            failures = [f"stub: {exc.message}"]
        except Exception as exc:  # one broken test must not stop the others
            logging.getLogger("flowengine.flowtests").exception("flow test crashed")
            failures = [f"the test crashed: {type(exc).__name__}: {exc}"]
    return TestResult(test, not failures, perf_counter() - started, failures,
                      logs.lines if failures else [])


async def _run(test: FlowTest, registry: NodeRegistry,
               environ: Mapping[str, str] | None) -> list[str]:
    definition = test.definition
    env = dict(os.environ if environ is None else environ)
    env.update({k: _env_text(v) for k, v in (definition.get("env") or {}).items()})
    flowset = Loader(registry, env).load([test.file])
    for node_id, stub in (definition.get("stubs") or {}).items():
        spec = flowset.nodes[node_id]
        spec.instance = _make_stub(spec, stub, registry)
    _isolate(flowset.settings, definition.get("http", False))
    harness = FlowHarness(flowset)
    flow_name = flowset.flows[0].info.name
    _preset_context(harness, flow_name, definition.get("context"))
    loop = asyncio.get_running_loop()
    async with harness:
        expectations = definition.get("expect") or []
        for expectation in expectations:  # record outputs from the start
            if "output" in expectation:
                harness.watch_output(expectation["node"], expectation["output"])
        deadline = loop.time() + test.timeout
        for step in definition.get("send") or []:
            if "wait" in step:
                seconds = parse_duration(step["wait"])
                deadline += seconds
                await asyncio.sleep(seconds)
                continue
            if "inject" in step:
                harness.node(step["inject"]).inject()  # type: ignore[attr-defined]
            else:
                harness.send(step["node"], copy.deepcopy(step.get("msg") or {}))
            await _settle(harness, deadline)
        failures: list[str] = []
        for i, expectation in enumerate(expectations):
            problem = await _check(harness, flow_name, expectation, deadline, test.timeout)
            if problem:
                failures.append(f"expect[{i}] {_subject(expectation)}: {problem}")
        if failures and harness.errors:
            failures.append("errors reported during the test:\n" + "\n".join(
                f"  node '{e['node']}': {e['message']}" for e in harness.errors))
    return failures


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _isolate(settings: dict[str, Any], http: bool | int) -> None:
    """Settings for a test run: memory context only, no HTTP port unless asked, quick stop."""
    context = settings.get("context")
    if isinstance(context, dict) and isinstance(context.get("stores"), dict):
        # Keep the store names (keys like "#:(file)::x" still resolve) but not the files.
        settings["context"] = {**context, "stores": {
            name: {"module": "memory"} for name in context["stores"]}}
    http_settings = settings.get("http")
    http_settings = dict(http_settings) if isinstance(http_settings, dict) else {}
    if http is False:
        http_settings["port"] = None  # the shared server must not listen
    elif http is not True:
        http_settings["port"] = int(http)
    settings["http"] = http_settings
    settings["drain_timeout"] = DRAIN_TIMEOUT
    settings["close_timeout"] = CLOSE_TIMEOUT


def _preset_context(harness: FlowHarness, flow_name: str, context: Any) -> None:
    if not context:
        return
    contexts = harness.runtime.contexts
    for key, value in (context.get("flow") or {}).items():
        contexts.flow_context(flow_name).set(str(key), copy.deepcopy(value))
    for key, value in (context.get("global") or {}).items():
        contexts.global_context().set(str(key), copy.deepcopy(value))
    for node_id, values in (context.get("node") or {}).items():
        spec = harness.flowset.nodes[node_id]
        ctx = contexts.node_context(spec.alias or node_id, spec.flow.name)
        for key, value in values.items():
            ctx.set(str(key), copy.deepcopy(value))


def _remaining(deadline: float) -> float:
    return deadline - asyncio.get_running_loop().time()


async def _settle(harness: FlowHarness, deadline: float) -> None:
    """Wait until no message is in flight, or the deadline."""
    # A short minimum: an idle flow returns at once, and a flow past its deadline still gets
    # one turn of the event loop to deliver what is already queued.
    await harness.runtime.router.wait_idle(max(_remaining(deadline), 0.05))


def _subject(expectation: Mapping[str, Any]) -> str:
    if "node" in expectation:
        if "output" in expectation:
            return f"(node '{expectation['node']}' output {expectation['output']})"
        return f"(node '{expectation['node']}')"
    return "(context)" if "context" in expectation else "(errors)"


async def _check(harness: FlowHarness, flow_name: str, expectation: Mapping[str, Any],
                 deadline: float, timeout: float) -> str | None:
    if "context" in expectation:
        await _settle(harness, deadline)
        return _check_context_values(harness, flow_name, expectation["context"])
    if "error" in expectation or "errors" in expectation:
        return await _check_sequence(
            lambda: list(harness.errors), _errors_arrival(harness), deadline, timeout,
            expectation.get("error"), expectation.get("errors"), None, "error", harness)
    node_id, port = expectation["node"], expectation.get("output")

    def now() -> list[dict[str, Any]]:
        if port is None:
            return harness.received_now(node_id)
        return harness.output_now(node_id, port)

    async def arrival(count: int, wait: float) -> None:
        if port is None:
            await harness.received(node_id, count, wait)
        else:
            await harness.output(node_id, port, count, wait)

    return await _check_sequence(now, arrival, deadline, timeout, expectation.get("msg"),
                                 expectation.get("messages"), expectation.get("count"),
                                 "message", harness)


def _errors_arrival(harness: FlowHarness) -> Callable[[int, float], Awaitable[None]]:
    async def arrival(count: int, wait: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        # Error events have no waiter to hook into; poll, they are rare and tests short.
        while len(harness.errors) < count:
            if loop.time() >= end:
                raise TimeoutError
            await asyncio.sleep(0.01)
    return arrival


async def _check_sequence(now: Callable[[], list[dict[str, Any]]],
                          arrival: Callable[[int, float], Awaitable[None]], deadline: float,
                          timeout: float, one: Any, sequence: list[Any] | None,
                          count: int | None, what: str, harness: FlowHarness) -> str | None:
    """Check messages (or errors) seen at one point against ``msg``/``messages``/``count``."""
    if sequence is not None:
        count = len(sequence)
    if count is None:
        # Some item matches `one` (or, without it, anything arrives): wait for each new one.
        while True:
            seen = now()
            if any(not differences(one or {}, item, what) for item in seen):
                return None
            try:
                await arrival(len(seen) + 1, max(_remaining(deadline), 0))
            except TimeoutError:
                seen = now()
                if any(not differences(one or {}, item, what) for item in seen):
                    return None
                if one is None:
                    return f"no {what} within {timeout:g}s"
                return (f"no {what} matching {show(one)} within {timeout:g}s"
                        + _received(seen, one, what))
    # An exact count: wait for that many, let the flow settle, then compare.
    if count:
        with contextlib.suppress(TimeoutError):  # too few: reported below
            await arrival(count, max(_remaining(deadline), 0))
    await _settle(harness, deadline)
    seen = now()
    if len(seen) != count:
        return f"expected {count} {what}(s), got {len(seen)}" + _received(seen, None, what)
    if sequence is not None:
        problems = [f"{what} {i + 1}: {'; '.join(differences(want, got, what))}"
                    for i, (want, got) in enumerate(zip(sequence, seen, strict=True))
                    if differences(want, got, what)]
        if problems:
            return "; ".join(problems) + _received(seen, None, what)
    elif one is not None:
        problems = [f"{what} {i + 1}: {'; '.join(differences(one, got, what))}"
                    for i, got in enumerate(seen) if differences(one, got, what)]
        if problems:
            return "; ".join(problems) + _received(seen, None, what)
    return None


def _received(seen: list[dict[str, Any]], expected: Any, what: str) -> str:
    """The items seen, one per line (with how each differs from ``expected`` when given)."""
    if not seen:
        return f"\nreceived no {what}"
    lines = [f"\nreceived {len(seen)} {what}(s):"]
    for item in seen[:SHOWN_MESSAGES]:
        line = f"  - {show(item)}"
        if expected is not None:
            line += f"  [{'; '.join(differences(expected, item, what))}]"
        lines.append(line)
    if len(seen) > SHOWN_MESSAGES:
        lines.append(f"  ... and {len(seen) - SHOWN_MESSAGES} more")
    return "\n".join(lines)


def _check_context_values(harness: FlowHarness, flow_name: str,
                          expected: Mapping[str, Any]) -> str | None:
    contexts = harness.runtime.contexts
    scopes: list[tuple[str, Any, Mapping[str, Any]]] = [
        ("flow", contexts.flow_context(flow_name), expected.get("flow") or {}),
        ("global", contexts.global_context(), expected.get("global") or {})]
    for node_id, values in (expected.get("node") or {}).items():
        spec = harness.flowset.nodes[node_id]
        ctx = contexts.node_context(spec.alias or node_id, spec.flow.name)
        scopes.append((f"node '{node_id}'", ctx, values))
    problems: list[str] = []
    for label, ctx, values in scopes:
        for key, want in values.items():
            got = ctx.get(str(key))
            problems.extend(differences(want, MISSING if got is None else got,
                                        f"{label} context {key}"))
    return "; ".join(problems) or None


class _LogCapture:
    """Hold flowengine's log lines during a test instead of printing them (shown on failure).

    Records still propagate to the root logger when flowengine's logger does (pytest's capture).
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._logger = logging.getLogger("flowengine")
        self._saved: list[logging.Handler] = []

    def __enter__(self) -> _LogCapture:
        capture = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                capture.lines.append(self.format(record))

        handler = _Handler()
        handler.setFormatter(FlowFormatter())
        self._saved = list(self._logger.handlers)
        self._logger.handlers[:] = [handler]
        return self

    def __exit__(self, *exc: Any) -> None:
        self._logger.handlers[:] = self._saved


# -- flowrun test -------------------------------------------------------------------------------

def run_flow_tests(paths: Iterable[str | Path], registry: NodeRegistry, *,
                   select: str | None = None, out: TextIO | None = None,
                   err: TextIO | None = None) -> int:
    """``flowrun test``: run the tests of ``paths``, print one line per test and a summary.

    Returns 0 when every test passed, 1 when some failed, 2 when a file or its tests section
    did not load (the tests of the other files still run).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    tests, errors = collect_flow_tests(paths, registry, select=select)
    for error in errors:
        print(error, file=err)
    passed = failed = 0
    if tests:
        for result in asyncio.run(_run_all(tests, registry, out)):
            if result.passed:
                passed += 1
            else:
                failed += 1
    elif not errors:
        print("no flow tests found" + (f" matching '{select}'" if select else ""), file=err)
    print(f"{passed} passed, {failed} failed", file=out)
    if errors:
        print(f"flowrun: {len(errors)} error{'s' if len(errors) != 1 else ''} in flow files",
              file=err)
        return 2
    return 1 if failed else 0


async def _run_all(tests: list[FlowTest], registry: NodeRegistry,
                   out: TextIO) -> list[TestResult]:
    results = []
    for test in tests:
        result = await run_flow_test(test, registry)
        print(result.report(), file=out, flush=True)
        results.append(result)
    return results
