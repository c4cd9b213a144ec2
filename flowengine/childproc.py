"""Child processes that die with their parent (the embedded media server and PostgreSQL).

On Linux a process can ask for a signal when the *thread* that started it ends
(``PR_SET_PDEATHSIG``), which covers a parent killed by SIGKILL. The request is made by
util-linux's ``setpriv --pdeathsig`` put in front of the command, so that no Python code runs
between ``fork`` and ``exec`` in the child: a ``preexec_fn`` can deadlock there when the parent
has other threads (a lock held by one of them at the fork stays held forever in the child).
Without ``setpriv`` a ``preexec_fn`` does it; on other systems nothing does.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(argv: list[str], sig: signal.Signals
                    ) -> tuple[list[str], Callable[[], None] | None]:
    """``(argv, preexec_fn)`` for ``subprocess``: the command, asking for ``sig`` when the
    starting thread dies. A change of user by ``subprocess`` happens before either, so the
    request survives it."""
    if not sys.platform.startswith("linux"):
        return argv, None
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return [setpriv, "--pdeathsig", sig.name.removeprefix("SIG"), "--", *argv], None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the child

    def ask() -> None:  # pragma: no cover - runs in the child between fork and exec
        with contextlib.suppress(Exception):
            prctl(PR_SET_PDEATHSIG, sig)

    return argv, ask
