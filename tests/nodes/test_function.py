"""The Python function node: Node-RED's function cases FN-01..FN-23
(docs/reference/nodered-cases.md) translated to Python, and the contract of
docs/design/function-node.md (error text with the code line, load errors at the flow file line,
timeouts, wrong return types, async setup).

Node-RED's ``func``/``initialize``/``finalize`` are ``code``/``setup``/``cleanup`` here;
``return [[...]]`` and ``node.send(msg, clone=False)`` keep their meaning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowengine.errors import FlowLoadError, LoadError
from flowengine.loader import Loader
from flowengine.testing import FlowHarness, NodeHarness, capture_logs, test_registry

CATCH = {"catch": {"type": "catch"}}


@contextlib.asynccontextmanager
async def function(code: str, **config: Any) -> AsyncIterator[NodeHarness]:
    """A running function node with a catch node beside it, both outputs recorded."""
    harness = NodeHarness("function", {"code": textwrap.dedent(code), **config},
                          extra_nodes=CATCH)
    async with harness as h:
        h.watch_output("catch")
        yield h


def flow(text: str) -> FlowHarness:
    return FlowHarness.from_yaml(textwrap.dedent(text))


async def caught(h: NodeHarness, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
    return await h.output(0, count, timeout=timeout, node_id="catch")


# -- return values and node.send ------------------------------------------------------------------


async def test_fn_01_return_msg_keeps_every_property() -> None:
    async with function("return msg") as h:
        h.send({"payload": "foo", "topic": "bar", "_topic": "baz", "_msgid": "m1"})
        [out] = await h.output(0)
    assert out == {"payload": "foo", "topic": "bar", "_topic": "baz", "_msgid": "m1"}


async def test_fn_02_node_send() -> None:
    async with function("node.send(msg)") as h:
        h.send({"payload": "foo", "topic": "bar"})
        [out] = await h.output(0)
        await h.settle()
        assert len(h.output_now(0)) == 1  # returning None sends nothing more
    assert out["payload"] == "foo" and out["topic"] == "bar"


FN_03_TWO_OUTPUTS = """\
    flow: f
    nodes:
      fn:
        type: function
        outputs: 2
        code: |
          node.send({arg})
          msg["payload"] = "changed"
        wires: [[n2], [n2]]
      n2:
        type: debug
    """


@pytest.mark.parametrize("arg", ["msg", "[msg]", "[[msg], [None]]", "[None, msg]",
                                 "[None, [msg]]"])
async def test_fn_03_send_copies_the_first_message(arg: str) -> None:
    async with flow(FN_03_TWO_OUTPUTS.format(arg=arg)) as h:
        h.send("fn", {"payload": "foo"})
        [out] = await h.received("n2")
    assert out["payload"] == "foo"


async def test_fn_03_send_without_clone_shares_the_message() -> None:
    code = 'msg, clone=False'
    async with flow(FN_03_TWO_OUTPUTS.format(arg=code)) as h:
        h.send("fn", {"payload": "foo"})
        [out] = await h.received("n2")
    assert out["payload"] == "changed"


async def test_fn_04_no_clone_fan_out_first_gets_object_second_a_copy() -> None:
    text = """\
        flow: f
        nodes:
          fn:
            type: function
            code: |
              node.send(msg, clone=False)
              msg["payload"] = "changed"
              return None
            wires: [h1, h2]
          h1: {type: debug}
          h2: {type: debug}
        """
    async with flow(text) as h:
        h.send("fn", {"payload": "orig"})
        [first] = await h.received("h1")
        [second] = await h.received("h2")
    assert first["payload"] == "changed"
    assert second["payload"] == "orig"


async def test_fn_05_one_message_per_output() -> None:
    async with function("return [{'payload': '1'}, {'payload': '2'}]", outputs=2) as h:
        h.send({"payload": "x"})
        [out0] = await h.output(0)
        [out1] = await h.output(1)
    assert out0["payload"] == "1" and out1["payload"] == "2"


async def test_fn_06_several_messages_on_one_output_keep_the_input_msgid() -> None:
    async with function("return [[{'payload': 1}, {'payload': 2}]]") as h:
        h.send({"payload": "x", "_msgid": "1234"})
        outs = await h.output(0, 2)
    assert outs == [{"payload": 1, "_msgid": "1234"}, {"payload": 2, "_msgid": "1234"}]


async def test_fn_07_none_and_none_entries_send_nothing() -> None:
    code = """\
        if msg["payload"] == "drop":
            return None
        return [[{"payload": 1}, None, {"payload": 2}], None, {"payload": 3}]
        """
    async with function(code, outputs=3) as h:
        h.send({"payload": "drop"})
        h.send({"payload": "go", "_msgid": "M"})
        out0 = await h.output(0, 2)
        [out2] = await h.output(2)
        await h.settle()
        assert h.output_now(0) == out0 and h.output_now(1) == []
    assert [m["payload"] for m in out0] == [1, 2]
    assert out2 == {"payload": 3, "_msgid": "M"}
    assert all(m["_msgid"] == "M" for m in out0)


async def test_fn_08_entries_past_the_last_output_are_ignored() -> None:
    async with function("return [{'payload': 1}, {'payload': 2}]") as h:
        h.send({"payload": "x"})
        [out] = await h.output(0)
        await h.settle()
        assert len(h.output_now(0)) == 1
        assert h.errors == []
    assert out["payload"] == 1


@pytest.mark.parametrize(("code", "kind"), [
    ("return 'foo'", "str"),
    ("return b'hello'", "bytes"),
    ("return [[[1, 2, 3]]]", "list"),
    ("return True", "bool"),
    ("return 123", "int"),
])
async def test_fn_09_non_message_return_is_a_catchable_error(code: str, kind: str) -> None:
    # Node-RED only logs this; here it reaches catch nodes like any other error of the node.
    async with function(code) as h:
        h.send({"payload": "x", "_msgid": "M"})
        [err] = await caught(h)
        await h.settle()
        assert h.output_now(0) == []
    assert err["error"]["message"] == (
        f"node 'node' returned a {kind}, not a message (dict), list or None")
    assert err["error"]["source"]["id"] == "node"
    assert err["payload"] == "x" and err["_msgid"] == "M"


async def test_fn_09_bad_entry_next_to_a_good_one() -> None:
    async with function("return [[{'payload': 'ok'}, 'bad'], 'worse']") as h:
        h.send({"payload": "x"})
        [out] = await h.output(0)
        errors = await caught(h, 2)
    assert out["payload"] == "ok"
    assert [e["error"]["message"] for e in errors] == [
        "node 'node' returned a str, not a message (dict), list or None"] * 2


async def test_fn_09_non_message_without_catch_is_logged_once() -> None:
    records = capture_logs()
    async with NodeHarness("function", {"code": "return 'foo'"}) as h:
        h.send({"payload": "x"})
        await h.settle()
    errors = [r for r in records if r.levelno == logging.ERROR and getattr(r, "node", "") == "node"]
    assert [r.getMessage() for r in errors] == [
        "node 'node' returned a str, not a message (dict), list or None"]


async def test_fn_10_node_id_name_and_outputs() -> None:
    code = "return [{'topic': node.name, 'payload': node.id, 'outputs': node.outputs}]"
    async with function(code, name="test-function", outputs=2) as h:
        h.send({"payload": "x"})
        [out] = await h.output(0)
    assert (out["topic"], out["payload"], out["outputs"]) == ("test-function", "node", 2)


# -- errors ---------------------------------------------------------------------------------------


async def test_fn_11_node_error_with_msg_reaches_catch() -> None:
    async with function("node.error('This is an error', msg)") as h:
        h.send({"payload": "foo", "topic": "bar"})
        [err] = await caught(h)
    assert err["payload"] == "foo" and err["topic"] == "bar"
    assert err["error"] == {"message": "This is an error", "source": {
        "id": "node", "type": "function", "count": 1}}


async def test_fn_12_raised_exception_reaches_catch() -> None:
    # Node-RED puts the Error object in _error; here an existing msg.error moves to _error and
    # the exception is described by msg.error.type and msg.error.stack.
    async with function("x = 1\nraise ValueError('boom')", name="F") as h:
        h.send({"payload": "x", "error": "old"})
        [err] = await caught(h)
    error = err["error"]
    assert error["message"] == "ValueError: boom (node, line 2)"
    assert error["source"] == {"id": "node", "type": "function", "name": "F", "count": 1}
    assert error["type"] == "ValueError"
    assert error["stack"].endswith("ValueError: boom")
    assert 'File "<function node>", line 2' in error["stack"]
    assert "function.py" not in error["stack"]  # only the author's code, not the node's frames
    assert err["_error"] == "old"


async def test_fn_13_name_error_names_the_code_line() -> None:
    text = """\
        flow: offers
        nodes:
          process-offer:
            type: function
            code: |
              offer = msg["payload"]
              pipelines = {}
              pipelines = pipline
              return msg
          on-error:
            type: catch
        """
    records = capture_logs()
    async with flow(text) as h:
        h.watch_output("on-error")
        h.send("process-offer", {"payload": 1})
        [err] = await h.output("on-error")
    assert err["error"]["message"] == (
        "NameError: name 'pipline' is not defined (process-offer, line 3)")
    assert not [r for r in records if r.levelno >= logging.ERROR]  # caught: not logged


async def test_fn_13_uncaught_name_error_is_logged_with_the_line() -> None:
    records = capture_logs()
    async with NodeHarness("function", {"code": "a = 1\nretunr"}) as h:
        h.send({"payload": 1, "_msgid": "M1"})
        await h.settle()
    [record] = [r for r in records if r.levelno == logging.ERROR]
    assert record.getMessage() == "NameError: name 'retunr' is not defined (node, line 2)"
    assert (record.node, record.flow, record.msgid) == ("node", "test", "M1")


@pytest.mark.parametrize(("err", "text"), [
    ("'small mistake'", "small mistake"),
    ("99", "99"),
    ("{'a': 1}", '{"a":1}'),
])
async def test_fn_14_non_exception_errors(err: str, text: str) -> None:
    # Python cannot raise a string; node.error(value, msg) is the way to report one.
    async with function(f"node.error({err}, msg)") as h:
        h.send({"payload": 1})
        [out] = await caught(h)
    assert out["error"]["message"] == text
    assert "_error" not in out


async def test_fn_15_logging_from_code_and_setup() -> None:
    records = capture_logs()
    code = "node.log('info');node.debug('debug');node.warn('warn');node.error('error')"
    async with NodeHarness("function", {"code": code, "setup": "node.warn('from setup')"}) as h:
        h.send({"payload": 1})
        await h.settle()
    mine = [(r.levelname, r.getMessage()) for r in records if getattr(r, "node", "") == "node"]
    assert mine == [("WARNING", "from setup"), ("INFO", "info"), ("DEBUG", "debug"),
                    ("WARNING", "warn"), ("ERROR", "error")]


# -- context and env ------------------------------------------------------------------------------


async def test_fn_16_context_scopes() -> None:
    code = """\
        context.set("count", "0")
        flow.set("f", 1)
        global_.set("count", "0")
        context.set(["a", "b"], ["1"])
        msg["payload"] = {
            "global_keys": global_.keys(),
            "node": context.get(["count", "a", "b"]),
            "flow": flow.get("f"),
            "nested": flow.get("missing.deeper"),
        }
        return msg
        """
    async with function(code) as h:
        h.send({"payload": None})
        [out] = await h.output(0)
        node = h.node("node")
        assert node.context.get("count") == "0"
        assert node.flow_context.get("f") == 1
        assert node.global_context.get("count") == "0"
    assert out["payload"] == {"global_keys": ["count"], "node": ["0", "1", None],
                              "flow": 1, "nested": None}


async def test_fn_16_invalid_context_key_is_an_error() -> None:
    async with function("context.get('')") as h:
        h.send({"payload": 1})
        [err] = await caught(h)
    assert err["error"]["message"] == "ValueError: Invalid context key (node, line 1)"


async def test_fn_17_env_get_reads_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("_TEST_FOO_", raising=False)
    code = "msg['payload'] = env.get('_TEST_FOO_'); return msg"
    async with function(code) as h:
        h.send({"payload": "x"})
        [unset] = await h.output(0)
        monkeypatch.setenv("_TEST_FOO_", "hello")
        h.send({"payload": "x"})
        [_, hello] = await h.output(0, 2)
    assert unset["payload"] is None
    assert hello["payload"] == "hello"


async def test_fn_17_flow_env_comes_before_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHO", "process")
    text = """\
        flow: f
        env: {WHO: flow}
        nodes:
          fn:
            type: function
            code: |
              return {"payload": [env.get("WHO"), env.get("NOPE", "dflt"), env.get("NR_NODE_ID")]}
            wires: [out]
          out: {type: debug}
        """
    async with flow(text) as h:
        h.send("fn", {})
        [out] = await h.received("out")
    assert out["payload"] == ["flow", "dflt", "fn"]


# -- setup and cleanup ----------------------------------------------------------------------------


async def test_fn_18_setup_runs_before_messages() -> None:
    code = "msg['payload'] = global_.get('X'); return msg"
    async with function(code, setup="global_.set('X', 'bar')") as h:
        h.send({"payload": None})
        [out] = await h.output(0)
    assert out["payload"] == "bar"


async def test_fn_18_messages_during_async_setup_wait_in_order() -> None:
    text = """\
        flow: f
        nodes:
          fn:
            type: function
            setup: |
              await asyncio.sleep(0.3)
              flow.set("ready", True)
            code: |
              msg["ready"] = flow.get("ready")
              return msg
            wires: [out]
          out: {type: debug}
        """
    h = flow(text)
    starting = asyncio.ensure_future(h.__aenter__())
    try:
        for _ in range(200):  # wait until the node is in its setup
            node = h.runtime.get_node("fn")
            if node is not None and node.state == "starting":
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the function node never entered its setup")
        for i in range(3):
            h.send("fn", {"payload": i})
        await starting
        outs = await h.received("out", 3, timeout=5)
    finally:
        await starting
        await h.__aexit__(None, None, None)
    assert [(m["payload"], m["ready"]) for m in outs] == [(0, True), (1, True), (2, True)]


async def test_fn_18_failed_setup_reports_each_message() -> None:
    async with function("return msg", setup="x = 1\nraise RuntimeError('no db')") as h:
        h.send({"payload": 1})
        [err] = await caught(h)
    assert err["error"]["message"] == "RuntimeError: no db (node, line 2, in setup)"
    assert h.output_now(0) == []


async def test_fn_18_setup_helpers_are_callable_from_other_functions() -> None:
    text = """\
        flow: f
        nodes:
          lib:
            type: function
            setup: |
              def double(x):
                  return x * 2
              global_.set("double", double)
            code: return None
          use:
            type: function
            code: |
              msg["payload"] = global_.get("double")(msg["payload"])
              return msg
            wires: [out]
          out: {type: debug}
        """
    async with flow(text) as h:
        h.send("use", {"payload": 21})
        [out] = await h.received("out")
    assert out["payload"] == 42


async def test_fn_19_cleanup_runs_at_stop() -> None:
    cleanup = "global_.set('X', [node.id, node.name, node.outputs])"
    async with function("return msg", cleanup=cleanup, name="N") as h:
        node = h.node("node")
        assert node.global_context.get("X") is None
    assert node.global_context.get("X") == ["node", "N", 1]


async def test_fn_19_cleanup_cannot_send() -> None:
    records = capture_logs()
    async with function("return msg", cleanup="node.send({'payload': 1})"):
        pass
    [record] = [r for r in records if r.levelno == logging.ERROR]
    assert record.getMessage() == (
        "node 'node' close failed: cannot send from cleanup")


# -- timeouts -------------------------------------------------------------------------------------


async def test_fn_20_sync_timeout_reaches_catch() -> None:
    code = """\
        n = 0
        while True:
            try:
                n += 1
            except Exception:
                pass  # a broad except in the code must not swallow the timeout
        """
    async with function(code, timeout="0.2s") as h:
        h.send({"payload": 1})
        [err] = await caught(h)
        await h.settle()
        assert h.output_now(0) == []
    assert err["error"]["message"].startswith(
        "FunctionTimeout: the code ran longer than 0.2s (node, line ")
    assert err["error"]["type"] == "FunctionTimeout"


async def test_fn_20_sync_timeout_then_next_message_runs() -> None:
    code = """\
        if msg["payload"] == "spin":
            while True:
                pass
        return msg
        """
    async with function(code, timeout="0.2s") as h:
        h.send({"payload": "spin"})
        h.send({"payload": "ok"})
        [err] = await caught(h)
        [out] = await h.output(0)
    # The interpreter notices the alarm on the loop's jump, at line 2 or 3.
    assert err["error"]["message"] in {
        f"FunctionTimeout: the code ran longer than 0.2s (node, line {n})" for n in (2, 3)}
    assert out["payload"] == "ok"


async def test_fn_20_async_timeout_reaches_catch_and_others_keep_flowing() -> None:
    code = """\
        if msg["payload"] == "slow":
            await asyncio.sleep(10)
        return msg
        """
    async with function(code, timeout="1s") as h:
        h.send({"payload": "slow"})
        h.send({"payload": "fast"})
        [fast] = await h.output(0, timeout=5)
        assert h.output_now(0, node_id="catch") == []  # fast went by while slow waited
        [err] = await caught(h)
        await h.settle()
        assert [m["payload"] for m in h.output_now(0)] == ["fast"]
    assert fast["payload"] == "fast"
    assert err["payload"] == "slow"
    assert err["error"]["message"] == "FunctionTimeout: the code ran longer than 1s (node, line 2)"


async def test_fn_20_code_s_own_timeout_error_is_not_the_node_timeout() -> None:
    code = "await asyncio.wait_for(asyncio.sleep(10), 0.01)"
    async with function(code, timeout="5s") as h:
        h.send({"payload": 1})
        [err] = await caught(h)
    assert err["error"]["type"] == "TimeoutError"
    assert err["error"]["message"].startswith("TimeoutError")


# -- deferred and async sends ---------------------------------------------------------------------


async def test_fn_21_deferred_send_keeps_its_own_message() -> None:
    # Python's counterpart of setTimeout: a callback scheduled on the loop. Each callback acts on
    # the message it was scheduled for, even though the node handled others meanwhile.
    code = """\
        asyncio.get_running_loop().call_later(0.1, node.send, {"payload": msg["payload"] * 10})
        return msg
        """
    async with function(code) as h:
        h.send({"payload": 1, "_msgid": "A"})
        h.send({"payload": 2, "_msgid": "B"})
        outs = await h.output(0, 4, timeout=5)
    assert [(m["payload"], m["_msgid"]) for m in outs] == [(1, "A"), (2, "B"), (10, "A"),
                                                            (20, "B")]


async def test_fn_22_async_sends_keep_the_input_msgid() -> None:
    code = """\
        node.send({"payload": 1})
        await asyncio.sleep(0.02)
        node.send({"payload": 2})
        return {"payload": 3}
        """
    async with function(code) as h:
        h.send({"payload": 0, "_msgid": "M"})
        outs = await h.output(0, 3)
    assert [(m["payload"], m["_msgid"]) for m in outs] == [(1, "M"), (2, "M"), (3, "M")]


async def test_fn_23_modules_are_imported_in_the_code() -> None:
    # Node-RED's libs: [{var, module}] is a plain import statement here.
    code = """\
        import os.path
        msg["payload"] = os.path.join("a", "b")
        return msg
        """
    async with function(code) as h:
        h.send({"payload": None})
        [out] = await h.output(0)
    assert out["payload"] == "a/b"


async def test_fn_23_module_used_without_import_is_a_name_error() -> None:
    async with function("msg['payload'] = os.sep\nreturn msg") as h:
        h.send({"payload": None})
        [err] = await caught(h)
        assert h.output_now(0) == []
    assert err["error"]["message"] == "NameError: name 'os' is not defined (node, line 1)"


# -- completion -----------------------------------------------------------------------------------


async def test_code_calling_node_done_finishes_the_message_itself() -> None:
    text = """\
        flow: f
        nodes:
          auto:
            type: function
            code: return None
          manual:
            type: function
            code: |
              if msg["payload"] == "finish":
                  node.done()
          finished:
            type: complete
            scope: [auto, manual]
        """
    async with flow(text) as h:
        h.watch_output("finished")
        h.send("auto", {"payload": "a"})
        h.send("manual", {"payload": "skip"})
        h.send("manual", {"payload": "finish"})
        outs = await h.output("finished", 0, 2)
        await h.settle()
        assert len(h.output_now("finished")) == 2
    assert [(m["payload"], m["complete"]["source"]["id"]) for m in outs] == [
        ("a", "auto"), ("finish", "manual")]


# -- load errors ----------------------------------------------------------------------------------


def load_error(text: str) -> LoadError:
    with pytest.raises(FlowLoadError) as info:
        Loader(test_registry()).load_text(textwrap.dedent(text), "f.yaml")
    [error] = info.value.errors
    return error


def test_syntax_error_in_code_is_a_load_error_at_the_file_line() -> None:
    text = """\
        flow: f
        nodes:
          fn:
            type: function
            code: |
              x = 1
              if x
                  return msg
        """
    error = load_error(text)
    # Line 7 of the file is the second line of the code; the column is the loader's choice.
    assert str(error) == (f"f.yaml:7:{error.column}: node 'fn', field 'code': "
                          "SyntaxError: expected ':' (line 2 of the code)")


def test_syntax_error_in_setup_is_a_load_error_at_the_file_line() -> None:
    text = """\
        flow: f
        nodes:
          fn:
            type: function
            code: return msg
            setup: |
              import json
              x = (1,
              y = 2
        """
    error = load_error(text)
    assert str(error) == (f"f.yaml:8:{error.column}: node 'fn', field 'setup': "
                          "SyntaxError: '(' was never closed (line 2 of the setup)")
