"""Durations, sizes and counts: one grammar, Prometheus's for what `rules` pastes into PromQL."""

from __future__ import annotations

import re
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.units import (
    duration_text,
    parse_duration,
    parse_number,
    parse_size,
    parse_whole,
    promql_duration,
)

# Prometheus's own duration grammar (common/model ParseDuration), which also takes "0" alone.
PROMETHEUS = re.compile(
    r"(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?"
)
HOSTILE = ["", " ", "nan", "inf", "-1", "1e3", "1_000", "١٢", "0x10", "+5", "9" * 13, "²"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        (" 15m ", 900.0),
        ("500ms", 0.5),
        ("1.1s", 1.1),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("1h30.5m", 5430.0),
        ("2w", 1_209_600.0),
        ("1y", 31_536_000.0),
        ("1s500ms", 1.5),
    ],
)
def test_a_settings_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", [*HOSTILE, "15 s", "1m1h", "1h1h", "1h 30m", "1.0123456789s", "5min", "s", "1.s"]
)
def test_what_no_duration_is(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration like 30s, 15m or 1h30m"):
        parse_duration(text)


def test_a_lone_number_is_in_the_settings_own_unit_or_refused() -> None:
    assert parse_duration("2500", lone="ms") == 2.5
    assert parse_duration("2.5s", lone="ms") == 2.5
    with pytest.raises(ValueError, match="or a number of milliseconds"):
        parse_duration("soon", lone="ms")
    with pytest.raises(ValueError, match=r"not a duration like 30s, 15m or 1h30m$"):
        parse_duration("15", lone=None)


def test_a_duration_out_of_range_says_the_range_in_the_same_units() -> None:
    with pytest.raises(ValueError, match=r"^'0' is out of range: give 1s to 1d$"):
        parse_duration("0", low=1.0, high=86400.0)
    with pytest.raises(ValueError, match=r"^'50ms' is out of range: give at least 1m$"):
        parse_duration("50ms", low=60.0)


@pytest.mark.parametrize(
    ("text", "seconds"), [("0s", 0), ("90s", 90), ("1h30m", 5400), ("1s500ms", 1.5), ("7d", 604800)]
)
def test_a_prometheus_duration(text: str, seconds: float) -> None:
    assert promql_duration(text) == seconds
    assert parse_duration(text) == seconds  # settings take every Prometheus duration too


@pytest.mark.parametrize(
    "text", [*HOSTILE, "0", "90", "1.5h", " 5m", "5m ", "1h]) or vector(1) #", "90min", "1h1h"]
)
def test_what_is_not_pasted_into_promql(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Prometheus duration"):
        promql_duration(text)


def test_a_prometheus_duration_over_ten_years_is_refused() -> None:
    assert promql_duration("10y") == 315_360_000
    with pytest.raises(ValueError, match="longer than ten years"):
        promql_duration("10y1ms")


@given(st.text(alphabet="0123456789ywdhms.", max_size=20))
def test_promql_durations_are_what_prometheus_parses(text: str) -> None:
    """The same grammar as Prometheus's, but for "0" alone (which `rules` never took)."""
    try:
        promql_duration(text)
        ours = True
    except ValueError as exc:
        ours = "longer than ten years" in str(exc)
    theirs = bool(text) and PROMETHEUS.fullmatch(text) is not None
    assert ours == theirs


@given(st.text(max_size=30))
def test_any_text_is_a_value_or_a_value_error(text: str) -> None:
    whole = partial(parse_whole, low=0, high=10)
    for parse in (parse_duration, promql_duration, parse_size, parse_number, whole):
        message = ""
        try:
            parse(text)
        except ValueError as exc:
            message = str(exc)
        if message:  # it quotes the value, cut
            assert repr(text.strip())[:40] in message or repr(text)[:40] in message


def test_sizes_and_whole_numbers() -> None:
    assert parse_size("16MiB") == 16 << 20
    assert parse_size("512KiB") == 512 << 10
    assert parse_size("1kB") == 1000
    assert parse_size(" 1048576 ") == 1 << 20
    for text in [*HOSTILE[1:-2], "9" * 16, "16 MiB", "1.5MiB", "16XB"]:
        with pytest.raises(ValueError, match="is not a size like 16MiB"):
            parse_size(text)
    with pytest.raises(ValueError, match=r"out of range: give 1KiB to 256MiB"):
        parse_size("1023", low=1024, high=256 << 20)
    assert parse_whole(" 007 ", 1, 10) == 7
    for text in [*HOSTILE, "1.0", "11"]:
        with pytest.raises(ValueError, match="is not a whole number from 1 to 10"):
            parse_whole(text, 1, 10)


def test_durations_read_back_as_written() -> None:
    for seconds, text in [(0.05, "50ms"), (2.5, "2.5s"), (90, "90s"), (60, "1m"), (86400, "1d")]:
        assert duration_text(seconds) == text
        assert parse_duration(text) == seconds
