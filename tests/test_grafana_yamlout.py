"""The rule file writer produces YAML that reads back as the data it was given."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from exporter.metrics.alerting.yamlout import dump

_scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
_keys = st.text(min_size=1)
_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_keys, _values, max_size=5))
def test_dump_round_trips(value: dict[str, Any]) -> None:
    assert yaml.safe_load(dump(value)) == (value or None)


def test_multiline_strings_become_literal_blocks() -> None:
    text = dump({"expr": "a\n  / on (job)\nb"})
    assert text == "expr: |-\n  a\n    / on (job)\n  b\n"
