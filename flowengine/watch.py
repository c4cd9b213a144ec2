"""``flowrun --watch``: reload flow files when they change, restarting only the changed nodes.

The watcher polls (no platform file-event API, so it works the same on every system and on
network or container mounts): every ``interval`` it reads the watched files, which are the files
and folders given to ``flowrun``, every file a folder holds now (so a new file in a watched
folder is picked up) and every file the running flows include. When something changed and has
then stayed the same for one more interval (an editor may write a file in several steps), the
files are loaded again with a fresh :class:`~flowengine.loader.Loader`:

- on load errors, each error is logged (``file:line:col: ...``) and the running flows are left
  exactly as they are; the next change is tried again;
- otherwise :meth:`Runtime.reload <flowengine.runtime.Runtime.reload>` applies the new flows,
  restarting only added, changed and removed nodes (Node-RED's "modified nodes" deploy).

The runtime never writes flow files, so every change seen here is the author's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flowengine.errors import FlowLoadError
from flowengine.loader import FlowSet, Loader, expand_paths
from flowengine.registry import NodeRegistry
from flowengine.runtime import Runtime

log = logging.getLogger("flowengine.watch")

# path -> digest of its content (None: missing or unreadable). Folders map to their listing.
Snapshot = dict[Path, str | None]


def watched_files(paths: Iterable[str | Path], flowset: FlowSet | None) -> list[Path]:
    """The given files, the flow files of the given folders, and the files ``flowset`` loaded
    (includes among them)."""
    files = [p.resolve() for p in expand_paths(paths)]
    if flowset is not None:
        files.extend(f.resolve() for f in flowset.files)
    return list(dict.fromkeys(files))


def snapshot(paths: Iterable[str | Path], flowset: FlowSet | None) -> Snapshot:
    """What the watched files and folders hold now."""
    state: Snapshot = {}
    for path in watched_files(paths, flowset):
        try:
            state[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            state[path] = None
    for folder in (Path(p).resolve() for p in paths):
        if folder.is_dir():
            # A file added to (or removed from) a folder changes this entry.
            names = sorted(str(f) for f in expand_paths([folder]))
            state[folder] = "\n".join(names)
    return state


async def watch_and_reload(runtime: Runtime, paths: Sequence[str | Path],
                           registry: NodeRegistry, interval: float = 0.5, *,
                           environ: Mapping[str, str] | None = None) -> None:
    """Poll the flow files every ``interval`` seconds and apply changes to ``runtime``.

    Runs until cancelled. ``environ`` replaces the process environment for ``${NAME}``
    substitution (as for :class:`~flowengine.loader.Loader`).
    """
    current = snapshot(paths, runtime.flowset)
    pending: Snapshot | None = None
    while True:
        await asyncio.sleep(interval)
        seen = snapshot(paths, runtime.flowset)
        if seen == current:
            pending = None
            continue
        if seen != pending:
            pending = seen  # changed: wait until it stays the same for one interval
            continue
        changed = sorted(str(p) for p in set(seen) | set(current)
                         if seen.get(p) != current.get(p))
        current, pending = seen, None
        log.info("changed: %s; reloading", ", ".join(changed))
        await reload_files(runtime, paths, registry, environ)
        # A successful load may include other files: watch those too from now on.
        current = snapshot(paths, runtime.flowset)


async def reload_files(runtime: Runtime, paths: Sequence[str | Path], registry: NodeRegistry,
                       environ: Mapping[str, str] | None = None) -> bool:
    """Load ``paths`` again and apply them to ``runtime``; False (flows untouched) on errors."""
    try:
        flowset = Loader(registry, environ).load(paths)
    except FlowLoadError as exc:
        for error in exc.errors:
            log.error("%s", error)
        count = len(exc.errors)
        log.error("not reloaded: %d error%s; the running flows are unchanged", count,
                  "s" if count != 1 else "")
        return False
    for warning in flowset.warnings:
        log.warning("%s", warning)
    if _file_settings(flowset) != _file_settings(runtime.flowset):
        # The runtime applies settings (http port, context stores...) only when it starts.
        # Each file's own settings are compared: the merged ones may carry command-line
        # overrides such as --port.
        log.warning("settings changed; restart flowrun to apply them")
    try:
        summary = await runtime.reload(flowset)
    except Exception:
        log.exception("reload failed")
        return False
    added, changed, removed = summary["added"], summary["changed"], summary["removed"]
    log.info("reloaded: %d added, %d changed, %d removed%s", len(added), len(changed),
             len(removed), _ids(added=added, changed=changed, removed=removed))
    return True


def _file_settings(flowset: FlowSet) -> dict[Path, dict[str, Any]]:
    return {f.path.resolve(): f.settings for f in flowset.flows}


def _ids(**groups: list[str]) -> str:
    parts = [f"{name}: {', '.join(ids)}" for name, ids in groups.items() if ids]
    return f" ({'; '.join(parts)})" if parts else ""
