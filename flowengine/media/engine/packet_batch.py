"""One frame's RTP packets to one viewer: written into one reused buffer, SRTP-protected in
place and handed to the kernel in one system call.

Why: in pass-through a source with N viewers is sent N times, so the server's capacity is its
CPU per sent packet. Through the public APIs a packet costs a ``bytes`` for header and payload,
a copy into pylibsrtp's buffer and one out of it (``Session.protect``), asyncio's ``sendto``
and a system call, in which the kernel spends as much again (``bench/media/viewers.py``). Here:

* :class:`PacketBatch` is a scratch area of datagram slots, one per event-loop thread and
  shared by every viewer (a frame is written and sent before the next viewer's begins, so
  nothing lives in it between calls). :meth:`PacketBatch.send_rtp` packs each packet's header
  and copies its payload into a slot, runs libsrtp's ``srtp_protect`` on the slot in place
  (through pylibsrtp's compiled binding, on the DTLS transport's own session; the length
  libsrtp writes back *is* the slot's iovec length, its low ``int``), and sends all slots with
  one ``sendmmsg`` (Linux; ``sendto`` per packet elsewhere).
* Segmentation offload (Linux ``UDP_SEGMENT``): consecutive packets of one size (and a last,
  smaller one) go as one message whose iovecs are their slots, and the kernel cuts it into
  datagrams at the slot boundaries, passing it through the IP stack once instead of once per
  packet. A 640x480 frame of 6 FU-A packets is one or two messages. A route whose kernel or
  device refuses it sends one message per packet from then on.
* When the socket would block (or fails), the rest goes through the asyncio transport, which
  buffers and reports errors as it always does; while that transport holds a backlog, every
  packet goes through it, so datagrams never overtake each other.

pylibsrtp internals used (pinned in pyproject; ``PRIVATE_API`` in
``tests/media/test_rtp_sender.py`` names each): ``pylibsrtp._binding`` (its ``ffi`` and
``lib.srtp_protect``) and ``Session._srtp``. Without them (another pylibsrtp) each packet goes
through the public ``Session.protect`` instead.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import sys
import threading
from typing import Any

import cffi

log = logging.getLogger("flowengine.media.rtp")

SLOT_SIZE = 1536
"""Bytes per datagram slot: an MTU-sized RTP packet and its SRTP trailer, 16-byte aligned."""

MAX_BATCH = 64
"""Slots of one batch (a longer frame is sent in several batches)."""

SRTP_TRAILER_MAX = 16 + 128  # SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN (libsrtp's srtp.h)

try:  # the compiled binding pylibsrtp's Session wraps
    from pylibsrtp import _binding as _srtp_binding

    _srtp_ffi: Any = _srtp_binding.ffi
    _srtp_protect: Any = _srtp_binding.lib.srtp_protect
    _SRTP_OK = int(_srtp_binding.lib.srtp_err_status_ok)
except (ImportError, AttributeError):  # pragma: no cover - another pylibsrtp
    _srtp_ffi = _srtp_protect = None
    _SRTP_OK = 0

_ffi = cffi.FFI()
_ffi.cdef(
    """
    struct iovec { void *iov_base; size_t iov_len; };
    struct msghdr {
        void *msg_name; unsigned int msg_namelen; struct iovec *msg_iov; size_t msg_iovlen;
        void *msg_control; size_t msg_controllen; int msg_flags;
    };
    struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
    struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; };
    int sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags);
    """
)
_sendmmsg: Any = None
if sys.platform.startswith("linux"):  # glibc and musl lay these structs out alike
    try:
        _sendmmsg = _ffi.dlopen(None).sendmmsg
    except (OSError, AttributeError):  # pragma: no cover - a libc without sendmmsg
        _sendmmsg = None
_MSG_DONTWAIT = 0x40
_SOL_UDP, _UDP_SEGMENT = 17, 103  # <netinet/udp.h>, Linux 4.18+
_CMSG_HEADER = _ffi.sizeof("struct cmsghdr")  # CMSG_ALIGN'd on Linux (16 on 64-bit)
_CMSG_LEN = _CMSG_HEADER + 2  # CMSG_LEN(sizeof(uint16_t))
_CMSG_SPACE = (_CMSG_LEN + 7) & ~7  # CMSG_SPACE(sizeof(uint16_t))
_SEGMENTATION = _sendmmsg is not None
_NO_SEGMENTATION = {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
"""What a kernel or route without UDP segmentation offload answers."""

MAX_SEGMENTS = 32
"""Datagrams per segmented message (the kernel's limit is 64; 32 x 1.4 KB stays under the
64 KB a UDP message may hold)."""

# Where the low ``int`` of a ``size_t`` sits: libsrtp writes the packet length there.
_LEN_SHIFT = (
    _ffi.sizeof("size_t") - _ffi.sizeof("int") if sys.byteorder == "big" else 0
)


def in_place_protect(session: Any) -> Any:
    """The libsrtp context of a pylibsrtp ``Session`` for :meth:`PacketBatch.protect`, or
    ``None`` when this pylibsrtp has no such internals (then use ``session.protect``)."""
    if _srtp_protect is None:
        return None
    srtp = getattr(session, "_srtp", None)
    if srtp is None:
        return None
    return srtp[0]


def sockaddr(address: tuple[str, int]) -> bytes:
    """The ``struct sockaddr_in``/``sockaddr_in6`` of an ``(ip, port)`` pair."""
    host, port = address[0], address[1]
    if ":" in host:
        host, _, scope = host.partition("%")
        scope_id = 0
        if scope:
            scope_id = int(scope) if scope.isdigit() else socket.if_nametoindex(scope)
        return (
            socket.AF_INET6.to_bytes(2, sys.byteorder)
            + port.to_bytes(2, "big")
            + bytes(4)
            + socket.inet_pton(socket.AF_INET6, host)
            + scope_id.to_bytes(4, sys.byteorder)
        )
    return (
        socket.AF_INET.to_bytes(2, sys.byteorder)
        + port.to_bytes(2, "big")
        + socket.inet_aton(host)
        + bytes(8)
    )


class Route:
    """Where a viewer's packets go: the socket under its nominated ICE pair, and the remote
    address, as :meth:`PacketBatch.send_rtp` needs them."""

    __slots__ = ("address", "fd", "name", "segments", "transport")

    def __init__(self, transport: Any, address: tuple[str, int], direct: bool):
        """``direct``: ``transport`` is a plain UDP socket's (not a TURN relay's, which wraps
        what it sends), so its socket may be written to."""
        self.transport = transport
        self.address = address
        sock = transport.get_extra_info("socket") if direct else None
        self.fd = sock.fileno() if sock is not None and sock.type == socket.SOCK_DGRAM else -1
        self.name = sockaddr(address) if self.fd >= 0 else b""
        self.segments = _SEGMENTATION
        """Whether runs of packets go as one segmented message (see the module docstring)."""


class PacketBatch:
    """See the module docstring. Use :func:`batch` for the calling thread's one."""

    def __init__(self, slots: int = MAX_BATCH):
        self.slots = slots
        self._memory = _ffi.new("char[]", slots * SLOT_SIZE)
        self._view = memoryview(_ffi.buffer(self._memory))
        self._iov = _ffi.new("struct iovec[]", slots)
        self._iov_at = [self._iov + k for k in range(slots)]
        self._msgs = _ffi.new("struct mmsghdr[]", slots)
        self._headers = [self._msgs[m].msg_hdr for m in range(slots)]
        self._name = _ffi.new("char[]", 28)  # sockaddr_in6, the larger
        self._name_length = 0
        self._control = _ffi.new("char[]", slots * _CMSG_SPACE)
        self._control_at = [self._control + m * _CMSG_SPACE for m in range(slots)]
        self._segment_size = [_ffi.cast("uint16_t *", c + _CMSG_HEADER) for c in self._control_at]
        for m, control in enumerate(self._control_at):
            cmsg = _ffi.cast("struct cmsghdr *", control)
            cmsg.cmsg_len, cmsg.cmsg_level, cmsg.cmsg_type = _CMSG_LEN, _SOL_UDP, _UDP_SEGMENT
            self._headers[m].msg_name = self._name
        for k in range(slots):
            self._iov[k].iov_base = self._memory + k * SLOT_SIZE
        base = int(_ffi.cast("uintptr_t", self._memory))
        lengths = int(_ffi.cast("uintptr_t", self._iov)) + _ffi.offsetof("struct iovec", "iov_len")
        step = _ffi.sizeof("struct iovec")
        addresses = [lengths + k * step + _LEN_SHIFT for k in range(slots)]
        self._lengths = [_ffi.cast("int *", a) for a in addresses]
        self._srtp_slots: list[Any] = []
        self._srtp_lengths: list[Any] = []
        if _srtp_ffi is not None:
            self._srtp_slots = [
                _srtp_ffi.cast("void *", base + k * SLOT_SIZE) for k in range(slots)
            ]
            self._srtp_lengths = [_srtp_ffi.cast("int *", a) for a in addresses]

    def send_rtp(
        self,
        route: Route,
        session: Any,
        header: struct.Struct,
        fields: tuple[int, int, int, int, int, bytes],
        payloads: list[bytes],
    ) -> int:
        """Send one frame's packets: ``header`` packs ``fields`` (first byte, payload type,
        first sequence number, timestamp, SSRC, header extensions) before each payload, the
        sequence number counting up and the marker bit on the last; each packet is protected
        with the pylibsrtp ``session``. Returns the bytes sent (protected)."""
        first_byte, payload_type, sequence, timestamp, ssrc, extensions = fields
        context = in_place_protect(session)
        size = header.size
        pack_into = header.pack_into
        view = self._view
        lengths = self._lengths
        protect = _srtp_protect
        slots, srtp_lengths = self._srtp_slots, self._srtp_lengths
        segments = route.segments
        total = len(payloads)
        sent = 0
        for first in range(0, total, self.slots):
            k = 0
            runs: list[tuple[int, int]] = []  # (first slot, slots): one message each
            run_start = run_size = run_length = 0
            for index in range(first, min(first + self.slots, total)):
                payload = payloads[index]
                length = len(payload)
                end = k * SLOT_SIZE + size + length
                if size + length > SLOT_SIZE - SRTP_TRAILER_MAX:
                    log.warning("RTP packet of %d bytes not sent (over the MTU)", size + length)
                    sequence = (sequence + 1) & 0xFFFF  # the receiver sees it lost
                    continue
                offset = k * SLOT_SIZE
                marker = 0x80 if index == total - 1 else 0
                pack_into(view, offset, first_byte, payload_type | marker, sequence, timestamp,
                          ssrc, extensions)  # fmt: skip
                view[offset + size : end] = payload
                if context is None:  # another pylibsrtp: its public API, one copy more
                    packet = session.protect(bytes(view[offset:end]))
                    view[offset : offset + len(packet)] = packet
                    lengths[k][0] = len(packet)
                else:
                    lengths[k][0] = end - offset
                    status = protect(context, slots[k], srtp_lengths[k])
                    if status != _SRTP_OK:
                        raise ConnectionError(f"SRTP protect failed ({status})")
                sequence = (sequence + 1) & 0xFFFF
                # Runs: same-size packets, and a smaller one that ends the run.
                if run_length and length <= run_size and run_length < MAX_SEGMENTS and segments:
                    run_length += 1
                    if length < run_size:
                        runs.append((run_start, run_length))
                        run_length = 0
                else:
                    if run_length:
                        runs.append((run_start, run_length))
                    run_start, run_size, run_length = k, length, 1
                k += 1
            if run_length:
                runs.append((run_start, run_length))
            if runs:
                sent += self._send(route, runs)
        return sent

    def _send(self, route: Route, runs: list[tuple[int, int]]) -> int:
        """Send the slots of ``runs`` to ``route``, a message per run; returns the bytes."""
        lengths = self._lengths
        done = 0
        transport = route.transport
        if _sendmmsg is not None and route.fd >= 0 and not transport.get_write_buffer_size():
            name = route.name
            if len(name) != self._name_length:
                self._name_length = len(name)
                for header in self._headers:
                    header.msg_namelen = len(name)
            self._name[0 : len(name)] = name
            headers = self._headers
            for m, (start, count) in enumerate(runs):
                header = headers[m]
                header.msg_iov = self._iov_at[start]
                header.msg_iovlen = count
                if count > 1:
                    self._segment_size[m][0] = lengths[start][0]
                    header.msg_control = self._control_at[m]
                    header.msg_controllen = _CMSG_SPACE
                else:
                    header.msg_control = _ffi.NULL
                    header.msg_controllen = 0
            done = _sendmmsg(route.fd, self._msgs, len(runs), _MSG_DONTWAIT)
            if done < 0:
                code = _ffi.errno
                if route.segments and code in _NO_SEGMENTATION and any(c > 1 for _, c in runs):
                    reason = errno.errorcode.get(code, code)
                    log.info("UDP segmentation offload refused (%s): sending datagrams one by "
                             "one to %s", reason, route.address)  # fmt: skip
                    route.segments = False
                    return self._send(route, [(k, 1) for s, c in runs for k in range(s, s + c)])
                if code not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    log.debug("sendmmsg: %s", errno.errorcode.get(code, code))
                done = 0
        sent = 0
        view = self._view
        for m, (start, count) in enumerate(runs):
            for k in range(start, start + count):
                length = lengths[k][0]
                if m >= done:  # not sent above: asyncio's transport
                    transport.sendto(bytes(view[k * SLOT_SIZE : k * SLOT_SIZE + length]),
                                     route.address)  # fmt: skip
                sent += length
        return sent


_local = threading.local()


def batch() -> PacketBatch:
    """The calling thread's batch (the event loop's, in practice)."""
    found = getattr(_local, "batch", None)
    if found is None:
        found = _local.batch = PacketBatch()
    return found
