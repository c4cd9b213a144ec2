"""Node type documentation from the node types themselves (docs/plugins.md, "documenting").

A node type's JSON Schema is the single source of its configuration reference: ``flowrun nodes``
lists the registered types (:func:`list_types`), ``flowrun nodes TYPE`` describes one
(:func:`describe_type`) and ``flowrun docs`` writes ``docs/nodes.md`` (:func:`node_reference`).
All three read the same facts, extracted once by :func:`config_fields`:

- the class attributes ``type``, ``category``, ``description``, ``example``, ``inputs``,
  ``outputs`` (or ``output_count``), ``is_source``, ``is_config``;
- every property of ``schema`` with its type, default, whether it is required, and its
  description; nested objects and list items are listed as ``field.sub`` and ``field[].sub``.

The schema helpers' annotations are shown by what they mean: ``x-value`` as "value (literal or
reference)", ``x-kind`` as its kind ("duration", "size", "folder"), ``x-path`` as "message
path", ``x-node-ref`` as "node id", ``x-config-ref`` as "config node id of type X".

Output is deterministic (registry order, schema declaration order, no timestamps), so the
committed ``docs/nodes.md`` can be checked for staleness with ``flowrun docs --check``.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from flowengine.node import Node
from flowengine.registry import NodeRegistry

Schema = dict[str, Any]

#: Common fields every flow node accepts besides its own schema (docs/flow-format.md).
COMMON_FIELDS = ("name", "description", "disabled", "wires")

#: Categories in palette order (Node-RED's); other categories follow alphabetically.
CATEGORY_ORDER = ("common", "function", "sequence", "parser", "parsers", "network", "storage",
                  "config")

REGENERATE = "flowrun docs -o docs/nodes.md"

#: Longest description shown by ``flowrun nodes`` (the full text is in ``flowrun nodes TYPE``).
LIST_WIDTH = 80


@dataclass(frozen=True)
class Field:
    """One configuration field of a node type, as the docs show it."""

    name: str  # dotted path: ``rules[].eq``
    type: str  # readable type: ``duration``, ``list of node ids``
    default: str | None  # the default as written in YAML, or None when there is none
    required: bool
    description: str


# -- facts ------------------------------------------------------------------------------------

def config_fields(schema: Schema) -> list[Field]:
    """The documented fields of a node type's schema, in declaration order."""
    return list(_fields(schema, prefix="", in_alternative=False, seen=set()))


def _fields(schema: Schema, prefix: str, in_alternative: bool, seen: set[str]) -> Iterator[Field]:
    required = set(schema.get("required", ()))
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        full = f"{prefix}{name}"
        if full in seen:  # the same key in several alternatives (e.g. switch rules): once
            continue
        seen.add(full)
        yield Field(name=full, type=type_text(sub),
                    default=yaml_literal(sub["default"]) if "default" in sub else None,
                    required=name in required and not in_alternative,
                    description=_one_line(sub.get("description", "")))
        yield from _nested(sub, full, in_alternative, seen)


def _nested(schema: Schema, name: str, in_alternative: bool,
            seen: set[str]) -> Iterator[Field]:
    """Fields inside an object property, a list's items, or the alternatives of either."""
    if schema.get("properties"):
        yield from _fields(schema, f"{name}.", in_alternative, seen)
    items = schema.get("items")
    if isinstance(items, dict):
        if items.get("properties"):
            yield from _fields(items, f"{name}[].", in_alternative, seen)
        for alternative in _alternatives(items):
            if alternative.get("properties") and not _single_key(alternative):
                yield from _fields(alternative, f"{name}[].", True, seen)
    for alternative in _alternatives(schema):
        # A property that is "one of these shapes": its fields are never all required. A
        # one-key shape such as {flow: key} is spelled out in the type instead.
        if not _single_key(alternative):
            yield from _nested(alternative, name, True, seen)


def _single_key(schema: Schema) -> str | None:
    """The key of an object shape with exactly one, required, property (``{flow: key}``)."""
    properties = schema.get("properties") or {}
    if len(properties) == 1 and list(schema.get("required", ())) == list(properties):
        return next(iter(properties))
    return None


def _alternatives(schema: Schema) -> list[Schema]:
    return [a for a in (schema.get("anyOf") or schema.get("oneOf") or []) if isinstance(a, dict)]


def type_text(schema: Schema) -> str:
    """A readable name for the type of values a schema accepts."""
    if "x-config-ref" in schema:
        return f"config node id of type `{schema['x-config-ref']}`"
    many = schema.get("type") == "array"
    items = schema.get("items")
    if "x-node-ref" in schema:
        return _node_ids(schema["x-node-ref"], many)
    if many and isinstance(items, dict) and "x-node-ref" in items:  # a list of node ids
        return _node_ids(items["x-node-ref"], many=True)
    if "x-kind" in schema:
        return str(schema["x-kind"])
    if schema.get("x-path"):
        return "message path"
    if schema.get("x-value"):
        return "value (literal or reference)"
    if "const" in schema:
        return f"`{yaml_literal(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{yaml_literal(v)}`" for v in schema["enum"])
    alternatives = _alternatives(schema)
    if alternatives:
        texts: list[str] = []
        for alternative in alternatives:
            text = type_text(alternative)
            if text not in texts:
                texts.append(text)
        return " or ".join(texts)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_plain_type(k, schema) for k in kind)
    if isinstance(kind, str):
        return _plain_type(kind, schema)
    return "any"


def _node_ids(ref: Any, many: bool) -> str:
    if ref is True or not isinstance(ref, str):
        return "list of node ids" if many else "node id"
    return f"list of ids of `{ref}` nodes" if many else f"id of a `{ref}` node"


_PLURALS = {"string": "strings", "non-empty string": "non-empty strings",
            "integer": "integers", "number": "numbers", "boolean": "booleans",
            "object": "objects", "any": "values", "message path": "message paths",
            "duration": "durations", "size": "sizes", "folder": "folders",
            "value (literal or reference)": "values (literal or reference)"}


def _plain_type(kind: str, schema: Schema) -> str:
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            return "list"
        inner = type_text(items)
        if inner in _PLURALS:
            return f"list of {_PLURALS[inner]}"
        return f"list of: {inner}"  # "list of: `a`, `b` or object" reads unambiguously
    if kind == "object":
        key = _single_key(schema)
        if key is not None:
            return f"{{{key}: {type_text(schema['properties'][key])}}}"
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"map of name to {type_text(extra)}"
        return "object"
    if kind == "null":
        return "null"
    text = kind
    if kind == "string":
        if schema.get("minLength") == 1:
            text = "non-empty string"
        if "pattern" in schema:
            text += f" matching `{schema['pattern']}`"
    limits = [f"{op} {_number(schema[key])}" for key, op in
              (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
               ("exclusiveMaximum", "<")) if key in schema]
    if limits:
        text += ", " + ", ".join(limits)
    return text


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def yaml_literal(value: Any) -> str:
    """A value as it would be written in a flow file: ``payload``, ``5s``, ``""``, ``{"a": 1}``.

    Strings are shown bare unless YAML would read them as something else (``"5"``, ``"true"``,
    ``""``); everything else as compact JSON, which is valid YAML.
    """
    if isinstance(value, str):
        try:
            plain = value != "" and yaml.safe_load(value) == value and "\n" not in value
        except yaml.YAMLError:
            plain = False
        return value if plain else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def first_sentence(text: str) -> str:
    """The first sentence of a description (for one-line listings)."""
    text = _one_line(text)
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z`{(])", text)
    return text[:match.start()] if match else text


def outputs_text(cls: type[Node]) -> str:
    """``"1"``, or ``"1 (set by configuration)"`` when ``output_count`` decides it."""
    if cls.is_config:
        return "-"
    if getattr(cls.output_count, "__func__", None) is Node.output_count.__func__:
        return str(cls.outputs)
    try:
        count = cls.output_count(_defaults(cls.schema))
    except Exception:  # an output_count that needs required fields: no default to show
        return "set by configuration"
    return f"{count} (set by configuration)"


def inputs_text(cls: type[Node]) -> str:
    return "-" if cls.is_config else str(cls.inputs)


def _defaults(schema: Schema) -> dict[str, Any]:
    return {name: sub["default"] for name, sub in (schema.get("properties") or {}).items()
            if isinstance(sub, dict) and "default" in sub}


def _kind_notes(cls: type[Node]) -> list[str]:
    notes = []
    if cls.is_config:
        notes.append("A config node: defined under `config:` and referred to by id; it has "
                     "no wires.")
    if cls.is_source:
        notes.append("A source node: it starts after every other node.")
    if not cls.auto_done and not cls.is_config:
        notes.append("It finishes messages itself (complete nodes see them when it says "
                     "so, not when its handler returns).")
    return notes


def _schema_json(cls: type[Node]) -> str:
    return json.dumps(cls.schema, indent=2, ensure_ascii=False, default=str)


def _common_fields_text(cls: type[Node]) -> str:
    # Config nodes and nodes without outputs have no wires to give.
    no_wires = cls.is_config or (outputs_text(cls) == "0")
    fields = [f for f in COMMON_FIELDS if not (no_wires and f == "wires")]
    return "Common fields: " + ", ".join(f"`{f}`" for f in fields) + " (see docs/flow-format.md)."


# -- flowrun nodes ----------------------------------------------------------------------------

def list_types(registry: NodeRegistry) -> str:
    """A plain-text table of every registered type: type, category, inputs, outputs and the
    first sentence of its description."""
    rows = [(cls.type, cls.category, inputs_text(cls),
             _outputs_short(outputs_text(cls)),
             _shorten(first_sentence(cls.description) or "(no description)"))
            for cls in _ordered(registry)]
    header = ("TYPE", "CATEGORY", "IN", "OUT", "DESCRIPTION")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    if any(r[3].endswith("*") for r in rows):
        lines.append("")
        lines.append("* default number of outputs; the configuration sets it")
    lines.append("")
    lines.append(f"{len(rows)} node types. `flowrun nodes TYPE` shows one in full.")
    return "\n".join(lines)


def _outputs_short(text: str) -> str:
    """``"2 (set by configuration)"`` -> ``"2*"``; without a default count just ``"*"``."""
    if "set by configuration" in text:
        return text.split(" ")[0] + "*" if text[0].isdigit() else "*"
    return text


def _shorten(text: str, width: int = LIST_WIDTH) -> str:
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def describe_type(cls: type[Node], source: str | None = None) -> str:
    """Everything about one type, for the terminal: what it is, its fields, schema, example."""
    width = 100
    out = [f"{cls.type}  ({cls.category})", ""]
    out.append(f"source:   {source or cls.__module__}")
    out.append(f"class:    {cls.__module__}.{cls.__qualname__}")
    out.append(f"inputs:   {inputs_text(cls)}")
    out.append(f"outputs:  {outputs_text(cls)}")
    out.append("")
    out.append(textwrap.fill(_one_line(cls.description) or "(no description)", width))
    notes = _kind_notes(cls)
    if notes:
        out += ["", textwrap.fill(" ".join(notes), width)]
    out.append("")
    fields = config_fields(cls.schema)
    out.append("Configuration:" if fields else "Configuration: no fields of its own.")
    for f in fields:
        facts = [f.type]
        if f.required:
            facts.append("required")
        if f.default is not None:
            facts.append(f"default: {f.default}")
        out.append(textwrap.fill(f"{f.name}: " + "; ".join(facts), width, initial_indent="  ",
                                 subsequent_indent="      "))
        if f.description:
            out.append(textwrap.fill(f.description, width, initial_indent="      ",
                                     subsequent_indent="      "))
    out += ["", _common_fields_text(cls), "", "Example:"]
    out.append(textwrap.indent(cls.example.rstrip("\n"), "  ") if cls.example
               else "  (no example)")
    out.append("")
    out.append("JSON Schema:")
    out.append(textwrap.indent(_schema_json(cls), "  "))
    return "\n".join(out)


# -- flowrun docs -----------------------------------------------------------------------------

def node_reference(registry: NodeRegistry) -> str:
    """The Markdown node reference (``docs/nodes.md``): every registered type by category."""
    by_category: dict[str, list[type[Node]]] = {}
    for cls in _ordered(registry):
        by_category.setdefault(cls.category, []).append(cls)
    out = [
        f"<!-- Generated from the node types' schemas by `flowrun docs`. Do not edit: change "
        f"the node type and run `{REGENERATE}`. -->",
        "",
        "# Node reference",
        "",
        "Every node type with its configuration, generated from the type's JSON Schema, "
        "description and example (the same text as `flowrun nodes TYPE`). Values marked "
        "\"value (literal or reference)\" take a literal or a one-key reference such as "
        "`{msg: payload.x}`, `{flow: key}`, `{global: key}`, `{env: NAME}`, "
        "`{jsonata: expr}` or `{date: now}`; durations are seconds or `250ms`, `5s`, `2m`, "
        "`1h`; sizes are bytes or `500kB`, `64KiB`, `1MiB`; folders are relative to the flow "
        "file; message paths are property paths such as `payload.items[0]` (see "
        "docs/flow-format.md).",
        "",
        "## Contents",
        "",
    ]
    for category, classes in by_category.items():
        links = ", ".join(f"[{cls.type}](#{_slug(cls.type)})" for cls in classes)
        out.append(f"- **{category}**: {links}")
    for category, classes in by_category.items():
        out += ["", f"## {category} nodes"]
        for cls in classes:
            out += ["", *_type_section(cls)]
    return "\n".join(out).rstrip("\n") + "\n"


def _type_section(cls: type[Node]) -> list[str]:
    out = [f"### {cls.type}", ""]
    out.append(f"Category: {cls.category}. Inputs: {inputs_text(cls)}. "
               f"Outputs: {outputs_text(cls)}. Module: `{cls.__module__}`.")
    out.append("")
    out.append(_one_line(cls.description) or "(no description)")
    notes = _kind_notes(cls)
    if notes:
        out += ["", " ".join(notes)]
    out.append("")
    fields = config_fields(cls.schema)
    if fields:
        out.append("| Field | Type | Default | Required | Description |")
        out.append("| --- | --- | --- | --- | --- |")
        for f in fields:
            default = f"`{f.default}`" if f.default is not None else ""
            out.append(f"| `{f.name}` | {_cell(f.type)} | {_cell(default)} | "
                       f"{'yes' if f.required else ''} | {_cell(f.description)} |")
    else:
        out.append("No configuration fields of its own.")
    out += ["", _common_fields_text(cls)]
    if cls.example:
        out += ["", "Example:", "", "```yaml", cls.example.rstrip("\n"), "```"]
    out += ["", "<details><summary>JSON Schema</summary>", "", "```json", _schema_json(cls),
            "```", "", "</details>"]
    return out


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return _one_line(text).replace("|", "\\|")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: ``link in`` -> ``link-in``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _ordered(registry: NodeRegistry) -> list[type[Node]]:
    def key(cls: type[Node]) -> tuple[int, str, str]:
        rank = CATEGORY_ORDER.index(cls.category) if cls.category in CATEGORY_ORDER \
            else len(CATEGORY_ORDER)
        return rank, cls.category, cls.type

    return sorted(registry.types(), key=key)
