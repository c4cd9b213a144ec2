"""The flow file loader (docs/flow-format.md): every rule, with the exact error texts.

Each error names ``file:line:column``, the node id and the field; the texts asserted here are
what ``flowrun validate`` prints.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowengine import Node
from flowengine import schema as s
from flowengine.errors import FlowLoadError
from flowengine.loader import FlowSet, Loader
from flowengine.registry import NodeRegistry
from flowengine.runtime import Runtime

# -- node types for the checks the built-in types cannot show -------------------------------------


class ServerConfig(Node):
    type = "test-server"
    category = "test"
    is_config = True
    schema = s.obj({"url": s.string()}, required=["url"])


class OtherConfig(Node):
    type = "other-server"
    category = "test"
    is_config = True


class Client(Node):
    """Refers to a config node, to a debug node and to any flow nodes."""

    type = "test-client"
    category = "test"
    schema = s.obj({"server": s.config_ref("test-server"), "show": s.node_ref("debug"),
                    "peers": s.node_ref(many=True)})


class Typed(Node):
    """One field of each kind the loader converts, at the top level and in a list of objects."""

    type = "test-typed"
    category = "test"
    schema = s.obj({"wait": s.duration(), "limit": s.size(), "store": s.folder("store"),
                    "steps": {"type": "array", "items": s.obj({"pause": s.duration("1s")})}})

    def configure(self, config: dict[str, Any]) -> None:
        self.seen = dict(config)  # what configure is given, beside self.config


@pytest.fixture(scope="module")
def registry() -> NodeRegistry:
    reg = NodeRegistry()
    reg.load_entry_points()
    for cls in (ServerConfig, OtherConfig, Client, Typed):
        reg.register(cls)
    return reg


@pytest.fixture
def write(tmp_path: Path) -> Any:
    """write(name, text) -> the path of a dedented flow file in tmp_path."""
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path
    return _write


def load(registry: NodeRegistry, *paths: Path, environ: dict[str, str] | None = None
         ) -> FlowSet:
    return Loader(registry, environ or {}).load(paths)


def errors(registry: NodeRegistry, *paths: Path, environ: dict[str, str] | None = None
           ) -> list[str]:
    with pytest.raises(FlowLoadError) as info:
        load(registry, *paths, environ=environ)
    assert all(not e.warning for e in info.value.errors)
    return [str(e) for e in info.value.errors]


# -- ids and wires --------------------------------------------------------------------------------


def test_ids_are_the_keys_of_nodes_and_config(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        config:
          srv:
            type: test-server
            url: http://x
        nodes:
          tick:
            type: inject
            wires: client
          client:
            type: test-client
            name: The client
            server: srv
            description: talks to srv
        """)
    flowset = load(registry, path)
    assert list(flowset.nodes) == ["srv", "tick", "client"]
    assert flowset.flows[0].node_ids == ["srv", "tick", "client"]
    client = flowset.nodes["client"]
    assert (client.type, client.name, client.description, client.line, client.column) == (
        "test-client", "The client", "talks to srv", 10, 3)
    assert client.instance is not None and client.instance.name == "The client"
    assert flowset.nodes["tick"].instance.name == "tick"  # type: ignore[union-attr]
    assert flowset.nodes["srv"].is_config and flowset.nodes["srv"].config == {"url": "http://x"}
    assert flowset.warnings == []


def test_an_invalid_node_id(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          bad id!:
            type: comment
        """)
    assert errors(registry, path) == [
        f"{path}:3:3: node 'bad id!': invalid node id 'bad id!': "
        "use only letters, digits, '-', '_' and '.'"]


def test_wires_shorthand(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          one:
            type: inject
            wires: a
          both:
            type: inject
            wires: [a, b]
          per-output:
            type: function
            code: return [msg, None, msg]
            outputs: 3
            wires: [[a], [], b]
          none:
            type: inject
            wires: []
          a:
            type: debug
          b:
            type: debug
        """)
    nodes = load(registry, path).nodes
    assert [nodes[i].wires for i in ("one", "both", "per-output", "none")] == [
        [["a"]], [["a", "b"]], [["a"], [], ["b"]], []]


def test_a_wire_to_an_unknown_node_names_the_closest_id(registry: NodeRegistry,
                                                         write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          parse:
            type: function
            code: return msg
            wires:
              - rout
          route:
            type: debug
          unrelated:
            type: inject
            wires: [[route, xyzzy]]
        """)
    assert errors(registry, path) == [
        f"{path}:7:9: node 'parse', field 'wires[0]': wire to unknown node 'rout' "
        "(did you mean 'route'?)",
        f"{path}:12:21: node 'unrelated', field 'wires[0][1]': wire to unknown node 'xyzzy'",
    ]


def test_more_wire_lists_than_outputs(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          fn:
            type: function
            code: return msg
            outputs: 2
            wires: [[a], [a], [a]]
          a:
            type: debug
            wires: [[fn]]
        """)
    assert errors(registry, path) == [
        f"{path}:7:12: node 'fn', field 'wires': 3 wire lists but this 'function' node has "
        "2 outputs",
        f"{path}:10:12: node 'a', field 'wires': 1 wire lists but this 'debug' node has "
        "0 outputs",
    ]


def test_a_wire_to_a_node_without_input(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          tick:
            type: inject
            wires: [other, on-error]
          other:
            type: inject
          on-error:
            type: catch
        """)
    assert errors(registry, path) == [
        f"{path}:5:13: node 'tick', field 'wires[0]': wire to 'other': an 'inject' node "
        "has no input",
        f"{path}:5:20: node 'tick', field 'wires[1]': wire to 'on-error': a 'catch' node "
        "has no input",
    ]


def test_a_wire_to_a_config_node_and_wires_on_a_config_node(registry: NodeRegistry,
                                                            write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        config:
          srv:
            type: test-server
            url: x
            wires: [show]
        nodes:
          tick:
            type: inject
            wires: [srv, show]
          show:
            type: debug
        """)
    assert errors(registry, path) == [
        f"{path}:6:12: node 'srv', field 'wires': a config node has no wires",
        f"{path}:10:13: node 'tick', field 'wires[0]': wire to config node 'srv' "
        "(config nodes have no input)",
    ]


def test_config_references_of_the_wrong_kind(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        config:
          srv:
            type: test-server
            url: x
          other:
            type: other-server
          off:
            type: test-server
            url: y
            disabled: true
        nodes:
          a:
            type: test-client
            server: other
          b:
            type: test-client
            server: svr
          c:
            type: test-client
            server: a
          d:
            type: test-client
            server: off
          e:
            type: test-client
            server: off
            disabled: true
        """)
    assert errors(registry, path) == [
        f"{path}:15:13: node 'a', field 'server': 'other' is an 'other-server' config node, "
        "expected a 'test-server'",
        f"{path}:18:13: node 'b', field 'server': no config node 'svr' (expected a "
        "'test-server' under 'config:') (did you mean 'srv'?)",
        f"{path}:21:13: node 'c', field 'server': 'a' is a flow node, expected a 'test-server' "
        "config node",
        f"{path}:24:13: node 'd', field 'server': config node 'off' is disabled",
    ]


def test_node_references_of_the_wrong_type(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        config:
          srv:
            type: test-server
            url: x
        nodes:
          client:
            type: test-client
            show: tick
            peers: [show, srv, shwo]
          tick:
            type: inject
            wires: [client, show]
          show:
            type: debug
          errors:
            type: catch
            scope: [client, nobody]
        """)
    assert errors(registry, path) == [
        f"{path}:9:11: node 'client', field 'show': 'tick' is an 'inject' node, "
        "expected a 'debug'",
        f"{path}:10:19: node 'client', field 'peers[1]': 'srv' is a config node, "
        "expected a flow node",
        f"{path}:10:24: node 'client', field 'peers[2]': no node 'shwo' (did you mean 'show'?)",
        f"{path}:18:21: node 'errors', field 'scope[1]': no node 'nobody'",
    ]


def test_link_out_must_name_link_in_nodes(registry: NodeRegistry, write: Any) -> None:
    first = write("a.yaml", """\
        flow: a
        nodes:
          tick:
            type: inject
            wires: [out]
          out:
            type: link out
            links: [handler, show, hanlder-in]
          show:
            type: debug
        """)
    second = write("b.yaml", """\
        flow: b
        nodes:
          handler:
            type: link in
            wires: [done]
          done:
            type: debug
        """)
    assert errors(registry, first, second) == [
        f"{first}:8:22: node 'out', field 'links[1]': 'show' is a 'debug' node, "
        "expected a 'link in'",
        f"{first}:8:28: node 'out', field 'links[2]': no node 'hanlder-in' "
        "(did you mean 'handler'?)",
    ]
    # Fixed, the link in (in another file) counts as reached through the link out.
    fixed = write("a.yaml", first.read_text().replace(", show, hanlder-in", ""))
    assert [str(w) for w in load(registry, fixed, second).warnings] == [
        f"{fixed}:9:3: warning: node 'show': no source reaches this node (nothing is wired "
        "into it)"]


def test_unreachable_nodes_are_warnings(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          tick:
            type: inject
            wires: [shown]
          shown:
            type: debug
          lonely:
            type: function
            code: return msg
            wires: [also-lonely]
          also-lonely:
            type: debug
          off:
            type: debug
            disabled: true
        """)
    flowset = load(registry, path)
    assert [str(w) for w in flowset.warnings] == [
        f"{path}:8:3: warning: node 'lonely': no source reaches this node (nothing is wired "
        "into it)",
        f"{path}:12:3: warning: node 'also-lonely': no source reaches this node (nothing is "
        "wired into it)",
    ]


def test_ids_that_yaml_reads_as_numbers_or_words_stay_ids(registry: NodeRegistry,
                                                         write: Any) -> None:
    # YAML 1.2 booleans: only true/false are booleans, so `on`, `off`, `yes` are plain ids.
    path = write("f.yaml", """\
        flow: f
        nodes:
          on:
            type: inject
            wires: [2024, off]
          2024:
            type: debug
            wires: [[off]]
          off:
            type: debug
        """)
    assert errors(registry, path) == [
        f"{path}:8:12: node '2024', field 'wires': 1 wire lists but this 'debug' node has "
        "0 outputs"]
    fixed = write("g.yaml", path.read_text().replace("    wires: [[off]]\n", ""))
    nodes = load(registry, fixed).nodes
    assert list(nodes) == ["on", "2024", "off"]
    assert nodes["on"].wires == [["2024", "off"]]


def test_only_true_and_false_are_booleans(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          tick:
            type: inject
            once: yes
            payload: ${FLAG}
        """)
    assert errors(registry, path, environ={"FLAG": "on"}) == [
        f"{path}:5:11: node 'tick', field 'once': 'yes' is not of type 'boolean'"]
    fixed = write("g.yaml", path.read_text().replace("once: yes", "once: true"))
    config = load(registry, fixed, environ={"FLAG": "on"}).nodes["tick"].config
    assert (config["once"], config["payload"]) == (True, "on")
    config = load(registry, fixed, environ={"FLAG": "False"}).nodes["tick"].config
    assert config["payload"] is False


# -- node types and their schemas -----------------------------------------------------------------


def test_an_unknown_node_type_names_the_closest(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          fn:
            type: functoin
            code: return msg
          x:
            type: no-such-thing
          untyped:
            name: x
        """)
    assert errors(registry, path) == [
        f"{path}:4:11: node 'fn', field 'type': unknown node type 'functoin' "
        "(did you mean 'function', 'junction'?)",
        f"{path}:7:11: node 'x', field 'type': unknown node type 'no-such-thing': no installed "
        "package provides it (`flowrun nodes` lists the known types; add a plugin with pip "
        "install or --nodes DIR)",
        f"{path}:8:3: node 'untyped': 'type' is required",
    ]


def test_a_node_type_under_the_wrong_section(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        config:
          show:
            type: debug
        nodes:
          srv:
            type: test-server
            url: x
          tick:
            type: inject
            wires: [show, srv]
        """)
    # The misplaced nodes are reported once, where they are defined, not again at the wires.
    assert errors(registry, path) == [
        f"{path}:4:11: node 'show', field 'type': 'debug' is a flow node type; "
        "define it under 'nodes:'",
        f"{path}:7:11: node 'srv', field 'type': 'test-server' is a config node type; "
        "define it under 'config:'",
    ]


def test_node_config_is_validated_against_the_type_schema(registry: NodeRegistry,
                                                          write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          show:
            type: debug
            propery: payload.x
            max_length: many
          fn:
            type: function
            outputs: 2
          tick:
            type: inject
            once: "yes"
            wires: [show, fn]
        """)
    assert errors(registry, path) == [
        f"{path}:5:5: node 'show', field 'propery': unknown field 'propery' (expected one of: "
        "active, complete, console, expression, max_length, property, status)",
        f"{path}:6:17: node 'show', field 'max_length': 'many' is not of type 'integer'",
        f"{path}:7:3: node 'fn': 'code' is required",
        f"{path}:12:11: node 'tick', field 'once': 'yes' is not of type 'boolean'",
    ]


def test_common_fields_are_validated(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          tick:
            type: inject
            name: 5
            disabled: "no"
            description: [a]
            wires: {show: 1}
          tock:
            type: inject
            wires: [[show, true]]
          show:
            type: debug
        """)
    assert errors(registry, path) == [
        f"{path}:5:11: node 'tick', field 'name': 5 is not of type 'string'",
        f"{path}:6:15: node 'tick', field 'disabled': 'no' is not of type 'boolean'",
        f"{path}:7:18: node 'tick', field 'description': ['a'] is not of type 'string'",
        f"{path}:8:12: node 'tick', field 'wires': expected a node id, a list of node ids, or "
        "one list of node ids per output, got {'show': 1}",
        f"{path}:11:20: node 'tock', field 'wires[0][1]': expected a node id, got True",
    ]


def test_typed_fields_are_converted_once(registry: NodeRegistry, write: Any,
                                         tmp_path: Path) -> None:
    path = write("app/f.yaml", """\
        flow: f
        nodes:
          typed:
            type: test-typed
            wait: 250ms
            limit: 64KiB
            store: ../state/db
            steps: [{pause: 2m}, {}]
          plain:
            type: test-typed
            wait: 1.5
            limit: 1000
          units:
            type: test-typed
            limit: 500kB
            store: /srv/flows
        """)
    nodes = load(registry, path).nodes
    typed = nodes["typed"].instance
    assert typed.config == typed.seen == {  # type: ignore[union-attr, attr-defined]
        "wait": 0.25, "limit": 65536, "store": str(tmp_path / "app" / ".." / "state" / "db"),
        "steps": [{"pause": 120.0}, {"pause": 1.0}]}
    plain = nodes["plain"].instance.config  # type: ignore[union-attr]
    assert plain == {"wait": 1.5, "limit": 1000,
                     "store": str(tmp_path / "app" / ".flowengine" / "store")}
    assert isinstance(plain["wait"], float)
    units = nodes["units"].instance.config  # type: ignore[union-attr]
    assert (units["limit"], units["store"]) == (500_000, "/srv/flows")
    assert "wait" not in units  # no default: not set, not invented


def test_folders_default_to_the_data_dir_setting(registry: NodeRegistry, write: Any,
                                                 tmp_path: Path) -> None:
    settings = write("conf/settings.yaml", """\
        flow: settings
        settings:
          data_dir: ../var
        """)
    flow = write("app/f.yaml", """\
        flow: f
        nodes:
          default:
            type: test-typed
          home:
            type: test-typed
            store: ~/db
        """)
    nodes = load(registry, settings, flow).nodes
    assert nodes["default"].instance.config["store"] == str(  # type: ignore[union-attr]
        (tmp_path / "var").resolve() / "store")
    assert nodes["home"].instance.config["store"] == str(  # type: ignore[union-attr]
        Path.home() / "db")


def test_bad_sizes_and_nested_durations(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          words:
            type: test-typed
            limit: 64 kilobytes
          zero:
            type: test-typed
            limit: 0B
          negative:
            type: test-typed
            limit: -1
          fraction:
            type: test-typed
            limit: 1.5
          nested:
            type: test-typed
            steps:
              - pause: 1s
              - pause: soon
          folder:
            type: test-typed
            store: 7
        """)
    assert errors(registry, path) == [
        f"{path}:5:12: node 'words', field 'limit': expected a size such as 1048576, '64KiB' "
        "or '1MiB', got '64 kilobytes'",
        f"{path}:8:12: node 'zero', field 'limit': must be at least 1 byte",
        f"{path}:11:12: node 'negative', field 'limit': must be at least 1 byte",
        f"{path}:14:12: node 'fraction', field 'limit': expected a size such as 1048576, "
        "'64KiB' or '1MiB', got 1.5",
        f"{path}:19:16: node 'nested', field 'steps[1].pause': expected a duration (seconds, "
        "or '250ms', '5s', '2m', '1h'), got 'soon'",
        f"{path}:22:12: node 'folder', field 'store': 7 is not of type 'string'",
    ]


def test_durations(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          fast:
            type: inject
            repeat: 250ms
          slow:
            type: inject
            repeat: 2m
          seconds:
            type: inject
            repeat: 1.5
          bad:
            type: inject
            repeat: 5 parsecs
          negative:
            type: inject
            once_delay: -1
        """)
    assert errors(registry, path) == [
        f"{path}:14:13: node 'bad', field 'repeat': expected a duration (seconds, or '250ms', "
        "'5s', '2m', '1h'), got '5 parsecs'",
        f"{path}:17:17: node 'negative', field 'once_delay': expected a duration (seconds, or "
        "'250ms', '5s', '2m', '1h'), got -1",
    ]
    good = write("g.yaml", textwrap.dedent(path.read_text()).split("  bad:")[0])
    nodes = load(registry, good).nodes
    assert [nodes[i].instance._repeat for i in ("fast", "slow", "seconds")] == [  # type: ignore
        0.25, 120.0, 1.5]


def test_value_references_are_validated_when_the_node_is_configured(
        registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          sum:
            type: inject
            payload: {jsonata: "$sum("}
          from-msg:
            type: inject
            payload: {msg: "a..b"}
          fine:
            type: inject
            payload: {env: HOME}
            topic: {literal: {msg: not a reference}}
        """)
    assert errors(registry, path) == [
        f"{path}:5:24: node 'sum', field 'payload.jsonata': invalid JSONata expression '$sum(': "
        "Expected ) before end of expression",
        f"{path}:8:20: node 'from-msg', field 'payload.msg': Invalid property expression "
        "'a..b': unexpected . at position 2",
    ]


def test_a_syntax_error_in_code_points_at_its_line_in_the_file(registry: NodeRegistry,
                                                               write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          fn:
            type: function
            code: |
              x = 1
              return msg +
        """)
    assert errors(registry, path) == [
        f"{path}:7:7: node 'fn', field 'code': SyntaxError: invalid syntax (line 2 of the code)"]


# -- duplicates and names -------------------------------------------------------------------------


def test_duplicate_keys_are_errors_not_overwrites(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        nodes:
          show:
            type: debug
            property: payload
            property: topic
          show:
            type: comment
        flow: g
        """)
    assert errors(registry, path) == [
        f"{path}:6:5: node 'show', field 'property': duplicate key 'property' (first defined "
        "at line 5)",
        f"{path}:7:3: node 'show': duplicate key 'show' (first defined at line 3)",
        f"{path}:9:1: field 'flow': duplicate key 'flow' (first defined at line 1)",
    ]


def test_duplicate_ids_across_files(registry: NodeRegistry, write: Any) -> None:
    first = write("a.yaml", """\
        flow: a
        nodes:
          shared:
            type: comment
        """)
    second = write("b.yaml", """\
        flow: b
        config:
          shared:
            type: test-server
            url: x
        """)
    assert errors(registry, first, second) == [
        f"{second}:3:3: node 'shared': duplicate node id 'shared' (first defined at {first}:3)"]


def test_flow_names_are_unique_valid_and_not_global(registry: NodeRegistry, write: Any) -> None:
    one = write("one.yaml", "flow: main\n")
    two = write("two.yaml", "flow: main\n")
    reserved = write("three.yaml", "flow: global\n")
    spaced = write("four.yaml", "flow: my flow\n")
    assert errors(registry, one, two, reserved, spaced) == [
        f"{spaced}:1:7: field 'flow': invalid flow name 'my flow': use only letters, digits, "
        "'-', '_' and '.'",
        f"{reserved}:1:7: field 'flow': the flow name 'global' is reserved for the global "
        "context",
        f"{two}:1:7: field 'flow': flow name 'main' is already used by {one}",
    ]


def test_a_flow_named_after_its_file_must_suit_the_context(registry: NodeRegistry,
                                                           write: Any) -> None:
    colon = write("a:b.yaml", "nodes: {}\n")
    reserved = write("global.yml", "nodes: {}\n")
    assert errors(registry, colon, reserved) == [
        f"{colon}:1:1: the flow name would be 'a:b' (the file name), which is not allowed: "
        "a flow name cannot contain ':'; give the flow a name with 'flow:'",
        f"{reserved}:1:1: the flow name would be 'global' (the file name), which is reserved "
        "for the global context; give the flow a name with 'flow:'",
    ]
    plain = write("plain name.yaml", "nodes: {}\n")
    assert load(registry, plain).flows[0].info.name == "plain name"


# -- file structure ---------------------------------------------------------------------------


def test_the_file_structure_is_validated(registry: NodeRegistry, write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        node:
          x:
            type: debug
        include: 5
        config: [a]
        nodes:
          n: 1
        """)
    assert errors(registry, path) == [
        f"{path}:2:1: field 'node': unknown field 'node' (expected one of: config, description, "
        "env, flow, groups, include, nodes, settings, subflows, tests)",
        f"{path}:5:10: field 'include': 5 is not of type 'string'",
        f"{path}:6:9: field 'config': ['a'] is not of type 'object', 'null'",
        f"{path}:8:6: node 'n': expected a mapping with 'type' and the node's fields, got 1",
    ]


def test_unreadable_yaml_empty_and_non_mapping_files(registry: NodeRegistry,
                                                      write: Any) -> None:
    broken = write("a.yaml", "flow: a\nnodes:\n  x: [\n")
    empty = write("b.yaml", "")
    listing = write("c.yaml", "- flow: c\n")
    missing = broken.parent / "d.yaml"
    assert errors(registry, broken, empty, listing, missing) == [
        f"{broken}:4:1: invalid YAML: expected the node content, but found '<stream end>'",
        f"{empty}:1:1: the flow file is empty",
        f"{listing}:1:1: a flow file must be a mapping with 'flow', 'nodes' and the other keys "
        "of docs/flow-format.md",
        f"{missing}:1:1: cannot read flow file: No such file or directory",
    ]


# -- environment ----------------------------------------------------------------------------------


def test_env_substitution_keeps_the_type_of_whole_values(registry: NodeRegistry,
                                                         write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        env:
          QUOTED: "1880"
          URL: http://${HOST:-localhost}:${PORT}
        settings:
          http:
            port: ${PORT}
            debug: ${DEBUG:-false}
            ratio: ${RATIO}
        nodes:
          tick:
            type: inject
            payload: ${QUOTED}
            topic: "port ${PORT}, $${PORT} stays"
            props:
              url: ${URL}
              default: ${MISSING:-12}
              text: ${NAME}
        """)
    flowset = load(registry, path, environ={"PORT": "1880", "RATIO": "0.5", "NAME": "ada"})
    assert flowset.settings == {"http": {"port": 1880, "debug": False, "ratio": 0.5}}
    assert flowset.flows[0].info.env == {"QUOTED": "1880", "URL": "http://localhost:1880"}
    assert flowset.nodes["tick"].config["payload"] == "1880"  # the flow env value: text
    assert flowset.nodes["tick"].config["topic"] == "port 1880, ${PORT} stays"
    assert flowset.nodes["tick"].config["props"] == {
        "url": "http://localhost:1880", "default": 12, "text": "ada"}


def test_the_flow_env_is_used_before_the_process_environment(registry: NodeRegistry,
                                                             write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        env:
          PORT: ${PORT:-9000}
          MODE: test
        nodes:
          tick:
            type: inject
            payload: ${MODE}
        """)
    flowset = load(registry, path, environ={"MODE": "prod"})
    assert flowset.flows[0].info.env == {"PORT": 9000, "MODE": "test"}
    assert flowset.nodes["tick"].config["payload"] == "test"
    tick = flowset.nodes["tick"].instance
    assert tick is not None and tick.env.get("PORT") == 9000


def test_an_unset_variable_without_default_is_an_error_naming_it(registry: NodeRegistry,
                                                                 write: Any) -> None:
    path = write("f.yaml", """\
        flow: f
        env:
          URL: ${KMS_URL}
        nodes:
          tick:
            type: inject
            payload: "id ${NODE_TOKEN}"
        """)
    assert errors(registry, path) == [
        f"{path}:3:8: field 'env.URL': environment variable 'KMS_URL' is not set and has no "
        "default",
        f"{path}:7:14: node 'tick', field 'payload': environment variable 'NODE_TOKEN' is not "
        "set and has no default",
    ]


# -- includes and settings ------------------------------------------------------------------------


def test_includes_are_relative_and_loaded_once(registry: NodeRegistry, write: Any) -> None:
    main = write("main.yaml", """\
        flow: main
        include: [lib/helpers.yaml, lib/more]
        nodes:
          tick:
            type: inject
            wires: [helper]
        """)
    write("lib/helpers.yaml", """\
        flow: helpers
        include: ../main.yaml
        nodes:
          helper:
            type: debug
        """)
    write("lib/more/extra.yaml", "flow: extra\ninclude: [../helpers.yaml]\n")
    flowset = load(registry, main)
    assert [f.info.name for f in flowset.flows] == ["main", "helpers", "extra"]
    assert flowset.nodes["helper"].flow.name == "helpers"
    assert flowset.files == [main, main.parent / "lib/helpers.yaml",
                             main.parent / "lib/more/extra.yaml"]


def test_a_missing_include_names_the_including_file_and_line(registry: NodeRegistry,
                                                             write: Any) -> None:
    path = write("main.yaml", """\
        flow: main
        include:
          - parts/here.yaml
          - parts/gone.yaml
        """)
    write("parts/here.yaml", "flow: here\n")
    assert errors(registry, path) == [
        f"{path}:4:5: field 'include[1]': cannot read included flow file "
        f"'{path.parent / 'parts/gone.yaml'}': No such file or directory"]


def test_settings_are_merged_across_files(registry: NodeRegistry, write: Any) -> None:
    first = write("a.yaml", """\
        flow: a
        settings:
          http:
            port: 1880
            static: web
          close_timeout: 5s
        """)
    second = write("sub/b.yaml", """\
        flow: b
        settings:
          http:
            port: 1880
          context:
            default: memory
        """)
    flowset = load(registry, first, second)
    assert flowset.settings == {
        "http": {"port": 1880, "static": str(first.parent / "web")},
        "close_timeout": "5s", "context": {"default": "memory"}}


def test_conflicting_settings_are_an_error(registry: NodeRegistry, write: Any) -> None:
    first = write("a.yaml", "flow: a\nsettings:\n  http:\n    port: 1880\n")
    second = write("b.yaml", "flow: b\nsettings:\n  http:\n    port: 1881\n")
    assert errors(registry, first, second) == [
        f"{second}:4:11: field 'settings.http.port': conflicts with the value set in {first} "
        "(1880 there, 1881 here); a setting given in several files must have the same value"]


# -- disabled nodes and error reporting -----------------------------------------------------------


async def test_disabled_nodes_are_validated_not_instantiated_and_unwired(
        registry: NodeRegistry, write: Any) -> None:
    bad = write("bad.yaml", """\
        flow: bad
        nodes:
          off:
            type: debug
            disabled: true
            colour: red
        """)
    assert errors(registry, bad) == [
        f"{bad}:6:5: node 'off', field 'colour': unknown field 'colour' (expected one of: "
        "active, complete, console, expression, max_length, property, status)"]
    path = write("f.yaml", """\
        flow: f
        nodes:
          tick:
            type: inject
            wires: [off, on]
          off:
            type: function
            disabled: true
            code: return msg
            wires: [on]
          on:
            type: debug
        """)
    flowset = load(registry, path)
    assert flowset.nodes["off"].disabled and flowset.nodes["off"].instance is None
    runtime = Runtime(flowset)
    await runtime.start()
    try:
        assert runtime.get_node("off") is None
        tick = runtime.get_node("tick")
        assert tick is not None and tick.wired_ids == [["on"]]
    finally:
        await runtime.stop()


def test_every_error_of_every_file_is_reported_in_order(registry: NodeRegistry,
                                                        write: Any) -> None:
    first = write("a.yaml", """\
        flow: a
        nodes:
          tick:
            type: inject
            repeat: often
            wires: [fn]
          fn:
            type: function
            code: "return (msg"
            wires: [missing]
        """)
    second = write("b.yaml", """\
        flow: b
        nodes:
          show:
            type: debug
            max_length: 0
          fn:
            type: comment
        """)
    assert errors(registry, first, second) == [
        f"{first}:5:13: node 'tick', field 'repeat': expected a duration (seconds, or '250ms', "
        "'5s', '2m', '1h'), got 'often'",
        f"{first}:9:11: node 'fn', field 'code': SyntaxError: '(' was never closed "
        "(line 1 of the code)",
        f"{first}:10:13: node 'fn', field 'wires[0]': wire to unknown node 'missing'",
        f"{second}:5:17: node 'show', field 'max_length': 0 is less than the minimum of 1",
        f"{second}:6:3: node 'fn': duplicate node id 'fn' (first defined at {first}:7)",
    ]


def test_load_text_follows_includes(registry: NodeRegistry, write: Any) -> None:
    write("lib.yaml", "flow: lib\nnodes:\n  show:\n    type: debug\n")
    main = write("main.yaml", "")  # only its folder matters
    text = "flow: main\ninclude: lib.yaml\nnodes:\n  tick:\n    type: inject\n    wires: show\n"
    flowset = Loader(registry, {}).load_text(text, str(main))
    assert sorted(flowset.nodes) == ["show", "tick"]


def test_an_explicit_key_overrides_a_yaml_merge_key(registry: NodeRegistry,
                                                    tmp_path: Path) -> None:
    """``<<: *anchor`` then the same key written out: the explicit one wins, as YAML says;
    a real duplicate is still an error."""
    path = tmp_path / "f.yaml"
    path.write_text(
        "flow: f\n"
        "nodes:\n"
        "  base: &base {type: debug, console: false}\n"
        "  shown:\n"
        "    <<: *base\n"
        "    console: true\n"
    )
    flowset = load(registry, path)
    assert flowset.nodes["shown"].config["console"] is True
