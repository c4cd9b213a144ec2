"""One node's configuration as the flow view shows it (``GET /admin/source/{id}``): YAML with
the file and line it came from, and secrets masked.

The configuration is read again from the node's file *without* ``${NAME}`` substitution, so an
environment value (a password in ``DATABASE_URL``) shows as the reference ``${DATABASE_URL}``,
never as its value. What the file itself holds is masked where it looks like a credential: the
value of a field named like one (``password``, ``token``, ``secret``, ``api_key``...) and the
password of a URL (``postgresql://user:PASSWORD@host``, ``turn:user:PASSWORD@host``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flowengine.loader.envsubst import ENV_REFERENCE
from flowengine.loader.yamlsource import SourceError, parse_yaml

if TYPE_CHECKING:
    from flowengine.loader import FlowSet

MASK = "********"
# A field is a secret when one of its words (``db_password``, ``authToken``) is one of these,
# or when its words joined end with one of the suffixes (``api_key``, ``privateKey``).
SECRET_WORDS = frozenset({"password", "passwd", "pass", "pwd", "passphrase", "secret", "token",
                          "credential", "credentials", "auth", "authorization"})
SECRET_SUFFIXES = ("apikey", "privatekey", "secretkey", "accesskey")
AUTH_SCHEME = re.compile(r"(Bearer|Basic|Token|Digest)\s+", re.IGNORECASE)
# scheme://user:password@ and turn:user:password@ (the password is group 2).
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:|\bturns?:[^\s/:@]*:)([^\s/@]+)@",
                          re.IGNORECASE)


def node_source(flowset: FlowSet, node_id: str) -> dict[str, Any] | None:
    """The node's type, flow, file, line and configuration as masked YAML; None if there is
    no such node."""
    spec = flowset.nodes.get(node_id)
    if spec is None:
        return None
    path = Path(spec.flow.file)
    editor = (f"vscode://file/{path.resolve().as_posix().lstrip('/')}:{spec.line}:{spec.column}"
              if path.suffix else None)  # "<test>" for flows not read from a file
    return {"id": spec.id, "type": spec.type, "flow": spec.flow.name, "file": spec.flow.file,
            "line": spec.line, "column": spec.column, "editor": editor,
            "yaml": to_yaml({node_id: mask(_as_written(flowset, spec.flow.name, node_id,
                                                       spec.is_config))})}


def _as_written(flowset: FlowSet, flow_name: str, node_id: str, is_config: bool) -> Any:
    """The node's mapping as its file had it when loaded, ``${NAME}`` not substituted (never
    the substituted definition: that may hold an environment secret)."""
    flow = flowset.flow(flow_name)
    try:
        raw = parse_yaml("\n".join(flow.document.lines)).data if flow is not None else None
    except SourceError:
        raw = None
    section = raw.get("config" if is_config else "nodes") if isinstance(raw, dict) else None
    for key, definition in (section.items() if isinstance(section, dict) else ()):
        if str(key) == node_id:  # ``123:`` is read as an int
            return definition
    return {"unavailable": "the configuration could not be read again from the file"}


def mask(value: Any, key: Any = None) -> Any:
    """``value`` with credentials replaced by :data:`MASK` (see the module docstring)."""
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if isinstance(value, str):
        return _mask_secret(value) if secret_field(key) else mask_text(value)
    if secret_field(key) and value is not None and not isinstance(value, bool):
        return MASK  # a numeric PIN is a secret too
    return value


def secret_field(key: Any) -> bool:
    """Whether a field of this name holds a credential."""
    if not isinstance(key, str):
        return False
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower())
    return bool(SECRET_WORDS.intersection(words)) or "".join(words).endswith(SECRET_SUFFIXES)


def _mask_secret(text: str) -> str:
    """A credential field's value: its ``${NAME}`` references and an authorization scheme
    (``Bearer ${TOKEN}``) stay, everything else is masked."""
    shown, last = [], 0
    for ref in ENV_REFERENCE.finditer(text):
        shown.append(_mask_literal(text[last:ref.start()]))
        shown.append(ref.group(0))
        last = ref.end()
    shown.append(_mask_literal(text[last:]))
    return "".join(shown)


def _mask_literal(text: str) -> str:
    return text if not text.strip() or AUTH_SCHEME.fullmatch(text) else MASK


def mask_text(text: str) -> str:
    """``text`` with the password of every URL in it masked."""
    return URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", text)


class _Dumper(yaml.SafeDumper):
    """YAML as flow files are written: mappings as blocks, multi-line strings (code) as
    literal blocks, short lists of scalars (``wires: [a, b]``) on one line."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.SequenceNode:
    flat = all(not isinstance(i, dict | list) and "\n" not in str(i) for i in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items,
                                     flow_style=flat and len(str(items)) < 80)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def to_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)
