"""Media made by the browser tests with PyAV (aiortc-notes: nothing is downloaded).

Every file shows the same synthetic picture: a background whose brightness changes with the
frame number and a white bar that moves, so a viewer can tell moving pictures from one frame
repeated. H.264 is Baseline without B-frames and with short GOPs (aiortc-notes pitfall 5: a late
joiner of a pass-through stream waits for the next key frame); VP8 goes to WebM.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import av

WIDTH, HEIGHT, FPS = 640, 480, 30
GOP = 15  # frames between key frames: a viewer joining a pass-through stream waits < 0.5 s


def make_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> av.VideoFrame:
    """A yuv420p frame: brightness and a 16-pixel white bar move with ``index``."""
    background = (index * 5) % 180 + 40
    bar = (index * 8) % (width - 16)
    row = bytes([background]) * bar + b"\xff" * 16 + bytes([background]) * (width - bar - 16)
    frame = av.VideoFrame(width, height, "yuv420p")
    frame.planes[0].update(row * height)
    chroma = (width // 2) * (height // 2)
    frame.planes[1].update(bytes([100]) * chroma)
    frame.planes[2].update(bytes([150]) * chroma)
    return frame


def _video_stream(container: av.container.OutputContainer, codec: str) -> av.VideoStream:
    stream = container.add_stream("libx264" if codec == "h264" else "libvpx", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.codec_context.gop_size = GOP
    if codec == "h264":
        stream.codec_context.profile = "Baseline"
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
    else:
        stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
        stream.codec_context.bit_rate = 1_000_000
    return stream


def _encode(
    container: av.container.OutputContainer, stream: av.VideoStream, seconds: float
) -> None:
    for i in range(int(seconds * FPS)):
        frame = make_frame(i)
        frame.pts, frame.time_base = i, fractions.Fraction(1, FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_video_file(path: Path, codec: str = "h264", seconds: float = 8.0) -> Path:
    """``codec="h264"``: MP4 (or MPEG-TS for a ``.ts`` name); ``"vp8"``: WebM."""
    with av.open(str(path), "w") as container:
        _encode(container, _video_stream(container, codec), seconds)
    return path


def write_hls(directory: Path, seconds: float = 10.0, segment_seconds: int = 1) -> Path:
    """A VOD HLS playlist ``index.m3u8`` with MPEG-TS segments of H.264, written by FFmpeg's
    ``hls`` muxer through PyAV. Returns the playlist's path."""
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / "index.m3u8"
    options = {
        "hls_time": str(segment_seconds),
        "hls_playlist_type": "vod",
        "hls_segment_filename": str(directory / "segment%03d.ts"),
    }
    with av.open(str(playlist), "w", format="hls", options=options) as container:
        _encode(container, _video_stream(container, "h264"), seconds)
    return playlist
