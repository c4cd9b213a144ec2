"""SQL text helpers, free of I/O: named placeholders and statement counting.

Both need to know which parts of a query are SQL code and which are literals or comments, so
one scanner follows PostgreSQL's lexical rules for the parts that can hide a ``:`` or ``;``:
``'strings'`` (``''`` escapes), ``E'strings'`` (backslash escapes too), ``"identifiers"``,
``$tag$dollar quotes$tag$``, ``-- line`` and ``/* nested */`` comments.

Named placeholders are a convenience over PostgreSQL's ``$1..$n``: ``:name`` in SQL code is
replaced by ``$n`` and the value goes into the argument list, never into the text. A ``:`` that
directly follows a letter, digit, ``_`` or another ``:`` is left alone, so casts (``x::int``)
and array slices (``a[1:n]``, ``a[lo:hi]``) keep working; a slice with no lower bound needs a
space (``a[: hi]``), else ``:hi`` reads as a placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

CODE, LITERAL, COMMENT = "code", "literal", "comment"

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_IDENT_CHAR = re.compile(r"[\w$]")


def scan(sql: str) -> Iterator[tuple[str, str]]:
    """Split ``sql`` into ``(kind, text)`` pieces: CODE, LITERAL (strings, quoted identifiers,
    dollar quotes) and COMMENT. Joining the texts gives ``sql`` back. An unterminated literal
    or comment runs to the end (the server reports the syntax error)."""
    i, start, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        end = -1
        kind = LITERAL
        if ch == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _IDENT_CHAR.match(
                sql[i - 2]))
            end = _quoted_end(sql, i, "'", backslash=escapes)
        elif ch == '"':
            end = _quoted_end(sql, i, '"', backslash=False)
        elif ch == "$" and (i == 0 or not _IDENT_CHAR.match(sql[i - 1])):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag:
                close = sql.find(tag.group(), tag.end())
                end = n if close < 0 else close + len(tag.group())
        elif sql.startswith("--", i):
            kind, newline = COMMENT, sql.find("\n", i)
            end = n if newline < 0 else newline
        elif sql.startswith("/*", i):
            kind, end = COMMENT, _block_comment_end(sql, i)
        if end < 0:
            i += 1
            continue
        if i > start:
            yield CODE, sql[start:i]
        yield kind, sql[i:end]
        i = start = end
    if start < n:
        yield CODE, sql[start:]


def bind_named(sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """Replace each ``:name`` in SQL code by ``$n`` (the same ``n`` for a repeated name) and
    return the new text with the values in ``$n`` order. Raises ValueError naming a
    placeholder that ``params`` lacks; keys that the query does not use are ignored."""
    numbers: dict[str, int] = {}
    values: list[Any] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in numbers:
            if name not in params:
                raise ValueError(f"msg.params has no value for the placeholder :{name}")
            values.append(params[name])
            numbers[name] = len(values)
        return f"${numbers[name]}"

    text = "".join(_NAMED.sub(number, piece) if kind == CODE else piece
                   for kind, piece in scan(sql))
    return text, values


def named_placeholders(sql: str) -> list[str]:
    """The ``:name`` placeholders in SQL code, in order of first use."""
    names: dict[str, None] = {}
    for kind, piece in scan(sql):
        if kind == CODE:
            names.update(dict.fromkeys(_NAMED.findall(piece)))
    return list(names)


def count_statements(sql: str) -> int:
    """The number of non-empty statements separated by ``;`` (comments do not count)."""
    count, content = 0, False
    for kind, piece in scan(sql):
        if kind == COMMENT:
            continue
        if kind == LITERAL:
            content = True
            continue
        for i, part in enumerate(piece.split(";")):
            if i > 0 and content:  # a ';' closed a statement that had content
                count, content = count + 1, False
            content = content or bool(part.strip())
    return count + (1 if content else 0)


def _quoted_end(sql: str, i: int, quote: str, backslash: bool) -> int:
    """The index after the quote that closes the literal opened at ``i``."""
    j, n = i + 1, len(sql)
    while j < n:
        ch = sql[j]
        if backslash and ch == "\\":
            j += 2
            continue
        if ch == quote:
            if j + 1 < n and sql[j + 1] == quote:  # a doubled quote is an escaped one
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _block_comment_end(sql: str, i: int) -> int:
    """The index after the ``*/`` closing the comment opened at ``i`` (comments nest)."""
    depth, j, n = 0, i, len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return n
