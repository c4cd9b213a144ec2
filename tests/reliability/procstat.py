"""What a process holds, read from /proc (Linux): open descriptors, UDP sockets, resident
memory, threads. For leak tests: take :func:`snapshot` before and after."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Holdings:
    fds: int
    udp_sockets: int
    rss_mib: float
    threads: int

    def __str__(self) -> str:
        return (f"{self.fds} fds, {self.udp_sockets} UDP sockets, {self.rss_mib:.0f} MiB RSS, "
                f"{self.threads} threads")


def _udp_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        inodes.update(line.split()[9] for line in lines if len(line.split()) > 9)
    return inodes


def snapshot(pid: int | None = None) -> Holdings:
    """What process ``pid`` (default: this one) holds now."""
    pid = pid or os.getpid()
    sockets = []
    fds = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        fds += 1
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            sockets.append(target[8:-1])
    udp = _udp_inodes(pid)
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in status}
    return Holdings(fds=fds, udp_sockets=sum(1 for s in sockets if s in udp),
                    rss_mib=int(fields["VmRSS"][0]) / 1024, threads=int(fields["Threads"][0]))
