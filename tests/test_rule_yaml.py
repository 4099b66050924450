"""The rule file writer (PyYAML with the rules' representer) writes YAML that reads back as
the data it was given, PromQL as literal blocks."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from exporter.metrics.alerting.rule_dumper import dump

_scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
_keys = st.text(min_size=1)
_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_keys, _values, max_size=5))
def test_dump_round_trips(value: dict[str, Any]) -> None:
    assert yaml.safe_load(dump(value)) == value


@given(st.lists(st.text(st.characters(codec="utf-8"), min_size=1), min_size=2, max_size=4))
def test_multi_line_text_round_trips(lines: list[str]) -> None:
    # Blanks, breaks of other kinds, quotes and escapes at the ends of lines.
    text = "\n".join(lines)
    assert yaml.safe_load(dump({"expr": text})) == {"expr": text}


def test_multi_line_strings_become_literal_blocks_under_indented_lists() -> None:
    text = dump({"groups": [{"name": "g", "rules": [{"expr": "a\n  / on (job)\nb"}]}]})
    assert text == (
        'groups:\n  - name: "g"\n    rules:\n      - expr: |-\n'
        "          a\n            / on (job)\n          b\n"
    )


def test_one_line_strings_are_double_quoted_keys_plain() -> None:
    assert dump({"for": "5m", "on": "yes", "n": 1}) == 'for: "5m"\n\'on\': "yes"\nn: 1\n'


def test_text_a_block_cannot_hold_stays_quoted() -> None:
    # Trailing blanks would be lost in a block; a \u2028 would read back as \n.
    assert dump({"a": "x \ny"}) == 'a: "x \\ny"\n'
    assert dump({"a": "x\n\u2028y"}) == 'a: "x\\n\\Ly"\n'


def test_a_shared_dict_is_written_twice_without_an_anchor() -> None:
    labels = {"severity": "warning"}
    assert dump([labels, labels]) == '- severity: "warning"\n- severity: "warning"\n'
