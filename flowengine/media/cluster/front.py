"""The router as a media server: ``flowrun media-server --workers N [--remote URL ...]``.

:class:`ClusterServer` is a :class:`~flowengine.media.server.MediaServer` whose dispatcher and
registry are a :class:`~.router.Router`: the same WebSocket front (paths, frame limits,
per-client queues, shutdown), with the requests going to the backends. ``start()`` starts the
workers (in parallel) and connects to the remote servers; ``stop()`` closes the clients,
releases what the router created on remote servers and stops the workers (each finishes its
recordings and releases its objects, as a single server does). The port opens once the
workers answer, so a client that finds it open finds a working server.
"""

from __future__ import annotations

from pathlib import Path

from flowengine.media.cluster.backends import Backend, RemoteBackend, WorkerBackend
from flowengine.media.cluster.router import Router
from flowengine.media.elements.media_pipeline import MediaPipelineImpl
from flowengine.media.server import MediaServer
from flowengine.media.settings import MediaServerSettings

HEALTH_INTERVAL = 1.0
"""Seconds between two pings of each backend."""
HEALTH_TIMEOUT = 5.0
"""Seconds a backend may take to answer a ping before it counts as hung (a worker is killed)."""


class ClusterServer(MediaServer):
    """See the module docstring."""

    def __init__(self, settings: MediaServerSettings, router: Router):
        # The base server's own registry and dispatcher are replaced by the router's.
        super().__init__(settings, factories={"MediaPipeline": MediaPipelineImpl})
        self.router = router
        self.dispatcher = router  # type: ignore[assignment]
        self.media_set = router  # type: ignore[assignment]

    async def start(self) -> None:
        # The backends first: a client that finds the port open finds a working server.
        await self.router.start()
        await super().start()

    async def stop(self) -> None:
        await super().stop()  # the clients and the port first: none comes back meanwhile
        await self.router.stop()


def cluster_server(
    settings: MediaServerSettings,
    *,
    workers: int,
    remotes: list[str],
    worker_args: list[str],
    viewers_per_worker: int,
    health_interval: float = HEALTH_INTERVAL,
    health_timeout: float = HEALTH_TIMEOUT,
) -> ClusterServer:
    """A router over ``workers`` worker processes (started with ``worker_args``, writing to
    the settings' media directory) and the Kurento servers at ``remotes``."""
    timing = {"health_interval": health_interval, "health_timeout": health_timeout}
    backends: list[Backend] = [
        WorkerBackend(i + 1, Path(settings.media_dir), worker_args, **timing)
        for i in range(workers)
    ]
    backends += [RemoteBackend(url, **timing) for url in remotes]
    router = Router(
        backends,
        gc_time=settings.gc_time,
        viewers_per_worker=viewers_per_worker,
        request_cache_ttl=settings.request_cache_ttl,
        request_cache_size=settings.request_cache_size,
    )
    return ClusterServer(settings, router)
