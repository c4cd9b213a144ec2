"""The asyncio Kurento client against our media server, a real child process over a real socket
(docs/design/kurento.md "The Python client"; docs/reference/kurento-protocol.md 9.1 and 10).
Connection faults go through a TCP relay the tests control (kurento_helpers.TcpRelay)."""

from __future__ import annotations

import asyncio
import re

import pytest
from kurento_helpers import MediaServerProcess, TcpRelay, free_port

from flowengine.kurento import (
    ClientEvent,
    ClientState,
    KurentoClient,
    KurentoConnectionError,
    KurentoError,
    KurentoTimeoutError,
    MediaObject,
    SessionLostError,
)

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
async def client(media_server: MediaServerProcess):
    client = await KurentoClient.connect(media_server.url, timeout=10)
    try:
        yield client
    finally:
        await client.close()


async def negotiate(offerer: MediaObject, answerer: MediaObject) -> str:
    """SDP between two of the server's own endpoints; returns the answer."""
    offer = await offerer.generate_offer()
    answer = await answerer.process_offer(offer)
    await offerer.process_answer(answer)
    return answer


async def wait_for_event(events: list[ClientEvent], kind: str, timeout: float = 5) -> None:
    """Wait until the client reported ``kind`` (a request made before the client noticed a
    dropped socket goes out on it and fails; one made after waits for the reconnection)."""
    async with asyncio.timeout(timeout):
        while kind not in [e.kind for e in events]:
            await asyncio.sleep(0.01)


# -- sessions, objects, invoke ------------------------------------------------------------------


async def test_connect_starts_a_session(client: KurentoClient) -> None:
    assert client.state is ClientState.OPEN and client.connected
    assert re.fullmatch(UUID, client.session_id or "")
    await client.ping()


async def test_create_returns_proxies_with_kurento_ids(client: KurentoClient) -> None:
    pipeline = await client.create("MediaPipeline")
    try:
        ep = await pipeline.create("WebRtcEndpoint")
        assert re.fullmatch(UUID + "_kurento.MediaPipeline", pipeline.id)
        assert re.fullmatch(re.escape(pipeline.id) + "/" + UUID + "_kurento.WebRtcEndpoint",
                            ep.id)
        assert (pipeline.type, ep.type) == ("MediaPipeline", "WebRtcEndpoint")
        assert ep.pipeline_id == pipeline.id
        assert await ep.get_media_pipeline() is pipeline  # an object result becomes a proxy
        described = await client.get_object(ep.id)
        assert described is ep and described.type == "WebRtcEndpoint"
    finally:
        await pipeline.release()


async def test_snake_case_and_camel_case_name_the_same_operation(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        ep = await pipeline.create("WebRtcEndpoint")
        await ep.set_name("viewer-1")
        assert await ep.get_name() == "viewer-1"
        assert await ep.getName() == "viewer-1"
        assert await ep.invoke("getName") == "viewer-1"
        await ep.invoke("setName", name="viewer-2")
        assert await ep.get_name() == "viewer-2"


async def test_property_getters_and_setters(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        ep = await pipeline.create("WebRtcEndpoint")
        await ep.set_stun_server_address("10.1.2.3")
        await ep.set_stun_server_port(3478)
        assert await ep.get_stun_server_address() == "10.1.2.3"
        assert await ep.get_stun_server_port() == 3478
        assert await ep.get_media_state() == "DISCONNECTED"


async def test_process_offer_returns_the_answer_sdp(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        offerer = await pipeline.create("WebRtcEndpoint")
        answerer = await pipeline.create("WebRtcEndpoint", recvonly=True)
        offer = await offerer.generate_offer()
        answer = await answerer.process_offer(offer)
        assert offer.startswith("v=0") and answer.startswith("v=0")
        assert "m=video" in answer
        await offerer.process_answer(answer)
        assert await answerer.get_remote_session_descriptor() == offer


async def test_server_manager_lists_the_modules_kurento_client_js_needs(
        client: KurentoClient) -> None:
    info = await client.server_manager.get_info()
    assert {"core", "elements", "filters"} <= {m["name"] for m in info["modules"]}


async def test_connect_and_connection_queries(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        source = await pipeline.create("WebRtcEndpoint")
        sink = await pipeline.create("WebRtcEndpoint")
        await source.connect(sink, media_type="VIDEO")
        sources = await sink.get_source_connections()
        assert [(c["source"], c["sink"], c["type"]) for c in sources] == \
            [(source.id, sink.id, "VIDEO")]
        sinks = await source.get_sink_connections(media_type="VIDEO")
        assert [(c["source"], c["sink"]) for c in sinks] == [(source.id, sink.id)]
        await source.disconnect(sink, "VIDEO")
        assert await sink.get_source_connections() == []


async def test_get_stats_returns_a_map_of_typed_stats(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        ep = await pipeline.create("WebRtcEndpoint")
        stats = await ep.get_stats()
        assert isinstance(stats, dict) and stats
        for stat_id, stat in stats.items():
            assert stat["id"] == stat_id
            assert isinstance(stat["timestampMillis"], int)  # a number here, not a string


# -- events -------------------------------------------------------------------------------------


async def test_ice_candidates_arrive_as_events_then_gathering_done(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        offerer = await pipeline.create("WebRtcEndpoint")
        answerer = await pipeline.create("WebRtcEndpoint")
        candidates: list[dict] = []
        await answerer.on("IceCandidateFound", lambda data: candidates.append(data["candidate"]))
        done = answerer.once("IceGatheringDone", timeout=10)
        await negotiate(offerer, answerer)
        await answerer.gather_candidates()
        data = await done
        assert data["type"] == "IceGatheringDone" and data["source"] == answerer.id
        assert candidates, "no IceCandidateFound before IceGatheringDone"
        for candidate in candidates:
            assert candidate["candidate"].startswith("candidate:")
            assert isinstance(candidate["sdpMid"], str)
            assert isinstance(candidate["sdpMLineIndex"], int)


async def test_async_callbacks_and_off(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        offerer = await pipeline.create("WebRtcEndpoint")
        answerer = await pipeline.create("WebRtcEndpoint")
        seen: list[str] = []
        got_one = asyncio.Event()

        async def on_candidate(data: dict) -> None:
            await asyncio.sleep(0)
            seen.append(data["candidate"]["candidate"])
            got_one.set()

        def never(data: dict) -> None:
            raise AssertionError("removed listener called")

        sub = await answerer.on("IceCandidateFound", on_candidate)
        assert sub.subscription_id and re.fullmatch(UUID, sub.subscription_id)
        answerer.on("IceCandidateFound", never).cancel()
        done = answerer.once("IceGatheringDone", timeout=10)
        await negotiate(offerer, answerer)
        await answerer.gather_candidates()
        await done
        await asyncio.wait_for(got_one.wait(), 5)
        assert seen and all(c.startswith("candidate:") for c in seen)


async def test_subscribing_to_an_unknown_event_raises_40106(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        with pytest.raises(KurentoError) as info:
            await pipeline.on("IceCandidateFound", print)  # a pipeline has no ICE
        assert (info.value.code, info.value.type) == (40106, "MEDIA_OBJECT_EVENT_NOT_SUPPORTED")


async def test_release_cascades_and_fails_waiting_listeners(client: KurentoClient) -> None:
    pipeline = await client.create("MediaPipeline")
    ep = await pipeline.create("WebRtcEndpoint")
    waiting = asyncio.ensure_future(ep.once("IceGatheringDone"))
    await asyncio.sleep(0.2)
    await pipeline.release()
    with pytest.raises(KurentoError) as info:
        await waiting
    assert info.value.code == 40101
    with pytest.raises(KurentoError) as info:
        await ep.get_name()
    assert (info.value.code, info.value.type) == (40101, "MEDIA_OBJECT_NOT_FOUND")
    assert ep.id in info.value.message
    await pipeline.release()  # releasing twice is not an error


# -- errors ----------------------------------------------------------------------------------


async def test_server_errors_carry_kurento_codes_and_types(client: KurentoClient) -> None:
    async with await client.create("MediaPipeline") as pipeline:
        ep = await pipeline.create("WebRtcEndpoint")
        with pytest.raises(KurentoError) as info:
            await pipeline.create("NoSuchElement")
        assert (info.value.code, info.value.type) == (40108, "MEDIA_OBJECT_NOT_AVAILABLE")
        with pytest.raises(KurentoError) as info:
            await ep.no_such_method()
        assert (info.value.code, info.value.type) == (40008, "MALFORMED_TRANSACTION")
        assert "noSuchMethod" in info.value.message
        with pytest.raises(KurentoError) as info:
            await ep.process_offer(42)
        assert (info.value.code, info.value.type) == (40001, "MARSHALL_ERROR")
        with pytest.raises(KurentoError) as info:
            await client.proxy(pipeline.id + "/nope_kurento.WebRtcEndpoint").get_name()
        assert info.value.code == 40101


async def test_positional_arguments_need_known_parameter_names() -> None:
    # Checked before anything is sent: no server needed.
    client = KurentoClient("ws://127.0.0.1:9/kurento")
    ep = client.proxy("p_kurento.MediaPipeline/e_kurento.WebRtcEndpoint")
    with pytest.raises(TypeError, match="keyword arguments"):
        await ep.some_custom_method(1)
    with pytest.raises(TypeError, match="at most 1"):
        await ep.process_offer("a", "b")


async def test_connecting_to_a_closed_port_names_the_url() -> None:
    url = f"ws://127.0.0.1:{free_port()}/kurento"
    with pytest.raises(KurentoConnectionError) as info:
        await KurentoClient.connect(url, timeout=2)
    assert url in str(info.value) and info.value.url == url


# -- connection faults: drops, dead peers, timeouts, lost sessions -------------------------------


async def test_session_survives_a_dropped_socket(relay: TcpRelay) -> None:
    events: list[ClientEvent] = []
    client = await KurentoClient.connect(relay.url, timeout=10)
    client.add_listener(events.append)
    try:
        session = client.session_id
        pipeline = await client.create("MediaPipeline")
        offerer = await pipeline.create("WebRtcEndpoint")
        answerer = await pipeline.create("WebRtcEndpoint")
        candidates: list[dict] = []
        await answerer.on("IceCandidateFound", candidates.append)
        await answerer.set_name("kept")

        relay.drop()
        await wait_for_event(events, "disconnected")
        # A call made while the socket is down waits for the reconnection and goes through.
        assert await answerer.get_name() == "kept"
        assert client.session_id == session
        assert [e.kind for e in events] == ["disconnected", "reconnected"]
        assert relay.accepted == 2

        # Events subscribed before the drop now come over the new socket.
        done = answerer.once("IceGatheringDone", timeout=10)
        await negotiate(offerer, answerer)
        await answerer.gather_candidates()
        await done
        assert candidates
        # Ids are never reused across the reconnection: the server's duplicate-request cache
        # would otherwise answer this create with the earlier pipeline's id.
        other = await client.create("MediaPipeline")
        assert other.id != pipeline.id
        await other.release()
        await pipeline.release()
    finally:
        await client.close()
    assert events[-1].kind == "closed"


async def test_requests_in_flight_fail_cleanly_when_the_socket_drops(relay: TcpRelay) -> None:
    client = await KurentoClient.connect(relay.url, timeout=10)
    try:
        relay.stall()  # the request leaves, the answer never comes back
        call = asyncio.ensure_future(client.create("MediaPipeline"))
        await asyncio.sleep(0.3)
        assert not call.done()
        relay.resume()
        relay.drop()
        with pytest.raises(KurentoConnectionError, match="lost before the answer"):
            await call
        await client.ping()  # reconnected
    finally:
        await client.close()


async def test_a_request_without_answer_times_out(relay: TcpRelay) -> None:
    client = await KurentoClient.connect(relay.url, timeout=10)
    try:
        relay.stall()
        with pytest.raises(KurentoTimeoutError) as info:
            await client.request("describe", {"object": "manager_ServerManager"}, timeout=0.3)
        assert info.value.method == "describe"
    finally:
        await client.close()


async def test_ping_detects_a_dead_connection_and_reconnects(relay: TcpRelay) -> None:
    events: list[str] = []
    client = await KurentoClient.connect(relay.url, timeout=0.5, ping_interval=0.2)
    client.add_listener(lambda e: events.append(e.kind))
    try:
        relay.stall()  # nothing gets through and nothing resets: only a ping notices
        for _ in range(50):
            if "disconnected" in events:
                break
            await asyncio.sleep(0.05)
        assert "disconnected" in events
        relay.resume()
        await client.ping(timeout=5)
        assert events[:2] == ["disconnected", "reconnected"]
    finally:
        await client.close()


async def test_client_closes_after_reconnect_timeout(relay: TcpRelay) -> None:
    events: list[ClientEvent] = []
    client = await KurentoClient.connect(relay.url, timeout=2, reconnect_timeout=0.5)
    client.add_listener(events.append)
    relay.refuse()
    relay.drop()
    for _ in range(40):
        if client.state is ClientState.CLOSED:
            break
        await asyncio.sleep(0.05)
    assert client.state is ClientState.CLOSED
    assert events[-1].kind == "closed" and "could not reconnect" in events[-1].reason
    with pytest.raises(KurentoConnectionError, match="closed"):
        await client.create("MediaPipeline")


async def test_session_lost_after_a_server_restart(own_media_server: MediaServerProcess) -> None:
    events: list[ClientEvent] = []
    client = await KurentoClient.connect(own_media_server.url, timeout=10)
    client.add_listener(events.append)
    try:
        old_session = client.session_id
        pipeline = await client.create("MediaPipeline")
        ep = await pipeline.create("WebRtcEndpoint")
        waiting = asyncio.ensure_future(ep.once("IceGatheringDone"))
        await asyncio.sleep(0.2)

        await asyncio.to_thread(own_media_server.restart)  # every session is gone
        with pytest.raises(SessionLostError) as info:
            await waiting
        assert info.value.session_id == old_session
        await wait_for_event(events, "session_lost")
        with pytest.raises(SessionLostError) as info:
            await ep.get_name()
        assert (info.value.code, info.value.type) == (40007, "INVALID_SESSION")
        assert ep.id in str(info.value) and "lost the session" in str(info.value)
        with pytest.raises(SessionLostError):
            ep.on("IceCandidateFound", print)
        assert [e.kind for e in events] == ["disconnected", "session_lost"]
        assert events[-1].session_id != old_session

        # The client goes on with a new session.
        assert client.connected and client.session_id not in (None, old_session)
        fresh = await client.create("MediaPipeline")
        assert await fresh.get_media_pipeline() is fresh
        await fresh.release()
        await pipeline.release()  # gone already: not an error
    finally:
        await client.close()


async def test_resume_a_session_by_id(media_server: MediaServerProcess) -> None:
    first = await KurentoClient.connect(media_server.url, timeout=10)
    pipeline = await first.create("MediaPipeline")
    await pipeline.set_name("resumable")
    session = first.session_id
    await first.close()

    second = await KurentoClient.connect(media_server.url, session_id=session, timeout=10)
    try:
        assert second.session_id == session
        assert await second.proxy(pipeline.id).get_name() == "resumable"
        await second.proxy(pipeline.id).release()
    finally:
        await second.close()

    with pytest.raises(SessionLostError):
        await KurentoClient.connect(media_server.url, session_id="not-a-session", timeout=10)


async def test_session_garbage_collected_while_away(tmp_path) -> None:
    """A client that stays away longer than the server's GC time finds its session gone."""
    server = MediaServerProcess(tmp_path / "media", extra_args=("--gc-time", "0.5"))
    await asyncio.to_thread(server.start)
    relay = TcpRelay(server.port)
    await relay.start()
    events: list[ClientEvent] = []
    client = await KurentoClient.connect(relay.url, timeout=10, reconnect_timeout=30)
    client.add_listener(events.append)
    try:
        pipeline = await client.create("MediaPipeline")
        relay.refuse()
        relay.drop()
        await wait_for_event(events, "disconnected")
        await asyncio.sleep(2.0)  # > gc time + gc interval: the server releases the session
        relay.resume()
        await wait_for_event(events, "session_lost", timeout=10)
        with pytest.raises(SessionLostError):
            await pipeline.get_name()
        # Nothing of the old session is left on the server (this server had nothing else).
        assert await client.server_manager.get_pipelines() == []
        fresh = await client.create("MediaPipeline")
        assert await client.server_manager.get_pipelines() == [fresh]
    finally:
        await client.close()
        await relay.close()
        await asyncio.to_thread(server.stop)
