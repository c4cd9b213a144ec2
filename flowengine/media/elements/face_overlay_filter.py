"""``FaceOverlayFilter``: draws an image over every face found in the video (the magic-mirror
tutorial's filter); detection and drawing in :mod:`~flowengine.media.engine.face_overlay`.

``setOverlayedImage(uri, offsetXPercent, offsetYPercent, widthPercent, heightPercent)`` loads the
image (PNG with alpha, JPEG, anything OpenCV reads) from:

* ``http://`` or ``https://`` (the tutorials serve it from their web server), at most
  ``MAX_IMAGE_BYTES`` within ``FETCH_TIMEOUT`` seconds, from the hosts players may contact
  (``MediaServerSettings.player_hosts``);
* a local path or ``file://`` URI, under the same rule as players' (inside the media directory
  unless ``player_files_anywhere``; relative paths inside it).

The call answers once the image is loaded. As in KMS, an image that cannot be loaded (no such
file, an HTTP error, not an image) does not fail the call: the filter then overlays nothing
(the previous image is dropped too). Unlike KMS, which only logs it, the filter also raises an
``Error`` event (``URI_PATH_FILE_NOT_FOUND``, code 40600) saying why. A negative width or
height ratio, which Kurento's documentation forbids, is refused with 40107.
``unsetOverlayedImage()`` stops overlaying.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from flowengine.kurento import model
from flowengine.kurento.errors import (
    MEDIA_OBJECT_ILLEGAL_PARAM_ERROR,
    URI_PATH_FILE_NOT_FOUND,
    KurentoError,
    error_type_for,
)
from flowengine.media.elements.filter import FilterImpl
from flowengine.media.elements.uri_endpoint import file_path, inside
from flowengine.media.engine.face_overlay import FaceOverlayer, Overlay, decode_image

MAX_IMAGE_BYTES = 8 * 1024 * 1024
FETCH_TIMEOUT = 10.0


class ImageUnavailable(Exception):
    """Why an overlay image could not be loaded."""


class FaceOverlayFilterImpl(FilterImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["FaceOverlayFilter"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.overlayer: FaceOverlayer | None = None

    async def start(self) -> None:
        # Loading the cascade reads a 900 KB XML file: not on the event loop.
        self.overlayer = await self.ctx.run_blocking(FaceOverlayer)

    def process(self, frame: Any) -> Any:
        assert self.overlayer is not None
        return self.overlayer.process(frame)

    async def set_overlayed_image(
        self,
        uri: str,
        offset_x_percent: float,
        offset_y_percent: float,
        width_percent: float,
        height_percent: float,
    ) -> None:
        if width_percent < 0 or height_percent < 0:
            raise KurentoError(
                MEDIA_OBJECT_ILLEGAL_PARAM_ERROR,
                "widthPercent and heightPercent must not be negative",
            )
        assert self.overlayer is not None
        self.overlayer.set_overlay(None)
        try:
            data = await self._load(uri)
            image = await self.ctx.run_blocking(decode_image, data)
            if image is None:
                raise ImageUnavailable(f"'{uri}' is not an image")
        except ImageUnavailable as exc:
            self.emit_error(
                f"Overlay image not loaded: {exc}",
                URI_PATH_FILE_NOT_FOUND,
                error_type_for(URI_PATH_FILE_NOT_FOUND) or "",
            )
            return
        self.overlayer.set_overlay(
            Overlay(image, offset_x_percent, offset_y_percent, width_percent, height_percent)
        )

    def unset_overlayed_image(self) -> None:
        if self.overlayer is not None:
            self.overlayer.set_overlay(None)

    async def _load(self, uri: str) -> bytes:
        settings = self.ctx.settings
        parts = urlsplit(uri)
        scheme = parts.scheme or "file"
        if scheme in ("http", "https"):
            if settings.player_hosts is not None and parts.hostname not in settings.player_hosts:
                raise ImageUnavailable(f"host '{parts.hostname}' is not allowed")
            return await _fetch(uri)
        if scheme != "file":
            raise ImageUnavailable(f"unsupported URI scheme '{scheme}'")
        try:
            path = file_path(uri, settings)
        except KurentoError as exc:
            raise ImageUnavailable(exc.message) from None
        if not settings.player_files_anywhere and not inside(path, settings.media_dir):
            raise ImageUnavailable(f"'{uri}' is outside the media directory")
        return await self.ctx.run_blocking(_read_file, path)


async def _fetch(uri: str) -> bytes:
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(uri) as resp:
            if resp.status != 200:
                raise ImageUnavailable(f"HTTP {resp.status} for '{uri}'")
            data = await resp.content.read(MAX_IMAGE_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ImageUnavailable(f"'{uri}' could not be fetched ({reason})") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageUnavailable(f"'{uri}' is larger than {MAX_IMAGE_BYTES} bytes")
    return data


def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise ImageUnavailable(f"'{path}' cannot be read ({exc.strerror})") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageUnavailable(f"'{path}' is larger than {MAX_IMAGE_BYTES} bytes")
    return data
