"""Pinning glibc's mmap threshold: applied where glibc is, and never over the operator's."""

from __future__ import annotations

import ctypes
import platform

import pytest

from exporter.core.malloc import pin_mmap_threshold


def test_operator_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert pin_mmap_threshold() is False


def test_pinned_under_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    has_mallopt = hasattr(ctypes.CDLL(None), "mallopt")
    if not has_mallopt:
        pytest.skip(f"no glibc mallopt on {platform.platform()}")
    assert pin_mmap_threshold() is True
