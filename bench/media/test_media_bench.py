"""The media benchmark's own checks (``python -m pytest bench/media``; not in the default
``testpaths``): the RTP counting of the viewers, and tiny runs of both scripts."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from rtp_tap import RtpTap

HERE = Path(__file__).resolve().parent


def rtp(seq: int, ts: int, marker: bool, size: int = 100) -> bytes:
    header = bytes([0x90, (0x80 if marker else 0) | 102]) + seq.to_bytes(2, "big")
    return header + ts.to_bytes(4, "big") + b"\x01\x02\x03\x04" + bytes(size)


def test_tap_counts_frames_packets_loss_across_wraps():
    tap = RtpTap()
    seq, ts = 0xFFF0, 0xFFFFFFFF - 3000 * 5  # both counters wrap during the test
    for frame in range(30):
        for i in range(3):
            if frame == 10 and i == 1:
                seq = (seq + 1) & 0xFFFF  # one packet lost
                continue
            tap.rtp(rtp(seq, ts, marker=i == 2))
            seq = (seq + 1) & 0xFFFF
        ts = (ts + 3000) & 0xFFFFFFFF
    packets, frames, nbytes, lost, *_ = tap.snapshot()
    assert (packets, frames, lost) == (89, 30, 1)
    assert nbytes == 89 * 112  # 12-byte header + 100


def test_tap_lag_grows_when_frames_arrive_late():
    tap = RtpTap()
    tap.rtp(rtp(1, 0, marker=True))
    time.sleep(0.2)  # the next frame (33 ms of media later) arrives 200 ms later
    tap.rtp(rtp(2, 3000, marker=True))
    *_, lag_sum, lag_n, lag_max = tap.snapshot()
    assert lag_n == 2
    assert 0.15 < lag_max < 0.5 and lag_sum == lag_max


def summary(output: str, mode: str) -> dict[str, str]:
    line = next(x for x in output.splitlines() if x.startswith(f"{mode} max_viewers="))
    return dict(item.split("=", 1) for item in line.split()[1:])


def test_viewers_small_run_of_both_modes():
    result = subprocess.run(
        [
            sys.executable, str(HERE / "viewers.py"), "--max-viewers", "4", "--step", "2",
            "--window", "2", "--settle", "2", "--quiet-wait", "0",
            # Lenient: a busy shared machine may starve the transcoder thread for a while.
            "--min-fps", "15", "--max-lag", "1000",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"decoding viewer: \d+ frames 640x480", out), out
    assert "server transcoding: False" in out and "server transcoding: True" in out
    for mode in ("passthrough", "reencode"):
        figures = summary(out, mode)
        assert figures["max_viewers"] == "4", out
    # Pass-through costs a viewer a few % of a core at most; re-encoding 640x480/30 costs the
    # first one a decoder and an encoder (tens of %), the next ones no more encoders.
    assert float(summary(out, "passthrough")["first_viewer_cpu_pct"]) < 5
    assert float(summary(out, "reencode")["first_viewer_cpu_pct"]) > 10


def test_first_frame_with_chromium():
    result = subprocess.run(
        [sys.executable, str(HERE / "first_frame.py"), "--runs", "2", "--source", "webrtc"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("first_frame "))
    figures = dict(item.split("=", 1) for item in line.split()[1:])
    assert figures["runs"] == "2" and figures["video"] == "640x480", line
    assert 0 < float(figures["offer_median_ms"]) < 3000, line
