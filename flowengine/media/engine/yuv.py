"""yuv420p pictures as numpy arrays (PyAV's ``to_ndarray``/``from_ndarray`` layout)."""

from __future__ import annotations

import numpy as np

BLACK = (16, 128, 128)
"""Y, U, V of black (limited range, as GStreamer's compositor background)."""


def yuv_planes(data: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Views of the Y, U and V planes of a yuv420p array (even width and height): the Y plane
    first, then U and V, each unpadded, as PyAV lays them out."""
    flat = data.reshape(-1)
    luma, chroma = width * height, (width // 2) * (height // 2)
    return (
        flat[:luma].reshape(height, width),
        flat[luma : luma + chroma].reshape(height // 2, width // 2),
        flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2),
    )
