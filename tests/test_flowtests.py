"""Flow tests (`tests:` in flow files, `flowrun test`): the shipped flows' tests, and the runner.

The first part runs every flow test of ``examples/flows/`` and ``flows/`` as a pytest case, so the
project's suite fails when a shipped flow's own tests fail. The rest tests the runner itself:
matching rules, stubs, timeouts, isolation, load errors with file:line, output and exit codes.
"""

from __future__ import annotations

import io
import logging
import textwrap
from pathlib import Path

import pytest

from flowengine.cli import main
from flowengine.flowtests import (
    FlowTest,
    _isolate,
    collect_flow_tests,
    differences,
    run_flow_test,
    run_flow_tests,
)
from flowengine.paths import MISSING
from flowengine.registry import default_registry
from flowengine.testing import test_registry

ROOT = Path(__file__).resolve().parent.parent
FLOW_DIRS = [d for d in (ROOT / "examples" / "flows", ROOT / "flows") if d.is_dir()]

SHIPPED_TESTS, SHIPPED_ERRORS = collect_flow_tests(FLOW_DIRS, test_registry())


# -- the shipped flows' own tests ---------------------------------------------------------------

def test_shipped_flow_tests_load() -> None:
    assert not SHIPPED_ERRORS, "\n".join(str(e) for e in SHIPPED_ERRORS)
    assert {t.file.name for t in SHIPPED_TESTS} >= {"hello.yaml", "router.yaml", "counter.yaml"}


@pytest.mark.parametrize("flow_test", SHIPPED_TESTS, ids=lambda t: f"{t.file.name}::{t.name}")
async def test_shipped_flow(flow_test: FlowTest) -> None:
    result = await run_flow_test(flow_test, test_registry())
    assert result.passed, result.report()


# -- helpers ------------------------------------------------------------------------------------

PIPE = """\
flow: pipe
nodes:
  in:
    type: function
    code: |
      msg["payload"] = msg["payload"] * 2
      return msg
    wires: [out]
  out:
    type: function
    code: return msg
"""


def flow_file(tmp_path: Path, tests: str, nodes: str = PIPE, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(nodes + "tests:\n" + textwrap.indent(textwrap.dedent(tests), "  "))
    return path


def collect(path: Path, select: str | None = None) -> list[FlowTest]:
    tests, errors = collect_flow_tests([path], test_registry(), select=select)
    assert not errors, "\n".join(map(str, errors))
    return tests


async def run_one(path: Path):
    [test] = collect(path)
    return await run_flow_test(test, test_registry())


def run_cli(path: Path, select: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_flow_tests([path], test_registry(), select=select, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def load_errors(path: Path) -> list[str]:
    _, errors = collect_flow_tests([path], test_registry())
    return [str(e) for e in errors]


# -- matching -----------------------------------------------------------------------------------

def test_subset_match_of_mappings_ignores_other_keys() -> None:
    actual = {"payload": {"id": "start", "extra": 1}, "topic": "t", "_msgid": "x"}
    assert differences({"payload": {"id": "start"}}, actual) == []
    assert differences({"payload": {"id": "stop"}}, actual) == [
        'msg.payload.id: expected "stop", got "start"']
    assert differences({"payload": {"missing": 1}}, actual) == [
        "msg.payload.missing: missing, expected 1"]
    assert differences({"payload": {"id": 1}}, {"payload": "text"}) == [
        'msg.payload: expected an object, got "text"']


def test_lists_match_element_wise_with_the_same_length() -> None:
    assert differences([{"a": 1}, 2], [{"a": 1, "b": 0}, 2]) == []
    assert differences([1, 2], [1, 2, 3], "x") == ["x: expected 2 item(s), got 3: [1, 2, 3]"]
    assert differences([1, 3], [1, 2], "x") == ["x[1]: expected 3, got 2"]


def test_scalars_are_strictly_equal() -> None:
    assert differences(1, 1.0) == []
    assert differences(1, True) == ["msg: expected 1, got true"]
    assert differences(True, 1) == ["msg: expected true, got 1"]
    assert differences("1", 1) == ['msg: expected "1", got 1']
    assert differences(None, MISSING) == ["msg: missing, expected null"]


def test_matchers() -> None:
    assert differences({"p": {"$regex": "^ab"}}, {"p": "abc"}) == []
    assert differences({"p": {"$regex": "^ab"}}, {"p": "cab"}) == [
        'msg.p: expected a string matching /^ab/, got "cab"']
    assert differences({"p": {"$contains": "ell"}}, {"p": "hello"}) == []
    assert differences({"p": {"$contains": {"id": 2}}}, {"p": [{"id": 1}, {"id": 2}]}) == []
    assert differences({"p": {"$contains": 3}}, {"p": [1, 2]}) == [
        "msg.p: expected a list containing 3, got [1, 2]"]
    assert differences({"p": {"$type": "array"}}, {"p": [1]}) == []
    assert differences({"p": {"$type": "number"}}, {"p": "1"}) == [
        'msg.p: expected a value of type number, got string "1"']
    assert differences({"error": {"$absent": True}}, {"payload": 1}) == []
    assert differences({"error": {"$absent": True}}, {"error": {}}) == [
        "msg.error: expected no value, got {}"]
    assert differences({"p": {"$absent": False}}, {}) == ["msg.p: missing, expected a value"]
    assert differences({"p": {"$exact": {"a": 1}}}, {"p": {"a": 1}}) == []
    assert differences({"p": {"$exact": {"a": 1}}}, {"p": {"a": 1, "b": 2}}) == [
        'msg.p: expected exactly {"a": 1}, got {"a": 1, "b": 2}']


# -- running: pass and fail ---------------------------------------------------------------------

async def test_passing_test(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: doubles
          send: [{node: in, msg: {payload: 2}}]
          expect:
            - {node: out, msg: {payload: 4}}
            - {node: in, output: 0, count: 1}
        """)
    result = await run_one(path)
    assert result.passed, result.report()
    assert result.report().startswith(f"PASS {path}::doubles (")
    assert result.report().endswith(" ms)")


async def test_failing_expectation_reports_what_arrived(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: wrong
          timeout: 100ms
          send: [{node: in, msg: {payload: 2}}]
          expect: [{node: out, msg: {payload: 5}}]
        """)
    result = await run_one(path)
    assert not result.passed
    report = result.report()
    first, *rest = report.splitlines()
    assert first == (f"FAIL {path}::wrong: expect[0] (node 'out'): no message matching "
                     '{"payload": 5} within 0.1s')
    assert rest[:2] == ["    received 1 message(s):",
                        '      - {"payload": 4}  [message.payload: expected 5, got 4]']


async def test_every_failing_expectation_is_reported(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: two wrong
          timeout: 100ms
          send: [{node: in, msg: {payload: 1}}, {node: in, msg: {payload: 2}}]
          expect:
            - {node: out, messages: [{payload: 2}, {payload: 5}]}
            - {node: out, count: 1}
            - {node: out, msg: {payload: {$type: number}}, count: 2}
        """)
    result = await run_one(path)
    assert len(result.failures) == 2
    assert result.failures[0].startswith(
        "expect[0] (node 'out'): message 2: message.payload: expected 5, got 4\n"
        "received 2 message(s):")
    assert result.failures[1].startswith("expect[1] (node 'out'): expected 1 message(s), got 2")


async def test_count_zero_fails_when_a_message_arrives(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: nothing expected
          send: [{node: in, msg: {payload: 1}}]
          expect: [{node: out, count: 0}]
        """)
    result = await run_one(path)
    assert result.failures == ["expect[0] (node 'out'): expected 0 message(s), got 1\n"
                               "received 1 message(s):\n"
                               '  - {"payload": 2}']


async def test_errors_expectations_and_errors_shown_on_failure(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: error expected
          send: [{node: in, msg: {payload: null}}]
          expect:
            - error: {node: in, message: {$contains: "unsupported operand"}}
        - name: no errors expected
          send: [{node: in, msg: {payload: null}}]
          expect: [{errors: []}]
        """)
    first, second = collect(path)
    assert (await run_flow_test(first, test_registry())).passed
    result = await run_flow_test(second, test_registry())
    assert result.failures[0].startswith("expect[0] (errors): expected 0 error(s), got 1")
    assert "TypeError: unsupported operand" in result.failures[1]
    assert result.failures[1].startswith("errors reported during the test:\n  node 'in': ")


# -- stubs --------------------------------------------------------------------------------------

OUTSIDE = """\
flow: outside
nodes:
  prepare:
    type: function
    code: |
      msg["query"] = "select 1"
      return msg
    wires: [db]
  db:
    type: function
    outputs: 2
    code: |
      raise RuntimeError("no database here")
    wires: [[after], [other]]
  after:
    type: function
    code: return msg
  other:
    type: function
    code: return msg
  on-error:
    type: catch
    wires: [report]
  report:
    type: function
    code: return msg
"""


async def test_reply_stub_feeds_the_rest_of_the_flow(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: reply
          stubs: {db: {reply: {payload: {rows: 1}}}}
          send: [{node: prepare, msg: {payload: x, topic: t}}]
          expect:
            - {node: db, msg: {query: select 1, payload: x}}
            - {node: after, messages: [{payload: {rows: 1}, query: select 1, topic: t}]}
            - {node: other, count: 0}
            - {node: report, count: 0}
        """, OUTSIDE)
    result = await run_one(path)
    assert result.passed, result.report()


async def test_reply_stub_on_another_output(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: second output
          stubs: {db: {reply: {payload: none}, output: 1}}
          send: [{node: prepare, msg: {}}]
          expect:
            - {node: other, msg: {payload: none}}
            - {node: after, count: 0}
        """, OUTSIDE)
    result = await run_one(path)
    assert result.passed, result.report()


async def test_empty_stub_swallows_and_records(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: swallow
          stubs: {db: {}}
          send: [{node: prepare, msg: {payload: 1}}]
          expect:
            - {node: db, messages: [{payload: 1, query: select 1}]}
            - {node: after, count: 0}
            - {node: report, count: 0}
        """, OUTSIDE)
    result = await run_one(path)
    assert result.passed, result.report()


async def test_code_and_error_stubs(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: code stub
          stubs:
            db:
              code: |
                flow.set("queries", (flow.get("queries") or 0) + 1)
                return [None, {"payload": msg["query"].upper()}]
          send: [{node: prepare, msg: {}}]
          expect:
            - {node: other, msg: {payload: SELECT 1}}
            - {context: {flow: {queries: 1}}}
        - name: error stub
          stubs: {db: {error: connection refused}}
          send: [{node: prepare, msg: {payload: 7}}]
          expect:
            - node: report
              msg:
                payload: 7
                error: {message: connection refused, source: {id: db, type: function}}
        """, OUTSIDE)
    for test in collect(path):
        result = await run_flow_test(test, test_registry())
        assert result.passed, result.report()


async def test_unstubbed_node_stays_real(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: real db
          send: [{node: prepare, msg: {}}]
          expect:
            - node: report
              msg: {error: {message: {$regex: "^RuntimeError: no database here"}}}
        """, OUTSIDE)
    result = await run_one(path)
    assert result.passed, result.report()


# -- time ---------------------------------------------------------------------------------------

SLOW = """\
flow: slow
nodes:
  slow:
    type: function
    code: |
      import asyncio
      await asyncio.sleep(msg["delay"])
      return msg
    wires: [done]
  done:
    type: function
    code: return msg
"""


@pytest.fixture
def slow_flow(tmp_path: Path) -> Path:
    return flow_file(tmp_path, """\
        - name: too slow
          timeout: 100ms
          send: [{node: slow, msg: {delay: 0.5}}]
          expect: [{node: done, count: 1}]
        - name: in time
          timeout: 1s
          send: [{node: slow, msg: {delay: 0.05}}]
          expect: [{node: done, count: 1}]
        - name: wait step
          timeout: 100ms
          send: [{node: slow, msg: {delay: 0.2}}, {wait: 400ms}]
          expect: [{node: done, count: 1}]
        """, SLOW)


async def test_timeout_fails_a_late_message(slow_flow: Path) -> None:
    too_slow, in_time, wait_step = collect(slow_flow)
    result = await run_flow_test(too_slow, test_registry())
    assert result.failures == ["expect[0] (node 'done'): expected 1 message(s), got 0\n"
                               "received no message"]
    assert result.seconds < 1.5
    assert (await run_flow_test(in_time, test_registry())).passed
    result = await run_flow_test(wait_step, test_registry())
    assert result.passed, result.report()


# -- isolation and context ----------------------------------------------------------------------

COUNTER = """\
flow: count
settings:
  context:
    default: file
    stores:
      file: {module: file, dir: ctx}
nodes:
  count:
    type: function
    code: |
      flow.set("n", (flow.get("n") or 0) + 1)
      context.set("seen", msg["payload"])
      msg["payload"] = flow.get("n")
      return msg
    wires: [out]
  out:
    type: function
    code: return msg
"""


async def test_each_test_has_fresh_memory_context(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: first
          send: [{node: count, msg: {payload: a}}, {node: count, msg: {payload: b}}]
          expect:
            - {node: out, messages: [{payload: 1}, {payload: 2}]}
            - {context: {flow: {n: 2}, node: {count: {seen: b}}, global: {n: {$absent: true}}}}
        - name: second, same result
          send: [{node: count, msg: {payload: a}}, {node: count, msg: {payload: b}}]
          expect: [{node: out, messages: [{payload: 1}, {payload: 2}]}]
        - name: preset context
          context: {flow: {n: 41}}
          send: [{node: count, msg: {payload: a}}]
          expect:
            - {node: out, msg: {payload: 42}}
            - {context: {flow: {n: 40}}}
        """, COUNTER)
    first, second, preset = collect(path)
    for test in (first, second):
        result = await run_flow_test(test, test_registry())
        assert result.passed, result.report()
    result = await run_flow_test(preset, test_registry())
    assert result.failures[0] == ("expect[1] (context): flow context n: expected 40, got 42")
    assert not (tmp_path / "ctx").exists()  # the file store was replaced by a memory store


def test_settings_are_isolated() -> None:
    settings = {"http": {"port": 1880, "static": "/www"}, "context": {
        "default": "file", "stores": {"file": {"module": "file", "dir": "ctx"}}}}
    _isolate(settings, False)
    assert settings["http"] == {"port": None, "static": "/www"}  # no port unless asked
    assert settings["context"] == {"default": "file", "stores": {"file": {"module": "memory"}}}
    for http, port in ((True, 1880), (0, 0), (8081, 8081)):
        settings = {"http": {"port": 1880}}
        _isolate(settings, http)
        assert settings["http"]["port"] == port


# -- load errors --------------------------------------------------------------------------------

def test_broken_tests_section_is_a_load_error_with_file_and_line(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: typo
          send:
            - node: inn
              msg: {payload: 1}
          expect:
            - {node: out, mgs: {payload: 2}}
        - name: typo
          stubs:
            out:
              code: |
                x = 1
                return (
        - timeout: soon
        """)
    line = PIPE.count("\n") + 1  # the line of "tests:"
    assert load_errors(path) == [
        # A test with a schema error gets no further checks (its unknown node is not reported).
        f"{path}:{line + 6}:26: field 'tests[0].expect[0].mgs': unknown field 'mgs' "
        "(expected one of: context, count, error, errors, messages, msg, node, output)",
        f"{path}:{line + 7}:11: field 'tests[1].name': duplicate test name 'typo' "
        "(first at tests[0])",
        f"{path}:{line + 12}:15: field 'tests[1].stubs.out.code': SyntaxError: '(' was never "
        "closed (line 2 of the code)",
        f"{path}:{line + 13}:5: field 'tests[2]': 'name' is required",
        f"{path}:{line + 13}:14: field 'tests[2].timeout': expected a duration (seconds, or "
        "'250ms', '5s', '2m', '1h'), got 'soon'",
    ]
    fixed = path.read_text().replace("mgs:", "msg:")
    path.write_text(fixed)
    assert load_errors(path)[0] == (f"{path}:{line + 3}:15: field 'tests[0].send[0].node': "
                                    "unknown node 'inn' (did you mean 'in'?)")


def test_inconsistent_steps_and_expectations_are_load_errors(tmp_path: Path) -> None:
    path = flow_file(tmp_path, """\
        - name: bad
          stubs: {in: {reply: {}, error: x}, out: {reply: {}, output: 3}}
          send:
            - {node: in, wait: 1s}
            - {inject: in}
          expect:
            - {node: out, messages: [], count: 0}
            - {context: {}, node: out}
            - {node: in, output: 1}
        """)
    messages = [e.split(": ", 2)[2] for e in load_errors(path)]
    assert messages == [
        "a stub has one of reply, code, error; got reply, error",
        "'out' has 1 output(s)",
        "a send step has exactly one of node (with msg), inject, wait; got node, wait",
        "'in' is a 'function' node, which cannot be triggered (use `node:` and `msg:` to send "
        "to it)",
        "`count` and `messages` exclude each other (`messages` gives the count)",
        "an expectation has exactly one of node, context, error, errors; got node, context",
        "'in' has 1 output(s)",
    ]


def test_a_flow_that_does_not_load_is_reported(tmp_path: Path) -> None:
    path = flow_file(tmp_path, "- name: x\n", PIPE.replace("wires: [out]", "wires: [nowhere]"))
    [error] = load_errors(path)
    assert error.startswith(f"{path}:8:")
    assert "wire to unknown node 'nowhere'" in error


# -- flowrun test -------------------------------------------------------------------------------

TWO_TESTS = """\
- name: passes
  send: [{node: in, msg: {payload: 1}}]
  expect: [{node: out, msg: {payload: 2}}]
- name: fails
  timeout: 50ms
  send: [{node: in, msg: {payload: 1}}]
  expect: [{node: out, msg: {payload: 3}}]
"""


def test_output_lines_and_summary(tmp_path: Path) -> None:
    path = flow_file(tmp_path, TWO_TESTS)
    code, out, _ = run_cli(path)
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"PASS {path}::passes (")
    assert lines[1].startswith(f"FAIL {path}::fails: expect[0] (node 'out'): no message matching")
    assert lines[-1] == "1 passed, 1 failed"


def test_select_runs_only_matching_tests(tmp_path: Path) -> None:
    path = flow_file(tmp_path, TWO_TESTS)
    code, out, _ = run_cli(path, select="PASS")
    assert code == 0
    assert out.splitlines()[-1] == "1 passed, 0 failed"


@pytest.fixture
def keep_logging():
    """``flowrun`` configures the flowengine logger; put it back for the tests that follow."""
    logger = logging.getLogger("flowengine")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.usefixtures("keep_logging")
def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = flow_file(tmp_path, TWO_TESTS)
    assert main(["test", str(path), "-k", "passes"]) == 0
    assert main(["test", str(path)]) == 1
    broken = flow_file(tmp_path, "- name: x\n  send: [{node: nope}]\n", name="broken.yaml")
    assert main(["test", str(broken)]) == 2
    captured = capsys.readouterr()
    assert f"{broken}:" in captured.err and "unknown node 'nope'" in captured.err
    # A directory: the broken file's errors, and the good file's tests still run.
    assert main(["test", str(tmp_path)]) == 2
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed, 1 failed"


def test_node_types_from_settings_nodes_dirs(tmp_path: Path) -> None:
    (tmp_path / "my_nodes").mkdir()
    (tmp_path / "my_nodes" / "shout.py").write_text(textwrap.dedent("""\
        from flowengine import Node

        class Shout(Node):
            type = "test-shout"

            def on_input(self, msg):
                msg["payload"] = str(msg["payload"]).upper() + "!"
                return msg
        """))
    path = flow_file(tmp_path, """\
        - name: shouts
          send: [{node: shout, msg: {payload: hi}}]
          expect: [{node: shout, output: 0, msg: {payload: HI!}}]
        """, "flow: loud\nsettings: {nodes_dirs: [my_nodes]}\nnodes:\n"
             "  shout: {type: test-shout}\n")
    out, err = io.StringIO(), io.StringIO()
    assert run_flow_tests([path], default_registry(), out=out, err=err) == 0, err.getvalue()
    assert out.getvalue().splitlines()[-1] == "1 passed, 0 failed"
