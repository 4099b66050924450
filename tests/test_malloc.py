"""Pinning glibc's thresholds: a large block freed no longer moves later tables onto the heap,
a read's buffers come from the heap and stay there between reads, and the operator's own
MALLOC_MMAP_THRESHOLD_ still wins.

Each case runs in a fresh interpreter (the allocator's state is per process) and reads glibc's
own counts (`mallinfo2()`: `hblks`, the mmapped blocks; `arena`, the heap's size).
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
info = libc.mallinfo2
mode, case = sys.argv[1:]
if mode == "pin":
    pin_mmap_threshold()
if case == "table":  # a 4 MiB table after an 8 MiB one was freed: mmapped?
    libc.free(libc.malloc(8 << 20))
    before = info().hblks
    block = libc.malloc(4 << 20)
    print(int(info().hblks > before))
    libc.free(block)
elif case == "read":  # a read's 256 KiB buffer: mmapped?
    before = info().hblks
    block = libc.malloc(256 << 10)
    print(int(info().hblks > before))
    libc.free(block)
else:  # 1.5 MiB of buffers at the top of the heap, freed: the heap shrank?
    blocks = [libc.malloc(96 << 10) for _ in range(16)]
    grown = info().arena
    for block in reversed(blocks):
        libc.free(block)
    print(int(info().arena < grown))
"""

pytestmark = pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc 2.33 or newer (mallinfo2)"
)


def probe(mode: str, case: str, **settings: str) -> bool:
    """What the probe's `case` found in a fresh interpreter, pinned (`pin`) or not (`leave`),
    with the operator's glibc `settings` (MALLOC_..._ variables) in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(settings)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode, case],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout) == 1


def test_glibc_alone_moves_the_table_to_the_heap() -> None:
    # What the pin is for; also proves the probe sees the difference.
    assert not probe("leave", "table")


def test_pinned_the_table_stays_mmapped() -> None:
    assert probe("pin", "table")


def test_the_operators_threshold_wins() -> None:
    # 16 MiB set by the operator: the pin would mmap the table; it must not apply.
    assert not probe("pin", "table", MALLOC_MMAP_THRESHOLD_=str(16 << 20))


def test_the_operators_trim_threshold_wins() -> None:
    # glibc's own 128 KiB, set by the operator: the pin keeps the mmap threshold, not the trim.
    assert probe("pin", "trim", MALLOC_TRIM_THRESHOLD_=str(128 << 10))
    assert not probe("pin", "read", MALLOC_TRIM_THRESHOLD_=str(128 << 10))


def test_glibc_alone_mmaps_a_reads_buffer_and_gives_the_heap_back() -> None:
    # glibc's starting thresholds (128 KiB each): what the pin must not keep; proves the probe
    # sees both.
    assert probe("leave", "read")
    assert probe("leave", "trim")


def test_pinned_a_reads_buffers_come_from_the_heap_and_stay_for_the_next_read() -> None:
    assert not probe("pin", "read")
    assert not probe("pin", "trim")
