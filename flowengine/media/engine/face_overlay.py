"""Face detection and image overlay for ``FaceOverlayFilter``, as KMS's ``kmsfaceoverlay``.

Detection (KMS's ``kmsfacedetector``): OpenCV's Haar cascade ``haarcascade_frontalface_default``
(the copy bundled with ``opencv-python-headless``) on the picture scaled to at most 320 pixels
wide, ``detectMultiScale(scale 1.2, 3 neighbours, Canny pruning)``, faces between 1/20 and 1/2 of
the scaled picture. It runs on the luma plane: the cascade works on grey levels anyway, and the
frame need not be converted for frames without a face.

Overlay (KMS's ``kmsimageoverlay``): for each face ``(x, y, w, h)``, the image is scaled to
``(w * widthPercent, h * heightPercent)`` and drawn with its top-left corner at
``(x + w * offsetXPercent, y + h * offsetYPercent)``, clipped to the picture; a 4-channel image
is blended by its alpha, a 3-channel one replaces the pixels, a grey one is drawn grey. The
"percent" parameters are ratios (1.0 = the face's size), as Kurento's documentation notes.
A width or height ratio of 0 draws nothing. The drawing is done on the YUV planes, only over
the face: the frame is never converted to RGB as a whole.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import av
import cv2
import numpy as np

from flowengine.media.engine.yuv import yuv_planes

MAX_DETECTION_WIDTH = 320
DETECTION_INTERVAL = 1 / 15
DETECTION_SHARE = 3
"""A detection starts at least ``DETECTION_INTERVAL`` seconds and ``DETECTION_SHARE`` times its
own duration after the previous one; frames in between reuse the last faces (KMS reuses them
when it falls behind). This bounds a filter's CPU whatever the input's frame rate and the
machine's speed (detection: about a third of a core at most), while every frame still gets its
overlay."""
CASCADE_FILE = "haarcascade_frontalface_default.xml"

cv2.setNumThreads(1)  # each filter has its own thread; OpenCV's pool would oversubscribe


def decode_image(data: bytes) -> np.ndarray | None:
    """The image in ``data`` (PNG, JPEG, ...) as OpenCV reads it, alpha kept; ``None`` when
    ``data`` is not an image OpenCV can read."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    if image.dtype != np.uint8:  # 16-bit PNGs
        image = (image / 257).astype(np.uint8)
    return image


@dataclass(frozen=True)
class Overlay:
    """The image to draw and its placement relative to each face (ratios of the face's size)."""

    image: np.ndarray
    offset_x: float
    offset_y: float
    width: float
    height: float


class FaceOverlayer:
    """Detects faces in a frame and draws the current :class:`Overlay` over each."""

    def __init__(self) -> None:
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE_FILE} could not be loaded")
        self._overlay: Overlay | None = None
        self._lock = threading.Lock()
        self.faces: list[tuple[int, int, int, int]] = []
        """The faces found by the last detection, in pixels of the frame."""
        self.detections = 0
        self._next_detection = 0.0

    def set_overlay(self, overlay: Overlay | None) -> None:
        with self._lock:
            self._overlay = overlay

    def detect(self, frame: av.VideoFrame) -> list[tuple[int, int, int, int]]:
        if frame.format.name not in ("yuv420p", "yuvj420p"):
            frame = frame.reformat(format="yuv420p")
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        luma = rows[: frame.height, : frame.width]
        width = min(frame.width, MAX_DETECTION_WIDTH)
        factor = frame.width / width
        small = cv2.resize(luma, (width, max(1, int(frame.height / factor))))
        rows, cols = small.shape
        found = self.cascade.detectMultiScale(
            small, 1.2, 3, cv2.CASCADE_DO_CANNY_PRUNING,
            minSize=(cols // 20, rows // 20), maxSize=(cols // 2, rows // 2),
        )  # fmt: skip
        return [tuple(int(v * factor) for v in face) for face in found]  # type: ignore[misc]

    def process(self, frame: av.VideoFrame) -> av.VideoFrame:
        """The frame with the overlay drawn over every face: a new frame in any case (the
        input is shared with other readers)."""
        with self._lock:
            overlay = self._overlay
        started = time.monotonic()
        if started >= self._next_detection:
            self.faces = self.detect(frame)
            took = time.monotonic() - started
            self._next_detection = started + max(DETECTION_INTERVAL, took * DETECTION_SHARE)
            self.detections += 1
        width, height = frame.width & ~1, frame.height & ~1
        if (width, height) != (frame.width, frame.height) or frame.format.name != "yuv420p":
            data = frame.reformat(width, height, "yuv420p").to_ndarray()
        else:
            data = frame.to_ndarray()
        if overlay is not None and overlay.width > 0 and overlay.height > 0:
            planes = yuv_planes(data, width, height)
            for face in self.faces:
                _draw(planes, overlay, face)
        out = av.VideoFrame.from_ndarray(data, format="yuv420p")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out


def _draw(planes: tuple[np.ndarray, ...], overlay: Overlay, face: tuple[int, ...]) -> None:
    """Blend the overlay into the Y, U, V planes over one face (even, clipped rectangle)."""
    x, y, w, h = face
    left, top = int(x + w * overlay.offset_x) & ~1, int(y + h * overlay.offset_y) & ~1
    width, height = int(w * overlay.width) & ~1, int(h * overlay.height) & ~1
    rows, cols = planes[0].shape
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + width, cols & ~1), min(top + height, rows & ~1)
    if width <= 0 or height <= 0 or x0 >= x1 or y0 >= y1:
        return
    image = cv2.resize(overlay.image, (width, height))
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    part = image[y0 - top : y1 - top, x0 - left : x1 - left]
    if part.shape[2] == 4:
        alpha = part[..., 3].astype(np.float32) / 255.0
        part = np.ascontiguousarray(part[..., :3])
    else:
        alpha = np.ones(part.shape[:2], np.float32)
    yuv = av.VideoFrame.from_ndarray(part, format="bgr24").reformat(format="yuv420p")
    sources = yuv_planes(yuv.to_ndarray(), x1 - x0, y1 - y0)
    for source, target, div in zip(sources, planes, (1, 2, 2), strict=True):
        region = target[y0 // div : y1 // div, x0 // div : x1 // div]
        weight = alpha[::div, ::div]
        region[:] = (source * weight + region * (1.0 - weight)).astype(np.uint8)
