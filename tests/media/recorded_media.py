"""Reading a recorded file as a user would, while it is written and after: PyAV decodes it."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import av


def decode_file(path: Path) -> dict[str, Any]:
    """Decode a (possibly growing) file: frames per kind, the end of each track in seconds,
    the video sizes and the codec of each track. A file being written may end in the middle of
    a cluster or fragment: decoding stops there."""
    found: dict[str, Any] = {"video": 0, "audio": 0, "video_end": 0.0, "audio_end": 0.0,
                             "sizes": set(), "codecs": {}}
    with av.open(str(path)) as container:
        for stream in container.streams:
            found["codecs"][stream.type] = stream.codec_context.name
        try:
            for frame in container.decode(*container.streams):
                kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
                found[kind] += 1
                if frame.pts is not None and frame.time_base is not None:
                    end = float(frame.pts * frame.time_base)
                    found[f"{kind}_end"] = max(found[f"{kind}_end"], end)
                if kind == "video":
                    found["sizes"].add((frame.width, frame.height))
        except (av.FFmpegError, EOFError):
            pass  # the incomplete end of a growing file
    return found


def snapshot(path: Path, folder: Path) -> Path:
    """A copy of the file as it is now (what a reader opening it now would see)."""
    copy = folder / f"snapshot-{time.monotonic_ns()}{path.suffix}"
    shutil.copyfile(path, copy)
    return copy


def duration(path: Path) -> float:
    """The container's duration in seconds (0 when unknown)."""
    with av.open(str(path)) as container:
        return container.duration / 1_000_000 if container.duration else 0.0


async def check_growing(path: Path, folder: Path, started: float,
                        at: tuple[float, ...] = (2.5, 4.5), slack: float = 2.0) -> None:
    """At each of ``at`` seconds after ``started`` (``time.monotonic()``), the file as it is
    then decodes to video and audio up to ``slack`` seconds before (a loaded machine's slack
    over the recorder's 1 s)."""
    for wait in at:
        await asyncio.sleep(max(0.0, started + wait - time.monotonic()))
        elapsed = time.monotonic() - started
        seen = decode_file(snapshot(path, folder))
        assert seen["video"] > 0 and seen["video_end"] > elapsed - slack, (elapsed, seen)
        assert seen["audio"] > 0 and seen["audio_end"] > elapsed - slack, (elapsed, seen)
