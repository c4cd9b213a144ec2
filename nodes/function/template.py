"""``template``: render a mustache template into a message property or a context value
(Node-RED's template node, cases TP-01..TP-10 of ``docs/reference/nodered-cases.md``).

Rendering follows mustache.js, the library Node-RED uses (:mod:`flowengine.mustache`), so
imported templates give the same text; with ``output: json`` string values from the message are
JSON-escaped, so ``{"text": "{{payload}}"}`` stays valid JSON.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from flowengine import ConfigError, Node, NodeError, compile_path
from flowengine import schema as s
from flowengine.js import JSONParseError, json_parse
from flowengine.mustache import Mustache, compile_mustache, render_text

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
                value = json_parse(text)
            except JSONParseError as exc:
                raise NodeError(str(exc)) from None
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
            template = render_text(msg["template"])
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

