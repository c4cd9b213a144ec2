"""``UriEndpoint``: the ``uri`` and ``state`` (STOP/START/PAUSE) shared by player and recorder,
and the URI policy of the settings (recorders confined to the media directory, players to the
allowed schemes and hosts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from flowengine.kurento.errors import MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, KurentoError
from flowengine.media import model
from flowengine.media.elements.media_element import MediaElementImpl
from flowengine.media.settings import MediaServerSettings


def _illegal(message: str) -> KurentoError:
    return KurentoError(MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, message)


def file_path(uri: str, settings: MediaServerSettings) -> Path:
    """The local path of a ``file://`` URI (or a bare path); relative ones are taken inside
    the media directory. Raises 40107 on another scheme."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        raw = unquote(parts.netloc + parts.path) if parts.scheme == "file" else uri
        path = Path(raw)
        if not path.is_absolute():
            path = settings.media_dir / path
        return path.resolve()
    raise _illegal(f"Unsupported URI scheme '{parts.scheme}' in '{uri}'")


def inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def check_recorder_uri(uri: str, settings: MediaServerSettings) -> Path:
    """Where a recorder may write ``uri``: a file inside the media directory, or 40107."""
    path = file_path(uri, settings)
    if not inside(path, settings.media_dir):
        raise _illegal(f"Recorder URI '{uri}' is outside the media directory")
    return path


def check_player_uri(uri: str, settings: MediaServerSettings) -> str:
    """The source PyAV should open for ``uri``, or 40107 when the settings forbid it."""
    parts = urlsplit(uri)
    scheme = parts.scheme or "file"
    if scheme not in settings.player_schemes:
        raise _illegal(f"URI scheme '{scheme}' is not allowed for players")
    if scheme == "file":
        path = file_path(uri, settings)
        if not settings.player_files_anywhere and not inside(path, settings.media_dir):
            raise _illegal(f"Player URI '{uri}' is outside the media directory")
        return str(path)
    if not parts.hostname:
        raise _illegal(f"Player URI '{uri}' has no host")
    if settings.player_hosts is not None and parts.hostname not in settings.player_hosts:
        raise _illegal(f"Host '{parts.hostname}' is not allowed for players")
    return uri


class UriEndpointImpl(MediaElementImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["UriEndpoint"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.uri: str = self.params.get("uri") or ""
        self.state = "STOP"

    def get_uri(self) -> str:
        return self.uri

    def get_state(self) -> str:
        return self.state

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.emit("UriEndpointStateChanged", state=state)

    def on_upstream_end_of_stream(self) -> None:
        """Hook: a source connected to this element reached its end (player EOS)."""
