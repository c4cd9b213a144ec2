"""``template``: render a mustache template into a message property or a context value
(Node-RED's template node, cases TP-01..TP-10 of ``nodered-cases.md``).

The template is parsed by ``pystache`` and rendered with the rules of mustache.js, the library
Node-RED uses, so imported templates give the same text:

- names are looked up in the message first (``{{payload.name}}``, ``{{topic}}``), then in
  ``{{flow.key}}``, ``{{global.key}}`` (``{{flow[store].key}}`` names a context store) and
  ``{{env.NAME}}``; a missing name renders as nothing;
- values render as JavaScript's ``String(value)`` does: arrays joined with ``,``, objects as
  ``[object Object]``, ``null`` and missing values as nothing, ``.length`` works on arrays and
  strings;
- ``{{x}}`` escapes ``& < > " ' / ` =`` as mustache.js does; ``{{{x}}}`` and ``{{&x}}`` do not;
- with ``output: json`` string values from the message are JSON-escaped (``\\n``, ``\\t``...),
  so ``{"text": "{{payload}}"}`` stays valid JSON.

:class:`Mustache` is also used by the trigger node for its ``{{...}}`` values.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import pystache
import yaml
from pystache.renderengine import RenderEngine

from flowengine import MISSING, ConfigError, Node, NodeError, compile_path
from flowengine import schema as s
from flowengine.jsvalues import to_string

# -- mustache with mustache.js semantics -----------------------------------------------------------

# mustache.js's escapeHtml entity map (TP-04): it escapes "/", "`" and "=" too, unlike html.escape.
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
                  "/": "&#x2F;", "`": "&#x60;", "=": "&#x3D;"}
_HTML_SPECIAL = re.compile(r"[&<>\"'`=/]")
# What Node-RED escapes in string values when the output is JSON.
_JSON_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\b": "\\b"}
_JSON_SPECIAL = re.compile(r"[\\\n\t\r\f\b]")
# Node-RED's template node: {{flow.x}}, {{global.x}}, {{flow[store].x}}; {{env.NAME}}.
_CONTEXT_NAME = re.compile(r"^(flow|global)(?:\[(\w*)\])?\.(.+)$")
_ENV_NAME = re.compile(r"^env\.(.+)$")
_TAG_TYPES = "#^/>{&=!"


def html_escape(text: str) -> str:
    """mustache.js's ``escapeHtml``."""
    return _HTML_SPECIAL.sub(lambda m: _HTML_ENTITIES[m.group()], text)


def _text(value: Any) -> str:
    """A rendered value: JavaScript's ``String(value)``; ``null``/``undefined`` -> ``""``."""
    if isinstance(value, str):
        return value
    if value is None or value is MISSING:
        return ""
    return to_string(value)


class _JsObject(dict):  # type: ignore[type-arg]
    """An empty object, truthy as in JavaScript (a section over ``{}`` renders once)."""

    def __bool__(self) -> bool:
        return True


_MISS = object()


def _member(value: Any, key: str) -> Any:
    """``value[key]`` as JavaScript reads it, or ``_MISS`` when ``key`` is not a property."""
    if isinstance(value, Mapping):  # dicts, and read-only views such as msg.req
        return value.get(key, _MISS)
    if isinstance(value, str | list | tuple | bytes | bytearray):
        if key == "length":
            return len(value)
        if key.isdigit() and (key == "0" or not key.startswith("0")) and int(key) < len(value):
            return value[int(key)]
    return _MISS


class _Scope:
    """The context stack pystache renders against (it only calls ``push`` and ``pop``).

    Lookups follow mustache.js's ``Context.lookup``: each stacked view from the innermost
    section outwards, the whole dotted name against each; then Node-RED's additions (flow,
    global and env).
    """

    __slots__ = ("escape_json", "node", "views")

    def __init__(self, msg: Any, node: Node | None, escape_json: bool):
        self.views: list[Any] = [msg]
        self.node = node
        self.escape_json = escape_json

    def push(self, view: Any) -> None:
        self.views.append(view)

    def pop(self) -> Any:
        return self.views.pop()

    def lookup(self, name: str) -> Any:
        if name == ".":
            value = self.views[-1]
        else:
            value = self._from_views(name)
            if value is _MISS:
                return self._from_node(name)
        if self.escape_json and isinstance(value, str):
            value = _JSON_SPECIAL.sub(lambda m: _JSON_ESCAPES[m.group()], value)
        return _js_value(value)

    def _from_views(self, name: str) -> Any:
        parts = name.split(".") if name.find(".") > 0 else None
        for view in reversed(self.views):
            if parts is None:
                # A plain name is only looked up on objects and arrays (mustache.js hasProperty).
                if isinstance(view, dict | list | tuple):
                    value = _member(view, name)
                    if value is not _MISS:
                        return value
                continue
            value = view
            for part in parts:
                if value is None or value is MISSING:
                    value = _MISS
                    break
                value = _member(value, part)
                if value is _MISS:
                    break
            if value is not _MISS:
                return value
        return _MISS

    def _from_node(self, name: str) -> Any:
        node = self.node
        if node is None:
            return None
        match = _CONTEXT_NAME.match(name)
        if match:
            scope, store, key = match.groups()
            context = node.flow_context if scope == "flow" else node.global_context
            return _js_value(context.get(key, store=store or None))
        match = _ENV_NAME.match(name)
        if match:
            return node.env.get(match.group(1))
        return None


def _js_value(value: Any) -> Any:
    if value is MISSING:
        return None
    if type(value) is dict and not value:
        return _JsObject()
    return value


def _literal(value: Any) -> str:
    return value if isinstance(value, str) else _text(value)


# pystache's rendering core, with mustache.js's escaping, value rendering and lookups. Its
# Renderer has no hook for name lookup, so the (documented) RenderEngine is used directly, with
# a _Scope in place of pystache's ContextStack: parsed sections only call push() and pop().
_ENGINE = RenderEngine(
    literal=_literal,
    escape=lambda value: html_escape(_literal(value)),
    resolve_context=lambda scope, name: scope.lookup(name),
    resolve_partial=lambda name: "",  # Node-RED has no partials; mustache.js renders nothing
    to_str=_text,
)


class Mustache:
    """A compiled mustache template. ``Mustache(text)`` raises ValueError with mustache.js's
    message (``Unclosed tag at 17``) for a malformed template."""

    __slots__ = ("_parsed", "text")

    def __init__(self, text: str):
        self.text = text
        check_template(text)
        try:
            self._parsed = pystache.parse(text, raise_on_mismatch=True)
        except Exception as exc:  # pystache raises plain Exception for some bad tags
            raise ValueError(str(exc)) from None

    def render(self, msg: Any, node: Node | None = None, escape_json: bool = False) -> str:
        """The text for ``msg``; with ``node``, flow/global/env names resolve too."""
        return self._parsed.render(_ENGINE, _Scope(msg, node, escape_json))


@lru_cache(maxsize=64)
def compile_mustache(text: str) -> Mustache:
    """A cached :class:`Mustache` (for templates that arrive in messages)."""
    return Mustache(text)


def check_template(text: str) -> None:
    """Raise ValueError as mustache.js's parser would: ``Unclosed tag at N``,
    ``Unclosed section "x" at N``, ``Unopened section "x" at N``, ``Invalid tags: ...``."""
    opening, closing = "{{", "}}"
    sections: list[str] = []
    pos = 0
    while True:
        start = text.find(opening, pos)
        if start < 0:
            break
        i = start + len(opening)
        while i < len(text) and text[i].isspace():
            i += 1
        kind = text[i] if i < len(text) and text[i] in _TAG_TYPES else ""
        i += len(kind)
        while i < len(text) and text[i].isspace():
            i += 1
        value_start, value_end = i, -1
        if kind == "=":
            equals = re.compile(r"\s*=").search(text, i)
            value_end = equals.start() if equals else len(text)
            i = equals.end() if equals else len(text)
        elif kind == "{":
            curly = re.compile(r"\s*" + re.escape("}" + closing)).search(text, i)
            value_end = curly.start() if curly else len(text)
            i = curly.end() - len(closing) if curly else len(text)
        end = re.compile(r"\s*" + re.escape(closing)).search(text, i)
        if end is None:
            raise ValueError(f"Unclosed tag at {len(text)}")
        value = text[value_start:end.start() if value_end < 0 else value_end].strip()
        pos = end.end()
        if kind in ("#", "^"):
            sections.append(value)
        elif kind == "/":
            if not sections:
                raise ValueError(f'Unopened section "{value}" at {start}')
            opened = sections.pop()
            if opened != value:
                raise ValueError(f'Unclosed section "{opened}" at {start}')
        elif kind == "=":
            tags = value.split()
            if len(tags) != 2:
                raise ValueError(f"Invalid tags: {', '.join(tags)}")
            opening, closing = tags
    if sections:
        raise ValueError(f'Unclosed section "{sections[-1]}" at {len(text)}')


# -- the node --------------------------------------------------------------------------------------

class TemplateNode(Node):
    type = "template"
    category = "function"
    description = (
        "Renders a mustache template (or copies plain text) into a message property, or into a "
        "flow/global context value. The template sees the message ({{payload.name}}), "
        "{{flow.key}}, {{global.key}} and {{env.NAME}}; {{x}} is HTML-escaped, {{{x}}} and "
        "{{&x}} are not; values render as in JavaScript (arrays joined with ','). With "
        "`output: json` or `yaml` the text is parsed; a parse error is a catchable error and "
        "nothing is sent. An empty `template` uses msg.template.")
    example = textwrap.dedent("""\
        greeting:
          type: template
          template: "Hello {{payload.name}}, you are visitor {{flow.visits}} on {{env.HOST}}"
          field: payload
          wires: [send]
        """)
    schema = s.obj({
        "template": s.string("", "The template; when empty, msg.template is used."),
        "syntax": s.enum(["mustache", "plain"], "mustache",
                         "`mustache` renders the template; `plain` copies it as is."),
        "output": s.enum(["str", "json", "yaml"], "str",
                         "`str` sets the text; `json`/`yaml` set the parsed value."),
        "field": s.string("payload", "Where the result goes: a message path, or a context "
                          "key when `field_type` is flow or global (`#:(store)::key` picks "
                          "a store).", minLength=1),
        "field_type": s.enum(["msg", "flow", "global"], "msg",
                             "Whether `field` is a message property or a context key."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        self._mustache = config["syntax"] == "mustache"
        self._output = config["output"]
        self._field_type = config["field_type"]
        self._template: Mustache | None = None
        if self._mustache and config["template"]:
            try:
                self._template = Mustache(config["template"])
            except ValueError as exc:
                raise ConfigError(str(exc), "template") from None
        self._path = compile_path(config["field"], "field") if self._field_type == "msg" else None

    def on_input(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        text = self._render(msg)
        value: Any = text
        if self._output == "json":
            try:
                value = json.loads(text, parse_constant=_reject_constant)
            except ValueError as exc:
                raise NodeError(f"invalid JSON from template: {exc}") from None
        elif self._output == "yaml":
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise NodeError(f"invalid YAML from template: {exc}") from None
        if self._path is not None:
            if not self._path.set(msg, value):
                self.warn(f"cannot set '{self.config['field']}': a parent is not an object")
        else:
            context = self.flow_context if self._field_type == "flow" else self.global_context
            context.set(self.config["field"], value)
        return msg

    def _render(self, msg: dict[str, Any]) -> str:
        template = self.config["template"]
        from_msg = not template and "template" in msg
        if from_msg:
            # Node-RED: the node's own template wins; msg.template only fills an empty one.
            template = _text(msg["template"])
        if not self._mustache:
            return template
        if from_msg:
            try:
                compiled = compile_mustache(template)
            except ValueError as exc:
                raise NodeError(str(exc)) from None
        else:
            compiled = self._template or compile_mustache("")
        return compiled.render(msg, self, escape_json=self._output == "json")


def _reject_constant(name: str) -> Any:
    # JSON.parse refuses NaN and Infinity, which Python's json accepts.
    raise ValueError(f"unexpected token {name!r}")
