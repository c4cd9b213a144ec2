"""The template node: Node-RED's cases TP-01..TP-10 (docs/reference/nodered-cases.md), in YAML form.

Node-RED's ``fieldType`` is ``field_type``; a bad node template is a load error here (Node-RED
logs it on every message).
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from flowengine import FlowLoadError
from flowengine.testing import FlowHarness, NodeHarness


async def render(config: dict[str, Any], msg: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Run one message through a template node; the message it sends (without ``_msgid``)."""
    async with NodeHarness("template", config, **kwargs) as h:
        h.send(msg)
        [out] = await h.output(0)
        out.pop("_msgid")
        return out


def flow(nodes: str, settings: str = "") -> FlowHarness:
    head = f"flow: f\n{settings}nodes:\n"
    return FlowHarness.from_yaml(head + textwrap.indent(textwrap.dedent(nodes), "  "))


# -- TP-01 which template --------------------------------------------------------------------------

async def test_tp_01_node_template_wins_over_msg_template() -> None:
    out = await render({"template": "payload={{payload}}"},
                       {"payload": "foo", "template": "this should be ignored"})
    assert out == {"payload": "payload=foo", "template": "this should be ignored"}


async def test_tp_01_empty_template_uses_msg_template() -> None:
    out = await render({"field": "randomProperty"},
                       {"payload": "foo", "template": "payload={{payload}}"})
    assert out["randomProperty"] == "payload=foo"
    out = await render({"template": ""}, {"topic": "bar", "template": "topic={{topic}}"})
    assert out["payload"] == "topic=bar"


async def test_tp_01_bad_msg_template_is_a_catchable_error() -> None:
    nodes = """\
        t: {type: template}
        catcher: {type: catch, scope: [t]}
        """
    async with flow(nodes) as h:
        h.watch_output("catcher")
        h.watch_output("t")
        h.send("t", {"payload": "foo", "template": "payload={{payload"})
        [caught] = await h.output("catcher")
        assert caught["error"]["message"] == "Unclosed tag at 17"
        await h.settle()
        assert h.output_now("t") == []


# -- TP-02 env and context -------------------------------------------------------------------------

async def test_tp_02_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST", "xyzzy")
    out = await render({"template": "payload={{env.TEST}}"}, {"payload": "foo"})
    assert out["payload"] == "payload=xyzzy"


async def test_tp_02_flow_env_block_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST", "process")
    text = "flow: f\nenv: {TEST: flow-env}\nnodes:\n  t: {type: template, " \
           "template: 'payload={{env.TEST}}'}\n"
    async with FlowHarness.from_yaml(text) as h:
        h.send("t", {"payload": "foo"})
        [out] = await h.output("t")
        assert out["payload"] == "payload=flow-env"


async def test_tp_02_flow_and_global_context() -> None:
    nodes = """\
        t: {type: template, template: "payload={{flow.value}},{{global.value}},{{flow.missing}}"}
        """
    async with flow(nodes) as h:
        h.node("t").flow_context.set("value", "foo")
        h.node("t").global_context.set("value", "bar")
        h.send("t", {"payload": "x"})
        [out] = await h.output("t")
        assert out["payload"] == "payload=foo,bar,"


async def test_tp_02_context_store_by_name() -> None:
    settings = "settings:\n  context:\n    stores:\n      memory1: {module: memory}\n"
    nodes = """\
        t: {type: template, template: "payload={{flow[memory1].value}}/{{flow.value}}"}
        """
    async with flow(nodes, settings) as h:
        h.node("t").flow_context.set("value", "in-memory1", store="memory1")
        h.send("t", {"payload": "x"})
        [out] = await h.output("t")
        assert out["payload"] == "payload=in-memory1/"


async def test_tp_02_missing_context_renders_empty() -> None:
    out = await render({"template": "payload={{flow.value}},{{global.value}}"}, {"payload": 1})
    assert out["payload"] == "payload=,"


async def test_tp_02_message_property_named_flow_wins() -> None:
    out = await render({"template": "{{flow.value}}"}, {"flow": {"value": "from-msg"}})
    assert out["payload"] == "from-msg"


# -- TP-03 sections --------------------------------------------------------------------------------

SECTIONS = ("{{#flow.time}}time={{flow.time}}{{/flow.time}}{{^flow.time}}!time{{/flow.time}}"
            "{{#flow.random}}random={{flow.random}}randomtime={{flow.randomtime}}"
            "{{/flow.random}}{{^flow.random}}!random{{/flow.random}}")


async def test_tp_03_sections_over_context_values() -> None:
    nodes = f"""\
        t: {{type: template, template: '{SECTIONS}'}}
        """
    async with flow(nodes) as h:
        h.send("t", {"payload": "x"})
        [out] = await h.output("t")
        assert out["payload"] == "!time!random"
        context = h.node("t").flow_context
        for key, value in (("time", "123"), ("random", "456"), ("randomtime", "789")):
            context.set(key, value)
        h.send("t", {"payload": "x"})
        out = (await h.output("t", count=2))[1]
        assert out["payload"] == "time=123random=456randomtime=789"


async def test_tp_03_block_over_a_string() -> None:
    out = await render({"template": "A{{#payload.A}}{{payload.A}}{{.}}{{/payload.A}}B"},
                       {"payload": {"A": "abc"}})
    assert out["payload"] == "AabcabcB"


async def test_tp_03_list_sections_and_empty_values() -> None:
    template = "{{#payload}}<{{name}}>{{/payload}}{{^none}}no{{/none}}{{#obj}}obj{{/obj}}"
    out = await render({"template": template},
                       {"payload": [{"name": "a"}, {"name": "b"}], "none": [], "obj": {}})
    assert out["payload"] == "<a><b>noobj"  # an empty object is truthy, as in JavaScript


# -- TP-04 escaping --------------------------------------------------------------------------------

async def test_tp_04_html_escaping_as_mustache_js() -> None:
    out = await render({"template": "{{payload}}|{{{payload}}}|{{&payload}}"},
                       {"payload": "<a href=\"x\">'&/`=</a>"})
    assert out["payload"] == (
        "&lt;a href&#x3D;&quot;x&quot;&gt;&#39;&amp;&#x2F;&#x60;&#x3D;&lt;&#x2F;a&gt;"
        "|<a href=\"x\">'&/`=</a>|<a href=\"x\">'&/`=</a>")


# -- TP-05 value rendering -------------------------------------------------------------------------

async def test_tp_05_values_render_as_javascript() -> None:
    template = "[{{payload}}][{{missing}}][{{payload.length}}][{{n}}][{{b}}][{{nul}}][{{f}}]"
    out = await render({"template": template},
                       {"payload": [1, 2, {"a": 1}], "n": 0, "b": False, "nul": None, "f": 1.0})
    assert out["payload"] == "[1,2,[object Object]][][3][0][false][][1]"
    out = await render({"template": "{{payload}} {{payload.x.length}}"},
                       {"payload": {"x": "four"}})
    assert out["payload"] == "[object Object] 4"


# -- TP-06 JSON and YAML output --------------------------------------------------------------------

async def test_tp_06_json_output_escapes_string_values() -> None:
    text = "line\t1\nline\\2\r\nline\b3\f"
    out = await render({"template": '{"data":"{{payload}}"}', "output": "json"},
                       {"payload": text})
    assert out["payload"] == {"data": text}


async def test_tp_06_invalid_json_is_a_catchable_error_and_nothing_is_sent() -> None:
    nodes = """\
        t: {type: template, template: "not json {{payload}}", output: json}
        catcher: {type: catch, scope: [t]}
        """
    async with flow(nodes) as h:
        h.watch_output("catcher")
        h.watch_output("t")
        h.send("t", {"payload": 1})
        [caught] = await h.output("catcher")
        assert caught["error"]["message"] == ("Unexpected token 'o', \"not json 1\" is not "
                                              "valid JSON")  # JSON.parse's message
        assert caught["payload"] == 1
        await h.settle()
        assert h.output_now("t") == []


async def test_tp_06_yaml_output() -> None:
    out = await render({"template": "name: {{payload}}\nitems: [1, 2]", "output": "yaml"},
                       {"payload": "box"})
    assert out["payload"] == {"name": "box", "items": [1, 2]}


async def test_tp_06_invalid_yaml_is_an_error() -> None:
    async with NodeHarness("template", {"template": "a: [", "output": "yaml"}) as h:
        h.send({"payload": 1})
        await h.settle()
        assert h.output_now(0) == []
        [error] = h.errors
        assert error["message"].startswith("invalid YAML from template")


# -- TP-07 plain -----------------------------------------------------------------------------------

async def test_tp_07_plain_text_is_copied() -> None:
    out = await render({"template": "payload={{payload}}", "syntax": "plain"}, {"payload": "foo"})
    assert out["payload"] == "payload={{payload}}"


async def test_tp_07_plain_text_is_never_parsed() -> None:
    out = await render({"template": "{{payload", "syntax": "plain"}, {"payload": "foo"})
    assert out["payload"] == "{{payload"


# -- TP-08 context targets -------------------------------------------------------------------------

@pytest.mark.parametrize("scope", ["flow", "global"])
async def test_tp_08_result_into_context(scope: str) -> None:
    nodes = f"""\
        t: {{type: template, template: "payload={{{{payload}}}}", field: payload,
            field_type: {scope}}}
        """
    async with flow(nodes) as h:
        h.send("t", {"payload": "foo"})
        [out] = await h.output("t")
        assert out["payload"] == "foo"  # the message is unchanged
        node = h.node("t")
        context = node.flow_context if scope == "flow" else node.global_context
        assert context.get("payload") == "payload=foo"


async def test_tp_08_result_into_a_named_store() -> None:
    settings = "settings:\n  context:\n    stores:\n      memory1: {module: memory}\n"
    nodes = """\
        t: {type: template, template: "payload={{payload}}", field: "#:(memory1)::payload",
            field_type: flow}
        """
    async with flow(nodes, settings) as h:
        h.send("t", {"payload": "foo"})
        await h.output("t")
        context = h.node("t").flow_context
        assert context.get("payload", store="memory1") == "payload=foo"
        assert context.get("payload") is None


# -- TP-09 field -----------------------------------------------------------------------------------

async def test_tp_09_field_defaults_to_payload_and_may_be_deep() -> None:
    out = await render({"template": "payload={{payload.doh.rei.me}}", "field": "topic.foo.bar"},
                       {"payload": {"doh": {"rei": {"me": "foo"}}}})
    assert out["topic"] == {"foo": {"bar": "payload=foo"}}
    out = await render({"template": "x"}, {"payload": 1})
    assert out["payload"] == "x"


# -- TP-10 bad template ----------------------------------------------------------------------------

@pytest.mark.parametrize(("template", "message"), [
    ("payload={{payload", "Unclosed tag at 17"),
    ("{{#a}}x", 'Unclosed section "a" at 7'),
    ("{{/a}}", 'Unopened section "a" at 0'),
])
def test_tp_10_bad_template_is_a_load_error(template: str, message: str) -> None:
    with pytest.raises(FlowLoadError) as info:
        NodeHarness("template", {"template": template})
    assert "field 'template'" in str(info.value)
    assert message in str(info.value)


async def test_template_reads_mapping_views_such_as_msg_req() -> None:
    """msg.req of an http-in node is a read-only Mapping, not a dict: {{req.params.id}} works."""
    from types import MappingProxyType

    async with NodeHarness("template", {"template": "id={{req.params.id}}"}) as h:
        h.send({"req": MappingProxyType({"params": MappingProxyType({"id": "42"})})})
        [out] = await h.output(0)
    assert out["payload"] == "id=42"
