"""Persistent context store in JSON files (Node-RED `context/localfilesystem.js`,
docs/reference/nodered-runtime.md §3.4).

Behaviour, matching Node-RED's localfilesystem store with ``cache: true``:

- every scope is loaded into memory at :meth:`FileStore.open`; reads and writes
  then touch memory only (and keep references, like the memory store);
- the first change after a flush schedules **one** flush ``flush_interval`` seconds
  later; that flush writes every scope changed since the last one;
- :meth:`FileStore.close` cancels the timer and writes every scope whose content
  differs from what is on disk, which also catches objects mutated in place
  through a reference returned by ``get``. A clean stop loses nothing; a crash
  (``kill -9``) loses at most ``flush_interval`` seconds of changes.

Each file is written atomically: ``<file>.tmp`` is written and fsynced, then
renamed over ``<file>`` with :func:`os.replace`, then the directory is fsynced.
A file that is not valid JSON at open is renamed ``<file>.corrupt-<timestamp>``
and logged; the store starts without that scope instead of failing.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import enum
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

from flowengine.context.layout import relpath_to_scope, scope_to_relpath
from flowengine.context.store import DictStore

logger = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL = 30.0
"""Seconds between the first change and the flush that writes it (Node-RED's default)."""

TMP_SUFFIX = ".tmp"


class _State(enum.Enum):
    """Lifecycle of a :class:`FileStore`. Data may be read or written only when OPEN."""

    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


def _digest(text: str) -> bytes:
    # A short digest of what was last written, so that close() can tell which
    # scopes changed without keeping a second copy of every file in memory.
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _jsonable(value: Any, on_fallback: Callable[[Any], None], seen: set[int]) -> Any:
    """Copy ``value`` into something ``json.dumps`` accepts.

    Used only after a plain dump failed. Unknown objects become ``str(obj)``, tuples
    and sets become lists, non-string keys are stringified and reference cycles
    become ``"[Circular]"`` (Node-RED's safe stringify does the same).
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict | list | tuple | set | frozenset):
        if id(value) in seen:
            on_fallback(value)
            return "[Circular]"
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                out: dict[str, Any] = {}
                for k, v in value.items():
                    if not isinstance(k, str | int | float | bool) and k is not None:
                        on_fallback(k)
                    out[k if isinstance(k, str) else str(k)] = _jsonable(v, on_fallback, seen)
                return out
            return [_jsonable(v, on_fallback, seen) for v in value]
        finally:
            seen.discard(id(value))
    on_fallback(value)
    return str(value)


class FileStore(DictStore):
    """Context store persisted as JSON files under ``directory``.

    Args:
        directory: root of the store; created at :meth:`open` if missing.
        flush_interval: seconds from the first unsaved change to the flush that
            writes it. ``0`` flushes on the next event-loop iteration. At most one
            flush timer is pending at any time.

    Memory: all context data is held in memory (as in Node-RED's cached mode),
    plus a 16-byte digest per scope of its last written content.
    """

    def __init__(self, directory: str | os.PathLike[str], flush_interval: float = 30.0) -> None:
        super().__init__()
        if (
            isinstance(flush_interval, bool)
            or not isinstance(flush_interval, int | float)
            or not math.isfinite(flush_interval)
            or flush_interval < 0
        ):
            raise ValueError(
                f"flush_interval must be a non-negative number of seconds, got {flush_interval!r}"
            )
        self.directory = FsPath(directory)
        self.flush_interval = float(flush_interval)
        self._state = _State.NEW
        self._dirty: set[str] = set()
        self._written: dict[str, bytes] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # Scopes whose unencodable values were already reported, so a value that
        # cannot be encoded warns once rather than at every flush.
        self._warned: set[str] = set()

    # -- DictStore hooks -------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state is not _State.OPEN:
            raise RuntimeError(
                f"file context store {str(self.directory)!r} is {self._state.value}; "
                "it is usable between open() and close()"
            )

    def _changed(self, scope: str) -> None:
        self._dirty.add(scope)
        self._schedule_flush()

    def set(self, scope: str, key: str, value: Any) -> bool:
        # Map the scope to its file now, so an unusable scope id fails at the
        # caller instead of at a later flush.
        scope_to_relpath(scope)
        return super().set(scope, key, value)

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Create the directory if needed and load every scope file into memory."""
        if self._state is _State.OPEN:
            return
        data, written = await asyncio.to_thread(self._load_all)
        self._data = data
        self._written = written
        self._dirty.clear()
        self._state = _State.OPEN

    async def flush(self) -> None:
        """Write every scope changed since the last flush, atomically."""
        self._cancel_timer()
        await self._write(all_scopes=False)

    async def close(self) -> None:
        """Cancel the flush timer and write everything not yet on disk."""
        if self._state is not _State.OPEN:
            return
        self._cancel_timer()
        task = self._flush_task
        if task is not None and not task.done():
            # Let a timer flush already running finish; the final write below
            # then sees the up-to-date state.
            with contextlib.suppress(Exception):
                await task
        await self._write(all_scopes=True)
        self._state = _State.CLOSED

    # -- flushing --------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if self._timer is not None:
            return  # one flush already pending: it will include this change
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Called from synchronous code outside the event loop: the change is
            # marked dirty and written by the next flush() or close().
            return
        self._timer = loop.call_later(self.flush_interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._flush_task = asyncio.get_running_loop().create_task(self._timed_flush())

    async def _timed_flush(self) -> None:
        try:
            await self._write(all_scopes=False)
        except Exception:  # a background task has nobody to raise to
            logger.exception("context flush to %s failed", self.directory)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _write(self, *, all_scopes: bool) -> None:
        async with self._lock:
            if all_scopes:
                scopes = set(self._data) | set(self._written) | self._dirty
            else:
                scopes = set(self._dirty)
            self._dirty.difference_update(scopes)
            # Encode on the event loop: the data may be mutated by nodes, so it
            # must not be read from another thread. Only file I/O is offloaded.
            writes: list[tuple[str, str | None]] = []
            for scope in sorted(scopes):
                if scope in self._data:
                    text = self._encode(scope, self._data[scope])
                    if self._written.get(scope) == _digest(text):
                        continue
                    writes.append((scope, text))
                elif scope in self._written:
                    writes.append((scope, None))  # scope deleted: remove its file
            if not writes:
                return
            failed = await asyncio.to_thread(self._write_files, writes)
            for scope, written in writes:
                if scope in failed:
                    self._dirty.add(scope)  # retried by the next flush
                elif written is None:
                    self._written.pop(scope, None)
                else:
                    self._written[scope] = _digest(written)
            if failed and self._state is _State.OPEN and not all_scopes:
                self._schedule_flush()

    def _encode(self, scope: str, data: dict[str, Any]) -> str:
        try:
            text = json.dumps(data, indent=4, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            bad: list[Any] = []
            text = json.dumps(_jsonable(data, bad.append, set()), indent=4, ensure_ascii=False)
            if scope not in self._warned:
                self._warned.add(scope)
                kinds = sorted({type(v).__name__ for v in bad})
                logger.warning(
                    "context scope %r holds values JSON cannot encode (%s: %s); "
                    "they are saved as strings",
                    scope,
                    ", ".join(kinds),
                    exc,
                )
        else:
            self._warned.discard(scope)
        return text + "\n"

    # -- file I/O (runs in a worker thread) --------------------------------------

    def _write_files(self, writes: list[tuple[str, str | None]]) -> builtins.set[str]:
        failed: set[str] = set()
        for scope, text in writes:
            path = self.directory / scope_to_relpath(scope)
            try:
                if text is None:
                    self._remove_file(path)
                else:
                    self._atomic_write(path, text)
            except OSError:
                logger.exception("could not write context scope %r to %s", scope, path)
                failed.add(scope)
        return failed

    @staticmethod
    def _atomic_write(path: FsPath, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + TMP_SUFFIX)
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(path.parent)

    @staticmethod
    def _remove_file(path: FsPath) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # Drop the flow directory once its last file is gone; fine if not empty.
        with contextlib.suppress(OSError):
            path.parent.rmdir()
        _fsync_dir(path.parent.parent)

    def _load_all(self) -> tuple[dict[str, dict[str, Any]], dict[str, bytes]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        data: dict[str, dict[str, Any]] = {}
        written: dict[str, bytes] = {}
        for sub in sorted(self.directory.iterdir()):
            if not sub.is_dir():
                continue
            for file in sorted(sub.iterdir()):
                if not file.is_file():
                    continue
                if file.name.endswith(".json" + TMP_SUFFIX):
                    # Left by a crash during a write; the target file is intact
                    # because the rename never happened.
                    with contextlib.suppress(OSError):
                        file.unlink()
                    continue
                scope = self._scope_for(sub.name, file)
                if scope is None:
                    continue
                loaded = self._load_file(file)
                if loaded is None:
                    continue
                text, value = loaded
                data[scope] = value
                written[scope] = _digest(text)
        return data, written

    def _scope_for(self, directory: str, file: FsPath) -> str | None:
        try:
            scope = relpath_to_scope(directory, file.name)
            if scope is None:
                return None
            # Only files this store would write itself are loaded, so that
            # every loaded scope is saved back to the same file.
            if self.directory / scope_to_relpath(scope) != file:
                raise ValueError("name is not in canonical form")
        except ValueError as exc:  # includes UnicodeDecodeError
            logger.warning("ignoring unexpected file in context store: %s (%s)", file, exc)
            return None
        return scope

    @staticmethod
    def _load_file(file: FsPath) -> tuple[str, dict[str, Any]] | None:
        try:
            text = file.read_text(encoding="utf-8")
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(f"top level is {type(value).__name__}, not an object")
        except (ValueError, UnicodeDecodeError) as exc:
            now_ms = time.time_ns() // 1_000_000
            stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now_ms / 1000))
            stamp += f".{now_ms % 1000:03d}"
            target = file.with_name(f"{file.name}.corrupt-{stamp}")
            try:
                os.replace(file, target)
            except OSError as move_exc:
                logger.error(
                    "corrupt context file %s (%s) could not be renamed: %s; it is ignored",
                    file,
                    exc,
                    move_exc,
                )
            else:
                logger.error(
                    "corrupt context file %s (%s) renamed to %s; that scope starts empty",
                    file,
                    exc,
                    target.name,
                )
            return None
        return text, value


def _fsync_dir(directory: FsPath) -> None:
    """Make a rename or unlink in ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
