"""``python -m flowengine.media`` / ``flowrun media-server``: run the media server.

With ``--workers N`` (default: the number of cores) above 1, or ``--remote URL``, this process
is a router (:mod:`flowengine.media.cluster`) in front of N worker processes of its own (each
``python -m flowengine.media --worker`` on 127.0.0.1, given the media options of this command
line) and of the remote Kurento servers; clients see one server. ``--workers 1`` without
``--remote`` is one process, the media server itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from flowengine.media.server import MediaServer
from flowengine.media.settings import MediaServerSettings, player_allow_from_env

ROUTER_ONLY = ("--host", "--port", "--workers", "--remote", "--viewers-per-worker",
               "--media-dir", "--ice-address")  # fmt: skip
"""Options of the router itself: the workers get every other one."""


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
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, metavar="N",
        help="media worker processes behind this server (default: the number of cores, "
        f"{os.cpu_count() or 1} here; 1: this process serves media itself)",
    )  # fmt: skip
    parser.add_argument(
        "--remote", action="append", dest="remotes", metavar="URL", default=[],
        help="also place pipelines on this Kurento server, ws://host:8888/kurento (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--viewers-per-worker", type=int, default=200, metavar="N",
        help="WebRTC endpoints a worker holds before the viewers of its sources go to other "
        "workers (default 200)",
    )  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="INFO")
    return parser


def worker_args(argv: list[str], settings: MediaServerSettings) -> list[str]:
    """The command line of the router's workers: this one's options but the router's own,
    and the ICE addresses this server offers (the workers listen on 127.0.0.1)."""
    router = argparse.ArgumentParser(add_help=False)
    for option in ROUTER_ONLY:
        router.add_argument(option, action="append")
    _, rest = router.parse_known_args(argv)
    addresses = settings.ice_addresses
    if addresses is None:  # every interface, as aioice would offer them
        from aioice.ice import get_host_addresses

        addresses = get_host_addresses(use_ipv4=True, use_ipv6=True)
    return [*rest, *(arg for ip in addresses for arg in ("--ice-address", ip))]


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


def build_server(args: argparse.Namespace, argv: list[str]) -> MediaServer:
    """The server the arguments describe: one process, a worker, or a router."""
    settings = settings_from_args(args)
    if args.worker or (args.workers <= 1 and not args.remotes):
        server = MediaServer(settings)
        if args.worker:
            from flowengine.media.cluster import relay

            relay.install(server)
        return server
    from flowengine.media.cluster.front import cluster_server

    return cluster_server(
        settings,
        workers=max(0, args.workers),
        remotes=args.remotes,
        worker_args=worker_args(argv, settings),
        viewers_per_worker=args.viewers_per_worker,
    )


async def _serve(args: argparse.Namespace, argv: list[str]) -> None:
    server = build_server(args, argv)
    try:
        await server.start()
    except BaseException:
        await server.stop()
        raise
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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_serve(args, argv))
    except OSError as exc:
        print(f"media server: {exc}")
        return 1
    return 0
