"""Structured log lines to stderr: time, level, flow, node id, message id, text."""

from __future__ import annotations

import logging
import sys


class FlowFormatter(logging.Formatter):
    """``2026-11-22 10:00:00.123 ERROR [signaling/parse msg=3f2a...] text``."""

    def format(self, record: logging.LogRecord) -> str:
        when = self.formatTime(record, "%Y-%m-%d %H:%M:%S") + f".{int(record.msecs):03d}"
        where = ""
        node = getattr(record, "node", None)
        if node:
            where = f"[{getattr(record, 'flow', '?')}/{node}"
            msgid = getattr(record, "msgid", None)
            where += f" msg={msgid}] " if msgid else "] "
        text = f"{when} {record.levelname:<7} {where}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(level: str | int = "info") -> None:
    """Send flowengine's log lines to stderr at ``level`` (name or number)."""
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FlowFormatter())
    root = logging.getLogger("flowengine")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
