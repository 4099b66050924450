"""Keep resident memory flat under task churn: large freed tables go back to the system.

glibc raises its mmap threshold every time a large mmapped block is freed; from then on
blocks of that size (the tracker's task table, rebuilt as tasks come and go) come from the
heap, where small objects allocated after them pin the freed space, and the resident size
creeps up step by step. Pinning the threshold keeps large tables mmapped and returned on free.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

__all__ = ["pin_mmap_threshold"]

_M_MMAP_THRESHOLD: Final = -3  # glibc's mallopt parameter number
DEFAULT_THRESHOLD: Final = 128 * 1024  # glibc's own starting value


def pin_mmap_threshold(size: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `size`; False where there is no glibc or the user set it."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False  # the operator's own setting wins
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): nothing to pin
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, size))
