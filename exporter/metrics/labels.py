"""Cardinality bounds: each label keeps at most N distinct values, later ones become `__other__`."""

from __future__ import annotations

from collections import Counter
from typing import Final

__all__ = ["OTHER", "LabelLimiter"]

OTHER: Final = "__other__"


class LabelLimiter:
    """Admits the first `max_values` distinct values of each label; folds the rest into OTHER."""

    def __init__(self, max_values: int) -> None:
        if max_values < 1:
            raise ValueError("max_values must be at least 1")
        self.max_values = max_values
        self._admitted: dict[str, set[str]] = {}
        self.overflow: Counter[str] = Counter()  # folded observations, by label name

    def __call__(self, label: str, value: str) -> str:
        """The value to export for `label`: `value` itself, or OTHER past the bound."""
        admitted = self._admitted.setdefault(label, set())
        if value in admitted:
            return value
        if len(admitted) < self.max_values:
            admitted.add(value)
            return value
        self.overflow[label] += 1
        return OTHER
