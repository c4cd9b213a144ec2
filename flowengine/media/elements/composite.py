"""``Composite``: mixes the video of its ports' inputs into one grid and their audio into one
mix; every port sends the grid, and the audio of every input but its own (KMS's
``compositemixer``; layout and mix in :mod:`~flowengine.media.engine.mixer`).

Cost: each input is decoded once in its source's hub (whoever else reads it), one
:class:`~flowengine.media.engine.mixer.CompositeMixer` thread composes and mixes, the grid is one
hub shared by every port (so it is encoded once per format, whatever the number of viewers), and
each port's audio mix is a hub of its own (KMS too has an encoder per port for audio).

Constructor: ``width`` x ``height`` (default 800 x 600) at ``framerate`` (default 15) frames per
second, KMS's defaults; 0 or less means the default, as in KMS. Larger than
``MAX_WIDTH`` x ``MAX_HEIGHT`` or faster than ``MAX_FRAMERATE`` is refused (40107): the canvas is
memory and CPU for every frame.

Data: what reaches any port's DATA input goes out of every port's DATA output (KMS: a funnel
into a tee).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from flowengine.kurento import model
from flowengine.kurento.errors import MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, KurentoError
from flowengine.media.elements.hub import HubImpl, HubPortImpl
from flowengine.media.engine.hub import HubReader, MediaHub, ReaderClosed
from flowengine.media.engine.mixer import CompositeMixer
from flowengine.media.engine.units import RAW

MAX_WIDTH, MAX_HEIGHT, MAX_FRAMERATE = 3840, 2160, 60
DEFAULTS = {"width": 800, "height": 600, "framerate": 15}
LIMITS = {"width": MAX_WIDTH, "height": MAX_HEIGHT, "framerate": MAX_FRAMERATE}


class CompositeImpl(HubImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["Composite"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        size: dict[str, int] = {}
        for name, default in DEFAULTS.items():
            value = self.params.get(name) or 0
            if value > LIMITS[name]:
                raise KurentoError(
                    MEDIA_OBJECT_ILLEGAL_PARAM_ERROR,
                    f"Composite {name} {value} is over this server's limit {LIMITS[name]}",
                )
            size[name] = value if value > 0 else default
        self.width, self.height, self.framerate = size["width"], size["height"], size["framerate"]
        short = self.id.rsplit("/", 1)[-1][:8]
        self.video = self.new_hub("video", short)
        self.audio: dict[HubPortImpl, MediaHub] = {}
        self.mixer: CompositeMixer | None = None
        self._readers: dict[tuple[HubPortImpl, str], asyncio.Task[None]] = {}

    def _mixer(self) -> CompositeMixer:
        """The mixer, started with the first port (as KMS builds its mixer)."""
        if self.mixer is None:
            self.mixer = CompositeMixer(
                self.width, self.height, self.framerate, asyncio.get_running_loop(),
                self.video.push, name=self.video.name,
            )  # fmt: skip
        return self.mixer

    def add_port(self, port: HubPortImpl) -> int:
        number = super().add_port(port)
        mixer = self._mixer()
        mixer.add_input(port, number)
        hub = self.audio[port] = self.new_hub("audio", f"{self.video.name}-{number}")
        mixer.set_audio_output(port, hub.push)
        return number

    def remove_port(self, port: HubPortImpl) -> None:
        super().remove_port(port)
        for kind in ("audio", "video"):
            self._stop_reading(port, kind)
        if self.mixer is not None:
            self.mixer.remove_input(port)
            self.mixer.set_audio_output(port, None)
        hub = self.audio.pop(port, None)
        if hub is not None:
            hub.close()

    def port_output(self, port: HubPortImpl, kind: str) -> MediaHub | None:
        return self.video if kind == "video" else self.audio.get(port)

    def port_input_changed(self, port: HubPortImpl, kind: str, hub: MediaHub | None) -> None:
        if port not in self.ports or self.mixer is None:
            return
        self._stop_reading(port, kind)
        if kind == "video":
            self.mixer.clear_video(port)  # its tile goes until the new input sends a picture
        else:
            self.mixer.set_audio_connected(port, hub is not None)
        if hub is not None:
            reader = hub.subscribe(RAW)
            self._readers[(port, kind)] = asyncio.ensure_future(self._read(port, kind, reader))

    def _stop_reading(self, port: HubPortImpl, kind: str) -> None:
        task = self._readers.pop((port, kind), None)
        if task is not None:
            task.cancel()

    async def _read(self, port: HubPortImpl, kind: str, reader: HubReader) -> None:
        mixer = self._mixer()
        put = mixer.put_video if kind == "video" else mixer.put_audio
        try:
            while True:
                put(port, await reader.get())
        except ReaderClosed:
            return
        finally:
            reader.close()

    def port_data(self, port: HubPortImpl, message: str | bytes) -> None:
        for each in list(self.ports):
            each.push_data(message)

    async def release(self) -> None:
        for task in self._readers.values():
            task.cancel()
        self._readers.clear()
        if self.mixer is not None:
            self.mixer.close()
        self.video.close()
        for hub in self.audio.values():
            hub.close()
        await super().release()
