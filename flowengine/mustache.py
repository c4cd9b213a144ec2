"""Mustache templates rendered as Node-RED renders them (mustache.js rules), for node types.

Parsed by ``pystache``, rendered with the rules of mustache.js, the library Node-RED uses, so
templates imported from Node-RED give the same text:

- names are looked up in the message first (``{{payload.name}}``, ``{{topic}}``), then, when a
  node is given, in ``{{flow.key}}``, ``{{global.key}}`` (``{{flow[store].key}}`` names a
  context store) and ``{{env.NAME}}``; a missing name renders as nothing;
- values render as JavaScript's ``String(value)`` does: arrays joined with ``,``, objects as
  ``[object Object]``, ``null`` and missing values as nothing, ``.length`` works on arrays and
  strings;
- ``{{x}}`` escapes ``& < > " ' / ` =`` as mustache.js does; ``{{{x}}}`` and ``{{&x}}`` do not;
- with ``escape_json`` string values from the message are JSON-escaped (``\\n``, ``\\t``...).

Used by the template and trigger nodes::

    Mustache("Hello {{payload.name}}").render(msg, node)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import pystache
from pystache.renderengine import RenderEngine

from flowengine.jsvalues import to_string
from flowengine.node import Node
from flowengine.paths import MISSING

# mustache.js's escapeHtml entity map (TP-04 in docs/reference/nodered-cases.md): it escapes "/",
# "`" and "=" too, unlike html.escape.
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


def render_text(value: Any) -> str:
    """A rendered value: JavaScript's ``String(value)``; ``null``/``undefined`` -> ``""``."""
    if isinstance(value, str):
        return value
    if value is None or value is MISSING:
        return ""
    return to_string(value)


class _JsObject(dict):
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
    return value if isinstance(value, str) else render_text(value)


# pystache's rendering core, with mustache.js's escaping, value rendering and lookups. Its
# Renderer has no hook for name lookup, so the (documented) RenderEngine is used directly, with
# a _Scope in place of pystache's ContextStack: parsed sections only call push() and pop().
_ENGINE = RenderEngine(
    literal=_literal,
    escape=lambda value: html_escape(_literal(value)),
    resolve_context=lambda scope, name: scope.lookup(name),
    resolve_partial=lambda name: "",  # Node-RED has no partials; mustache.js renders nothing
    to_str=render_text,
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
