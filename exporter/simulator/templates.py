"""Task templates of the simulated workload: node graphs with long-tailed timings and failure rates.

Durations are in seconds of real workflow time (medians of lognormal distributions); the
workload scales them with its time scale.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any, NamedTuple

__all__ = ["TEMPLATES", "NodeSpec", "Template", "random_uuid", "stable_uuid"]


class NodeSpec(NamedTuple):
    """One node of a template: its kind, timing, and how it fails."""

    alias: str | None
    type: str = "service"
    median: float = 0.5
    sigma: float = 0.8
    error_rate: float = 0.0
    defer_rate: float = 0.0
    # A non-critical node may fail without failing its task (an `or` branch takes over).
    critical: bool = True
    sub_task: str | None = None
    outputs: tuple[str | None, ...] = (None,)
    updates: tuple[int, int] = (0, 2)
    # The chance that one of its outputs is too large to travel inline (it is claim-checked).
    bulky: float = 0.0


class Template(NamedTuple):
    """A task template: stages run in order, the nodes of one stage in parallel."""

    name: str
    stages: tuple[tuple[NodeSpec, ...], ...]
    weight: float
    abort_rate: float = 0.01
    ack_rate: float = 0.1
    unnamed_rate: float = 0.0


def _svc(alias: str | None, median: float, **options: Any) -> NodeSpec:
    return NodeSpec(alias, "service", median, **options)


def _logic(alias: str | None, median: float = 0.01, **options: Any) -> NodeSpec:
    return NodeSpec(alias, "logic", median, sigma=0.4, **options)


def _or(alias: str | None) -> NodeSpec:
    return NodeSpec(alias, "or", 0.003, sigma=0.3, updates=(0, 0))


def _ref(alias: str, template: str) -> NodeSpec:
    return NodeSpec(alias, "reference", 0.0, sub_task=template, updates=(0, 0))


TEMPLATES: tuple[Template, ...] = (
    Template(
        "invoice-processing",
        (
            (_svc("fetch-invoice", 0.8, error_rate=0.0002),),
            (_ref("ocr", "document-ocr"),),
            (
                _logic("validate-totals", 0.05, error_rate=0.0004, outputs=("valid", "invalid")),
                _svc("match-purchase-order", 2.0, sigma=1.0, defer_rate=0.05),
            ),
            (_or("approval-route"),),
            (_svc("post-to-erp", 3.0, sigma=1.1, error_rate=0.0005, defer_rate=0.08),),
            (_svc("notify", 0.3, critical=False, error_rate=0.03),),
        ),
        weight=3.0,
        # Aborts of top-level tasks fail nothing else (they count against no objective).
        abort_rate=0.05,
        ack_rate=0.3,
    ),
    Template(
        "document-ocr",
        (
            (_svc("download", 0.5, error_rate=0.0002),),
            (_ref("normalize-scan", "image-resize"), _logic("detect-language", 0.02)),
            (_svc("ocr-page", 4.0, sigma=1.0, defer_rate=0.08, error_rate=0.0002, updates=(1, 4)),),
            (_svc(None, 1.5, outputs=("fields", None)),),
        ),
        weight=2.0,
        # Also a sub-task: its aborts fail the parent's reference node.
        abort_rate=0.001,
    ),
    Template(
        "customer-onboarding",
        (
            (_svc("create-account", 1.0, error_rate=0.0002),),
            (
                _svc("kyc-check", 30.0, sigma=1.2, defer_rate=0.12, error_rate=0.0008),
                _svc("credit-check", 5.0, sigma=0.9, error_rate=0.0004),
                _svc("send-welcome-email", 0.5, critical=False, error_rate=0.05),
            ),
            (_or("review"),),
            (_ref("document-upload", "image-resize"),),
            (_svc("activate", 0.3, error_rate=0.0005),),
        ),
        weight=2.0,
        abort_rate=0.08,
        ack_rate=0.5,
    ),
    Template(
        "nightly-report",
        (
            (
                _svc("collect-sales", 60.0, sigma=0.6, updates=(2, 6), bulky=0.25),
                _svc("collect-inventory", 45.0, sigma=0.6, updates=(2, 6), bulky=0.25),
                _svc("collect-returns", 20.0, sigma=0.6, error_rate=0.0006),
            ),
            (_logic("aggregate", 2.0),),
            (_svc("render-pdf", 15.0, sigma=0.7, outputs=("pdf",)),),
            (_svc("distribute", 3.0, defer_rate=0.05),),
        ),
        weight=0.2,
        abort_rate=0.02,
    ),
    Template(
        "image-resize",
        (
            (_svc("fetch-image", 0.3, error_rate=0.0002),),
            (
                _svc("resize-small", 0.2, sigma=0.5),
                _svc("resize-medium", 0.4, sigma=0.5),
                _svc("resize-large", 0.9, sigma=0.6, error_rate=0.0002),
            ),
            (_svc(None, 0.5, error_rate=0.0004, defer_rate=0.03),),
        ),
        weight=4.0,
        abort_rate=0.001,
        unnamed_rate=0.05,
    ),
)


@cache
def stable_uuid(key: str) -> str:
    """A UUID (version 4 format) derived from `key`: template node ids stay the same run to run."""
    return random_uuid(random.Random(key))


def random_uuid(rng: random.Random) -> str:
    """A version 4 UUID drawn from `rng`, so a seeded run repeats its ids."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
