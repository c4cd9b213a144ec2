"""The Kurento protocol of the embedded media server, frame by frame over a real WebSocket.

Each test names the item of docs/reference/kurento-protocol.md it checks (section numbers, checklist
9.2 and the pitfalls of section 10).
"""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from flowengine.media import MediaServer, MediaServerSettings

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def error_of(response: dict) -> dict:
    assert "result" not in response, response
    return response["error"]


# --- transport and envelope (sections 1, 2, 6.1) ----------------------------------------------


async def test_ping_without_params_has_no_session_and_echoes_id_zero(client):
    # Pitfall: request ids start at 0; a bare ping without params must work (section 10).
    await client.send_raw('{"jsonrpc":"2.0","method":"ping","id":0}')
    frame = await asyncio.wait_for(client.unmatched.get(), 5)
    assert frame == {"id": 0, "jsonrpc": "2.0", "result": {"value": "pong"}}


async def test_ping_with_interval_and_null_params(client):
    assert await client.result("ping", {"interval": 5000}) == {"value": "pong"}
    response = await client.call("ping", None)
    assert response["result"] == {"value": "pong"}
    await client.send_raw('{"jsonrpc":"2.0","method":"ping","params":null,"id":"s-1"}')
    frame = await asyncio.wait_for(client.unmatched.get(), 5)
    assert frame["id"] == "s-1" and frame["result"]["value"] == "pong"


async def test_frames_are_sorted_compact_text(http, server):
    ws = await http.ws_connect(server.url)
    await ws.send_str('{"jsonrpc":"2.0","method":"ping","id":7}')
    raw = await ws.receive(timeout=5)
    assert raw.type == aiohttp.WSMsgType.TEXT
    assert raw.data == '{"id":7,"jsonrpc":"2.0","result":{"value":"pong"}}'
    await ws.close()


async def test_binary_frames_are_accepted_and_answered_in_text(http, server):
    # The npm-registry stack of kurento-client sends binary frames (section 1).
    ws = await http.ws_connect(server.url)
    await ws.send_bytes(b'{"jsonrpc":"2.0","method":"ping","id":3}')
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT
    assert json.loads(msg.data) == {"id": 3, "jsonrpc": "2.0", "result": {"value": "pong"}}
    await ws.close()


async def test_query_string_is_ignored_and_wrong_path_closes_1002(http, server):
    ws = await http.ws_connect(server.url + "?access_token=abc")
    await ws.send_str('{"jsonrpc":"2.0","method":"ping","id":1}')
    assert json.loads((await ws.receive(timeout=5)).data)["result"]["value"] == "pong"
    await ws.close()
    bad = await http.ws_connect(server.url.replace("/kurento", "/other"))
    msg = await bad.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert bad.close_code == 1002
    assert msg.extra == "Invalid path"


@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        ("this is not json", -32700, "Parse error."),
        ("[]", -32600, "Invalid JSON-RPC request."),
        ('[{"jsonrpc":"2.0","method":"ping","id":1}]', -32600, "Invalid JSON-RPC request."),
        ('{"method":"ping","id":1}', -32600, "Invalid JSON-RPC request."),
        ('{"jsonrpc":"1.0","method":"ping","id":1}', -32600, "Invalid JSON-RPC request."),
        ('{"jsonrpc":"2.0","method":"ping","id":[1]}', -32600, "Invalid JSON-RPC request."),
        ('{"jsonrpc":"2.0","method":"ping","id":{"a":1}}', -32600, "Invalid JSON-RPC request."),
        ('{"jsonrpc":"2.0","method":5,"id":1}', -32600, "Invalid JSON-RPC request."),
        ('{"jsonrpc":"2.0","id":1}', -32600, "Invalid JSON-RPC request."),
        ('{"jsonrpc":"2.0","method":"ping","params":[1],"id":1}', -32600,
         "Invalid JSON-RPC request."),
    ],
)  # fmt: skip
async def test_malformed_frames_give_jsonrpc_errors_with_null_id(client, frame, code, message):
    await client.send_raw(frame)
    answer = await asyncio.wait_for(client.unmatched.get(), 5)
    assert answer == {"id": None, "jsonrpc": "2.0", "error": {"code": code, "message": message}}
    # The session is not stuck: the next request works.
    assert (await client.result("ping"))["value"] == "pong"


async def test_unknown_method_gives_32601_with_the_request_id(client):
    response = await client.call("frobnicate", {}, request_id=42)
    assert response == {
        "id": 42,
        "jsonrpc": "2.0",
        "error": {"code": -32601, "message": "Method not found."},
    }


async def test_notification_runs_but_is_answered_with_an_error(client):
    await client.send_raw('{"jsonrpc":"2.0","method":"ping"}')
    answer = await asyncio.wait_for(client.unmatched.get(), 5)
    assert answer["id"] is None
    assert answer["error"] == {
        "code": -32000,
        "message": "Ignoring response because of a notification request",
    }


async def test_params_required_on_an_unbound_connection(client):
    response = await client.call("create", None)
    assert error_of(response) == {
        "code": -32602,
        "message": "'params' is required",
        "data": {"type": "INVALID_PARAMS"},
    }


# --- ServerManager (sections 4.3, 7.1, checklist 9.2 item 3) --------------------------------------


async def test_describe_server_manager_then_get_info_like_kurento_client_js(client):
    await client.result("ping", {"interval": 5000})
    described = await client.result("describe", {"object": "manager_ServerManager"})
    assert described["hierarchy"] == ["kurento.MediaObject"]
    assert described["qualifiedType"] == "kurento.ServerManager"
    assert described["type"] == "ServerManager"
    assert re.fullmatch(UUID, described["sessionId"])
    sid = described["sessionId"]
    info = await client.result(
        "invoke",
        {"object": "manager_ServerManager", "operation": "getInfo", "sessionId": sid},
    )
    assert info["sessionId"] == sid
    value = info["value"]
    assert value["__module__"] == "kurento" and value["__type__"] == "ServerInfo"
    assert value["type"] == "KMS"
    names = [m["name"] for m in value["modules"]]
    assert {"core", "elements", "filters"} <= set(names)
    elements = next(m for m in value["modules"] if m["name"] == "elements")
    assert elements["__type__"] == "ModuleInfo"
    assert set(elements["factories"]) == {
        "Composite", "Dispatcher", "DispatcherOneToMany", "PlayerEndpoint", "RecorderEndpoint",
        "WebRtcEndpoint"}  # fmt: skip
    filters = next(m for m in value["modules"] if m["name"] == "filters")
    assert set(filters["factories"]) == {"FaceOverlayFilter", "GStreamerFilter"}


async def test_server_manager_queries(client):
    pipeline = await client.create("MediaPipeline")
    assert await client.invoke("manager_ServerManager", "getPipelines") == [pipeline]
    assert client.session_id in await client.invoke("manager_ServerManager", "getSessions")
    assert await client.invoke("manager_ServerManager", "getCpuCount") >= 1
    assert await client.invoke("manager_ServerManager", "getUsedMemory") > 1000
    used = await client.invoke("manager_ServerManager", "getUsedCpu", interval=50)
    assert isinstance(used, float) and used >= 0
    kmd = json.loads(await client.invoke("manager_ServerManager", "getKmd", moduleName="core"))
    assert kmd["name"] == "core"
    error = error_of(
        await client.call(
            "invoke",
            {
                "object": "manager_ServerManager",
                "operation": "getKmd",
                "operationParams": {"moduleName": "nope"},
            },
        )
    )
    assert error["code"] == 40500


# --- sessions (section 3, checklist items 4-5) -------------------------------------------------


async def test_session_id_generated_bound_and_injected(client):
    first = await client.result("describe", {"object": "manager_ServerManager"})
    sid = first["sessionId"]
    # No sessionId sent: the bound one is injected and comes back in every result.
    created = await client.result("create", {"type": "MediaPipeline"})
    assert created["sessionId"] == sid
    assert (await client.result("ping"))["sessionId"] == sid
    # Any client-supplied sessionId is accepted on create/invoke/describe (checklist item 5).
    other = await client.result(
        "create", {"type": "MediaPipeline", "sessionId": "client-made-session"}
    )
    assert other["sessionId"] == "client-made-session"


async def test_error_responses_never_carry_a_session_id(client):
    await client.result("describe", {"object": "manager_ServerManager"})
    response = await client.call("invoke", {"object": "nope", "operation": "getName"})
    assert set(response) == {"id", "jsonrpc", "error"}
    assert "sessionId" not in json.dumps(response)


async def test_repeated_request_id_gets_the_cached_answer_without_running_again(client):
    await client.result("describe", {"object": "manager_ServerManager"})
    first = await client.call("create", {"type": "MediaPipeline"}, request_id=100)
    second = await client.call("create", {"type": "MediaPipeline"}, request_id=100)
    assert second == first
    assert await client.invoke("manager_ServerManager", "getPipelines") == [
        first["result"]["value"]
    ]


async def test_connect_recovers_a_session_and_moves_its_events(connect):
    first = await connect()
    pipeline = await first.create("MediaPipeline")
    a = await first.create("WebRtcEndpoint", mediaPipeline=pipeline)
    b = await first.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await first.result("subscribe", {"object": a, "type": "ElementConnected"})
    sid = first.session_id
    await first.close()

    second = await connect()
    # Like kurento-client, keep counting ids across the reconnection: a reused id would get
    # the cached answer of the old request (section 3, request cache).
    second.next_id = first.next_id
    await second.result("ping")
    recovered = await second.result("connect", {"sessionId": sid})
    assert recovered["sessionId"] == sid
    assert re.fullmatch(UUID, recovered["serverId"])
    # The objects survived the dropped socket, and the session's events come here now.
    await second.invoke(a, "connect", sink=b, mediaType="VIDEO")
    event = await second.event("ElementConnected")
    assert event["object"] == a and event["data"]["sink"] == b


async def test_connect_with_unknown_session_is_40007_and_without_one_creates_one(client):
    response = await client.call("connect", {"sessionId": "no-such-session"})
    assert error_of(response) == {
        "code": 40007,
        "message": "Invalid session",
        "data": {"type": "INVALID_SESSION"},
    }
    created = await client.result("connect")
    assert re.fullmatch(UUID, created["sessionId"]) and created["serverId"]
    again = await client.result("connect", {"sessionId": created["sessionId"]})
    assert again["sessionId"] == created["sessionId"]


async def test_keep_alive_and_close_session(connect):
    client = await connect()
    unknown = await client.call("keepAlive", {"sessionId": "missing"})
    assert error_of(unknown)["code"] == 40007
    pipeline = await client.create("MediaPipeline")
    sid = client.session_id
    assert await client.result("keepAlive", {"sessionId": sid}) == {"sessionId": sid}
    closed = await client.call("closeSession", {"sessionId": sid, "release": True})
    assert closed == {"id": closed["id"], "jsonrpc": "2.0", "result": None}
    other = await connect()
    gone = await other.call("describe", {"object": pipeline})
    assert error_of(gone)["code"] == 40101


async def test_close_session_without_release_keeps_objects_another_session_refs(connect):
    owner = await connect()
    pipeline = await owner.create("MediaPipeline")
    watcher = await connect()
    await watcher.result("describe", {"object": pipeline})  # refs it into the watcher's session
    await owner.result("closeSession", {"sessionId": owner.session_id})
    assert (await watcher.invoke(pipeline, "getId")) == pipeline


# --- objects: create, invoke, release (sections 4.4, 4.5, 4.7) ---------------------------------


async def test_object_ids_and_describe(client):
    pipeline = await client.create("MediaPipeline")
    assert re.fullmatch(UUID + "_kurento.MediaPipeline", pipeline)
    endpoint = await client.create("kurento.WebRtcEndpoint", mediaPipeline=pipeline)
    assert re.fullmatch(re.escape(pipeline) + "/" + UUID + "_kurento.WebRtcEndpoint", endpoint)
    described = await client.result("describe", {"object": endpoint})
    assert described["type"] == "WebRtcEndpoint"
    assert described["qualifiedType"] == "kurento.WebRtcEndpoint"
    assert described["hierarchy"] == [
        "kurento.BaseRtpEndpoint",
        "kurento.SdpEndpoint",
        "kurento.SessionEndpoint",
        "kurento.Endpoint",
        "kurento.MediaElement",
        "kurento.MediaObject",
    ]
    assert (await client.result("describe", {"object": pipeline}))["hierarchy"] == [
        "kurento.MediaObject"
    ]


async def test_media_object_properties_tags_and_void_results(client):
    pipeline = await client.create("MediaPipeline")
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    assert await client.invoke(endpoint, "getName") == endpoint
    void = await client.result(
        "invoke", {"object": endpoint, "operation": "setName", "operationParams": {"name": "cam"}}
    )
    assert void == {"sessionId": client.session_id}  # void: no "value"
    assert await client.invoke(endpoint, "getName") == "cam"
    assert await client.invoke(endpoint, "getMediaPipeline") == pipeline
    assert await client.invoke(endpoint, "getParent") == pipeline
    assert await client.invoke(pipeline, "getChildren") == [endpoint]
    assert await client.invoke(endpoint, "getMediaState") == "DISCONNECTED"
    assert await client.invoke(endpoint, "getConnectionState") == "DISCONNECTED"
    assert isinstance(await client.invoke(endpoint, "getCreationTime"), int)
    await client.invoke(endpoint, "addTag", key="room", value="42")
    assert await client.invoke(endpoint, "getTag", key="room") == "42"
    assert await client.invoke(endpoint, "getTags") == [
        {"__module__": "kurento", "__type__": "Tag", "key": "room", "value": "42"}
    ]
    await client.invoke(endpoint, "removeTag", key="room")
    missing = await client.call(
        "invoke",
        {"object": endpoint, "operation": "getTag", "operationParams": {"key": "room"}},
    )
    assert error_of(missing)["code"] == 40110


async def test_webrtc_ice_settings_have_no_default_stun_and_accept_numeric_strings(client):
    pipeline = await client.create("MediaPipeline")
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    assert await client.invoke(endpoint, "getStunServerAddress") == ""
    assert await client.invoke(endpoint, "getTurnUrl") == ""
    await client.invoke(endpoint, "setStunServerAddress", stunServerAddress="127.0.0.1")
    await client.invoke(endpoint, "setStunServerPort", stunServerPort="3479")  # section 5
    await client.invoke(endpoint, "setTurnUrl", turnUrl="user:pass@127.0.0.1:3478?transport=udp")
    assert await client.invoke(endpoint, "getStunServerAddress") == "127.0.0.1"
    assert await client.invoke(endpoint, "getStunServerPort") == 3479
    assert await client.invoke(endpoint, "getTurnUrl") == "user:pass@127.0.0.1:3478?transport=udp"


async def test_release_unknown_succeeds_and_released_objects_are_gone(client):
    pipeline = await client.create("MediaPipeline")
    assert await client.result("release", {"object": "does-not-exist"}) == {
        "sessionId": client.session_id
    }
    await client.result("release", {"object": pipeline})
    response = await client.call("invoke", {"object": pipeline, "operation": "getName"})
    assert error_of(response) == {
        "code": 40101,
        "message": f"Object '{pipeline}' not found",
        "data": {"type": "MEDIA_OBJECT_NOT_FOUND"},
    }
    await client.result("release", {"object": pipeline})  # twice is fine too


async def test_release_cascades_from_pipeline_to_elements(client, server, media_dir):
    await client.result("subscribe", {"object": "manager_ServerManager", "type": "ObjectDestroyed"})
    pipeline = await client.create("MediaPipeline")
    a = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    b = await client.create(
        "RecorderEndpoint", mediaPipeline=pipeline, uri=f"file://{media_dir}/x.webm"
    )
    await client.invoke(a, "connect", sink=b)
    await client.result("release", {"object": pipeline})
    for element in (a, b):
        response = await client.call("describe", {"object": element})
        assert error_of(response)["code"] == 40101
    destroyed = {(await client.event("ObjectDestroyed"))["data"]["objectId"] for _ in range(3)}
    assert destroyed == {pipeline, a, b}
    assert server.media_set.objects == {}
    assert await client.invoke("manager_ServerManager", "getPipelines") == []


# --- errors of the Kurento layer (section 6.2, pitfalls of section 10) ----------------------------


@pytest.mark.parametrize(
    "type_name", ["Frobnicator", "ZBarFilter", "AlphaBlending", "ImageOverlayFilter"]
)
async def test_unknown_or_unsupported_types_are_40108(client, type_name):
    response = await client.call("create", {"type": type_name, "properties": {}})
    assert error_of(response) == {
        "code": 40108,
        "message": f"Factory '{type_name}' not found",
        "data": {"type": "MEDIA_OBJECT_NOT_AVAILABLE"},
    }


async def test_unknown_operation_is_40008(client):
    pipeline = await client.create("MediaPipeline")
    response = await client.call(
        "invoke", {"object": pipeline, "operation": "fly", "operationParams": {"a": 1, "b": 2}}
    )
    assert error_of(response) == {
        "code": 40008,
        "message": "Method 'fly' with 2 parameters not found",
        "data": {"type": "MALFORMED_TRANSACTION"},
    }
    # A read-only property has no setter.
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    setter = await client.call(
        "invoke",
        {"object": endpoint, "operation": "setMediaState", "operationParams": {"mediaState": "X"}},
    )
    assert error_of(setter)["code"] == 40008


async def test_parameter_type_errors(client):
    pipeline = await client.create("MediaPipeline")
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    cases = [
        (
            "create",
            {"type": "PlayerEndpoint", "constructorParams": {"mediaPipeline": pipeline, "uri": 5}},
            {"code": 40001, "message": "'uri' parameter should be a string"},
        ),
        (
            "create",
            {"type": "WebRtcEndpoint", "constructorParams": {}},
            {"code": 40001, "message": "'mediaPipeline' parameter should be a MediaPipeline"},
        ),
        (
            "create",
            {"type": "WebRtcEndpoint", "constructorParams": {"mediaPipeline": "nope"}},
            {"code": 40101, "message": "Object 'nope' not found"},
        ),
        (
            "create",
            {"type": "WebRtcEndpoint", "constructorParams": {"mediaPipeline": endpoint}},
            {"code": 40001, "message": "'mediaPipeline' parameter should be a MediaPipeline"},
        ),
        (
            "create",
            {"type": "WebRtcEndpoint", "constructorParams": {"mediaPipeline": pipeline,
                                                             "recvonly": "yes"}},
            {"code": 40001, "message": "'recvonly' parameter should be a boolean"},
        ),
        (
            "invoke",
            {"object": endpoint, "operation": "connect",
             "operationParams": {"sink": endpoint, "mediaType": "SMELL"}},
            {"code": 40001, "message": "Invalid value for 'MediaType'"},
        ),
        (
            "invoke",
            {"object": endpoint, "operation": "processOffer"},
            {"code": 40001, "message": "'operationParams' is required"},
        ),
        (
            "invoke",
            {"object": endpoint, "operation": "setStunServerPort",
             "operationParams": {"stunServerPort": "many"}},
            {"code": 40001, "message": "'stunServerPort' parameter should be an integer"},
        ),
        (
            "invoke",
            {"object": endpoint, "operation": "addIceCandidate",
             "operationParams": {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"}},
            {"code": 40001, "message": "'candidate' parameter should be an object"},
        ),
        (
            "invoke",
            {"object": endpoint, "operation": "getName", "operationParams": [1]},
            {"code": -32000, "message": "'operationParams' parameter should be an object"},
        ),
        (
            "invoke",
            {"operation": "getName"},
            {"code": -32000, "message": "'object' parameter is required"},
        ),
        (
            "invoke",
            {"object": 12, "operation": "getName"},
            {"code": -32000, "message": "'object' parameter should be a string"},
        ),
        (
            "subscribe",
            {"object": endpoint, "type": "OnIceCandidate"},
            {"code": 40106, "message": "Event 'OnIceCandidate' not supported"},
        ),
        (
            "unsubscribe",
            {"object": endpoint},
            {"code": -32000, "message": "'subscription' parameter is required"},
        ),
    ]  # fmt: skip
    for method, params, expected in cases:
        error = error_of(await client.call(method, params))
        assert {"code": error["code"], "message": error["message"]} == expected, (method, params)
        if error["code"] > 0:
            assert "type" in error["data"]


async def test_uri_policies(client, media_dir):
    pipeline = await client.create("MediaPipeline")
    outside = await client.call(
        "create",
        {
            "type": "RecorderEndpoint",
            "constructorParams": {"mediaPipeline": pipeline, "uri": "file:///etc/passwd.webm"},
        },
    )
    assert error_of(outside)["code"] == 40107
    climbing = await client.call(
        "create",
        {
            "type": "RecorderEndpoint",
            "constructorParams": {"mediaPipeline": pipeline, "uri": "file://../../x.mp4"},
        },
    )
    assert error_of(climbing)["code"] == 40107
    split = await client.call(
        "create",
        {
            "type": "RecorderEndpoint",
            "constructorParams": {
                "mediaPipeline": pipeline,
                "uri": f"file://{media_dir}/a.webm",
                "mediaProfile": "KURENTO_SPLIT_RECORDER",
            },
        },
    )
    assert error_of(split) == {
        "code": 40107,
        "message": "Kurento Split Recorder not supported",
        "data": {"type": "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR"},
    }
    ftp = await client.call(
        "create",
        {
            "type": "PlayerEndpoint",
            "constructorParams": {"mediaPipeline": pipeline, "uri": "ftp://host/file.mp4"},
        },
    )
    assert error_of(ftp)["code"] == 40107
    inside = await client.create(
        "RecorderEndpoint", mediaPipeline=pipeline, uri=f"file://{media_dir}/ok.mp4",
        mediaProfile="MP4",
    )  # fmt: skip
    assert await client.invoke(inside, "getUri") == f"file://{media_dir}/ok.mp4"
    assert await client.invoke(inside, "getState") == "STOP"


async def test_player_hosts_setting(open_client, media_dir):
    settings = MediaServerSettings(port=0, media_dir=media_dir, player_hosts=("127.0.0.1",),
                                   player_allow=("127.0.0.1",))
    async with MediaServer(settings) as server:
        client = await open_client(server.url)
        pipeline = await client.create("MediaPipeline")
        denied = await client.call(
            "create",
            {
                "type": "PlayerEndpoint",
                "constructorParams": {"mediaPipeline": pipeline, "uri": "http://10.1.1.1/a.m3u8"},
            },
        )
        assert error_of(denied)["code"] == 40107
        allowed = await client.create(
            "PlayerEndpoint", mediaPipeline=pipeline, uri="rtsp://127.0.0.1:8554/cam"
        )
        assert allowed.endswith("_kurento.PlayerEndpoint")


# --- events and connections (section 4.6, MediaElement of section 8) ------------------------------


async def test_subscribe_and_event_shape(client):
    pipeline = await client.create("MediaPipeline")
    a = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    b = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    first = await client.result("subscribe", {"object": a, "type": "ElementConnected"})
    second = await client.result("subscribe", {"object": a, "type": "ElementConnected"})
    assert re.fullmatch(UUID, first["value"]) and first["value"] != second["value"]
    await client.invoke(a, "connect", sink=b)  # no mediaType: AUDIO, VIDEO and DATA
    events = [await client.event("ElementConnected") for _ in range(3)]
    assert sorted(e["data"]["mediaType"] for e in events) == ["AUDIO", "DATA", "VIDEO"]
    event = events[0]
    assert event["object"] == a and event["type"] == "ElementConnected"
    data = event["data"]
    assert data["source"] == a and data["sink"] == b and data["tags"] == []
    assert data["type"] == "ElementConnected"
    assert isinstance(data["timestampMillis"], str) and data["timestampMillis"].isdigit()
    assert data["sourceMediaDescription"] == "default"
    # One handler per (session, object, event): two subscriptions, each event once.
    with pytest.raises(asyncio.TimeoutError):
        await client.event("ElementConnected", timeout=0.3)


async def test_unsubscribe_stops_events_and_unknown_subscription_is_fine(client):
    pipeline = await client.create("MediaPipeline")
    a = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    b = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    sub = (await client.result("subscribe", {"object": a, "type": "ElementDisconnected"}))["value"]
    await client.invoke(a, "connect", sink=b, mediaType="VIDEO")
    await client.invoke(a, "disconnect", sink=b, mediaType="VIDEO")
    assert (await client.event("ElementDisconnected"))["data"]["mediaType"] == "VIDEO"
    await client.result("unsubscribe", {"object": a, "subscription": sub})
    await client.result("unsubscribe", {"object": a, "subscription": "unknown"})
    await client.invoke(a, "connect", sink=b, mediaType="VIDEO")
    await client.invoke(a, "disconnect", sink=b, mediaType="VIDEO")
    with pytest.raises(asyncio.TimeoutError):
        await client.event("ElementDisconnected", timeout=0.3)


async def test_send_tags_in_events(client):
    pipeline = await client.create("MediaPipeline")
    a = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    b = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(a, "addTag", key="user", value="ann")
    await client.invoke(a, "setSendTagsInEvents", sendTagsInEvents=True)
    await client.result("subscribe", {"object": a, "type": "ElementConnected"})
    await client.invoke(a, "connect", sink=b, mediaType="AUDIO")
    event = await client.event("ElementConnected")
    assert event["data"]["tags"] == [
        {"__module__": "kurento", "__type__": "Tag", "key": "user", "value": "ann"}
    ]


async def test_connections_fan_out_replace_and_queries(client):
    pipeline = await client.create("MediaPipeline")
    source = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    viewers = [await client.create("WebRtcEndpoint", mediaPipeline=pipeline) for _ in range(3)]
    for viewer in viewers:
        await client.invoke(source, "connect", sink=viewer, mediaType="VIDEO")
    sinks = await client.invoke(source, "getSinkConnections", mediaType="VIDEO")
    assert [c["sink"] for c in sinks] == viewers
    assert sinks[0] == {
        "__module__": "kurento",
        "__type__": "ElementConnectionData",
        "source": source,
        "sink": viewers[0],
        "type": "VIDEO",
        "sourceDescription": "default",
        "sinkDescription": "default",
    }
    assert await client.invoke(source, "getSinkConnections", mediaType="AUDIO") == []
    # A sink has one source per media type: a new source replaces the old connection.
    other = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(other, "connect", sink=viewers[0], mediaType="VIDEO")
    sources = await client.invoke(viewers[0], "getSourceConnections")
    assert [(c["source"], c["type"]) for c in sources] == [(other, "VIDEO")]
    assert [c["sink"] for c in await client.invoke(source, "getSinkConnections")] == viewers[1:]
    # Releasing a sink removes its connections from the source.
    await client.result("release", {"object": viewers[1]})
    assert [c["sink"] for c in await client.invoke(source, "getSinkConnections")] == [viewers[2]]
    assert await client.invoke(source, "isMediaFlowingOut", mediaType="VIDEO") is False
    assert await client.invoke(viewers[2], "isMediaFlowingIn", mediaType="VIDEO") is False


async def test_elements_of_different_pipelines_cannot_connect(client):
    a = await client.create("WebRtcEndpoint", mediaPipeline=await client.create("MediaPipeline"))
    b = await client.create("WebRtcEndpoint", mediaPipeline=await client.create("MediaPipeline"))
    response = await client.call(
        "invoke", {"object": a, "operation": "connect", "operationParams": {"sink": b}}
    )
    assert error_of(response) == {
        "code": 40004,
        "message": "Media elements do not share pipeline",
        "data": {"type": "CONNECT_ERROR"},
    }


async def test_gstreamer_dot_and_stats_of_an_idle_endpoint(client):
    pipeline = await client.create("MediaPipeline")
    a = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    b = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    await client.invoke(a, "connect", sink=b, mediaType="VIDEO")
    dot = await client.invoke(pipeline, "getGstreamerDot")
    assert dot.startswith("digraph") and f'"{a}" -> "{b}"' in dot
    stats = await client.invoke(a, "getStats")
    assert stats[a]["__type__"] == "EndpointStats" and stats[a]["type"] == "endpoint"
    assert isinstance(stats[a]["timestampMillis"], int)


async def test_sdp_state_errors(client):
    pipeline = await client.create("MediaPipeline")
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    for operation, params, code in [
        ("processAnswer", {"answer": "v=0"}, 40209),
        ("processOffer", {"offer": ""}, 40201),
        ("processOffer", {"offer": "garbage"}, 40201),
        ("getLocalSessionDescriptor", None, 40202),
        ("getRemoteSessionDescriptor", None, 40203),
        ("createDataChannel", {}, 40111),
    ]:
        request = {"object": endpoint, "operation": operation}
        if params is not None:
            request["operationParams"] = params
        assert error_of(await client.call("invoke", request))["code"] == code, operation
    # gatherCandidates before negotiation succeeds (section 6.2, 40400 note).
    await client.invoke(endpoint, "gatherCandidates")
    offer = await client.invoke(endpoint, "generateOffer")
    assert offer.startswith("v=0") and "a=candidate" not in offer
    again = await client.call(
        "invoke", {"object": endpoint, "operation": "generateOffer", "operationParams": {}}
    )
    assert error_of(again) == {
        "code": 40208,
        "message": "Endpoint already negotiated",
        "data": {"type": "SDP_END_POINT_ALREADY_NEGOTIATED"},
    }
    local = await client.invoke(endpoint, "getLocalSessionDescriptor")
    assert local.startswith("v=0") and "m=video" in local


# --- transaction (section 4.8) ------------------------------------------------------------------


async def test_transaction_with_newref(client):
    await client.result("describe", {"object": "manager_ServerManager"})
    result = await client.result(
        "transaction",
        {
            "operations": [
                {"jsonrpc": "2.0", "id": 0, "method": "create",
                 "params": {"type": "MediaPipeline", "properties": {}}},
                {"jsonrpc": "2.0", "id": 1, "method": "create",
                 "params": {"type": "WebRtcEndpoint", "properties": {},
                            "constructorParams": {"mediaPipeline": "newref:0"}}},
            ]
        },
    )  # fmt: skip
    assert result["sessionId"] == client.session_id
    first, second = result["value"]
    assert first["id"] == 0 and second["id"] == 1
    assert first["result"]["sessionId"] == client.session_id
    pipeline = first["result"]["value"]
    assert second["result"]["value"].startswith(pipeline + "/")


async def test_transaction_stops_at_the_first_failure(client):
    result = await client.result(
        "transaction",
        {
            "operations": [
                {"jsonrpc": "2.0", "id": 0, "method": "create",
                 "params": {"type": "MediaPipeline"}},
                {"jsonrpc": "2.0", "id": 1, "method": "create", "params": {"type": "Nope"}},
                {"jsonrpc": "2.0", "id": 2, "method": "create",
                 "params": {"type": "MediaPipeline"}},
            ]
        },
    )  # fmt: skip
    responses = result["value"]
    assert len(responses) == 2
    assert responses[1]["error"]["code"] == 40108
    assert len(await client.invoke("manager_ServerManager", "getPipelines")) == 1


async def test_transaction_errors(client):
    bad_id = await client.call(
        "transaction",
        {"operations": [{"jsonrpc": "2.0", "id": 5, "method": "ping"}]},
    )
    assert error_of(bad_id) == {
        "code": 40008,
        "message": "Id of request '0' should be '0'",
        "data": {"type": "MALFORMED_TRANSACTION"},
    }
    not_array = await client.call("transaction", {"operations": {}})
    assert error_of(not_array) == {
        "code": -32000,
        "message": "'operations' parameter should be an array",
    }
    newref_outside = await client.call(
        "create", {"type": "WebRtcEndpoint", "constructorParams": {"mediaPipeline": "newref:0"}}
    )
    assert error_of(newref_outside)["code"] == 40109


# --- concurrency and garbage collection -----------------------------------------------------------


async def test_requests_run_concurrently_and_match_by_id(client):
    pipeline = await client.create("MediaPipeline")
    # getUsedCpu sleeps for its interval; pings sent after it must not wait for it.
    slow = asyncio.create_task(client.invoke("manager_ServerManager", "getUsedCpu", interval=1000))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await client.result("ping"))["value"] == "pong"
    assert loop.time() - started < 0.5
    assert not slow.done()
    await slow
    assert await client.invoke(pipeline, "getId") == pipeline


async def test_session_gc_releases_everything_of_a_vanished_client(open_client, media_dir):
    settings = MediaServerSettings(port=0, media_dir=media_dir, gc_time=0.4, gc_interval=0.05)
    async with MediaServer(settings) as server:
        client = await open_client(server.url)
        pipeline = await client.create("MediaPipeline")
        endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
        recorder = await client.create(
            "RecorderEndpoint", mediaPipeline=pipeline, uri=f"file://{media_dir}/gc.webm"
        )
        await client.invoke(endpoint, "connect", sink=recorder)
        await client.result("subscribe", {"object": endpoint, "type": "MediaStateChanged"})
        # While the socket is open nothing is collected, however long it takes.
        await asyncio.sleep(0.8)
        assert set(server.media_set.objects) == {pipeline, endpoint, recorder}
        await client.close()
        await asyncio.sleep(0.1)
        assert set(server.media_set.objects) == {pipeline, endpoint, recorder}  # not yet
        await asyncio.sleep(0.6)
        assert server.media_set.objects == {}
        assert server.media_set.sessions == {}
        assert server.media_set.refs == {}
        other = await open_client(server.url)
        assert await other.invoke("manager_ServerManager", "getPipelines") == []
        gone = await other.call("connect", {"sessionId": client.session_id})
        assert error_of(gone)["code"] == 40007


async def test_ref_and_unref(connect):
    owner = await connect()
    pipeline = await owner.create("MediaPipeline")
    other = await connect()
    await other.result("connect")
    await other.result("ref", {"object": pipeline})
    await owner.result("unref", {"object": pipeline})
    assert await other.invoke(pipeline, "getId") == pipeline  # still ref'd by the other
    await other.result("unref", {"object": pipeline})
    gone = await other.call("describe", {"object": pipeline})
    assert error_of(gone)["code"] == 40101  # no session refs it: released
    missing = await other.call("ref", {"object": pipeline})
    assert error_of(missing)["code"] == 40101


async def test_turn_url_is_checked_when_set(client):
    pipeline = await client.create("MediaPipeline")
    endpoint = await client.create("WebRtcEndpoint", mediaPipeline=pipeline)
    response = await client.call(
        "invoke",
        {
            "object": endpoint,
            "operation": "setTurnUrl",
            "operationParams": {"turnUrl": "turn:127.0.0.1"},
        },
    )
    assert error_of(response)["code"] == 40107
    await client.invoke(endpoint, "setTurnUrl", turnUrl="")
