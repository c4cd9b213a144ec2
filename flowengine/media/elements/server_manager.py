"""``manager_ServerManager``: the singleton kurento-client asks for on every connection.

``getInfo`` must list the modules ``core``, ``elements`` and ``filters`` or kurento-client-js
refuses to connect (docs/reference/kurento-protocol.md 7.1); their factories
are what this server can create.
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.kurento.errors import SERVER_MANAGER_ERROR_KMD_NOT_FOUND, KurentoError
from flowengine.kurento.jsonrpc import complex_value
from flowengine.media.elements.media_object import MediaObjectImpl

GENERATION_TIME = "Jan  1 2025 00:00:00"


class ServerManagerImpl(MediaObjectImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["ServerManager"]

    def __init__(self, ctx: Any):
        super().__init__(ctx, object_id=model.SERVER_MANAGER_ID)
        self._cpu_mark = (time.monotonic(), time.process_time())

    def get_info(self) -> dict[str, Any]:
        modules = [
            complex_value(
                "ModuleInfo",
                {
                    "version": model.MODULE_VERSION,
                    "name": name,
                    "generationTime": GENERATION_TIME,
                    "factories": list(factories),
                },
            )
            for name, factories in model.FACTORIES.items()
        ]
        return complex_value(
            "ServerInfo",
            {
                "version": model.MODULE_VERSION,
                "modules": modules,
                "type": "KMS",
                "capabilities": ["transactions"],
            },
        )

    def get_pipelines(self) -> list[str]:
        return self.ctx.media_set.pipelines()

    def get_sessions(self) -> list[str]:
        return list(self.ctx.media_set.sessions)

    def get_metadata(self) -> str:
        return json.dumps(
            {"server": "flowengine.media", "mediaDir": str(self.ctx.settings.media_dir)}
        )

    def get_kmd(self, module_name: str) -> str:
        if module_name not in model.FACTORIES:
            raise KurentoError(SERVER_MANAGER_ERROR_KMD_NOT_FOUND, f"Kmd '{module_name}' not found")
        classes = [
            {"name": c.name, "extends": c.extends, "abstract": c.abstract}
            for c in model.CLASSES.values()
        ]
        return json.dumps(
            {"name": module_name, "version": model.MODULE_VERSION, "remoteClasses": classes}
        )

    def get_cpu_count(self) -> int:
        return os.cpu_count() or 1

    async def get_used_cpu(self, interval: int) -> float:
        """Percent of one CPU used by this process over ``interval`` ms (capped at 10 s)."""
        import asyncio

        wall0, cpu0 = time.monotonic(), time.process_time()
        await asyncio.sleep(max(0, min(interval, 10_000)) / 1000)
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        return round(100.0 * cpu / wall, 2) if wall > 0 else 0.0

    def get_used_memory(self) -> int:
        """Resident memory in KiB (peak RSS where the current value is unavailable)."""
        try:
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, ValueError, IndexError):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def release(self) -> None:
        """The singleton is never released."""
