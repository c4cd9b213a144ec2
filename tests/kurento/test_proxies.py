"""Name and argument mapping of the media object proxies (no server involved)."""

from __future__ import annotations

import pytest

from flowengine.kurento.proxies import camel_name, object_type, to_wire, wire_params


@pytest.mark.parametrize(("python", "kurento"), [
    ("process_offer", "processOffer"),
    ("processOffer", "processOffer"),
    ("get_stun_server_address", "getStunServerAddress"),
    ("gather_candidates", "gatherCandidates"),
    ("play", "play"),
    ("get_ice_candidate_pairs", "getICECandidatePairs"),
    ("set_external_ipv4", "setExternalIPv4"),
    ("media_type", "mediaType"),
    ("is_media_flowing_in", "isMediaFlowingIn"),
])
def test_camel_name(python: str, kurento: str) -> None:
    assert camel_name(python) == kurento


def test_object_type_from_ids() -> None:
    assert object_type("f269f630-92c4_kurento.MediaPipeline") == "MediaPipeline"
    assert object_type("p_kurento.MediaPipeline/99b7_kurento.WebRtcEndpoint") == \
        "WebRtcEndpoint"
    assert object_type("p_kurento.MediaPipeline/h_kurento.Composite/x_kurento.HubPort") == \
        "HubPort"
    assert object_type("manager_ServerManager") == "ServerManager"


def test_positional_and_keyword_parameters() -> None:
    assert wire_params("processOffer", ("v=0",), {}) == {"offer": "v=0"}
    assert wire_params("connect", ("sink-id",), {"media_type": "VIDEO"}) == \
        {"sink": "sink-id", "mediaType": "VIDEO"}
    # Optional parameters given as None are left out, as Kurento expects.
    assert wire_params("connect", ("sink-id", None), {}) == {"sink": "sink-id"}
    # A setter names its parameter after the property.
    assert wire_params("setStunServerPort", (3478,), {}) == {"stunServerPort": 3478}
    assert wire_params("setExternalIPv4", ("10.0.0.1",), {}) == {"externalIPv4": "10.0.0.1"}
    with pytest.raises(TypeError, match="twice"):
        wire_params("processOffer", ("a",), {"offer": "b"})


def test_complex_parameters_get_kurento_type_tags() -> None:
    candidate = {"candidate": "candidate:1 1 udp 1 10.0.0.1 5000 typ host", "sdpMid": "0",
                 "sdpMLineIndex": 0}
    sent = wire_params("addIceCandidate", (candidate,), {})["candidate"]
    assert sent == {**candidate, "__module__": "kurento", "__type__": "IceCandidate"}
    assert "__type__" not in candidate  # the caller's dict is not changed
    tagged = {**candidate, "__module__": "kurento", "__type__": "IceCandidate"}
    assert wire_params("addIceCandidate", (tagged,), {})["candidate"] == tagged


def test_to_wire_converts_nested_values() -> None:
    assert to_wire({"a": (1, 2), "b": [{"c": None}]}) == {"a": [1, 2], "b": [{"c": None}]}
