"""Access tokens and settings: lookup order, validation messages, and secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.config import parse_since, settings_for
from exporter.core.errors import ConfigError, TokenError
from exporter.core.units import parse_duration, parse_size
from exporter.requence.token import decode_token, encode_token

SECRET = "s3cr3t-bearer"


BEARERS = st.text(
    min_size=1,
    alphabet=st.characters(
        blacklist_characters="\uf6ee", max_codepoint=0xFFFF, blacklist_categories=["Cs"]
    ),
)


@given(BEARERS)
def test_tokens_round_trip(bearer: str) -> None:
    creds = decode_token(encode_token(bearer, "https://api.example.invalid"))
    assert (creds.bearer_token, creds.api_url) == (bearer, "https://api.example.invalid")


def test_credentials_repr_hides_the_bearer() -> None:
    assert SECRET not in repr(decode_token(encode_token(SECRET, "https://x.invalid")))


@pytest.mark.parametrize("token", ["", "abc", "!!!!0", encode_token("b", "x")[:-1] + "9"])
def test_malformed_tokens_raise_without_quoting_them(token: str) -> None:
    with pytest.raises(TokenError) as info:
        decode_token(token)
    assert not token or token not in str(info.value)


def test_non_api_token_is_refused() -> None:
    text = "web\uf6eeb\uf6eehttps://x.invalid"
    bits = "".join(format(ord(c), "016b") for c in text)
    pad = (-len(bits)) % 6
    bits += "0" * pad
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-$"
    token = "".join(alphabet[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6)) + str(pad)
    with pytest.raises(TokenError, match="not a Requence API token"):
        decode_token(token)


def test_lookup_order_flag_then_task_token_then_access_token(tmp_path: Path) -> None:
    a, b, c = (encode_token(f"b{i}", f"https://{i}.invalid") for i in range(3))
    env = {"REQUENCE_TASK_ACCESS_TOKEN": b, "REQUENCE_ACCESS_TOKEN": c}
    assert settings_for(["--access-token", a], env).credentials.bearer_token == "b0"
    assert settings_for([], env).credentials.bearer_token == "b1"
    assert settings_for([], {"REQUENCE_ACCESS_TOKEN": c}).credentials.bearer_token == "b2"
    token_file = tmp_path / "token"
    token_file.write_text(a + "\n")
    got = settings_for(["--access-token-file", str(token_file)], env).credentials
    assert got.bearer_token == "b0"


def test_api_url_with_bearer_file(tmp_path: Path) -> None:
    secret = tmp_path / "bearer"
    secret.write_text(SECRET)
    creds = settings_for(
        ["--api-url", "https://r.invalid/", "--bearer-token-file", str(secret)], {}
    ).credentials
    assert (creds.api_url, creds.bearer_token) == ("https://r.invalid", SECRET)


def test_bearer_token_starting_with_a_dash() -> None:
    # token_urlsafe() (the demo's bearer) starts with "-" one time in 64.
    creds = settings_for(["--api-url", "https://r.invalid", "--bearer-token=-x1"], {}).credentials
    assert creds.bearer_token == "-x1"


def test_missing_credentials_name_every_way_to_set_them() -> None:
    with pytest.raises(ConfigError) as info:
        settings_for([], {})
    for name in (
        "--access-token",
        "REQUENCE_ACCESS_TOKEN",
        "REQUENCE_TASK_ACCESS_TOKEN",
        "--api-url",
        "--bearer-token",
    ):
        assert name in str(info.value)


def test_every_flag_reads_its_environment_variable() -> None:
    env = {
        "REQUENCE_ACCESS_TOKEN": encode_token("b", "https://x.invalid"),
        "REQUENCE_EXPORTER_MAX_TRACKED_TASKS": "7",
        "REQUENCE_EXPORTER_TASK_TTL": "2h",
        "REQUENCE_EXPORTER_SHARD": "1/3",
        "REQUENCE_EXPORTER_TRACES": "true",
        "REQUENCE_EXPORTER_WEB_CONFIG_FILE": "/etc/web.yml",
    }
    s = settings_for([], env)
    assert (s.max_tracked_tasks, s.task_ttl, s.shard) == (7, 7200.0, (1, 3))
    assert s.tracing.enabled
    assert str(s.web_config_file) == "/etc/web.yml"


@pytest.mark.parametrize(
    ("shard", "expected"),
    [("2/3", (2, 3)), ("rel-requence-exporter-2/3", (2, 3)), ("exporter-0/1", (0, 1))],
)
def test_shard_takes_an_index_or_a_statefulset_pod_name(
    shard: str, expected: tuple[int, int]
) -> None:
    env = {"REQUENCE_ACCESS_TOKEN": encode_token("b", "https://x.invalid")}
    assert settings_for(["--shard", shard], env).shard == expected


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--task-ttl", "soon"], "--task-ttl"),
        (["--max-tracked-tasks", "0"], "--max-tracked-tasks"),
        (["--max-label-values", "ten"], "--max-label-values"),
        (["--shard", "3/3"], "--shard"),
        (["--shard", "exporter-3/3"], "--shard"),
        (["--shard", "exporter/3"], "--shard"),
        (["--listen", "nope"], "--listen"),
        (["--task-buckets", "5,1"], "--task-buckets"),
        (["--since", "last week"], "--since"),
        (["--max-event-bytes", "lots"], "--max-event-bytes"),
    ],
)
def test_bad_values_name_the_flag_and_variable(argv: list[str], flag: str) -> None:
    env = {"REQUENCE_ACCESS_TOKEN": encode_token("b", "https://x.invalid")}
    with pytest.raises(ConfigError) as info:
        settings_for(argv, env)
    assert flag in str(info.value)
    assert "REQUENCE_EXPORTER_" in str(info.value)


def test_units() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_size("16MiB") == 16 * 1024 * 1024
    from datetime import UTC, datetime

    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert parse_since("15m", now) == "2026-11-22T09:45:00.000Z"
    assert parse_since("2026-11-22T11:00:00+01:00", now) == "2026-11-22T10:00:00.000Z"
