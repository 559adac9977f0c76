"""What a worker process of the audit or of the service does first: ask the kernel to end it with its parent."""

from __future__ import annotations

import contextlib
import os

__all__ = ["die_with_parent"]


def die_with_parent(parent: int, signum: int) -> bool:
    """Linux: the kernel sends ``signum`` to this process when its parent dies (even by SIGKILL; PR_SET_PDEATHSIG).
    False when ``parent`` had already died before the request took effect: the caller should end at once."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signum, 0, 0, 0)  # PR_SET_PDEATHSIG
    return os.getppid() == parent
