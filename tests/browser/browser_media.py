"""Media made by the browser tests with PyAV
(docs/reference/aiortc-notes.md: nothing is downloaded).

The synthetic picture and the encoders are the media tests' (``tests/media/media_synthetic.py``),
at a browser-sized 640x480/30: H.264 Baseline without B-frames, VP8 in WebM; short GOPs by
default, or real-world ones (``gop``: a key frame every 4 or 10 s, or a single one) with AAC
(or Opus in WebM) audio.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "media"))
import media_synthetic

WIDTH, HEIGHT, FPS = 640, 480, 30
GOP = 15  # frames between key frames by default (0.5 s)
SINGLE_KEYFRAME = media_synthetic.SINGLE_KEYFRAME


def write_video_file(path: Path, codec: str = "h264", seconds: float = 8.0, *,
                     gop: int | None = GOP, audio: bool = False) -> Path:
    """``codec="h264"``: MP4 (or MPEG-TS for a ``.ts`` name); ``"vp8"``: WebM."""
    return media_synthetic.write_video_file(path, codec, seconds, FPS, size=(WIDTH, HEIGHT),
                                            gop=gop, audio=audio)


def write_hls(directory: Path, seconds: float = 10.0, segment_seconds: int = 1, *,
              gop: int | None = GOP, audio: bool = False) -> Path:
    """A VOD HLS playlist ``index.m3u8`` with MPEG-TS segments of H.264 (and AAC)."""
    return media_synthetic.write_hls(directory, seconds, segment_seconds, fps=FPS,
                                     size=(WIDTH, HEIGHT), gop=gop, audio=audio)
