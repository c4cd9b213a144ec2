"""Kurento error codes and the :class:`KurentoError` exception
(docs/reference/kurento-protocol.md section 6).

Two layers of codes exist on the wire:

* the JSON-RPC layer (section 6.1): negative codes, ``data`` absent except for ``-32602``
  (``{"type": "INVALID_PARAMS"}``);
* the Kurento layer (section 6.2): codes 40001-49999, ``data`` always ``{"type": NAME}``, where
  NAME comes from :data:`KURENTO_ERROR_TYPES` (``"UNDEFINED"`` for a code without a name).

Both the client and the media server use this module: the server raises ``KurentoError`` and
turns it into an error object with :meth:`KurentoError.to_error_object`; the client rebuilds the
exception from a response with :meth:`KurentoError.from_error_object`. The client's own failures
(:class:`KurentoConnectionError`, :class:`KurentoTimeoutError`, :class:`SessionLostError`) are
declared here too, so code that catches them need not import the client. This module does no I/O.
"""

from __future__ import annotations

from typing import Any

# --- JSON-RPC layer (section 6.1) -----------------------------------------------------------------
PARSE_ERROR = -32700
"""Invalid JSON. Message ``"Parse error."``; the response id is ``null``."""
INVALID_REQUEST = -32600
"""Not a JSON-RPC 2.0 request object. Message ``"Invalid JSON-RPC request."``; id ``null``."""
METHOD_NOT_FOUND = -32601
"""Unknown JSON-RPC method. Message ``"Method not found."``."""
INVALID_PARAMS = -32602
"""``params`` missing where required. Message ``"'params' is required"``, data INVALID_PARAMS."""
INTERNAL_ERROR = -32603
"""Unexpected server exception. Message ``"Unexpected error while processing method: <what>"``."""
SERVER_ERROR = -32000
"""Missing or mistyped top-level param: ``"'<name>' parameter is required"`` and the like."""

JSONRPC_MESSAGES: dict[int, str] = {
    PARSE_ERROR: "Parse error.",
    INVALID_REQUEST: "Invalid JSON-RPC request.",
    METHOD_NOT_FOUND: "Method not found.",
    INVALID_PARAMS: "'params' is required",
}
"""The exact messages KMS sends for the fixed JSON-RPC errors."""

# --- Kurento layer (section 6.2) ------------------------------------------------------------------
MARSHALL_ERROR = 40001
UNEXPECTED_ERROR = 40003
CONNECT_ERROR = 40004
UNSUPPORTED_MEDIA_TYPE = 40005
NOT_IMPLEMENTED = 40006
INVALID_SESSION = 40007
MALFORMED_TRANSACTION = 40008
NOT_ENOUGH_RESOURCES = 40009
MEDIA_OBJECT_TYPE_NOT_FOUND = 40100
MEDIA_OBJECT_NOT_FOUND = 40101
MEDIA_OBJECT_CONSTRUCTOR_NOT_FOUND = 40104
MEDIA_OBJECT_METHOD_NOT_FOUND = 40105
MEDIA_OBJECT_EVENT_NOT_SUPPORTED = 40106
MEDIA_OBJECT_ILLEGAL_PARAM_ERROR = 40107
MEDIA_OBJECT_NOT_AVAILABLE = 40108
MEDIA_OBJECT_NOT_FOUND_TRANSACTION_NO_COMMIT = 40109
MEDIA_OBJECT_TAG_KEY_NOT_FOUND = 40110
MEDIA_OBJECT_OPERATION_NOT_SUPPORTED = 40111
SDP_CREATE_ERROR = 40200
SDP_PARSE_ERROR = 40201
SDP_END_POINT_NO_LOCAL_SDP_ERROR = 40202
SDP_END_POINT_NO_REMOTE_SDP_ERROR = 40203
SDP_END_POINT_GENERATE_OFFER_ERROR = 40204
SDP_END_POINT_PROCESS_OFFER_ERROR = 40205
SDP_END_POINT_PROCESS_ANSWER_ERROR = 40206
SDP_CONFIGURATION_ERROR = 40207
SDP_END_POINT_ALREADY_NEGOTIATED = 40208
SDP_END_POINT_NOT_OFFER_GENERATED = 40209
SDP_END_POINT_ANSWER_ALREADY_PROCCESED = 40210  # sic, Kurento's spelling
SDP_END_POINT_CANNOT_CREATE_SESSON = 40211  # sic
HTTP_END_POINT_REGISTRATION_ERROR = 40300
ICE_GATHER_CANDIDATES_ERROR = 40400
ICE_ADD_CANDIDATE_ERROR = 40401
SERVER_MANAGER_ERROR_KMD_NOT_FOUND = 40500
URI_PATH_FILE_NOT_FOUND = 40600
PLAYER_SEEK_FAIL = 40700

KURENTO_ERROR_TYPES: dict[int, str] = {
    MARSHALL_ERROR: "MARSHALL_ERROR",
    UNEXPECTED_ERROR: "UNEXPECTED_ERROR",
    CONNECT_ERROR: "CONNECT_ERROR",
    UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    INVALID_SESSION: "INVALID_SESSION",
    MALFORMED_TRANSACTION: "MALFORMED_TRANSACTION",
    NOT_ENOUGH_RESOURCES: "NOT_ENOUGH_RESOURCES",
    MEDIA_OBJECT_TYPE_NOT_FOUND: "MEDIA_OBJECT_TYPE_NOT_FOUND",
    MEDIA_OBJECT_NOT_FOUND: "MEDIA_OBJECT_NOT_FOUND",
    MEDIA_OBJECT_CONSTRUCTOR_NOT_FOUND: "MEDIA_OBJECT_CONSTRUCTOR_NOT_FOUND",
    MEDIA_OBJECT_METHOD_NOT_FOUND: "MEDIA_OBJECT_METHOD_NOT_FOUND",
    MEDIA_OBJECT_EVENT_NOT_SUPPORTED: "MEDIA_OBJECT_EVENT_NOT_SUPPORTED",
    MEDIA_OBJECT_ILLEGAL_PARAM_ERROR: "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR",
    MEDIA_OBJECT_NOT_AVAILABLE: "MEDIA_OBJECT_NOT_AVAILABLE",
    MEDIA_OBJECT_NOT_FOUND_TRANSACTION_NO_COMMIT: "MEDIA_OBJECT_NOT_FOUND_TRANSACTION_NO_COMMIT",
    MEDIA_OBJECT_TAG_KEY_NOT_FOUND: "MEDIA_OBJECT_TAG_KEY_NOT_FOUND",
    MEDIA_OBJECT_OPERATION_NOT_SUPPORTED: "MEDIA_OBJECT_OPERATION_NOT_SUPPORTED",
    SDP_CREATE_ERROR: "SDP_CREATE_ERROR",
    SDP_PARSE_ERROR: "SDP_PARSE_ERROR",
    SDP_END_POINT_NO_LOCAL_SDP_ERROR: "SDP_END_POINT_NO_LOCAL_SDP_ERROR",
    SDP_END_POINT_NO_REMOTE_SDP_ERROR: "SDP_END_POINT_NO_REMOTE_SDP_ERROR",
    SDP_END_POINT_GENERATE_OFFER_ERROR: "SDP_END_POINT_GENERATE_OFFER_ERROR",
    SDP_END_POINT_PROCESS_OFFER_ERROR: "SDP_END_POINT_PROCESS_OFFER_ERROR",
    SDP_END_POINT_PROCESS_ANSWER_ERROR: "SDP_END_POINT_PROCESS_ANSWER_ERROR",
    SDP_CONFIGURATION_ERROR: "SDP_CONFIGURATION_ERROR",
    SDP_END_POINT_ALREADY_NEGOTIATED: "SDP_END_POINT_ALREADY_NEGOTIATED",
    SDP_END_POINT_NOT_OFFER_GENERATED: "SDP_END_POINT_NOT_OFFER_GENERATED",
    SDP_END_POINT_ANSWER_ALREADY_PROCCESED: "SDP_END_POINT_ANSWER_ALREADY_PROCCESED",
    SDP_END_POINT_CANNOT_CREATE_SESSON: "SDP_END_POINT_CANNOT_CREATE_SESSON",
    HTTP_END_POINT_REGISTRATION_ERROR: "HTTP_END_POINT_REGISTRATION_ERROR",
    ICE_GATHER_CANDIDATES_ERROR: "ICE_GATHER_CANDIDATES_ERROR",
    ICE_ADD_CANDIDATE_ERROR: "ICE_ADD_CANDIDATE_ERROR",
    SERVER_MANAGER_ERROR_KMD_NOT_FOUND: "SERVER_MANAGER_ERROR_KMD_NOT_FOUND",
    URI_PATH_FILE_NOT_FOUND: "URI_PATH_FILE_NOT_FOUND",
    PLAYER_SEEK_FAIL: "PLAYER_SEEK_FAIL",
}
"""Kurento code -> ``data.type`` name, as in KMS's ``KurentoException::getType()``."""


def error_type_for(code: int) -> str | None:
    """The ``data.type`` KMS puts in an error with this code.

    ``None`` for JSON-RPC codes (they carry no ``data``) except -32602, ``"INVALID_PARAMS"``;
    ``"UNDEFINED"`` for a Kurento-range code with no name.
    """
    if code == INVALID_PARAMS:
        return "INVALID_PARAMS"
    if code < 0:
        return None
    return KURENTO_ERROR_TYPES.get(code, "UNDEFINED")


class KurentoError(Exception):
    """An error response of the Kurento protocol, on either side of the socket.

    Attributes:
        code: the numeric error code (JSON-RPC ``-32xxx`` or Kurento ``4xxxx``).
        message: the human-readable message, exactly as sent on the wire.
        type: ``data.type`` (e.g. ``"MEDIA_OBJECT_NOT_FOUND"``), or ``None`` when the error has
            no data (most JSON-RPC layer errors).
        data: the whole ``data`` member (a dict with at least ``type`` when ``type`` is set), or
            ``None``.

    ``KurentoError(code, message)`` fills ``type``/``data`` from the code tables, so the server
    can simply ``raise KurentoError(MEDIA_OBJECT_NOT_FOUND, f"Object '{oid}' not found")``.
    """

    def __init__(
        self,
        code: int,
        message: str,
        type: str | None = None,  # Kurento's own field name
        data: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        if type is None:
            type = data.get("type") if isinstance(data, dict) else error_type_for(code)
        self.type = type
        if data is None and type is not None:
            data = {"type": type}
        self.data = data

    def __str__(self) -> str:
        kind = f" {self.type}" if self.type else ""
        return f"[{self.code}{kind}] {self.message}"

    def __repr__(self) -> str:
        return f"KurentoError({self.code!r}, {self.message!r}, type={self.type!r})"

    def to_error_object(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member for this error: ``{"code", "message"[, "data"]}``."""
        obj: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            obj["data"] = self.data
        return obj

    @classmethod
    def from_error_object(cls, error: Any) -> KurentoError:
        """Rebuild the exception from a response's ``error`` member (tolerates odd shapes)."""
        if not isinstance(error, dict):
            return cls(INTERNAL_ERROR, f"Malformed error object: {error!r}")
        code = error.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            code = INTERNAL_ERROR
        message = error.get("message")
        if not isinstance(message, str):
            message = str(message)
        data = error.get("data")
        if isinstance(data, dict):
            return cls(code, message, type=data.get("type"), data=data)
        err = cls(code, message)
        if data is not None:
            # Some servers send a bare string as data: keep it rather than invent a type.
            err.data = {"value": data}
            err.type = None
        return err


# --- the client's own failures -------------------------------------------------------------------


class KurentoConnectionError(ConnectionError):
    """The client could not reach the server, lost the connection before an answer arrived,
    or is closed. ``url`` names the server."""

    def __init__(self, message: str, url: str):
        super().__init__(message)
        self.url = url


class KurentoTimeoutError(TimeoutError):
    """A request got no answer within its timeout."""

    def __init__(self, message: str, method: str, timeout: float):
        super().__init__(message)
        self.method = method
        self.timeout = timeout


class SessionLostError(KurentoError):
    """The server no longer knows the session an object or listener belonged to (it restarted,
    or garbage-collected the session while the client was disconnected): the object is gone.
    Code 40007 INVALID_SESSION, as the server's answer to ``connect``."""

    def __init__(self, message: str, session_id: str | None):
        super().__init__(INVALID_SESSION, message)
        self.session_id = session_id


# --- shorthand constructors for the errors the server raises most ---------------------------------


def object_not_found(object_id: str) -> KurentoError:
    """40101 ``Object '<id>' not found``."""
    return KurentoError(MEDIA_OBJECT_NOT_FOUND, f"Object '{object_id}' not found")


def marshall_error(message: str) -> KurentoError:
    """40001, e.g. ``'uri' parameter should be a string``."""
    return KurentoError(MARSHALL_ERROR, message)


def param_required(name: str) -> KurentoError:
    """-32000 ``'<name>' parameter is required`` (top-level request params)."""
    return KurentoError(SERVER_ERROR, f"'{name}' parameter is required")


def param_type(name: str, kind: str) -> KurentoError:
    """-32000 ``'<name>' parameter should be a <kind>`` (kind: ``a string``, ``an object``...)."""
    return KurentoError(SERVER_ERROR, f"'{name}' parameter should be {kind}")


def params_required() -> KurentoError:
    """-32602 ``'params' is required`` with data INVALID_PARAMS."""
    return KurentoError(INVALID_PARAMS, JSONRPC_MESSAGES[INVALID_PARAMS])


def invalid_session() -> KurentoError:
    """40007 ``Invalid session``."""
    return KurentoError(INVALID_SESSION, "Invalid session")
