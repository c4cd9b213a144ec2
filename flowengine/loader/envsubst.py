"""``${NAME}`` and ``${NAME:-default}`` substitution in flow files (flow-format.md, "Environment").

Unlike Node-RED, an unset variable without a default is an error naming it. A string that is
exactly one ``${NAME}`` takes the YAML type of the variable's value (``PORT=1880`` gives an int);
``$${NAME}`` stands for the literal text ``${NAME}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from flowengine.loader.yamlsource import SourceError

_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _typed(text: str) -> Any:
    """The YAML scalar type of an environment value: ``1880`` -> int, ``true`` -> bool."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def substitute(text: str, variables: Mapping[str, Any]) -> Any:
    """Replace every ``${NAME}`` in ``text`` from ``variables``; raise SourceError if unset."""
    whole = _VAR.fullmatch(text)
    if whole and not whole.group(1):
        name, default = whole.group(2), whole.group(3)
        if name in variables:
            value = variables[name]
            return _typed(value) if isinstance(value, str) else value
        if default is not None:
            return _typed(default)
        raise SourceError(f"environment variable '{name}' is not set and has no default", 0, 0)

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # $${NAME}: an escaped, literal ${NAME}
            return match.group(0)[1:]
        name, default = match.group(2), match.group(3)
        if name in variables:
            value = variables[name]
            return value if isinstance(value, str) else _format(value)
        if default is not None:
            return default
        raise SourceError(f"environment variable '{name}' is not set and has no default", 0, 0)

    return _VAR.sub(replace, text)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
