"""Pinning glibc's mmap threshold: a large block freed no longer moves later ones onto the heap,
and the operator's own MALLOC_MMAP_THRESHOLD_ still wins.

Each case runs in a fresh interpreter (the allocator's state is per process) and reads glibc's
own count of mmapped blocks (`mallinfo2().hblks`) around a 1 MiB allocation made after an 8 MiB
block was freed: glibc alone then raises its threshold past 1 MiB and serves it from the heap.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import ctypes, sys
from exporter.core.malloc import pin_mmap_threshold

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
if sys.argv[1] == "pin":
    pin_mmap_threshold()
libc.free(libc.malloc(8 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblks - before)
libc.free(block)
"""

pytestmark = pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc 2.33 or newer (mallinfo2)"
)


def mmapped_after_a_large_free(mode: str, threshold: str | None = None) -> bool:
    """Whether a 1 MiB block, allocated after an 8 MiB one was freed, was mmapped."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    if threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = threshold
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout) == 1


def test_glibc_alone_moves_the_block_to_the_heap() -> None:
    # What the pin is for; also proves the probe sees the difference.
    assert not mmapped_after_a_large_free("leave")


def test_pinned_the_block_stays_mmapped() -> None:
    assert mmapped_after_a_large_free("pin")


def test_the_operators_threshold_wins() -> None:
    # 16 MiB set by the operator: the pin to 128 KiB would mmap the block; it must not apply.
    assert not mmapped_after_a_large_free("pin", threshold=str(16 << 20))
