"""The process-wide settings the command line applies before it runs anything (`tune`).

glibc's mmap and trim thresholds are pinned (`exporter.core.malloc`), and the cyclic garbage
collector's young generation is collected every 10,000 allocations of container objects instead
of every 700. Each update allocates a few tuples (the raw event, the update, its node) that
reference counting frees at once, and the exporter makes next to no cyclic garbage; still, every
700th allocation the collector walked the young objects, and every tenth time the older ones,
where the tracker's tasks live. Measured on the benchmark's coalesced stream, alternating runs
of one sitting: 7 % more updates a second interpreted, 17 % compiled (`docs/performance.md`).
The older generations keep their thresholds; a threshold already higher is left alone.
"""

from __future__ import annotations

import gc
from typing import Final

from exporter.core.malloc import pin_mmap_threshold

__all__ = ["YOUNG_THRESHOLD", "raise_young_threshold", "tune"]

YOUNG_THRESHOLD: Final = 10_000


def raise_young_threshold(threshold: int = YOUNG_THRESHOLD) -> None:
    """Collect the young generation every `threshold` allocations at the most often. A
    collector switched off (threshold 0) stays off."""
    young, *older = gc.get_threshold()
    if 0 < young < threshold:
        gc.set_threshold(threshold, *older)


def tune() -> bool:
    """Apply every process-wide setting: what `requence-exporter` does at start. Returns
    whether glibc's thresholds were pinned (`pin_mmap_threshold`)."""
    raise_young_threshold()
    return pin_mmap_threshold()
