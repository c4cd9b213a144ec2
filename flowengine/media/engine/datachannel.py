"""The data channels of one WebRtcEndpoint, as KMS 7.3 handles them.

KMS (kms-elements ``kmswebrtcsession.c``, ``kmswebrtcdatasessionbin.c``,
``WebRtcEndpointImpl.cpp``) wires exactly one data channel of a session to the element
(``MAX_DATA_CHANNELS 1``): the first channel that opens, whoever created it. Its messages leave
the element through its DATA output (to every sink connected for DATA); what reaches the
element's DATA input is sent on it, text as text and binary as binary (the PPID of the message
it came from is kept). A channel that opens while another is wired is closed at once and raises
no event. ``DataChannelOpened``/``DataChannelClosed`` carry the SCTP stream id of the wired
channel; KMS 7.3 raises each of them twice (``onDataChannelOpened`` emits the same signal in two
consecutive blocks), and :class:`DataSession` reports them twice too.

Counters as KMS's stats report them: ``dataChannelsOpened``/``dataChannelsClosed`` count every
channel of the session (wired or not) once it opened/closed; each live channel has its own
message and byte counts (``RTCDataChannelStats``). Messages sent on a channel whose SCTP buffer
already holds :data:`MAX_BUFFERED_BYTES` are dropped (a sink that cannot keep up must not grow
the server without bound).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.exceptions import InvalidStateError

from flowengine.kurento.jsonrpc import complex_value

log = logging.getLogger("flowengine.media.datachannel")

MAX_BUFFERED_BYTES = 4 * 1024 * 1024
"""Bytes a channel may have queued for sending before further messages are dropped."""

MAX_PARAMETER = 65535
"""KMS caps ``maxPacketLifeTime`` and ``maxRetransmits`` to an unsigned short."""

Message = str | bytes


class _Channel:
    """One data channel and its counters."""

    def __init__(self, channel: RTCDataChannel):
        self.channel = channel
        self.stats_id = str(uuid.uuid4())
        self.messages_sent = 0
        self.bytes_sent = 0
        self.messages_received = 0
        self.bytes_received = 0
        self.counted_open = False

    def stats(self, now: int) -> dict[str, Any]:
        channel = self.channel
        return complex_value(
            "RTCDataChannelStats",
            {
                "id": self.stats_id,
                "type": "datachannel",
                "timestampMillis": now,
                "label": channel.label,
                "protocol": channel.protocol,
                "datachannelid": channel.id if channel.id is not None else 0,
                "state": channel.readyState,
                "messagesSent": self.messages_sent,
                "bytesSent": self.bytes_sent,
                "messagesReceived": self.messages_received,
                "bytesReceived": self.bytes_received,
            },
        )


def _size(message: Message) -> int:
    return len(message.encode("utf-8") if isinstance(message, str) else message)


class DataSession:
    """The data channels of one peer connection (see the module docstring).

    ``on_message`` gets each message of the wired channel; ``on_event(name, channel_id)`` is
    called for ``DataChannelOpened`` and ``DataChannelClosed``.
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        on_message: Callable[[Message], None],
        on_event: Callable[[str, int], None],
    ):
        self.pc = pc
        self.on_message = on_message
        self.on_event = on_event
        self.stats_id = str(uuid.uuid4())
        self.channels: list[_Channel] = []
        self.wired: _Channel | None = None
        self.opened = 0
        self.closed = 0
        self.dropped = 0
        pc.on("datachannel", self._track)

    # --- channels ---------------------------------------------------------------------------------

    def create(
        self,
        label: str,
        ordered: bool,
        max_packet_life_time: int,
        max_retransmits: int,
        protocol: str,
    ) -> None:
        """A channel opened from this side (``createDataChannel``; parameters already checked:
        a negative value means unset). It opens once the SCTP association is up."""
        lifetime = min(max_packet_life_time, MAX_PARAMETER) if max_packet_life_time >= 0 else None
        retransmits = min(max_retransmits, MAX_PARAMETER) if max_retransmits >= 0 else None
        channel = self.pc.createDataChannel(
            label,
            maxPacketLifeTime=lifetime,
            maxRetransmits=retransmits,
            ordered=ordered,
            protocol=protocol,
        )
        self._track(channel)

    def close(self, channel_id: int) -> None:
        """Close the channel of SCTP stream ``channel_id`` (unknown ids are ignored, as KMS)."""
        for record in self.channels:
            if record.channel.id == channel_id:
                record.channel.close()
                return
        log.debug("no data channel with stream id %s", channel_id)

    def _track(self, channel: RTCDataChannel) -> None:
        record = _Channel(channel)
        self.channels.append(record)
        channel.on("open", lambda: self._opened(record))
        channel.on("close", lambda: self._closed(record))
        channel.on("message", lambda message: self._received(record, message))
        if channel.readyState == "open":  # a channel the remote peer opened is open already
            self._opened(record)

    def _opened(self, record: _Channel) -> None:
        if record.counted_open:
            return
        record.counted_open = True
        self.opened += 1
        if self.wired is not None:
            record.channel.close()  # KMS: no more than one data channel per session
            return
        self.wired = record
        for _ in range(2):
            self.on_event("DataChannelOpened", record.channel.id)

    def _closed(self, record: _Channel) -> None:
        if record not in self.channels:
            return
        self.channels.remove(record)
        if not record.counted_open:
            return
        self.closed += 1
        if record is self.wired:
            self.wired = None
            for _ in range(2):
                self.on_event("DataChannelClosed", record.channel.id)

    # --- messages ---------------------------------------------------------------------------------

    def _received(self, record: _Channel, message: Message) -> None:
        record.messages_received += 1
        record.bytes_received += _size(message)
        if record is self.wired:
            self.on_message(message)

    def send(self, message: Message) -> None:
        """Send on the wired channel; dropped when there is none, or it is not open or full."""
        record = self.wired
        if record is None:
            return
        channel = record.channel
        if channel.bufferedAmount > MAX_BUFFERED_BYTES:
            self._drop("the channel's send buffer is full")
            return
        try:
            channel.send(message)
        except (InvalidStateError, ValueError) as exc:  # closing, or larger than the peer takes
            self._drop(str(exc) or type(exc).__name__)
            return
        record.messages_sent += 1
        record.bytes_sent += _size(message)

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("data channel message dropped (%d so far): %s", self.dropped, reason)

    # --- stats ------------------------------------------------------------------------------------

    def stats(self, now: int) -> dict[str, dict[str, Any]]:
        """``RTCPeerConnectionStats`` (type ``session``) and one ``RTCDataChannelStats`` per
        live channel, keyed by their ids."""
        report = {
            self.stats_id: complex_value(
                "RTCPeerConnectionStats",
                {
                    "id": self.stats_id,
                    "type": "session",
                    "timestampMillis": now,
                    "dataChannelsOpened": self.opened,
                    "dataChannelsClosed": self.closed,
                },
            )
        }
        for record in self.channels:
            report[record.stats_id] = record.stats(now)
        return report
