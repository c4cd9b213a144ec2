"""``python -m flowengine.media`` / ``flowrun media-server``: run the media server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from flowengine.media.server import MediaServer
from flowengine.media.settings import MediaServerSettings, player_allow_from_env


def build_parser(prog: str = "flowrun media-server") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Kurento-protocol media server (WebRTC, players, recorders)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8888, help="listen port (0: a free one)")
    parser.add_argument(
        "--media-dir", type=Path, default=Path("media"), help="where recorders write"
    )
    parser.add_argument(
        "--gc-time", type=float, default=240.0,
        help="seconds a disconnected session's objects survive (default 240)",
    )  # fmt: skip
    parser.add_argument(
        "--ice-address", action="append", dest="ice_addresses", metavar="IP",
        help="offer ICE host candidates on this address (repeatable; default: the --host "
        "address when it is a loopback one, else every interface)",
    )  # fmt: skip
    parser.add_argument(
        "--player-host", action="append", dest="player_hosts", metavar="HOST",
        help="allow players to contact only these hosts (repeatable; default: any)",
    )  # fmt: skip
    parser.add_argument(
        "--player-allow", action="append", dest="player_allow", metavar="ADDRESS",
        help="let players reach this internal IP address, network (10.0.0.0/8) or host name "
        "(repeatable; default: $FLOWENGINE_PLAYER_ALLOW, else only public addresses)",
    )  # fmt: skip
    parser.add_argument(
        "--player-files-anywhere", action="store_true",
        help="let file:// players read outside the media directory",
    )  # fmt: skip
    parser.add_argument("--log-level", default="INFO")
    return parser


def settings_from_args(args: argparse.Namespace) -> MediaServerSettings:
    return MediaServerSettings(
        host=args.host,
        port=args.port,
        media_dir=args.media_dir,
        gc_time=args.gc_time,
        ice_addresses=args.ice_addresses,
        player_hosts=tuple(args.player_hosts) if args.player_hosts else None,
        player_allow=(tuple(args.player_allow) if args.player_allow
                      else player_allow_from_env()),
        player_files_anywhere=args.player_files_anywhere,
    )


async def _serve(settings: MediaServerSettings) -> None:
    server = MediaServer(settings)
    await server.start()
    # The line a parent process waits for (the kurento-server node reads the port from it).
    print(f"media server listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM. Returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_serve(settings_from_args(args)))
    except OSError as exc:
        print(f"media server: {exc}")
        return 1
    return 0
