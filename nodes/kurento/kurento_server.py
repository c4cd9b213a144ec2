"""``kurento-server``: a Kurento-protocol media server for ``kurento-client`` nodes (a config node).

``url: embedded`` (the default, also an empty url) runs our media server
(:mod:`flowengine.media`) as a child process on 127.0.0.1 at a free port: started in
``on_start``, ready once it answers ``ping``, stopped (SIGTERM, then SIGKILL) in ``on_close``, and
started again by the next :meth:`KurentoServerNode.client` call if it died meanwhile; with
``workers`` above 1 (default: one per core) it is a router in front of that many worker
processes (:mod:`flowengine.media.cluster`). Any other url is a ``ws://`` or ``wss://`` address
of a Kurento Media Server (``ws://host:8888/kurento``). Several of them (``embedded`` among them
or not) make the embedded child a router over all of them, which places each new pipeline on the
least loaded. Either way the flows speak the Kurento protocol over a real socket, to one
server.

The runtime holds one :class:`~flowengine.kurento.KurentoClient` per URL (one embedded server
per media directory), shared by every ``kurento-server`` node naming it; the first node to start
decides the options, the last one to close closes the client and stops the embedded server.

Public API for node types (:class:`flowengine.config_nodes.KurentoServer`):
``await server.client()`` (the connected client; raises
:class:`~flowengine.kurento.KurentoConnectionError` naming the URL), :attr:`url`,
:attr:`shared_status` (a node attached to it shows the connection state as its status).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import textwrap
from pathlib import Path
from typing import Any

from flowengine import ConfigError, Node
from flowengine import schema as s
from flowengine.kurento import (
    ClientEvent,
    ClientState,
    EmbeddedMediaServer,
    KurentoClient,
    KurentoConnectionError,
)
from flowengine.shared_status import SharedStatus, shorten

EMBEDDED = "embedded"
SHARED_KEY = "kurento-server"
REVIVE_DELAY = 0.5  # seconds between a dropped socket and checking the embedded child


class KurentoServerNode(Node):
    type = "kurento-server"
    category = "kurento"
    is_config = True
    inputs = 0
    outputs = 0
    description = ("A Kurento media server for kurento-client nodes: a `ws://host:8888/kurento` "
                   "URL of a Kurento Media Server, or `embedded` (the default) to run the "
                   "built-in media server as a child process on 127.0.0.1 for as long as the "
                   "flows run (a worker process per core behind it), or several of these: each "
                   "new pipeline then goes to the least loaded. Holds one client per URL for the "
                   "whole runtime, which pings the server, reconnects after a dropped socket "
                   "and recovers its session; its status (and that of its kurento-client "
                   "nodes) shows whether it is connected.")
    example = textwrap.dedent("""\
        kms:                  # the built-in media server, recordings under ./media
          type: kurento-server
          url: embedded
          media_dir: media
        remote-kms:           # a Kurento Media Server elsewhere
          type: kurento-server
          url: ws://10.0.0.5:8888/kurento
          ping_interval: 20s
        media-farm:           # two worker processes here and two Kurento Media Servers
          type: kurento-server
          url: embedded ws://10.0.0.5:8888/kurento ws://10.0.0.6:8888/kurento
          workers: 2
        """)
    schema = s.obj({
        "url": s.string(EMBEDDED, "`ws://host:8888/kurento` (or `wss://`) of a Kurento Media "
                        "Server, or `embedded` (also an empty value): run the built-in media "
                        "server as a child process on 127.0.0.1 at a free port. Several of "
                        "them, separated by spaces or commas: the embedded server runs as a "
                        "router in front of them all (and of its workers, when `embedded` is "
                        "one of them) and places each new pipeline on the least loaded (by "
                        "what each Kurento server reports of its CPU); a viewer's endpoint "
                        "goes into its pipeline's server, and a server that goes away ends only "
                        "the pipelines it held."),
        "workers": s.integer(0, "Embedded only: media worker processes behind the embedded "
                             "server (0: one per core; 1: the server is one process).",
                             minimum=0, maximum=256),
        "media_dir": s.folder("media", "Embedded only: where recorders may write and "
                              "`file://` players read."),
        "port": s.integer(0, "Embedded only: the TCP port on 127.0.0.1; 0 picks a free one.",
                          minimum=0, maximum=65535),
        "timeout": s.duration("20s", "How long a request (and opening the socket) may take."),
        "ping_interval": s.duration("30s", "Keepalive period; a ping without answer drops the "
                                    "socket and reconnects. 0 disables it."),
        "reconnect_timeout": s.duration("60s", "How long to keep trying to reconnect after the "
                                        "socket dropped; afterwards the next message connects "
                                        "anew."),
        "start_timeout": s.duration("30s", "Embedded only: how long the server may take to "
                                    "answer its first ping."),
        "player_allow": s.string("", "Embedded only: internal sources players may reach after "
                                 "all, separated by commas or spaces: IP addresses, networks "
                                 "(`10.0.0.0/8`) or host names. Players are otherwise refused "
                                 "http(s)/rtsp(s) URLs whose host is (or resolves to) a "
                                 "loopback, private or link-local address. Default: the "
                                 "`FLOWENGINE_PLAYER_ALLOW` environment variable."),
    })

    def configure(self, config: dict[str, Any]) -> None:
        url = config["url"].strip()
        entries = [e for e in re.split(r"[\s,]+", url) if e] or [EMBEDDED]
        for entry in entries:
            if entry != EMBEDDED and not entry.startswith(("ws://", "wss://")):
                raise ConfigError("expected `embedded` or URLs starting with ws:// or wss://, "
                                  f"not {entry!r}", "url")
        remotes = [e for e in entries if e != EMBEDDED]
        # One remote server: a direct connection; anything else needs the embedded child.
        self.is_embedded = entries != remotes or len(remotes) > 1
        self._configured_url = url if not self.is_embedded else EMBEDDED
        self._server_args: tuple[str, ...] = ()
        if self.is_embedded:
            workers = (config["workers"] or os.cpu_count() or 1) if EMBEDDED in entries else 0
            self._server_args = (
                "--workers", str(workers),
                *(arg for remote in dict.fromkeys(remotes) for arg in ("--remote", remote)),
            )  # fmt: skip
        self._options = {
            "timeout": config["timeout"],
            "ping_interval": config["ping_interval"],
            "reconnect_timeout": config["reconnect_timeout"],
        }
        if self._options["timeout"] <= 0:
            raise ConfigError("must be more than 0", "timeout")
        self._start_timeout = config["start_timeout"]
        self._player_allow = tuple(re.split(r"[\s,]+", config["player_allow"].strip())
                                   if config["player_allow"].strip() else ())
        self._shared: _SharedServer | None = None
        self.shared_status = SharedStatus(self)

    # -- public API for node types ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's WebSocket URL (``embedded`` until the embedded server has started)."""
        if self._shared is not None and self._shared.embedded is not None \
                and self._shared.embedded.port:
            return self._shared.embedded.url
        return EMBEDDED if self.is_embedded else self._configured_url

    @property
    def embedded(self) -> EmbeddedMediaServer | None:
        """The embedded server (``url: embedded``) once started, else None."""
        return self._shared.embedded if self._shared is not None else None

    async def client(self) -> KurentoClient:
        """The connected client shared by every node using this server. Connects (and starts
        the embedded server) when needed; raises KurentoConnectionError naming the URL."""
        if self._shared is None:
            raise KurentoConnectionError(f"kurento-server '{self.id}' is not running", self.url)
        return await self._shared.client()


    # -- lifecycle ------------------------------------------------------------------------------

    async def on_start(self) -> None:
        if self.is_embedded:
            media_dir = Path(self.config["media_dir"])
            key: tuple[str, str] = (SHARED_KEY, f"{EMBEDDED}:{media_dir}")
        else:
            media_dir = None
            key = (SHARED_KEY, self._configured_url)
        shared: _SharedServer = self.runtime.shared(key, lambda: _SharedServer(
            self._configured_url if not self.is_embedded else None, media_dir,
            self._server_args))
        self._shared = shared
        shared.acquire(self, self._options, self._start_timeout, self.config["port"],
                       self._player_allow)
        if self.is_embedded:
            self.shared_status.show("yellow", "ring", "starting embedded media server")
        try:
            await shared.client()
        except KurentoConnectionError as exc:
            # Not fatal: the flows start, and each message tries to connect again.
            self.warn(str(exc))

    async def on_close(self, removed: bool) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.release(self)
        self.shared_status.show("", "", "")

    # -- internals ------------------------------------------------------------------------------

    def _on_state(self, event: ClientEvent | None, text: str) -> None:
        """Called by the shared server on every connection change."""
        if event is None:  # a failed connection attempt or start
            self.shared_status.show("red", "ring", shorten(f"disconnected: {text}"))
            return
        if event.kind in ("connected", "reconnected"):
            if event.kind == "reconnected":
                self.log(f"reconnected to {event.url}, session kept")
            self.shared_status.show("green", "dot", f"connected {event.url}")
        elif event.kind == "session_lost":
            self.warn(f"reconnected to {event.url}, but the server lost the session: every "
                      f"media object of it is gone")
            self.shared_status.show("green", "dot", f"connected {event.url} (new session)")
        elif event.kind == "disconnected":
            self.warn(f"connection to {event.url} lost ({event.reason}); reconnecting")
            self.shared_status.show("yellow", "ring", f"disconnected, reconnecting {event.url}")
        elif event.kind == "closed" and text:
            self.warn(f"gave up on {event.url}: {event.reason}")
            self.shared_status.show("red", "ring", shorten(f"disconnected: {event.reason}"))




class _SharedServer:
    """The runtime's one client (and embedded server) for one URL, used by every
    ``kurento-server`` node naming it. Invariant: ``client`` is None or not CLOSED while a user
    holds it; all connecting happens under ``_lock``."""

    def __init__(self, url: str | None, media_dir: Path | None,
                 server_args: tuple[str, ...] = ()):
        self.configured_url = url
        self.media_dir = media_dir
        self.server_args = server_args
        self.users: list[KurentoServerNode] = []
        self.embedded: EmbeddedMediaServer | None = None
        self._client: KurentoClient | None = None
        self._lock = asyncio.Lock()
        self._options: dict[str, float] = {}
        self._start_timeout = 30.0
        self._port = 0
        self._player_allow: tuple[str, ...] = ()
        self._tasks: set[asyncio.Task[None]] = set()

    def acquire(self, node: KurentoServerNode, options: dict[str, float],
                start_timeout: float, port: int, player_allow: tuple[str, ...]) -> None:
        if not self.users:  # the first user decides the options
            self._options = dict(options)
            self._start_timeout = start_timeout
            self._port = port
            self._player_allow = player_allow
        self.users.append(node)

    async def release(self, node: KurentoServerNode) -> None:
        if node in self.users:
            self.users.remove(node)
        if not self.users:
            await self.close()

    @property
    def url(self) -> str:
        if self.embedded is not None:
            return self.embedded.url
        return self.configured_url or EMBEDDED

    async def client(self) -> KurentoClient:
        client = self._client
        if client is not None and client.state is not ClientState.CLOSED \
                and (self.embedded is None or self.embedded.running):
            return client
        async with self._lock:
            if self.media_dir is not None:
                await self._ensure_embedded()
            client = self._client
            if client is not None and client.state is not ClientState.CLOSED:
                return client  # reconnecting by itself (e.g. to a restarted embedded server)
            try:
                client = await KurentoClient.connect(self.url, **self._options)
            except KurentoConnectionError as exc:
                self._broadcast(None, str(exc))
                raise
            client.add_listener(self._on_client_event)
            self._client = client
            self._broadcast(ClientEvent("connected", client.url, client.session_id), "")
            return client

    async def _ensure_embedded(self) -> None:
        assert self.media_dir is not None
        if self.embedded is None:
            allow = [arg for entry in self._player_allow for arg in ("--player-allow", entry)]
            self.embedded = EmbeddedMediaServer(self.media_dir, port=self._port,
                                                start_timeout=self._start_timeout,
                                                extra_args=[*self.server_args, *allow])
        elif self.embedded.running:
            return
        else:
            for node in self.users:
                node.warn(f"the embedded media server on {self.embedded.url} stopped; "
                          f"starting it again")
        try:
            await self.embedded.start()
        except Exception as exc:
            text = f"the embedded media server did not start: {exc}"
            self._broadcast(None, "embedded media server did not start")
            raise KurentoConnectionError(text, self.url) from exc

    def _on_client_event(self, event: ClientEvent) -> None:
        self._broadcast(event, event.reason if event.kind == "closed" and
                        event.reason != "closed by the application" else "")
        if event.kind == "disconnected" and self.embedded is not None:
            # The child may have died: start it again so that the client can reconnect.
            task = asyncio.create_task(self._revive())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _revive(self) -> None:
        await asyncio.sleep(REVIVE_DELAY)  # let the child's exit be noticed
        if self.users and self.embedded is not None and not self.embedded.running:
            with contextlib.suppress(KurentoConnectionError):  # reported by client()
                await self.client()

    def _broadcast(self, event: ClientEvent | None, text: str) -> None:
        for node in list(self.users):
            node._on_state(event, text)

    async def close(self) -> None:
        """Close the client and stop the embedded server (also called when the runtime stops)."""
        for task in list(self._tasks):
            task.cancel()
        async with self._lock:
            client, self._client = self._client, None
            if client is not None:
                client.remove_listener(self._on_client_event)
                with contextlib.suppress(Exception):
                    await client.close()
            if self.embedded is not None:
                await self.embedded.stop()
