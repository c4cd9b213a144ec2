"""``flowrun import``: Node-RED exports (tests/fixtures/nodered, written in Node-RED's own JSON
format) converted to flow files that validate and behave as the originals: the same outputs for
the same inputs, checked against the cases of docs/reference/nodered-cases.md. Then the bad inputs.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from websockets.asyncio.client import connect

from flowengine.cli import main as flowrun
from flowengine.importer import ImportReport, import_nodered
from flowengine.importer.cli import main as import_main
from flowengine.importer.values import escape_text, typed_value
from flowengine.loader import Loader
from flowengine.testing import FlowHarness, test_registry

FIXTURES = Path(__file__).parent / "fixtures" / "nodered"
CORE_TYPES = {"inject", "debug", "function", "switch", "change", "json", "link in", "link out",
              "link call", "catch", "status", "complete", "comment", "junction", "delay",
              "trigger", "template", "split", "join", "http in", "http response",
              "http request", "websocket in", "websocket out"}


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> ImportReport:
    return import_nodered(FIXTURES / "core.json", tmp_path_factory.mktemp("core"))


@pytest.fixture(scope="module")
def subflows(tmp_path_factory: pytest.TempPathFactory) -> ImportReport:
    return import_nodered(FIXTURES / "subflows.json", tmp_path_factory.mktemp("subflows"))


def running(report: ImportReport) -> FlowHarness:
    """The imported flows in a runtime; HTTP (when used) on a free port of 127.0.0.1."""
    harness = FlowHarness.from_files(report.files, environ={})
    harness.runtime.settings["http"] = {"port": 0, "host": "127.0.0.1"}
    return harness


def node_file(report: ImportReport, flow: str) -> dict[str, Any]:
    return yaml.safe_load((report.out_dir / f"{flow}.yaml").read_text())


# -- the core export ------------------------------------------------------------------------------

def test_core_export_converts_every_core_node_type(core: ImportReport):
    assert set(core.converted) >= CORE_TYPES, CORE_TYPES - set(core.converted)
    assert core.placeholders == []
    assert core.problems == []
    assert [f.name for f in core.files] == ["basics.yaml", "sequences.yaml",
                                            "links-errors.yaml", "web.yaml"]
    assert core.valid
    assert core.exit_code == 1  # a JavaScript function node needs a look
    assert [(n.id, n.nr_type) for n in core.functions] == [("double", "function")]


def test_core_output_passes_flowrun_validate(core: ImportReport, capsys):
    assert flowrun(["validate", str(core.out_dir)]) == 0


def test_tabs_become_flows_with_env(core: ImportReport):
    basics = node_file(core, "basics")
    assert basics["flow"] == "basics"
    assert basics["description"] == "Core nodes, one small flow each."
    # global-config env first, the tab's own after it
    assert basics["env"] == {"SITE": "lab", "GREETING": "hello", "LIMIT": 5}
    assert node_file(core, "links-errors")["flow"] == "links-errors"


def test_positions_dropped_and_disabled_kept(core: ImportReport):
    nodes = node_file(core, "basics")["nodes"]
    assert not any(k in n for n in nodes.values() for k in ("x", "y", "z", "g", "id"))
    assert nodes["off"]["disabled"] is True
    assert "disabled" not in nodes["rendered"]


def test_groups_are_kept_with_their_nodes(core: ImportReport):
    basics = node_file(core, "basics")
    [(group_id, group)] = basics["groups"].items()
    assert group == {"name": "Parsing"}
    nodes = basics["nodes"]
    assert [n for n, body in nodes.items() if body.get("group") == group_id] == [
        "parse", "render", "parse-errors", "errors"]
    assert nodes["parse-errors"]["scope"] == "group"


def test_javascript_function_is_disabled_with_its_code_as_a_comment(core: ImportReport):
    text = (core.out_dir / "basics.yaml").read_text()
    before, _, _ = text.partition("\n  double:\n")
    comment = before.rsplit("\n  # JavaScript", 1)[1]
    assert "#     msg.payload *= 2;" in comment and "#     return msg;" in comment
    assert "#     context.set('n', 0);" in comment  # On Start
    assert "Modules it required: moment" in comment
    double = node_file(core, "basics")["nodes"]["double"]
    assert double["disabled"] is True and double["type"] == "function"
    assert "NotImplementedError" in double["code"]


async def test_in_05_inject_multiple_properties(core: ImportReport):
    async with running(core) as h:
        h.node("props").inject()
        [msg] = await h.received("injected")
        assert {k: msg[k] for k in ("topic", "payload", "x", "y")} == {
            "topic": "t1", "payload": "foo", "x": 10, "y": 12}


@pytest.mark.parametrize(("switch", "debug", "payloads", "expected"), [
    ("str-rule", "str-matches", [1, "1", "01", True, "1.0"], [1, "1", True]),  # SW-04
    ("num-rule", "num-matches", ["1", " 1 ", "1.0", True, 1],
     ["1", " 1 ", "1.0", True, 1]),  # SW-05
])
async def test_sw_04_05_loose_equality_keeps_the_rule_type(core, switch, debug, payloads,
                                                           expected):
    async with running(core) as h:
        for payload in payloads:
            h.send(switch, {"payload": payload})
        await h.settle()
        assert [m["payload"] for m in h.received_now(debug)] == expected


async def test_switch_env_comparand_and_checkall_false(core: ImportReport):
    async with running(core) as h:
        for payload in (7, 2, 4, 3):
            h.send("route", {"payload": payload})
        await h.settle()
        assert [m["payload"] for m in h.received_now("big")] == [7]  # > env LIMIT (5)
        assert [m["payload"] for m in h.received_now("small")] == [2, 3]
        assert [m["payload"] for m in h.received_now("other")] == [4]


async def test_ch_change_rules_and_co_01_complete(core: ImportReport):
    async with running(core) as h:
        h.send("tidy", {"payload": "x", "fred": "bar", "topic": "a-a", "bar": 1, "x": 5,
                        "text": "a1b22"})
        [msg] = await h.received("tidied")
        assert msg["payload"] == 12345  # CH-02: num
        assert msg["foo"] == "bar"  # CH-04: from msg.fred
        assert msg["topic"] == "b-b"
        assert "bar" not in msg and "x" not in msg and msg["y"] == 5
        assert msg["greeting"] == "hello" and msg["site"] == "lab"  # tab / global env
        assert msg["text"] == "a<1>b<22>"
        assert h.node("tidy").flow_context.get("count") == 1
        [done] = await h.received("completed")
        assert done["complete"]["source"]["id"] == "tidy"


async def test_tp_01_template_after_json_and_group_catch(core: ImportReport):
    async with running(core) as h:
        h.send("parse", {"payload": '{"a": 5}'})
        [msg] = await h.received("rendered")
        assert msg["payload"] == "payload=5 ${NOT_AN_ENV}"  # not an env reference in Node-RED
        h.send("parse", {"payload": "{oops"})
        [caught] = await h.received("errors")
        assert caught["error"]["source"]["id"] == "parse"


async def test_disabled_nodes_do_not_run(core: ImportReport):
    async with running(core) as h:
        with pytest.raises(KeyError):
            h.node("double")
        with pytest.raises(KeyError):
            h.node("off")


async def test_jn_06_jn_07_jn_16_sequences(core: ImportReport):
    async with running(core) as h:
        h.send("split-lines", {"payload": "a\nb\nc"})
        for payload in (1, True, {"a": 1}):
            h.send("collect-3", {"payload": payload})
        for i, payload in enumerate([1, 2, 3, 4, 0]):
            h.send("sum", {"payload": payload, "parts": {"id": "g", "index": i, "count": 5}})
        [rejoined] = await h.received("rejoined")
        [collected] = await h.received("collected")
        [averaged] = await h.received("averaged")
        assert rejoined["payload"] == "a\nb\nc"
        assert collected["payload"] == [1, True, {"a": 1}]
        assert averaged["payload"] == 2


async def test_delay_and_rate_limit(core: ImportReport):
    async with running(core) as h:
        started = time.monotonic()
        h.send("wait", {"payload": "later"})
        for n in range(3):
            h.send("limit", {"payload": n})
        [msg] = await h.received("waited")
        assert msg["payload"] == "later" and time.monotonic() - started >= 0.04
        await h.settle()
        assert [m["payload"] for m in h.received_now("passed")] == [0]
        assert [m["payload"] for m in h.received_now("dropped")] == [1, 2]


async def test_tr_01_trigger_and_st_01_status(core: ImportReport):
    async with running(core) as h:
        h.send("pulse", {"payload": "go"})
        first, second = await h.received("pulsed", 2)
        assert (first["payload"], second["payload"]) == ("1", "0")
        [status] = await h.received("statuses")
        assert status["status"]["source"]["id"] == "pulse"
        assert status["status"]["fill"] == "blue"


async def test_lk_01_lk_03_links(core: ImportReport):
    async with running(core) as h:
        h.send("call-double", {"payload": 4})
        h.send("broadcast", {"payload": "hi"})  # the link in names the link out (reverse)
        [called] = await h.received("called")
        [heard] = await h.received("heard")
        assert called["payload"] == 8
        assert heard["payload"] == "hi"


async def test_ca_01_catch_all(core: ImportReport):
    async with running(core) as h:
        h.send("strict", {"payload": "not json"})
        [caught] = await h.received("caught")
        assert caught["error"]["source"] == {"id": "strict", "type": "json", "name": "strict",
                                             "count": 1}


async def test_http_in_response_and_hr_01_request(core: ImportReport):
    async with running(core) as h, aiohttp.ClientSession() as session:
        base = h.runtime.http.url
        async with session.get(f"{base}/hello", params={"name": "Ann"}) as resp:
            assert resp.status == 200
            assert await resp.text() == "Hello Ann"
            assert resp.headers["X-Imported"] == "yes"
        h.send("fetch", {"url": f"{base}/hello?name=Bob"})
        [fetched] = await h.received("fetched", timeout=5)
        assert fetched["payload"] == "Hello Bob"
        assert fetched["statusCode"] == 200


async def test_ws_06_websocket_echo(core: ImportReport):
    web = node_file(core, "web")["nodes"]
    assert web["ws-client"] == {"type": "websocket-out", "name": "ws client", "disabled": True,
                                "url": "ws://localhost:1880/ws/other", "wholemsg": True}
    async with running(core) as h:
        url = f"ws://127.0.0.1:{h.runtime.http.port}/ws/echo"
        async with connect(url, open_timeout=5) as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 2) == "hello"


def test_original_ids_can_be_kept(tmp_path: Path):
    report = import_nodered(FIXTURES / "core.json", tmp_path, readable_ids=False)
    assert report.valid
    nodes = node_file(report, "basics")["nodes"]
    assert nodes["2b00000000000009"]["name"] == "tidy"
    assert nodes["2b00000000000015"]["scope"] == ["2b00000000000009"]
    assert all(report.ids[i] == i for i in report.ids)


# -- subflows, groups, config nodes ---------------------------------------------------------------

def test_subflows_are_kept_as_subflows_with_their_instances(subflows: ImportReport):
    assert subflows.valid and subflows.exit_code == 0
    main = node_file(subflows, "main")
    add = main["subflows"]["add-suffix"]
    assert (add["env"], add["in"], add["out"]) == ({"SUFFIX": "!"}, ["keep-suffix"], ["append"])
    assert add["nodes"]["keep-suffix"]["wires"] == ["append"]
    # A wire from the input straight to the output goes through a junction.
    assert main["subflows"]["passthrough"] == {
        "in": ["_input"], "out": ["_input"], "nodes": {"_input": {"type": "junction"}}}
    nodes = main["nodes"]
    assert nodes["junction-1"]["wires"] == ["shout"]
    assert nodes["shout"] == {"type": "subflow:add-suffix", "name": "shout",
                              "wires": ["shouted"]}
    assert nodes["ask"]["env"] == {"SUFFIX": "?"}
    # An env variable naming itself reads the level around it.
    assert main["subflows"]["suffix-twice"]["nodes"]["second"]["env"] == {
        "SUFFIX": "${SUFFIX:-}"}


async def test_subflow_env_and_nesting_behave_as_in_node_red(subflows: ImportReport):
    async with running(subflows) as h:
        for junction in ("junction-1", "junction-2", "junction-3", "junction-4"):
            h.send(junction, {"payload": "hi"})
        [shouted] = await h.received("shouted")
        [asked] = await h.received("asked")
        [passed] = await h.received("passed")
        [twiced] = await h.received("twiced")
        assert shouted["payload"] == "hi!"  # the template's default
        assert asked["payload"] == "hi?"  # the instance's value
        assert passed["payload"] == "hi"  # input wired straight to the output
        # Nested: "first" has the default "!"; "second" reads SUFFIX from its parent "twice".
        assert twiced["payload"] == "hi!%"


async def test_ca_05_catch_scoped_to_a_subflow_instance(subflows: ImportReport):
    async with running(subflows) as h:
        h.send("junction-5", {"payload": "{bad"})
        h.send("junction-5", {"payload": '{"ok": 1}'})
        [failed] = await h.received("parse-failed")
        [parsed] = await h.received("parsed")
        assert failed["error"]["source"]["id"] == "parser-json-1"
        assert parsed["payload"] == {"ok": 1}


async def test_group_env_is_kept_and_read_at_run_time(subflows: ImportReport):
    main = node_file(subflows, "main")
    assert main["groups"] == {"colours": {"name": "Colours", "env": {"COLOR": "red"}}}
    assert main["nodes"]["paint"]["rules"] == [
        {"set": "color", "to": {"env": "COLOR"}}, {"set": "group", "to": {"env": "NR_GROUP_NAME"}}]
    async with running(subflows) as h:
        h.watch_output("paint")
        h.send("paint", {"payload": 2})
        [painted] = await h.output("paint")
        assert (painted["color"], painted["group"]) == ("red", "Colours")


def subflow_export(*inner: dict[str, Any]) -> list[dict[str, Any]]:
    """Two tabs, each with an instance of one subflow (a change node in a group, and
    ``inner``)."""
    return [
        {"id": "t1", "type": "tab", "label": "one"}, {"id": "t2", "type": "tab", "label": "two"},
        {"id": "sf", "type": "subflow", "name": "tagger", "in": [{"wires": [{"id": "tag"}]}],
         "out": [{"wires": [{"id": "tag", "port": 0}]}],
         "env": [{"name": "TAG", "type": "str", "value": "default"}]},
        {"id": "g", "type": "group", "z": "sf", "name": "inside",
         "env": [{"name": "WHERE", "type": "str", "value": "in the group"}]},
        {"id": "tag", "type": "change", "z": "sf", "g": "g", "x": 1, "y": 1, "wires": [[]],
         "rules": [{"t": "set", "p": "topic", "pt": "msg", "to": "TAG", "tot": "env"},
                   {"t": "set", "p": "where", "pt": "msg", "to": "WHERE", "tot": "env"}]},
        *inner,
        {"id": "a", "type": "subflow:sf", "z": "t1", "x": 1, "y": 1, "wires": [["out1"]],
         "env": [{"name": "TAG", "type": "str", "value": "one"}]},
        {"id": "out1", "type": "debug", "z": "t1", "x": 2, "y": 1, "wires": []},
        {"id": "b", "type": "subflow:sf", "z": "t2", "x": 1, "y": 1, "wires": [["out2"]]},
        {"id": "out2", "type": "debug", "z": "t2", "x": 2, "y": 1, "wires": []},
    ]


def import_export(tmp_path: Path, export: list[dict[str, Any]]) -> ImportReport:
    source = tmp_path / "flows.json"
    source.write_text(json.dumps(export))
    report = import_nodered(source, tmp_path / "out", readable_ids=False)
    assert report.valid, report.problems
    return report


async def test_a_subflow_used_by_two_flows_goes_to_globals_with_its_groups(
        tmp_path: Path) -> None:
    report = import_export(tmp_path, subflow_export())
    subflow = node_file(report, "globals")["subflows"]["sf"]
    assert subflow["groups"] == {"g": {"name": "inside", "env": {"WHERE": "in the group"}}}
    assert subflow["nodes"]["tag"]["group"] == "g"
    assert node_file(report, "one")["include"] == ["globals.yaml"]
    async with running(report) as h:
        h.send("a", {"payload": 1})
        h.send("b", {"payload": 2})
        [one] = await h.received("out1")
        [two] = await h.received("out2")
    assert (one["topic"], one["where"]) == ("one", "in the group")
    assert (two["topic"], two["where"]) == ("default", "in the group")


def test_config_nodes_of_a_subflow_stay_in_it(tmp_path: Path) -> None:
    report = import_export(tmp_path, subflow_export(
        {"id": "db", "type": "postgreSQLConfig", "z": "sf", "name": "db", "host": "h"},
        {"id": "q", "type": "postgresql", "z": "sf", "postgreSQLConfig": "db", "x": 1,
         "y": 3, "wires": [[]], "query": "select 1"}))
    subflow = node_file(report, "globals")["subflows"]["sf"]
    assert list(subflow["config"]) == ["db"]  # copied for each instance, as Node-RED does
    assert subflow["nodes"]["q"]["server"] == "db"
    assert "config" not in node_file(report, "globals")


def test_shared_config_nodes_go_to_globals(tmp_path: Path):
    report = import_nodered(FIXTURES / "contrib.json", tmp_path)
    assert report.valid
    assert [f.name for f in report.files] == ["orders.yaml", "reports.yaml", "audit.yaml",
                                              "globals.yaml"]
    shared = node_file(report, "globals")
    assert shared["config"] == {"shop-db": {
        "type": "postgres-server", "name": "shop db",
        "dsn": "postgresql://${PGUSER:-}@db.example.com:5432/shop"}}
    assert node_file(report, "orders")["include"] == ["globals.yaml"]
    assert node_file(report, "reports")["nodes"]["count-orders"]["server"] == "shop-db"
    audit = node_file(report, "audit")
    assert "include" not in audit and list(audit["config"]) == ["audit-db"]  # used by one flow
    assert [p.id for p in report.placeholders] == ["templated"]  # {{mustache}} in SQL
    assert any("'unused db'" in n and "not used" in n for n in report.notes)


# -- bad input ------------------------------------------------------------------------------------

def test_bad_export_names_every_problem_and_still_validates(tmp_path: Path):
    report = import_nodered(FIXTURES / "bad.json", tmp_path)
    assert report.valid and report.exit_code == 1
    problems = "\n".join(report.problems)
    assert "duplicate id '0b00000000000003'" in problems
    assert "entry 6 of the array is not a Node-RED node" in problems
    assert "entry 7 of the array is not a Node-RED node" in problems
    assert "wired to an unknown node 'deadbeefdeadbeef': wire dropped" in problems
    assert "links to 'cafecafecafecafe'" in problems
    assert "scope names an unknown node '0b0000000000dead'" in problems
    assert any("a tab the export does not contain ('0b0000000000f00d')" in n
               and "the flow 'bad-2'" in n for n in report.notes), report.notes
    assert node_file(report, "bad-2")["nodes"] == {"stray": {"type": "debug", "name": "stray"}}
    placeholders = {p.nr_type: p for p in report.placeholders}
    assert set(placeholders) == {"ui_button", "subflow:0b0000000000beef", "ui_group"}
    nodes = node_file(report, "bad")["nodes"]
    assert nodes["first-three"]["rules"] == [{"head": 3}]  # a sequence rule
    assert nodes["button"]["disabled"] is True and nodes["button"]["wires"] == ["shown"]
    assert nodes["go"]["wires"] == ["button"]
    assert nodes["twin"]["type"] == "comment"  # the duplicate, kept under another id
    assert report.ids["0b00000000000003-2"] == "twin"


@pytest.mark.parametrize(("content", "expected"), [
    ('{"hello": "world"}', "not a Node-RED export"),
    ("this is not json", "the file is not JSON"),
    ("[]", "no entry is a node object"),
    ('[1, "two"]', "entry 0 of the array is not a Node-RED node"),
    ('[{"id": "c1", "type": "mqtt-broker", "broker": "localhost"}]', "no tab and no flow node"),
])
def test_not_an_export(tmp_path: Path, content: str, expected: str):
    source = tmp_path / "flows.json"
    source.write_text(content)
    report = import_nodered(source, tmp_path / "out")
    assert report.exit_code == 2 and report.files == []
    assert any(expected in p for p in report.problems), report.problems
    assert not (tmp_path / "out").exists()


def test_cli_prints_the_report_and_refuses_to_overwrite(tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert import_main([str(FIXTURES / "subflows.json"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "into 1 file(s)" in printed and "main.yaml" in printed
    assert "flowrun validate passes" in printed
    assert import_main([str(FIXTURES / "subflows.json"), "-o", str(out)]) == 2
    assert "not overwriting existing files (use --force)" in capsys.readouterr().err
    assert import_main([str(FIXTURES / "subflows.json"), "-o", str(out), "--force"]) == 0


def test_cli_missing_file(tmp_path: Path, capsys):
    assert import_main([str(tmp_path / "nope.json"), "-o", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err


# -- values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "kind", "expected"), [
    ("10", "str", "10"),
    ("10", "num", 10),
    ("", "num", 0),
    ("1.5", "num", 1.5),
    ("TRUE", "bool", True),
    ("yes", "bool", False),
    ('{"x": "vx"}', "json", {"x": "vx"}),
    ('{"msg": "x"}', "json", {"literal": {"msg": "x"}}),
    ("[1,2,3]", "bin", {"bytes": [1, 2, 3]}),
    ("", "date", {"date": "now"}),
    ("iso", "date", {"date": "iso"}),
    ("HOME", "env", {"env": "HOME"}),
    ("${HOME}", "str", {"env": "HOME"}),
    ("payload.a", "msg", {"msg": "payload.a"}),
    ("#:(file)::k", "flow", {"flow": "#:(file)::k"}),
    ("k", "global", {"global": "k"}),
    ("$sum(payload)", "jsonata", {"jsonata": "$sum(payload)"}),
])
def test_typed_values(value, kind, expected):
    assert typed_value(value, kind) == expected


@pytest.mark.parametrize("text", ["a ${X} b", "${X}", "$${X}", "${X:-d}", "plain $ {X}"])
def test_escaped_text_reads_back_unchanged(tmp_path: Path, text: str):
    flow = tmp_path / "f.yaml"
    flow.write_text(yaml.safe_dump({"flow": "f", "nodes": {"c": {
        "type": "comment", "info": escape_text(text)}}}))
    loaded = Loader(test_registry(), environ={"X": "substituted"}).load([flow])
    assert loaded.nodes["c"].config["info"] == text


def test_report_json_friendly(core: ImportReport):
    # The id map lets tools (and the tests above) find nodes by their Node-RED id.
    assert core.ids["2b00000000000009"] == "tidy"
    assert json.loads(json.dumps(core.ids))["4d00000000000004"] == "call-double"


# -- node by node ---------------------------------------------------------------------------------

def convert(tmp_path: Path, *nodes: dict[str, Any]) -> tuple[dict[str, Any], ImportReport]:
    """Import one tab holding ``nodes`` (Node-RED objects); the flow file's nodes."""
    tab = {"id": "7ab0000000000001", "type": "tab", "label": "T"}
    export = [tab, *({"z": tab["id"], "x": 100, "y": 100, "wires": [], **n} for n in nodes)]
    source = tmp_path / "flows.json"
    source.write_text(json.dumps(export))
    report = import_nodered(source, tmp_path / "out")
    assert report.valid, report.problems
    return node_file(report, "t")["nodes"], report


@pytest.mark.parametrize(("node", "expected"), [
    ({"type": "inject", "props": [{"p": "payload"}], "payload": "", "payloadType": "date",
      "repeat": "5", "once": True, "onceDelay": "2"},
     {"type": "inject", "payload": {"date": "now"}, "once": True, "once_delay": 2,
      "repeat": 5}),
    ({"type": "inject", "payload": "[1,2]", "payloadType": "bin", "topic": "legacy",
      "crontab": "*/5 * * * *"},  # before props existed
     {"type": "inject", "payload": {"bytes": [1, 2]}, "topic": "legacy",
      "cron": "*/5 * * * *"}),
    ({"type": "debug", "complete": "true", "console": "true", "tosidebar": False,
      "active": False},
     {"type": "debug", "complete": True, "active": False}),
    ({"type": "debug", "complete": "payload.x", "tosidebar": False, "console": False},
     {"type": "debug", "property": "payload.x", "console": False}),
    ({"type": "link call", "linkType": "dynamic", "links": [], "timeout": "2.5"},
     {"type": "link call", "link_type": "dynamic", "timeout": 2.5}),
    ({"type": "delay", "pauseType": "random", "randomFirst": "100", "randomLast": "2",
      "randomUnits": "milliseconds"},
     {"type": "delay", "pause_type": "random", "timeout": 5, "random_first": "2ms",
      "random_last": "100ms"}),  # either order in Node-RED; timeout decides the status
    ({"type": "delay", "pauseType": "queue", "rate": "3", "nbRateUnits": "2",
      "rateUnits": "minute", "allowrate": True},
     {"type": "delay", "pause_type": "queue", "rate": 3, "per": 120, "allow_rate": True}),
    ({"type": "trigger", "op1": "", "op1type": "pay", "op2": "", "op2type": "payl",
      "duration": "2", "units": "s", "extend": "true", "reset": "stop", "bytopic": "topic",
      "topic": "deviceId", "outputs": 2},
     {"type": "trigger", "op1": {"payload": "original"}, "op2": {"payload": "latest"},
      "duration": 2, "extend": True, "reset": "stop", "by_topic": "topic",
      "topic_property": "deviceId", "outputs": 2}),
    ({"type": "trigger", "op1": "true", "op1type": "val", "op2": "", "op2type": "nul",
      "duration": "-25", "units": "ms"},
     {"type": "trigger", "op1": True, "op2": {"nothing": True}, "duration": "25ms",
      "repeat": True}),
    ({"type": "trigger", "op1": "{{payload}}", "op1type": "str", "op2": "5",
      "op2type": "num", "duration": "0"},
     {"type": "trigger", "op1": "{{payload}}", "op2": 5, "duration": 0}),
    ({"type": "split", "splt": "2", "spltType": "len", "arraySplt": "3", "stream": True,
      "addname": "topic", "property": "data"},
     {"type": "split", "property": "data", "length": 2, "array_chunk": 3, "stream": True,
      "add_key": "topic"}),
    ({"type": "split", "splt": "[13,10]", "spltType": "bin"},
     {"type": "split", "separator": {"bytes": [13, 10]}}),
    ({"type": "split", "splt": ",", "spltType": "str"},
     {"type": "split", "separator": ","}),
    ({"type": "join", "mode": "custom", "build": "string", "joiner": "\\n", "count": "",
      "timeout": "2", "useparts": True},
     {"type": "join", "mode": "manual", "build": "string", "joiner": "\n", "use_parts": True,
      "timeout": 2}),
    ({"type": "join", "mode": "custom", "build": "object", "key": "sensor", "count": "4",
      "accumulate": "true", "propertyType": "full", "useparts": False},
     {"type": "join", "mode": "manual", "build": "object", "whole_message": True,
      "key": "sensor", "count": 4, "accumulate": True}),
    ({"type": "join", "mode": "custom", "build": "buffer", "joiner": "[44]",
      "joinerType": "bin", "count": "2", "useparts": False},
     {"type": "join", "mode": "manual", "build": "buffer", "joiner": {"bytes": [44]},
      "count": 2}),
    ({"type": "join", "mode": "reduce", "reduceExp": "$append($A, payload)",
      "reduceInit": "[]", "reduceInitType": "json", "reduceFixup": "", "reduceRight": True},
     {"type": "join", "mode": "reduce", "reduce": {"expression": "$append($A, payload)",
                                                   "init": [], "right": True}}),
    ({"type": "json", "property": "body", "action": "str", "pretty": True},
     {"type": "json", "property": "body", "action": "string", "pretty": True}),
    ({"type": "template", "syntax": "plain", "output": "json", "template": '{"a": 1}',
      "field": "doc", "fieldType": "flow"},
     {"type": "template", "template": '{"a": 1}', "syntax": "plain", "output": "json",
      "field": "doc", "field_type": "flow"}),
    ({"type": "change", "action": "replace", "property": "payload", "to": "msg.topic"},
     {"type": "change", "rules": [{"set": "payload", "to": {"msg": "topic"}}]}),
    ({"type": "change", "rules": [{"t": "move", "p": "a", "pt": "msg", "to": "k",
                                   "tot": "global"},
                                  {"t": "set", "p": "b", "pt": "msg", "to": "{\"x\":1}",
                                   "tot": "json", "dc": True}]},
     {"type": "change", "rules": [{"move": "a", "to": {"global": "k"}},
                                  {"set": "b", "to": {"x": 1}, "deep_copy": True}]}),
    ({"type": "switch", "property": "$abs(payload)", "propertyType": "jsonata",
      "rules": [{"t": "btwn", "v": "$sqrt(16)", "vt": "jsonata", "v2": "6"},
                {"t": "regex", "v": "^a", "case": True}, {"t": "istype", "v": "number",
                                                         "vt": "number"},
                {"t": "hask", "v": "a"}, {"t": "gt", "v": "", "vt": "prev"}],
      "checkall": "true", "outputs": 5},
     {"type": "switch", "property": {"jsonata": "$abs(payload)"},
      "rules": [{"btwn": [{"jsonata": "$sqrt(16)"}, 6]}, {"regex": "^a", "ignore_case": True},
                {"istype": "number"}, {"hask": "a"}, {"gt": {"prev": True}}]}),
    ({"type": "http request", "method": "use", "ret": "obj", "url": "${API_URL}",
      "paytoqs": "query", "persist": True,
      "headers": [{"keyType": "other", "keyValue": "X-Key", "valueType": "other",
                   "valueValue": "k1"},
                  {"keyType": "Accept", "keyValue": "", "valueType": "application/json",
                   "valueValue": ""}]},
     {"type": "http-request", "method": "use", "ret": "obj", "url": "${API_URL:-}",
      "paytoqs": "query", "headers": {"X-Key": "k1", "Accept": "application/json"}}),
    ({"type": "http response", "statusCode": "201", "headers": {}},
     {"type": "http-response", "status_code": 201}),
    ({"type": "http in", "url": "users/:id", "method": "post", "upload": True},
     {"type": "http-in", "method": "post", "url": "/users/:id", "upload": True}),
    ({"type": "status", "scope": None}, {"type": "status"}),
    ({"type": "catch", "scope": None, "uncaught": True}, {"type": "catch", "uncaught": True}),
    ({"type": "comment", "info": "Some *markdown*."},
     {"type": "comment", "info": "Some *markdown*."}),
])
def test_node_conversion(tmp_path: Path, node: dict[str, Any], expected: dict[str, Any]):
    nodes, report = convert(tmp_path, {"id": "0123456789abcdef", **node})
    [converted] = nodes.values()
    assert converted == expected
    assert report.placeholders == []


def test_http_request_tls_config(tmp_path: Path):
    tls = {"id": "aa00000000000002", "type": "tls-config", "name": "", "cert": "/c.pem",
           "key": "/k.pem", "ca": "/ca.pem", "certname": "", "keyname": "", "caname": "",
           "servername": "", "verifyservercert": False}
    nodes, report = convert(tmp_path, {
        "id": "aa00000000000001", "type": "http request", "name": "secure", "method": "GET",
        "url": "https://example.com", "tls": "aa00000000000002", "persist": False}, tls)
    assert nodes["secure"]["tls"] == {"verify": False, "ca_file": "/ca.pem",
                                      "cert_file": "/c.pem", "key_file": "/k.pem"}
    assert report.problems == []


def test_disabled_tab_disables_every_node(tmp_path: Path):
    source = tmp_path / "flows.json"
    source.write_text(json.dumps([
        {"id": "t0", "type": "tab", "label": "Off", "disabled": True},
        {"id": "n1", "type": "inject", "z": "t0", "name": "a", "wires": [["n2"]]},
        {"id": "n2", "type": "debug", "z": "t0", "name": "b", "wires": []}]))
    report = import_nodered(source, tmp_path / "out")
    flow = node_file(report, "off")
    assert all(n["disabled"] is True for n in flow["nodes"].values())
    assert flow["description"].startswith("The Node-RED tab was disabled")


def test_env_of_every_kind_in_a_tab(tmp_path: Path):
    source = tmp_path / "flows.json"
    source.write_text(json.dumps([
        {"id": "t0", "type": "tab", "label": "Env", "env": [
            {"name": "S", "value": "${x}", "type": "str"},
            {"name": "N", "value": "2.5", "type": "num"},
            {"name": "B", "value": "true", "type": "bool"},
            {"name": "E", "value": "HOME", "type": "env"},
            {"name": "J", "value": '{"a":1}', "type": "json"}]},
        {"id": "n1", "type": "http request", "z": "t0", "name": "get", "url": "${S}",
         "wires": []}]))
    report = import_nodered(source, tmp_path / "out")
    text = (report.out_dir / "env.yaml").read_text()
    assert "S: $${x}" in text  # not substituted: Node-RED would not either
    assert "E: ${HOME:-}" in text
    flow = Loader(test_registry(), environ={"HOME": "/home/me"}).load(report.files)
    assert flow.flows[0].info.env == {"S": "${x}", "N": 2.5, "B": True, "E": "/home/me",
                                      "J": '{"a":1}'}
    assert flow.nodes["get"].config["url"] == "${x}"  # ${S} from the flow's env
    assert any("'json' is imported as text" in n for n in report.notes)


@pytest.mark.parametrize("odd", [None, 5, "x", [], {}, [["zz"]], [None], True])
def test_odd_property_values_never_crash(tmp_path: Path, odd: Any):
    """Every property of every node of the core export replaced by an odd value: the import
    still reports, and what it writes validates."""
    nodes = json.loads((FIXTURES / "core.json").read_text())
    for node in nodes:
        for key in list(node):
            if key not in ("id", "type", "z"):
                node[key] = odd
    source = tmp_path / "flows.json"
    source.write_text(json.dumps(nodes))
    report = import_nodered(source, tmp_path / "out")
    assert report.text()
    assert report.valid, report.problems
    assert not any("could not be converted" in p for p in report.problems), report.problems


# -- node types from plugins --------------------------------------------------------------------

async def test_plugin_node_type_is_imported_as_that_type_with_its_configuration(tmp_path: Path):
    from flowengine import Node
    from flowengine import schema as s
    from flowengine.registry import default_registry

    class Scale(Node):
        type = "scale-by"
        schema = s.obj({"factor": s.number(1, "Multiplier.")})

        def on_input(self, msg: dict[str, Any]) -> dict[str, Any]:
            msg["payload"] = msg["payload"] * self.config["factor"]
            return msg

    registry = default_registry()
    registry.register(Scale)
    export = tmp_path / "flows.json"
    export.write_text(json.dumps([
        {"id": "t", "type": "tab", "label": "plugins"},
        {"id": "n1", "type": "scale-by", "z": "t", "name": "triple", "factor": 3, "x": 1,
         "y": 1, "wires": [["n2"]]},
        {"id": "n2", "type": "debug", "z": "t", "name": "seen", "x": 2, "y": 1, "wires": []},
        {"id": "n3", "type": "scale-by", "z": "t", "name": "odd", "factor": "x",
         "unknown": 1, "x": 1, "y": 2, "wires": []}]))
    report = import_nodered(export, tmp_path / "out", registry=registry)
    assert report.valid and report.converted["scale-by"] == 1
    # A configuration the plugin's schema refuses stays a placeholder, with the reason.
    [placeholder] = report.placeholders
    assert placeholder.nr_id == "n3"
    assert node_file(report, "plugins")["nodes"]["triple"] == {
        "type": "scale-by", "name": "triple", "factor": 3, "wires": ["seen"]}
    async with FlowHarness.from_files(report.files, registry=registry, environ={}) as h:
        h.send("triple", {"payload": 5})
        [msg] = await h.received("seen")
    assert msg["payload"] == 15
