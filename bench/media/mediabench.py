"""Shared parts of the media benchmarks: the source file, the server child process, /proc.

* :func:`make_source_file` encodes a 640x480/30 H.264 Baseline MP4 with PyAV (nothing is
  downloaded): ten seconds are encoded once (part of every frame is fresh noise, so the
  encoder really spends its bit rate) and their packets are muxed again and again with shifted
  timestamps up to the wanted length. Every GOP starts with an IDR frame, so the repeated
  sequence is a valid stream. Files are cached under the system temp dir by their parameters.
* :class:`ServerProcess` runs ``python -m flowengine.media`` as a child, reads its URL from the
  line it prints, and samples its CPU time (all threads, and the event-loop thread alone) and
  RSS from ``/proc``.
* :func:`loopback_ice` makes aioice offer 127.0.0.1 (it never does by itself:
docs/reference/aiortc-notes.md
  pitfall 2); the server needs no patch (a server on 127.0.0.1 offers only 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import fractions
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parents[2]


# --- the source -------------------------------------------------------------------------------


def make_source_file(
    seconds: int = 300,
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    bitrate_kbps: int = 1500,
    gop: int = 30,
    directory: Path | None = None,
) -> Path:
    """The cached H.264 Baseline MP4 (no B-frames, an IDR every ``gop`` frames)."""
    import av

    directory = directory or Path(tempfile.gettempdir()) / "flowengine-bench-media"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"src-{width}x{height}-{fps}-{bitrate_kbps}k-g{gop}-{seconds}s.mp4"
    if path.exists():
        return path
    chunk_frames = 10 * fps
    chunk_frames -= chunk_frames % gop  # whole GOPs only: each repetition starts with an IDR
    partial = path.with_suffix(".part.mp4")
    container = av.open(str(partial), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    ctx = stream.codec_context
    ctx.gop_size = gop
    ctx.bit_rate = bitrate_kbps * 1000
    ctx.profile = "Baseline"
    # CBR-like rate control, IDR at every GOP start, no scene-cut key frames in between.
    ctx.options = {
        "preset": "ultrafast",
        "bf": "0",
        "x264-params": (
            f"keyint={gop}:min-keyint={gop}:scenecut=0:vbv-maxrate={bitrate_kbps}:"
            f"vbv-bufsize={bitrate_kbps}:nal-hrd=none"
        ),
    }
    frame_base = fractions.Fraction(1, fps)
    packets = []  # (data, pts, dts, keyframe) with pts/dts counted in frames
    for i in range(chunk_frames):
        frame = noise_frame(i, width, height)
        frame.pts, frame.time_base = i, frame_base
        packets.extend(_copy(p, frame_base) for p in stream.encode(frame))
    packets.extend(_copy(p, frame_base) for p in stream.encode(None))
    repeats = max(1, -(-seconds * fps // chunk_frames))
    for r in range(repeats):
        shift = r * chunk_frames
        for data, pts, dts, key in packets:
            packet = av.Packet(data)
            packet.stream = stream
            packet.time_base = frame_base  # mux() rescales to the stream's time base
            packet.pts, packet.dts = pts + shift, dts + shift
            packet.is_keyframe = key
            container.mux(packet)
    container.close()
    partial.rename(path)
    return path


def _copy(packet, frame_base: fractions.Fraction) -> tuple[bytes, int, int, bool]:
    scale = packet.time_base / frame_base
    return (
        bytes(packet),
        round(packet.pts * scale),
        round(packet.dts * scale),
        packet.is_keyframe,
    )


_NOISE = os.urandom(1 << 20)


def noise_frame(index: int, width: int, height: int):
    """Moving stripes and a block of fresh noise (about a tenth of the picture)."""
    import av

    frame = av.VideoFrame(width, height, "yuv420p")
    row = bytes(((x + index * 6) // 16 % 2) * 150 + 50 for x in range(width))
    luma = bytearray(row * height)
    noise_w, noise_h = width // 4, height // 3
    x0 = (index * 8) % (width - noise_w)
    start = (index * 7919) % (len(_NOISE) - noise_w * noise_h)
    for y in range(noise_h):
        off = (height // 3 + y) * width + x0
        src = start + y * noise_w
        luma[off : off + noise_w] = _NOISE[src : src + noise_w]
    frame.planes[0].update(bytes(luma))
    frame.planes[1].update(bytes([(index * 3) % 256]) * (width * height // 4))
    frame.planes[2].update(bytes([128]) * (width * height // 4))
    return frame


# --- /proc ------------------------------------------------------------------------------------


def _stat_fields(path: str) -> list[str]:
    with open(path) as f:
        text = f.read()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process (all threads) or of one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = _stat_fields(path)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def kernel_seconds(pid: int) -> float:
    """System (kernel) CPU seconds of a process: on loopback, sending a UDP datagram runs the
    receiver's network stack in the sender's system call, so this is mostly packet work."""
    return int(_stat_fields(f"/proc/{pid}/stat")[12]) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (threads of the same name added up)."""
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            seconds = cpu_seconds(pid, int(tid))
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = "main" if int(tid) == pid else re.sub(r"\d+$", "N", name)
        out[name] = out.get(name, 0.0) + seconds
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a media server's worker processes)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    pending.extend(int(child) for child in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB."""
    total = 0.0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from ``/proc/stat``."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


@dataclass
class CpuSample:
    """A point in time for CPU accounting: wall time, process/thread/machine counters."""

    wall: float
    process: float
    main: float
    kernel: float
    threads: dict[str, float]
    machine_busy: float
    machine_total: float
    loops: dict[int, float]
    """Main-thread (event-loop) CPU seconds of each process of the server's tree."""

    @classmethod
    def take(cls, pid: int) -> CpuSample:
        """Counters of ``pid`` and its descendants (a router and its workers) added up."""
        busy, total = machine_cpu()
        process = kernel = 0.0
        threads: dict[str, float] = {}
        loops: dict[int, float] = {}
        for member in process_tree(pid):
            try:
                process += cpu_seconds(member)
                kernel += kernel_seconds(member)
                loops[member] = cpu_seconds(member, member)
                for name, seconds in thread_cpu(member).items():
                    threads[name] = threads.get(name, 0.0) + seconds
            except (FileNotFoundError, ProcessLookupError):
                continue
        return cls(
            time.monotonic(), process, loops.get(pid, 0.0), kernel, threads, busy, total, loops
        )

    def busiest_loop(self, before: CpuSample) -> float:
        """% of one core used by the busiest event-loop thread since ``before``."""
        wall = self.wall - before.wall
        return max(
            (pct(before.loops.get(p, seconds), seconds, wall) for p, seconds in self.loops.items()),
            default=0.0,
        )


def pct(a: float, b: float, wall: float) -> float:
    """CPU % of one core used between two counter readings ``wall`` seconds apart."""
    return 100.0 * (b - a) / wall if wall > 0 else 0.0


def machine_pct(a: CpuSample, b: CpuSample) -> float:
    """Busy % of the whole machine in units of one core (2 cores busy = 200)."""
    total = b.machine_total - a.machine_total
    if total <= 0:
        return 0.0
    return 100.0 * os.cpu_count() * (b.machine_busy - a.machine_busy) / total


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- the server -------------------------------------------------------------------------------


class ServerProcess:
    """``python -m flowengine.media`` on 127.0.0.1 and a free port, as a child process.

    ``loop``: ``"default"`` runs the module as is; ``"asyncio"``/``"uvloop"`` force an event
    loop through a small launcher (to compare them without editing the server). ``prelude``:
    a Python file the launcher runs first, in the server process (for experiments: patches
    whose effect is measured before they are made in the code).
    """

    def __init__(
        self,
        media_dir: Path,
        *,
        loop: str = "default",
        prelude: Path | None = None,
        log_level: str = "WARNING",
        extra_args: tuple[str, ...] = ("--workers", "1"),
    ):
        self.media_dir = media_dir
        self.extra_args = extra_args
        self.loop = loop
        self.prelude = prelude
        self.log_level = log_level
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self._stderr_task: asyncio.Task[None] | None = None
        self._stdout_task: asyncio.Task[None] | None = None
        self.stderr_tail: list[str] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 30.0) -> str:
        args = [
            "--host", "127.0.0.1", "--port", "0", "--media-dir", str(self.media_dir),
            "--log-level", self.log_level, "--player-files-anywhere", *self.extra_args,
        ]  # fmt: skip
        if self.loop == "default" and self.prelude is None:
            cmd = [sys.executable, "-m", "flowengine.media", *args]
        else:
            launcher = (
                "import asyncio, sys\n"
                f"if {self.loop!r} == 'uvloop':\n"
                "    import uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n"
                f"if {self.loop!r} == 'asyncio':\n"
                "    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())\n"
                f"if {str(self.prelude) if self.prelude else ''!r}:\n"
                f"    exec(open({str(self.prelude)!r}).read())\n"
                "from flowengine.media.cli import main\n"
                "sys.exit(main(sys.argv[1:]))\n"
            )
            cmd = [sys.executable, "-c", launcher, *args]
        env = dict(os.environ, FLOWENGINE_LOOP=self.loop if self.loop != "default" else "auto")
        self.proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(REPO),
            env=env,
        )
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                break
            match = re.search(r"listening on (ws://\S+)", line.decode())
            if match:
                self.url = match.group(1)
                self._stdout_task = asyncio.create_task(self._drain_stdout())
                return self.url
        raise RuntimeError("media server did not start:\n" + "\n".join(self.stderr_tail))

    async def _drain_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            self.stderr_tail = [*self.stderr_tail[-40:], line.decode(errors="replace").rstrip()]

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def loopback_ice() -> None:
    """Let this process's aiortc peers offer 127.0.0.1 host candidates (and only those)."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def new_peer():
    """An ``RTCPeerConnection`` that contacts no STUN server
    (docs/reference/aiortc-notes.md pitfall 1)."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def codec_preferences(transceiver, codec: str) -> None:
    """Offer only ``codec`` (``"h264"`` or ``"vp8"``) on ``transceiver`` (plus its RTX)."""
    from aiortc import RTCRtpReceiver

    codecs = RTCRtpReceiver.getCapabilities("video").codecs
    wanted = [c for c in codecs if c.mimeType.lower() == f"video/{codec}"]
    transceiver.setCodecPreferences(wanted)
