"""Keep resident memory flat under task churn, and the read path off the kernel's page faults.

glibc raises its mmap threshold every time a large mmapped block is freed; from then on
blocks of that size (the tracker's task table, rebuilt as tasks come and go) come from the
heap, where small objects allocated after them pin the freed space, and the resident size
creeps up step by step. Pinning the threshold keeps large tables mmapped and returned on free.

The threshold is pinned above the read path's buffers: a read is up to 256 KiB (asyncio's
receive size), and the stream's bodies joined, the decoder's pending bytes and the read
together make a few such buffers per read. Under the threshold they come from the heap and are
reused; at glibc's starting value (128 KiB) each was mmapped, faulted in a page at a time and
unmapped again, every read (`docs/performance.md`, "glibc's thresholds"). The trim threshold
is set to twice the mmap threshold, as glibc's own adaptive setting has it (pinning one turns
that off): freed buffers at the top of the heap stay for the next read rather than going back
to the system and being faulted in again.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

__all__ = ["pin_mmap_threshold"]

_M_TRIM_THRESHOLD: Final = -1  # glibc's mallopt parameter numbers
_M_MMAP_THRESHOLD: Final = -3
# Above any buffer of one read; below the task table of a few tens of thousands of tasks.
DEFAULT_THRESHOLD: Final = 1024 * 1024


def pin_mmap_threshold(size: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `size` and its trim threshold at twice that; False where
    there is no glibc or the operator set the mmap threshold (then neither is touched)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False  # the operator's own setting wins
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to pin
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if not mallopt(_M_MMAP_THRESHOLD, size):
        return False
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        mallopt(_M_TRIM_THRESHOLD, 2 * size)
    return True
