"""``WebRtcEndpoint`` on one aiortc ``RTCPeerConnection``.

Negotiation states (``NegotiationState``) and their invariants:

* ``NEW``: no peer connection yet. ``processOffer`` -> ``NEGOTIATED``; ``generateOffer`` ->
  ``OFFER_GENERATED``; ``processAnswer`` gives 40209.
* ``OFFER_GENERATED``: local offer set, remote description absent. ``processAnswer`` ->
  ``NEGOTIATED``; another offer gives 40208.
* ``NEGOTIATED``: both descriptions set; media may flow. Any offer/answer gives 40208/40210.

ICE (docs/reference/aiortc-notes.md pitfalls 1, 2, 4): the peer gets an ``RTCConfiguration`` with
exactly the configured STUN/TURN servers (none by default), host candidates only on the server's
``ice_addresses``, and remote candidates that arrive before the remote description are
buffered (at most ``MAX_PENDING_CANDIDATES``) and added once it is set. The SDP returned to
the client carries no candidates: ``gatherCandidates`` sends them one per ``IceCandidateFound``
event, then ``IceGatheringDone`` (if called before negotiation, they are sent as soon as the
local description exists).

Media: what the remote peer sends is tapped encoded (no decode) into the element's output hubs;
what the element sends comes from :class:`HubTrack`s reading the hub of whatever element is
connected to it, in the codec negotiated for each sender (pass-through when the source has the
same codec, one shared transcode otherwise).

Data channels (:mod:`~flowengine.media.engine.datachannel`): with ``useDataChannels`` the
``m=application`` section of an offer is accepted (and ``generateOffer`` offers one); without,
it is rejected in the answer as KMS rejects it (port 0), and the peer's channels never open.

Release during setup: every await of ``processOffer``, ``generateOffer``, ``processAnswer`` and
``addIceCandidate`` goes through :meth:`WebRtcEndpointImpl._step`. A release waits (at most
``PEER_CLOSE_TIMEOUT``) for the step under way, then closes the peer connection, so that the
UDP sockets a step opened (candidate gathering) are closed with it; the step then fails with
40101, as a call on a released object does.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar

import ifaddr
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from flowengine.kurento import errors, model
from flowengine.kurento.errors import KurentoError
from flowengine.kurento.jsonrpc import complex_value
from flowengine.media.elements.media_element import MediaElementImpl
from flowengine.media.engine.datachannel import DataSession
from flowengine.media.engine.hub import MediaHub
from flowengine.media.engine.ice import host_addresses, parse_turn_url, rtc_configuration
from flowengine.media.engine.latency import LatencyStat, TimedHubTrack
from flowengine.media.engine.rtc import (
    TapQueue,
    application_accepted,
    candidate_from_kurento,
    candidate_to_kurento,
    media_sections,
    reject_application,
    strip_candidates,
    tap_receiver,
)
from flowengine.media.engine.tracks import HubTrack

log = logging.getLogger("flowengine.media.webrtc")

MAX_PENDING_CANDIDATES = 200
"""Remote candidates kept while waiting for the remote description (more are dropped)."""

PEER_CLOSE_TIMEOUT = 2.0
"""Seconds ``release`` waits for the peer connection to close; the rest of the close goes on
in the background. aioice deletes each TURN allocation with up to about 30 s of
retransmissions when the TURN server no longer answers, and a release (or a server shutdown)
must not wait for that."""

_closing: set[asyncio.Task[Any]] = set()  # peer connections still closing after a release

T = TypeVar("T")


class NegotiationState(enum.Enum):
    NEW = "new"
    OFFER_GENERATED = "offer-generated"
    NEGOTIATED = "negotiated"


_ICE_STATES = {
    "new": "DISCONNECTED",
    "checking": "CONNECTING",
    "completed": "READY",
    "connected": "CONNECTED",
    "failed": "FAILED",
    "closed": "DISCONNECTED",
}
_DTLS_STATES = {
    "new": "NEW",
    "connecting": "CONNECTING",
    "connected": "CONNECTED",
    "closed": "CLOSED",
    "failed": "FAILED",
}


class WebRtcEndpointImpl(MediaElementImpl):
    remote_class: ClassVar[model.RemoteClass] = model.CLASSES["WebRtcEndpoint"]
    property_defaults: ClassVar[dict[str, Any]] = {
        "stunServerAddress": "",
        "stunServerPort": 3478,
        "turnUrl": "",
        "networkInterfaces": "",
        "iceTcp": False,
        "externalIPv4": "",
        "externalIPv6": "",
        "maxAudioRecvBandwidth": 0,
        "maxVideoRecvBandwidth": 0,
        "minVideoRecvBandwidth": 0,
        "minVideoSendBandwidth": 100,
        "maxVideoSendBandwidth": 500,
        "mtu": 1200,
        "rembParams": None,
    }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.recvonly: bool = self.params.get("recvonly") or False
        self.sendonly: bool = self.params.get("sendonly") or False
        self.state = NegotiationState.NEW
        self.pc: RTCPeerConnection | None = None
        self.local_sdp: str | None = None
        self.remote_sdp: str | None = None
        self.tracks: dict[str, HubTrack] = {}
        self.e2e_latency: dict[str, LatencyStat] = {}
        self.taps: dict[str, TapQueue] = {}
        self._pending: list[Any] = []
        self._gather_requested = False
        self._gathering_done = False
        self.media_state = "DISCONNECTED"
        self.connection_state = "DISCONNECTED"
        self._ice_state = "DISCONNECTED"
        self._dtls_state = "NEW"
        self._tasks: set[asyncio.Task[Any]] = set()
        self.use_data_channels: bool = self.params.get("useDataChannels") or False
        self.data: DataSession | None = None
        self._releasing = False
        self._steps = 0
        self._steps_done = asyncio.Event()
        self._steps_done.set()
        self._peer_closed = False

    async def start(self) -> None:
        if self.recvonly and self.sendonly:
            raise KurentoError(
                errors.MEDIA_OBJECT_ILLEGAL_PARAM_ERROR,
                "An endpoint cannot be both recvonly and sendonly",
            )

    # --- peer connection --------------------------------------------------------------------------

    def _ice_addresses(self) -> list[str] | None:
        names = [n.strip() for n in (self.get_property("networkInterfaces") or "").split(",")]
        names = [n for n in names if n]
        if not names:
            return self.ctx.settings.ice_addresses
        found = []
        for adapter in ifaddr.get_adapters():
            if adapter.nice_name in names or adapter.name in names:
                for ip in adapter.ips:
                    if isinstance(ip.ip, str):
                        found.append(ip.ip)
                    elif ip.ip[2] == 0:
                        found.append(ip.ip[0])
        return found

    def _create_pc(self) -> RTCPeerConnection:
        config = rtc_configuration(
            self.get_property("stunServerAddress"),
            self.get_property("stunServerPort"),
            self.get_property("turnUrl"),
        )
        pc = RTCPeerConnection(configuration=config)
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("iceconnectionstatechange", self._on_ice_state)
        self.pc = pc
        if self.use_data_channels:
            self.data = DataSession(pc, self.push_data, self._data_event)
        return pc

    async def _step(self, awaitable: Awaitable[T]) -> T:
        """Await one step of the setup (see the module docstring)."""
        if self._releasing:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise self._released_error()
        self._steps += 1
        self._steps_done.clear()
        try:
            result = await awaitable
        finally:
            self._steps -= 1
            if not self._steps:
                self._steps_done.set()
        if self._releasing:
            if self._peer_closed:  # the release gave up waiting for this step: sweep after it
                await _close_ice_sockets(self.pc)
            raise self._released_error()
        return result

    def _released_error(self) -> KurentoError:
        return KurentoError(errors.MEDIA_OBJECT_NOT_FOUND, f"Object '{self.id}' not found")

    def _send_track(self, kind: str) -> HubTrack:
        track = self.tracks.get(kind)
        if track is None:
            stat = self.e2e_latency.setdefault(kind, LatencyStat(kind))
            track = TimedHubTrack(kind, stat)
            track.set_hub(self.input_hub(kind))
            self.tracks[kind] = track
        return track

    def _transceivers(self) -> list[Any]:
        """The negotiated transceivers (a pre-created one the offer did not use has no mid)."""
        assert self.pc is not None
        return [t for t in self.pc.getTransceivers() if t.mid is not None]

    def _prefer_source_codec(self, transceiver: Any) -> None:
        """Put the codec of what feeds this endpoint first, so a sender can pass it through
        (aiortc only honours preferences set before the remote description: pitfall 3)."""
        hub = self.input_hub(transceiver.kind)
        wanted = hub.expected_format if hub is not None else None
        if not wanted:
            return
        codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
        first = [c for c in codecs if c.mimeType.split("/")[1].lower() == wanted]
        if first:
            transceiver.setCodecPreferences(first + [c for c in codecs if c not in first])

    def _after_negotiation(self) -> None:
        """Tap receivers and point each send track at its negotiated codec."""
        for transceiver in self._transceivers():
            kind = transceiver.kind
            codecs = getattr(transceiver, "_codecs", None) or []
            if not self.sendonly:
                hub = self.output_hub(kind)
                self.taps[kind] = tap_receiver(transceiver.receiver, hub, kind)
                if codecs:
                    hub.format_hint = codecs[0].name.lower()
            track = transceiver.sender.track
            if isinstance(track, HubTrack):
                track.sender = transceiver.sender
                if codecs:
                    track.set_format(codecs[0].name.lower())

    async def _set_local(self, description: RTCSessionDescription) -> None:
        assert self.pc is not None
        with host_addresses(self._ice_addresses()):
            await self._step(self.pc.setLocalDescription(description))
        self.local_sdp = self.pc.localDescription.sdp

    def input_changed(self, kind: str, hub: MediaHub | None) -> None:
        track = self.tracks.get(kind)
        if track is not None:
            track.set_hub(hub)

    def on_keyframe_request(self) -> None:
        """Ask the remote peer for a key frame (RTCP PLI on each video stream)."""
        if self.pc is None:
            return
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind != "video":
                continue
            receiver = transceiver.receiver
            for source in receiver.getSynchronizationSources():
                self._spawn(receiver._send_rtcp_pli(source.source))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- SdpEndpoint ------------------------------------------------------------------------------

    async def process_offer(self, offer: str) -> str:
        if self._releasing:
            raise self._released_error()
        if self.state is not NegotiationState.NEW:
            raise KurentoError(
                errors.SDP_END_POINT_ALREADY_NEGOTIATED, "Endpoint already negotiated"
            )
        if not offer.strip():
            raise KurentoError(errors.SDP_PARSE_ERROR, "Empty offer not valid")
        _check_sdp(offer)
        pc = self._create_pc()
        try:
            if not self.recvonly:
                for kind in ("audio", "video"):
                    if self.input_hub(kind) is not None and f"m={kind}" in offer:
                        self._prefer_source_codec(pc.addTransceiver(kind, direction="sendrecv"))
            await self._step(
                pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            )
        except KurentoError:
            raise
        except Exception as exc:
            await self._reset_pc()
            raise KurentoError(errors.SDP_PARSE_ERROR, f"Error parsing SDP: {exc}") from None
        self.remote_sdp = offer
        refuse_data = pc.sctp is not None and not self.use_data_channels
        if refuse_data:
            _refuse_sctp(pc)
        try:
            for transceiver in self._transceivers():
                offered = transceiver._offerDirection or "sendrecv"
                can_send = offered in ("sendrecv", "sendonly") and not self.recvonly
                can_recv = offered in ("sendrecv", "recvonly") and not self.sendonly
                if can_send:
                    transceiver.sender.replaceTrack(self._send_track(transceiver.kind))
                transceiver.direction = (
                    "sendrecv" if can_send and can_recv
                    else "sendonly" if can_send
                    else "recvonly" if can_recv
                    else "inactive"
                )  # fmt: skip
            self._after_negotiation()
            answer = await self._step(pc.createAnswer())
            await self._set_local(answer)
        except KurentoError:
            raise
        except Exception as exc:
            await self._reset_pc()
            raise KurentoError(
                errors.SDP_END_POINT_PROCESS_OFFER_ERROR, f"Error processing offer: {exc}"
            ) from None
        if refuse_data:
            self.local_sdp = reject_application(self.local_sdp or "")
        self.state = NegotiationState.NEGOTIATED
        await self._flush_candidates()
        self._after_local_description()
        return strip_candidates(self.local_sdp or "")

    async def generate_offer(self, options: dict[str, Any] | None = None) -> str:
        if self._releasing:
            raise self._released_error()
        if self.state is not NegotiationState.NEW:
            raise KurentoError(
                errors.SDP_END_POINT_ALREADY_NEGOTIATED, "Endpoint already negotiated"
            )
        options = options or {}
        pc = self._create_pc()
        try:
            for kind, key in (("audio", "offerToReceiveAudio"), ("video", "offerToReceiveVideo")):
                receive = options.get(key, True) is not False and not self.sendonly
                send = not self.recvonly
                if not (send or receive):
                    continue
                direction = "sendrecv" if send and receive else "sendonly" if send else "recvonly"
                transceiver = pc.addTransceiver(kind, direction=direction)
                if send:
                    self._prefer_source_codec(transceiver)
                    transceiver.sender.replaceTrack(self._send_track(kind))
            if self.use_data_channels:
                # An SCTP transport without a channel: offered after the media, as KMS does.
                pc._RTCPeerConnection__createSctpTransport()  # type: ignore[attr-defined]
            offer = await self._step(pc.createOffer())
            await self._set_local(offer)
            self._after_negotiation()
        except KurentoError:
            raise
        except Exception as exc:
            await self._reset_pc()
            raise KurentoError(
                errors.SDP_END_POINT_GENERATE_OFFER_ERROR, f"Error generating offer: {exc}"
            ) from None
        self.state = NegotiationState.OFFER_GENERATED
        self._after_local_description()
        return strip_candidates(self.local_sdp or "")

    async def process_answer(self, answer: str) -> str:
        if self._releasing:
            raise self._released_error()
        if self.state is NegotiationState.NEGOTIATED:
            raise KurentoError(
                errors.SDP_END_POINT_ANSWER_ALREADY_PROCCESED, "Sdp Answer already processed"
            )
        if self.state is not NegotiationState.OFFER_GENERATED or self.pc is None:
            raise KurentoError(
                errors.SDP_END_POINT_NOT_OFFER_GENERATED,
                "Offer not generated. It is not possible to process an answer.",
            )
        if not answer.strip():
            raise KurentoError(errors.SDP_PARSE_ERROR, "Empty answer not valid")
        _check_sdp(answer)
        try:
            await self._step(
                self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            )
        except KurentoError:
            raise
        except Exception as exc:
            raise KurentoError(
                errors.SDP_END_POINT_PROCESS_ANSWER_ERROR, f"Error processing answer: {exc}"
            ) from None
        self.remote_sdp = answer
        self.state = NegotiationState.NEGOTIATED
        self._after_negotiation()
        await self._flush_candidates()
        return strip_candidates(self.local_sdp or "")

    def get_local_session_descriptor(self) -> str:
        if self.local_sdp is None:
            raise KurentoError(errors.SDP_END_POINT_NO_LOCAL_SDP_ERROR, "No local SDP")
        return self.local_sdp

    def get_remote_session_descriptor(self) -> str:
        if self.remote_sdp is None:
            raise KurentoError(errors.SDP_END_POINT_NO_REMOTE_SDP_ERROR, "No remote SDP")
        return self.remote_sdp

    async def _reset_pc(self) -> None:
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        self.pc = None
        self.tracks.clear()
        self.taps.clear()

    # --- ICE --------------------------------------------------------------------------------------

    def gather_candidates(self) -> None:
        """Send every local candidate as ``IceCandidateFound``, then ``IceGatheringDone``.

        Before any negotiation this succeeds and the candidates follow the local description.
        A second call is a no-op (the candidates were already sent).
        """
        self._gather_requested = True
        if self.local_sdp is not None:
            self._emit_candidates()

    def _after_local_description(self) -> None:
        if self._gather_requested:
            self._emit_candidates()

    def _emit_candidates(self) -> None:
        if self._gathering_done or self.pc is None or self._releasing:
            return
        self._gathering_done = True
        seen: set[int] = set()
        # In m-line order: bundled m-lines share one transport, whose candidates must name the
        # first m-line of the group (the BUNDLE tag), which may be the data channels' section
        # (a browser that creates its channel before adding tracks offers it first). Chromium
        # accepts candidates of a non-tag m-line but never pairs them: it only connected
        # through peer-reflexive candidates, and with relay-only ICE not at all.
        for index, mid, transport in self._ice_transports():
            gatherer = transport.iceGatherer
            if id(gatherer) in seen:
                continue  # bundled m-lines share one transport and its candidates
            seen.add(id(gatherer))
            self._emit_ice_state(index, "GATHERING")
            for candidate in gatherer.getLocalCandidates():
                external = self._external_address(candidate.ip)
                self.emit(
                    "IceCandidateFound",
                    candidate=candidate_to_kurento(candidate, mid, index, external),
                )
        self.emit("IceGatheringDone")

    def _ice_transports(self) -> list[tuple[int, str | None, Any]]:
        """``(m-line index, mid, RTCIceTransport)`` of each accepted m-line of the local
        description, in m-line order."""
        if self.pc is None:
            return []
        by_mid: dict[str, Any] = {
            t.mid: t.sender.transport.transport for t in self._transceivers()
        }
        sctp = self.pc.sctp
        if sctp is not None and sctp.mid is not None:
            by_mid[sctp.mid] = sctp.transport.transport
        found = []
        for index, section in enumerate(media_sections(self.local_sdp or "")):
            transport = by_mid.get(section.mid or "")
            if section.port != 0 and transport is not None:
                found.append((index, section.mid, transport))
        return found

    def _external_address(self, ip: str) -> str | None:
        if ":" in ip:
            return self.get_property("externalIPv6") or None
        return self.get_property("externalIPv4") or None

    async def add_ice_candidate(self, candidate: dict[str, Any]) -> None:
        try:
            parsed = candidate_from_kurento(candidate)
        except ValueError as exc:
            raise KurentoError(
                errors.ICE_ADD_CANDIDATE_ERROR, f"Error adding candidate: {exc}"
            ) from None
        if parsed is None or self._releasing:
            return  # end of candidates: aioice needs no marker; a releasing endpoint none
        if self.pc is None or self.pc.remoteDescription is None:
            # aiortc drops candidates added before the remote description (pitfall 4).
            if len(self._pending) < MAX_PENDING_CANDIDATES:
                self._pending.append(parsed)
            else:
                log.warning("%s: too many early ICE candidates, dropping one", self.id)
            return
        await self._add_candidate(parsed)

    async def _add_candidate(self, candidate: Any) -> None:
        assert self.pc is not None
        try:
            await self._step(self.pc.addIceCandidate(candidate))
        except KurentoError:
            raise
        except Exception as exc:
            raise KurentoError(
                errors.ICE_ADD_CANDIDATE_ERROR, f"Error adding candidate: {exc}"
            ) from None

    async def _flush_candidates(self) -> None:
        pending, self._pending = self._pending, []
        for candidate in pending:
            if self._releasing:
                raise self._released_error()
            try:
                await self._add_candidate(candidate)
            except KurentoError as exc:
                if self._releasing:
                    raise
                log.warning("%s: buffered candidate rejected: %s", self.id, exc.message)

    # --- state events -----------------------------------------------------------------------------

    def _emit_ice_state(self, stream: int, state: str) -> None:
        self.emit("IceComponentStateChanged", streamId=stream, componentId=1, state=state)

    def _on_ice_state(self) -> None:
        if self.pc is None or self._releasing:
            return
        state = _ICE_STATES.get(self.pc.iceConnectionState, "DISCONNECTED")
        if state != self._ice_state:
            self._ice_state = state
            self._emit_ice_state(0, state)
            if state in ("CONNECTED", "READY"):
                pair = self._selected_pair()
                if pair is not None:
                    self.emit("NewCandidatePairSelected", candidatePair=pair)

    def _on_connection_state(self) -> None:
        if self.pc is None or self._releasing:
            return
        pc_state = self.pc.connectionState
        dtls = {"connected": "CONNECTED", "failed": "FAILED", "closed": "CLOSED"}.get(pc_state)
        if pc_state == "connecting":
            dtls = "CONNECTING"
        if dtls is not None and dtls != self._dtls_state:
            self._dtls_state = dtls
            self.emit(
                "DtlsConnectionStateChange",
                streamId="0",
                componentId="1",
                connectionId=self.id,
                state=dtls,
            )
        new = "CONNECTED" if pc_state == "connected" else "DISCONNECTED"
        if new != self.connection_state:
            old, self.connection_state = self.connection_state, new
            self.emit("ConnectionStateChanged", oldState=old, newState=new)
            self.emit("MediaStateChanged", oldState=old, newState=new)
            self.media_state = new
            self.emit("MediaSessionStarted" if new == "CONNECTED" else "MediaSessionTerminated")

    def _ice_transport(self) -> Any:
        transports = self._ice_transports()
        return transports[0][2] if transports else None

    def _selected_pair(self) -> dict[str, Any] | None:
        transport = self._ice_transport()
        connection = getattr(transport, "_connection", None)
        nominated = getattr(connection, "_nominated", None) or {}
        pair = nominated.get(1)
        if pair is None:
            return None
        return complex_value(
            "IceCandidatePair",
            {
                "streamId": "0",
                "componentId": 1,
                "localCandidate": "candidate:" + pair.local_candidate.to_sdp(),
                "remoteCandidate": "candidate:" + pair.remote_candidate.to_sdp(),
            },
        )

    def set_turn_url(self, turn_url: str) -> None:
        """``user:password@address:port[?transport=udp|tcp|tls]``; an empty string clears it."""
        if turn_url:
            try:
                parse_turn_url(turn_url)
            except ValueError as exc:
                raise KurentoError(errors.MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, str(exc)) from None
        self._props["turnUrl"] = turn_url

    # --- read-only properties ---------------------------------------------------------------------

    def get_media_state(self) -> str:
        return self.media_state

    def get_connection_state(self) -> str:
        return self.connection_state

    def get_ice_candidate_pairs(self) -> list[dict[str, Any]]:
        pair = self._selected_pair()
        return [pair] if pair is not None else []

    def get_ice_connection_state(self) -> list[dict[str, Any]]:
        if self.pc is None:
            return []
        return [
            complex_value(
                "IceConnection", {"streamId": "0", "componentId": 1, "state": self._ice_state}
            )
        ]

    def get_dtls_connection_state(self) -> list[dict[str, Any]]:
        if self.pc is None:
            return []
        return [
            complex_value(
                "DtlsConnection",
                {
                    "streamId": "0",
                    "componentId": "1",
                    "connectionId": self.id,
                    "state": self._dtls_state,
                },
            )
        ]

    # --- other methods ----------------------------------------------------------------------------

    def request_keyframe(self) -> None:
        """As KMS: a key frame in the video this endpoint sends, from whatever feeds it (a
        shared encoder, the key-frame bridge, or a PLI to the publisher upstream)."""
        track = self.tracks.get("video")
        if track is None or track.sender is None:
            raise KurentoError(
                errors.MEDIA_OBJECT_OPERATION_NOT_SUPPORTED,
                "Keyframe request failed (must be requested from a subscriber element)",
            )
        track.request_keyframe()

    # --- data channels ----------------------------------------------------------------------------

    def _data_session(self) -> DataSession:
        """The data session, once negotiated with an accepted ``m=application`` (KMS's
        ``get-data-channel-supported``); 40111 otherwise."""
        negotiated = self.state is NegotiationState.NEGOTIATED
        if (
            self.data is None
            or not negotiated
            or not application_accepted(self.remote_sdp or "")
            or not application_accepted(self.local_sdp or "")
        ):
            raise KurentoError(
                errors.MEDIA_OBJECT_OPERATION_NOT_SUPPORTED, "Data channels are not supported"
            )
        return self.data

    def create_data_channel(
        self,
        label: str = "",
        ordered: bool = True,
        max_packet_life_time: int = -1,
        max_retransmits: int = -1,
        protocol: str = "",
    ) -> None:
        session = self._data_session()
        lifetime = max(max_packet_life_time, -1)
        retransmits = max(max_retransmits, -1)
        if lifetime != -1 and retransmits != -1:
            # Both are incompatible (W3C RTCDataChannelInit); KMS's message.
            raise KurentoError(errors.MEDIA_OBJECT_ILLEGAL_PARAM_ERROR, "Syntax error")
        try:
            session.create(label, ordered, lifetime, retransmits, protocol)
        except Exception as exc:
            log.warning("%s: creating a data channel failed: %r", self.id, exc)
            raise KurentoError(errors.UNEXPECTED_ERROR, "Can not create data channel") from None

    def close_data_channel(self, channel_id: int) -> None:
        self._data_session().close(channel_id)

    def receive_data(self, message: str | bytes) -> None:
        if self.data is not None and not self._releasing:
            self.data.send(message)

    def _data_event(self, event: str, channel_id: int) -> None:
        if not self._releasing:
            self.emit(event, channelId=channel_id)

    async def get_stats(self, media_type: str | None = None) -> dict[str, Any]:
        stats = super().get_stats(media_type)
        now = int(time.time() * 1000)
        element = stats.pop(self.id)
        stats[self.id] = {**element, "__type__": "EndpointStats", "type": "endpoint",
                          **self._e2e_stats(media_type)}  # fmt: skip
        if self.pc is None:
            return stats
        if media_type in (None, "DATA"):
            with contextlib.suppress(KurentoError):  # no data session: no data stats (KMS)
                stats.update(self._data_session().stats(now))
        if media_type == "DATA":
            return stats
        kinds = {"AUDIO": "audio", "VIDEO": "video"}
        wanted = kinds.get(media_type) if media_type else None
        report = await self.pc.getStats()
        for entry in report.values():
            kind = getattr(entry, "kind", None)
            if wanted is not None and kind is not None and kind != wanted:
                continue
            converted = _convert_stat(entry, now, self.taps.get(kind or ""))
            if converted is not None:
                stats[converted["id"]] = converted
        return stats

    def _e2e_stats(self, media_type: str | None) -> dict[str, Any]:
        """``E2ELatency`` (KMS 7) while the pipeline measures latencies, and the KMS 6 fields
        ``audioE2ELatency``/``videoE2ELatency`` (ns, 0 without a figure) that 7.0 removed and
        the JavaScript loopback-stats tutorial still reads."""
        kinds = [k for k in ("audio", "video") if media_type in (None, k.upper())]
        stats = [self.e2e_latency[k] for k in kinds if k in self.e2e_latency]
        entries = [s.to_kurento() for s in stats] if self.latency_stats() else []
        legacy = {f"{e['type'].lower()}E2ELatency": e["avg"] for e in entries}
        return {
            "E2ELatency": entries,
            "audioE2ELatency": legacy.get("audioE2ELatency", 0.0),
            "videoE2ELatency": legacy.get("videoE2ELatency", 0.0),
        }

    # --- release ----------------------------------------------------------------------------------

    async def release(self) -> None:
        self._releasing = True
        for task in list(self._tasks):
            task.cancel()
        for track in self.tracks.values():
            track.stop()
        if self.pc is not None:
            # Closing the peer under a step would leave the sockets it opens afterwards
            # (aiortc gathers after checking that the peer is open): wait for it first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._steps_done.wait(), PEER_CLOSE_TIMEOUT)
            self._peer_closed = True
            closing = asyncio.ensure_future(_close_peer(self.pc))
            _closing.add(closing)
            closing.add_done_callback(_closed)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(closing), PEER_CLOSE_TIMEOUT)
        await super().release()


async def _close_peer(pc: RTCPeerConnection) -> None:
    await pc.close()
    await _close_ice_sockets(pc)


async def _close_ice_sockets(pc: RTCPeerConnection | None) -> None:
    """Close the sockets aioice opened for ``pc`` after it was closed (a gathering that was
    under way). aioice's ``Connection.close`` closes whatever ``_protocols`` holds."""
    if pc is None:
        return
    transports = {id(t.receiver.transport.transport): t.receiver.transport.transport
                  for t in pc.getTransceivers()}  # fmt: skip
    if pc.sctp is not None:
        transports[id(pc.sctp.transport.transport)] = pc.sctp.transport.transport
    for transport in transports.values():
        connection = transport._connection
        if connection._protocols:
            with contextlib.suppress(Exception):
                await connection.close()


def _refuse_sctp(pc: RTCPeerConnection) -> None:
    """Keep aiortc from starting SCTP for an offer's data channels that the answer rejects:
    its connect step starts SCTP only for transports whose remote ICE parameters it holds."""
    remote_ice = pc._RTCPeerConnection__remoteIce  # type: ignore[attr-defined]
    remote_ice.pop(pc.sctp, None)


def _closed(task: asyncio.Task[Any]) -> None:
    _closing.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("closing a peer connection failed: %r", task.exception())


def _check_sdp(sdp: str) -> None:
    """40201 for text that is not an SDP with at least one media section (aiortc would accept
    some such text and answer with no media at all)."""
    if not sdp.lstrip().startswith("v=0") or "\nm=" not in sdp:
        raise KurentoError(errors.SDP_PARSE_ERROR, "Error parsing SDP")


def _convert_stat(entry: Any, now: int, tap: TapQueue | None) -> dict[str, Any] | None:
    """An aiortc stats entry as Kurento's RTC*Stats (only RTP streams and the transport)."""
    base = {"__module__": "kurento", "id": entry.id, "timestampMillis": now}
    rtp_common = {
        "associateStatsId": "",
        "isRemote": False,
        "mediaTrackId": "",
        "transportId": getattr(entry, "transportId", ""),
        "codecId": "",
        "firCount": 0,
        "pliCount": 0,
        "nackCount": 0,
        "sliCount": 0,
        "remb": 0,
        "fractionLost": 0.0,
    }
    if entry.type == "inbound-rtp":
        return {
            **base,
            **rtp_common,
            "__type__": "RTCInboundRTPStreamStats",
            "type": "inboundrtp",
            "ssrc": str(entry.ssrc),
            "packetsLost": entry.packetsLost,
            "packetsReceived": entry.packetsReceived,
            "bytesReceived": tap.bytes if tap is not None else 0,
            "jitter": float(entry.jitter),
        }
    if entry.type == "outbound-rtp":
        return {
            **base,
            **rtp_common,
            "__type__": "RTCOutboundRTPStreamStats",
            "type": "outboundrtp",
            "ssrc": str(entry.ssrc),
            "packetsLost": 0,
            "packetsSent": entry.packetsSent,
            "bytesSent": entry.bytesSent,
            "targetBitrate": 0.0,
            "roundTripTime": 0.0,
        }
    if entry.type == "transport":
        return {
            **base,
            "__type__": "RTCTransportStats",
            "type": "transport",
            "bytesSent": entry.bytesSent,
            "bytesReceived": entry.bytesReceived,
            "rtcpTransportStatsId": "",
            "activeConnection": entry.dtlsState == "connected",
            "selectedCandidatePairId": "",
            "localCertificateId": "",
            "remoteCertificateId": "",
        }
    return None
