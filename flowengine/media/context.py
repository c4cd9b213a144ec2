"""What every media object can reach: the registry, the settings and shared media resources."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flowengine.media.sessions import MediaSet
from flowengine.media.settings import MediaServerSettings

T = TypeVar("T")


@dataclass
class ServerContext:
    """Shared by all objects of one server.

    ``blocking`` is the executor for work that may block (opening media with PyAV, finishing a
    recording): a bounded pool, so a burst of slow RTSP opens cannot start unbounded threads.
    """

    settings: MediaServerSettings
    media_set: MediaSet
    blocking: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="media-io")
    )

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the blocking pool without holding the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.blocking, fn, *args)
