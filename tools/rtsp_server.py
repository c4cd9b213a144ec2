#!/usr/bin/python3
"""A minimal RTSP server that streams one H.264 MP4 file (and its AAC audio), for tests and
benchmarks.

It runs with the *system* Python (``/usr/bin/python3``), because it needs GStreamer's RTSP server
through PyGObject, which come from Debian packages, not from PyPI::

    apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 \
        gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad

    /usr/bin/python3 tools/rtsp_server.py --file clip.mp4 [--host 127.0.0.1] [--port 0]
        [--mount /clip] [--audio]

Each client gets its own pipeline ``filesrc ! qtdemux ! h264parse config-interval=-1 !
rtph264pay`` (the file plays from its start for every client; ``config-interval=-1`` repeats
SPS/PPS before every key frame, so a client can start decoding at any IDR), and with
``--audio`` a second stream ``aacparse ! rtpmp4gpay`` of the file's AAC track. The file must
hold H.264 video (Baseline without B-frames plays best over RTP).

When the server listens it prints one line, ``rtsp server listening on rtsp://HOST:PORT/MOUNT``
(``--port 0`` picks a free port; read it from that line). It stops on SIGTERM or SIGINT.
``--check`` only verifies that GStreamer, the RTSP server library and the elements of the
pipeline are installed (exit status 0) and names what is missing otherwise (status 2).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

ELEMENTS = ("filesrc", "qtdemux", "h264parse", "rtph264pay", "aacparse", "rtpmp4gpay")
APT_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)


def _load():  # -> (Gst, GstRtspServer, GLib)
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        raise SystemExit(
            f"rtsp_server: {exc}; install the Debian packages {APT_PACKAGES}"
        ) from None
    Gst.init(None)
    missing = [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]
    if missing:
        print(
            f"rtsp_server: GStreamer elements missing: {', '.join(missing)}; install the Debian "
            f"packages {APT_PACKAGES}",
            file=sys.stderr,
        )
        sys.exit(2)
    return Gst, GstRtspServer, GLib


def _quote(path: Path) -> str:
    """``path`` as a gst-launch property value."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, help="the H.264 MP4 file to stream")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="listen port (0: a free one)")
    parser.add_argument("--mount", default="/stream", help="the stream's path (default /stream)")
    parser.add_argument("--audio", action="store_true", help="stream the file's AAC track too")
    parser.add_argument("--check", action="store_true", help="only check the installation")
    args = parser.parse_args(argv)

    _gst, rtsp, glib = _load()
    if args.check:
        print("rtsp_server: ok")
        return 0
    if args.file is None or not args.file.is_file():
        parser.error(f"--file must name an existing file (got {args.file})")
    mount = args.mount if args.mount.startswith("/") else "/" + args.mount

    server = rtsp.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = rtsp.RTSPMediaFactory()
    audio = " demux.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97" if args.audio else ""
    factory.set_launch(
        f"( filesrc location={_quote(args.file.resolve())} ! qtdemux name=demux "
        "demux.video_0 ! queue ! h264parse config-interval=-1 ! "
        f"rtph264pay name=pay0 pt=96 config-interval=-1{audio} )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1

    loop = glib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        glib.unix_signal_add(glib.PRIORITY_HIGH, sig, _quit, loop)
    print(
        f"rtsp server listening on rtsp://{args.host}:{server.get_bound_port()}{mount}",
        flush=True,
    )
    loop.run()
    return 0


def _quit(loop) -> bool:
    loop.quit()
    return False  # remove the signal source


if __name__ == "__main__":
    sys.exit(main())
