"""The node reference: ``flowrun nodes``, ``flowrun nodes TYPE``, ``flowrun docs`` and the
committed ``docs/nodes.md`` (flowengine.docs)."""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path

import pytest
import yaml

from flowengine import Node
from flowengine import schema as s
from flowengine.cli import main
from flowengine.docs import config_fields, describe_type, list_types, node_reference
from flowengine.registry import NodeRegistry, default_registry, normalize_type

ROOT = Path(__file__).resolve().parents[1]
NODES_MD = ROOT / "docs" / "nodes.md"


def builtin_registry() -> NodeRegistry:
    """The project's own node types only: what docs/nodes.md documents."""
    registry = NodeRegistry()
    registry.load_module(importlib.import_module("nodes"))
    return registry


# -- the committed reference ------------------------------------------------------------------

def test_committed_node_reference_is_up_to_date() -> None:
    expected = node_reference(builtin_registry())
    current = NODES_MD.read_text() if NODES_MD.exists() else ""
    hint = ""
    extra = sorted({c.type for c in default_registry().types()}
                   - {c.type for c in builtin_registry().types()})
    if extra:
        hint = (f" with no node plugin packages installed (installed plugins add: "
                f"{', '.join(extra)})")
    assert current == expected, (f"docs/nodes.md is stale: regenerate it with "
                                 f"`flowrun docs -o docs/nodes.md`{hint}")


def test_reference_documents_every_builtin_type_once() -> None:
    text = node_reference(builtin_registry())
    for cls in builtin_registry().types():
        assert text.count(f"\n### {cls.type}\n") == 1, cls.type
    assert text.startswith("<!-- Generated from the node types' schemas by `flowrun docs`.")
    assert "run `flowrun docs -o docs/nodes.md`" in text.splitlines()[0]


def test_contents_links_point_at_headings() -> None:
    text = node_reference(builtin_registry())
    headings = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#{1,3} (.+)$", text, flags=re.MULTILINE)}
    contents = text[text.index("## Contents"):text.index("\n## ", text.index("## Contents"))]
    anchors = re.findall(r"\]\(#([^)]+)\)", contents)
    assert anchors and set(anchors) <= headings
    assert "link-in" in anchors  # "link in" -> GitHub's anchor


def test_output_does_not_depend_on_registration_order() -> None:
    reverse = NodeRegistry()
    for cls in reversed(builtin_registry().types()):
        reverse.register(cls)
    assert node_reference(reverse) == node_reference(builtin_registry())
    assert list_types(reverse) == list_types(builtin_registry())


# -- schema facts -----------------------------------------------------------------------------

class Sample(Node):
    """Every schema helper, to check how each is shown."""

    type = "sample"
    category = "testing"
    description = "Does sample things. Second sentence is not in the list."
    example = "s1:\n  type: sample\n  target: other\n"
    schema = s.obj({
        "to": s.value(description="The new value."),
        "property": s.path("payload", "Where."),
        "timeout": s.duration("5s", "How long."),
        "target": s.node_ref(description="One node."),
        "links": s.node_ref("link in", many=True, default=[]),
        "server": s.config_ref("postgres-server"),
        "mode": s.enum(["fast", "slow", "true"], "fast", "Speed."),
        "count": s.integer(1, "How many | pipes.", minimum=1),
        "rules": {"type": "array", "items": s.obj({"eq": s.value(description="Equal to."),
                                                   "tag": s.string()}, required=["eq"])},
        "store": {"anyOf": [s.path(), s.obj({"flow": s.string(minLength=1)}, required=["flow"])],
                  "description": "Path or context key."},
    }, required=["target"])

    @classmethod
    def output_count(cls, config: dict) -> int:
        return int(config.get("count", 1)) + 1


class SampleServer(Node):
    type = "sample-server"
    category = "testing"
    is_config = True
    description = "Holds a connection."
    schema = s.obj({})


def sample_registry() -> NodeRegistry:
    registry = NodeRegistry()
    registry.register(Sample)
    registry.register(SampleServer)
    return registry


def test_fields_show_type_default_required_and_description() -> None:
    rows = {f.name: (f.type, f.default, f.required, f.description)
            for f in config_fields(Sample.schema)}
    assert rows == {
        "to": ("value (literal or reference)", None, False, "The new value."),
        "property": ("message path", "payload", False, "Where."),
        "timeout": ("duration", "5s", False, "How long."),
        "target": ("node id", None, True, "One node."),
        "links": ("list of ids of `link in` nodes", "[]", False, ""),
        "server": ("config node id of type `postgres-server`", None, False, ""),
        "mode": ('one of `fast`, `slow`, `"true"`', "fast", False, "Speed."),
        "count": ("integer, >= 1", "1", False, "How many | pipes."),
        "rules": ("list of objects", None, False, ""),
        "rules[].eq": ("value (literal or reference)", None, True, "Equal to."),
        "rules[].tag": ("string", None, False, ""),
        # A one-key shape is spelled out in the type, not listed as a field of its own.
        "store": ("message path or {flow: non-empty string}", None, False,
                  "Path or context key."),
    }


def test_describe_type_has_every_fact() -> None:
    text = describe_type(Sample, "entry point 'demo' (demo_nodes)")
    assert text.splitlines()[0] == "sample  (testing)"
    for line in ["source:   entry point 'demo' (demo_nodes)",
                 f"class:    {Sample.__module__}.Sample",
                 "inputs:   1",
                 "outputs:  2 (set by configuration)",
                 "  timeout: duration; default: 5s",
                 "  target: node id; required",
                 "  server: config node id of type `postgres-server`",
                 "      How long.",
                 "Example:",
                 "  s1:",
                 "JSON Schema:"]:
        assert line in text.splitlines(), line
    assert '"x-config-ref": "postgres-server"' in text
    config = describe_type(SampleServer)
    assert "inputs:   -" in config
    assert "A config node: defined under `config:`" in config
    assert "Configuration: no fields of its own." in config
    assert "(no example)" in config


def test_list_types_one_line_each() -> None:
    lines = list_types(sample_registry()).splitlines()
    assert lines[0].split() == ["TYPE", "CATEGORY", "IN", "OUT", "DESCRIPTION"]
    assert lines[1].split() == ["sample", "testing", "1", "2*", "Does", "sample", "things."]
    assert lines[2].split() == ["sample-server", "testing", "-", "-", "Holds", "a",
                                "connection."]
    assert "* default number of outputs; the configuration sets it" in lines
    assert lines[-1] == "2 node types. `flowrun nodes TYPE` shows one in full."


def test_reference_table_escapes_pipes() -> None:
    text = node_reference(sample_registry())
    assert ("| `count` | integer, >= 1 | `1` |  | How many \\| pipes. |") in text
    assert "| `target` | node id |  | yes | One node. |" in text
    assert "- **testing**: [sample](#sample), [sample-server](#sample-server)" in text


# -- built-in types: what the docs are made from ----------------------------------------------

@pytest.mark.parametrize("cls", builtin_registry().types(), ids=lambda c: c.type)
def test_builtin_example_is_valid_configuration(cls: type[Node]) -> None:
    """Each type documents itself (docs/plugins.md), and its example passes its own schema."""
    assert cls.description.strip(), "no description"
    assert cls.example.strip(), "no example"
    example = yaml.safe_load(cls.example)
    assert isinstance(example, dict)
    mine = {k: v for k, v in example.items()
            if isinstance(v, dict) and normalize_type(str(v.get("type", ""))) ==
            normalize_type(cls.type)}
    assert mine, f"the example has no '{cls.type}' node"
    for node_id, definition in mine.items():
        config = {k: copy.deepcopy(v) for k, v in definition.items()
                  if k not in ("type", "name", "wires", "disabled", "description")}
        s.apply_defaults(cls.schema, config)
        errors = [e.message for e in s.validator_for(cls.schema).iter_errors(config)]
        assert errors == [], f"example node '{node_id}': {errors}"
        assert s.convert(cls.schema, config, s.Folders(Path.cwd())) == []
        cls(node_id, config)  # configure() accepts its typed values too


# -- the CLI ----------------------------------------------------------------------------------

def test_flowrun_nodes_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "inject"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("inject  (common)\n")
    assert "  once_delay: duration; default: 0.1\n" in out
    assert "  payload: value (literal or reference); default: {\"date\": \"now\"}\n" in out
    assert "A source node: it starts after every other node." in out


def test_flowrun_nodes_spaced_type_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "link out"]) == 0
    out = capsys.readouterr().out
    assert "  links: list of ids of `link in` nodes; default: []\n" in out


def test_flowrun_nodes_lists_types(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[1:] if line
            and not line.startswith(("*", " "))}
    assert rows["inject"] == ["common", "0", "1"]
    assert rows["debug"] == ["common", "1", "0"]
    assert rows["function"] == ["function", "1", "1*"]


def test_flowrun_nodes_unknown_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "no-such-type"]) == 2
    assert "unknown node type 'no-such-type'" in capsys.readouterr().err


def test_flowrun_docs_writes_and_checks(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nodes.md"
    assert main(["docs", "-o", str(target), "--check"]) == 1
    assert f"{target} is stale" in capsys.readouterr().err
    assert main(["docs", "-o", str(target)]) == 0
    assert target.read_text() == node_reference(default_registry())
    assert main(["docs", "-o", str(target), "--check"]) == 0


def test_flowrun_nodes_switch_shows_rule_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "switch"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("switch  (function)\n")
    assert "  rules[].eq: value (literal or reference)\n" in out
    assert "outputs:  0 (set by configuration)\n" in out  # one per rule; no rules by default
