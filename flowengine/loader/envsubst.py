"""``${NAME}`` and ``${NAME:-default}`` substitution in flow files
(docs/flow-format.md, "Environment").

Unlike Node-RED, an unset variable without a default is an error naming it. A string that is
exactly one ``${NAME}`` takes the YAML type of the variable's value (``PORT=1880`` gives an int);
``$${NAME}`` stands for the literal text ``${NAME}``.

Variables come from the ``env`` a string sees first (the flow's ``env`` block; for a node, its
groups', subflow instances' and flow's, see :class:`flowengine.node.ScopeEnv`), then from the
process environment. A process variable is always text, so a whole-value reference reads it as a
YAML scalar would be read; an ``env`` value was already read by YAML and keeps its type
(``"1880"``, quoted, stays text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from flowengine.loader.yamlsource import FlowYamlLoader, SourceError

# ${NAME}, ${NAME:-default}, $${NAME} (escaped): groups escape, name, default.
ENV_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _typed(text: str) -> Any:
    """The YAML scalar type of an environment value: ``1880`` -> int, ``true`` -> bool."""
    try:
        value = yaml.load(text, Loader=FlowYamlLoader)  # a SafeLoader subclass
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def _unset(name: str) -> SourceError:
    # The builder fills in the position of the string that holds the reference.
    return SourceError(f"environment variable '{name}' is not set and has no default", 0, 0)


def substitute(text: str, environ: Mapping[str, str],
               flow_env: Mapping[str, Any] | None = None) -> Any:
    """Replace every ``${NAME}`` in ``text``; raise SourceError for an unset variable.

    ``flow_env`` (the flow's ``env`` block, already typed) is looked up before ``environ``.
    """
    flow_env = {} if flow_env is None else flow_env
    whole = ENV_REFERENCE.fullmatch(text)
    if whole and not whole.group(1):
        name, default = whole.group(2), whole.group(3)
        if name in flow_env:
            return flow_env[name]
        if name in environ:
            return _typed(environ[name])
        if default is not None:
            return _typed(default)
        raise _unset(name)

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # $${NAME}: an escaped, literal ${NAME}
            return match.group(0)[1:]
        name, default = match.group(2), match.group(3)
        if name in flow_env:
            return _format(flow_env[name])
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise _unset(name)

    return ENV_REFERENCE.sub(replace, text)


def _format(value: Any) -> str:
    """A flow env value inside a longer string, written as YAML would show it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
