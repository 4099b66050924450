"""Prometheus text (0.0.4) and OpenMetrics (1.0.0) rendering of metric families.

Written for speed: label sets are escaped once per series and cached by the caller; a scrape of
100k series is a join of pre-built strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "Exemplar",
    "fmt_float",
    "label_string",
    "wants_openmetrics",
]

TEXT_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class Exemplar(NamedTuple):
    """An exemplar on a histogram bucket: which trace produced a value, and when."""

    trace_id: str
    value: float
    timestamp: float


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_string(names: Sequence[str], values: Sequence[str]) -> str:
    """`a="x",b="y"` for the given label names and values (escaped)."""
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def fmt_float(value: float) -> str:
    """Format a sample value or bucket bound as Prometheus does (`1.0`, `0.25`, `+Inf`)."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return repr(value)


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an Accept header asks for OpenMetrics (as Prometheus does by default)."""
    if not accept:
        return False
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media != "application/openmetrics-text":
            continue
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            if float(q) > 0:
                return True
        except ValueError:
            continue
    return False


def header(name: str, kind: str, help_text: str, openmetrics: bool) -> str:
    """The HELP and TYPE lines of a family; `name` is without `_total` for counters."""
    help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    if openmetrics:
        return f"# TYPE {name} {kind}\n# HELP {name} {help_text}\n"
    shown = f"{name}_total" if kind == "counter" else name
    text_kind = "gauge" if kind == "info" else kind
    return f"# HELP {shown} {help_text}\n# TYPE {shown} {text_kind}\n"


def sample(name: str, labels: str, value: str) -> str:
    """One sample line."""
    if labels:
        return f"{name}{{{labels}}} {value}\n"
    return f"{name} {value}\n"


def exemplar_suffix(exemplar: Exemplar | None) -> str:
    """The ` # {trace_id="..."} value timestamp` part of an OpenMetrics bucket line."""
    if exemplar is None:
        return ""
    return (
        f' # {{trace_id="{exemplar.trace_id}"}} {fmt_float(exemplar.value)} '
        f"{exemplar.timestamp:.3f}"
    )


def histogram_lines(
    name: str,
    labels: str,
    *,
    bounds_text: Sequence[str],
    counts: Sequence[int],
    total: float,
    exemplars: Sequence[Exemplar | None] | None,
    openmetrics: bool,
) -> Iterable[str]:
    """The `_bucket`, `_count` and `_sum` lines of one histogram series (counts per bucket)."""
    prefix = f"{name}_bucket{{{labels}," if labels else f"{name}_bucket{{"
    running = 0
    for i, le in enumerate(bounds_text):
        running += counts[i]
        line = f'{prefix}le="{le}"}} {running}'
        if openmetrics and exemplars is not None:
            line += exemplar_suffix(exemplars[i])
        yield line + "\n"
    yield sample(f"{name}_count", labels, str(running))
    yield sample(f"{name}_sum", labels, fmt_float(total))
