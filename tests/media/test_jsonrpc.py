"""The sans-I/O JSON-RPC layer shared by the client and the server (no sockets here)."""

from __future__ import annotations

import json

import pytest

from flowengine.kurento import errors
from flowengine.kurento.errors import KurentoError
from flowengine.kurento.jsonrpc import (
    ClientSession,
    InvalidFrame,
    Notification,
    Request,
    Response,
    complex_value,
    event_notification,
    parse_event,
    parse_incoming,
    parse_request,
    strip_type_tags,
)


def test_client_session_ids_start_at_zero_and_never_repeat():
    session = ClientSession()
    ids = [session.request("ping").id for _ in range(3)]
    assert ids == [0, 1, 2]
    assert session.request("ping").encode() == '{"id":3,"jsonrpc":"2.0","method":"ping"}'


def test_client_session_tracks_session_id_but_not_from_pong():
    session = ClientSession()
    first = session.request("describe", {"object": "manager_ServerManager"})
    assert first.params == {"object": "manager_ServerManager"}
    session.observe(Response(0, {"sessionId": "S1", "type": "ServerManager"}))
    assert session.session_id == "S1"
    session.observe(Response(1, {"sessionId": "OTHER", "value": "pong"}))
    assert session.session_id == "S1"
    session.observe(Response(2, error=KurentoError(40101, "Object 'x' not found")))
    assert session.session_id == "S1"
    created = session.request("create", {"type": "MediaPipeline"})
    assert created.params == {"type": "MediaPipeline", "sessionId": "S1"}
    explicit = session.request("connect", {"sessionId": "OLD"})
    assert explicit.params == {"sessionId": "OLD"}
    assert session.request("ping", {"interval": 5000}).params == {"interval": 5000}


def test_parse_request_accepts_text_and_bytes_and_null_params():
    request = parse_request(b'{"jsonrpc":"2.0","id":0,"method":"ping","params":null}')
    assert request == Request(0, "ping", None)
    note = parse_request('{"jsonrpc":"2.0","method":"ping"}')
    assert isinstance(note, Notification)
    assert parse_request('{"jsonrpc":"2.0","id":null,"method":"ping"}') == Request(None, "ping")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xff\xfe", errors.PARSE_ERROR),
        ("{", errors.PARSE_ERROR),
        ("[]", errors.INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":1}', errors.INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":true,"method":1}', errors.INVALID_REQUEST),
    ],
)
def test_parse_request_errors_carry_the_response_to_send(frame, code):
    with pytest.raises(InvalidFrame) as caught:
        parse_request(frame)
    sent = json.loads(caught.value.response.encode())
    assert sent["id"] is None and sent["error"]["code"] == code
    assert "data" not in sent["error"]


def test_parse_incoming_like_kurento_jsonrpc():
    ok = parse_incoming('{"id":3,"jsonrpc":"2.0","result":{"sessionId":"S","value":"v"}}')
    assert isinstance(ok, Response) and ok.value == "v" and ok.session_id == "S"
    closed = parse_incoming('{"id":4,"jsonrpc":"2.0","result":null}')
    assert isinstance(closed, Response) and not closed.is_error and closed.result is None
    failed = parse_incoming(
        '{"id":5,"jsonrpc":"2.0","error":{"code":40101,"data":{"type":"MEDIA_OBJECT_NOT_FOUND"},'
        '"message":"Object \'x\' not found"}}'
    )
    assert failed.is_error
    assert (failed.error.code, failed.error.type) == (40101, "MEDIA_OBJECT_NOT_FOUND")
    assert str(failed.error) == "[40101 MEDIA_OBJECT_NOT_FOUND] Object 'x' not found"
    # Frames kurento-jsonrpc drops silently.
    assert parse_incoming('{"id":1,"result":1}') is None
    assert parse_incoming('{"id":1,"jsonrpc":"2.0","result":1,"error":{}}') is None
    assert parse_incoming('{"id":1,"jsonrpc":"2.0"}') is None
    assert parse_incoming("nonsense") is None


def test_event_round_trip():
    frame = event_notification(
        "P/E_kurento.WebRtcEndpoint",
        "IceCandidateFound",
        {"candidate": complex_value("IceCandidate", {"candidate": "c", "sdpMid": "0",
                                                     "sdpMLineIndex": 0})},
        timestamp_millis=1795311925453,
    ).encode()  # fmt: skip
    parsed = parse_incoming(frame)
    assert isinstance(parsed, Notification)
    event = parse_event(parsed)
    assert event.object == "P/E_kurento.WebRtcEndpoint" and event.type == "IceCandidateFound"
    assert event.data["timestampMillis"] == "1795311925453"
    assert event.data["source"] == event.object and event.data["tags"] == []
    assert strip_type_tags(event.data["candidate"]) == {
        "candidate": "c",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    assert parse_event(Notification("onEvent", {"value": {"type": "X"}})) is None


def test_error_event_keeps_its_own_type_field():
    note = event_notification(
        "O",
        "Error",
        {"description": "d", "errorCode": 1, "type": "RESOURCE_ERROR_OPEN"},
        timestamp_millis=1,
    )
    assert note.params["value"]["type"] == "Error"
    assert note.params["value"]["data"]["type"] == "RESOURCE_ERROR_OPEN"


def test_kurento_error_types_and_error_objects():
    assert KurentoError(40108, "Factory 'X' not found").to_error_object() == {
        "code": 40108,
        "message": "Factory 'X' not found",
        "data": {"type": "MEDIA_OBJECT_NOT_AVAILABLE"},
    }
    assert KurentoError(-32601, "Method not found.").to_error_object() == {
        "code": -32601,
        "message": "Method not found.",
    }
    assert KurentoError(49123, "custom").type == "UNDEFINED"
    assert errors.params_required().data == {"type": "INVALID_PARAMS"}
    odd = KurentoError.from_error_object({"code": 1, "message": "m", "data": "text"})
    assert odd.type is None and odd.data == {"value": "text"}
