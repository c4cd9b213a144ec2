"""``flowrun graph``: the wired graph in Graphviz dot (flowengine.dot)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest

from flowengine import Node
from flowengine import schema as s
from flowengine.cli import main
from flowengine.dot import to_dot
from flowengine.loader import FlowSet, Loader
from flowengine.registry import NodeRegistry
from flowengine.testing import test_registry


class Server(Node):
    """A config node type, only for these tests (no built-in config node exists yet)."""

    type = "test-server"
    is_config = True
    schema = s.obj({"url": s.string("x")})


class Client(Node):
    type = "test-client"
    schema = s.obj({"server": s.config_ref("test-server")})


def registry_with_config_types() -> NodeRegistry:
    registry = NodeRegistry()
    registry.load_entry_points()
    registry.register(Server)
    registry.register(Client)
    return registry


def load(text: str, registry: NodeRegistry | None = None) -> FlowSet:
    return Loader(registry or test_registry()).load_text(textwrap.dedent(text), "flow.yaml")


SIGNALING = """\
    flow: signaling
    nodes:
      tick:
        type: inject
        name: Every 5s
        repeat: 5s
        wires: [route]
      route:
        type: function
        outputs: 2
        code: return [msg, msg]
        wires: [[show], [muted, show]]
      show:
        type: debug
      muted:
        type: debug
        disabled: true
    """


def test_nodes_in_a_cluster_labelled_with_the_flow_name() -> None:
    dot = to_dot(load(SIGNALING))
    assert dot.startswith("digraph flows {\n")
    assert dot.endswith("\n}")
    cluster = dot[dot.index("subgraph cluster_0 {"):dot.index("  }\n")]
    assert 'label="signaling";' in cluster
    assert '"tick" [label="Every 5s\\n(inject)", style="rounded"];' in cluster
    assert '"route" [label="route\\n(function)", style="rounded"];' in cluster


def test_wires_are_edges_labelled_with_the_port_when_several_outputs() -> None:
    dot = to_dot(load(SIGNALING))
    edges = [line.strip() for line in dot.splitlines() if "->" in line]
    assert edges == [
        '"tick" -> "route";',  # one output: no label
        '"route" -> "show" [label="0"];',
        '"route" -> "muted" [label="1", color=gray60, fontcolor=gray60];',
        '"route" -> "show" [label="1"];',
    ]


def test_disabled_nodes_are_grey() -> None:
    dot = to_dot(load(SIGNALING))
    [muted] = [line for line in dot.splitlines() if line.strip().startswith('"muted" [')]
    assert "color=gray60" in muted
    assert "fillcolor=gray92" in muted
    assert 'style="rounded,filled"' in muted


def test_one_cluster_per_flow_and_link_edges_dashed(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text(textwrap.dedent("""\
        flow: front
        nodes:
          start:
            type: inject
            wires: [to-back]
          to-back:
            type: link out
            links: [from-front]
        """))
    (tmp_path / "b.yaml").write_text(textwrap.dedent("""\
        flow: back
        nodes:
          from-front:
            type: link in
            wires: [show]
          show:
            type: debug
        """))
    dot = to_dot(Loader(test_registry()).load([tmp_path]))
    assert 'subgraph cluster_0 {\n    label="front";' in dot
    assert 'subgraph cluster_1 {\n    label="back";' in dot
    assert '"to-back" -> "from-front" [style=dashed];' in dot
    assert '"from-front" -> "show";' in dot


def test_config_nodes_dashed_with_a_dotted_line_from_their_users() -> None:
    flowset = load("""\
        flow: db
        config:
          main-db:
            type: test-server
        nodes:
          start:
            type: inject
            wires: [query]
          query:
            type: test-client
            server: main-db
        """, registry_with_config_types())
    dot = to_dot(flowset)
    assert '"main-db" [label="main-db\\n(test-server)", style="rounded,dashed"];' in dot
    assert '"query" -> "main-db" [style=dotted, arrowhead=none];' in dot


def test_quotes_and_backslashes_in_names_are_escaped() -> None:
    dot = to_dot(load("""\
        flow: odd
        nodes:
          tick:
            type: inject
            name: 'say "hi" \\ bye'
        """))
    assert '"tick" [label="say \\"hi\\" \\\\ bye\\n(inject)"' in dot


def test_flowrun_graph_prints_dot(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(textwrap.dedent(SIGNALING))
    assert main(["graph", str(flow)]) == 0
    assert capsys.readouterr().out == to_dot(load(SIGNALING)) + "\n"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_output() -> None:
    result = subprocess.run(["dot", "-Tsvg"], input=to_dot(load(SIGNALING)), text=True,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "<svg" in result.stdout
