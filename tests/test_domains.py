"""Every setting has a domain: a value outside it stops the start with the flag and variable."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.config import OPTIONS, env_name, settings_for
from exporter.core.errors import ConfigError
from exporter.requence.token import encode_token
from tests.e2e.process import ROOT

ENV = {"REQUENCE_ACCESS_TOKEN": encode_token("b", "https://x.invalid")}
NUMERIC = [opt for opt in OPTIONS if opt.domain is not None]
# What an operator can paste by mistake: nothing in any numeric domain.
HOSTILE = ["0", "-1", "1e999", "nan", "inf", "-inf", "9" * 5000, "١٢", "1_000", " ", "0x10"]
# Numeric options where 0 means off, said in their help.
ZERO_IS_OFF = {"--gather-reads"}
# Options whose value is free text or a path (checked by their own parsers, or not numbers).
NOT_NUMERIC = {
    "--access-token",
    "--access-token-file",
    "--api-url",
    "--bearer-token",
    "--bearer-token-file",
    "--since",
    "--listen",
    "--log-level",
    "--log-format",
    "--stream-reader",
    "--state-file",
    "--shard",
    "--web.config.file",
    "--trace-url-template",
}


def test_every_option_is_a_switch_a_numeric_domain_or_checked_text() -> None:
    for opt in OPTIONS:
        assert opt.metavar is None or opt.domain is not None or opt.flag in NOT_NUMERIC, opt.flag
        if opt.domain is not None and opt.default is not None:
            opt.domain(opt.default)  # the default is in its own domain


def test_the_stream_reader_is_one_of_three_named_choices() -> None:
    for reader in ("auto", "llhttp", "httpx"):
        assert settings_for([f"--stream-reader={reader}"], ENV).stream_reader == reader
    for argv, env in (
        (["--stream-reader=curl"], ENV),
        ([], {**ENV, env_name("--stream-reader"): "H"}),
    ):
        with pytest.raises(ConfigError) as info:
            settings_for(argv, env)
        assert "--stream-reader (REQUENCE_EXPORTER_STREAM_READER)" in str(info.value)


def test_reads_gather_for_at_most_half_the_read_timeout() -> None:
    # Reading paused for as long as the read timeout would look like a silent server.
    settings = settings_for(["--read-timeout=2s", "--gather-reads=1s"], ENV)
    assert (settings.read_timeout, settings.gather_reads) == (2.0, 1.0)
    with pytest.raises(ConfigError) as info:
        settings_for(["--read-timeout=1s", "--gather-reads=600ms"], ENV)
    assert "--gather-reads (REQUENCE_EXPORTER_GATHER_READS)" in str(info.value)
    assert "--read-timeout" in str(info.value)


@pytest.mark.parametrize("flag", [opt.flag for opt in NUMERIC])
@pytest.mark.parametrize("value", HOSTILE)
def test_a_numeric_setting_outside_its_domain_names_the_flag_and_variable(
    flag: str, value: str
) -> None:
    if value == "0" and flag in ZERO_IS_OFF:
        assert settings_for([f"{flag}={value}"], ENV).gather_reads == 0.0
        assert "0 " in next(opt.help for opt in OPTIONS if opt.flag == flag)
        return
    for argv, env in (([f"{flag}={value}"], ENV), ([], {**ENV, env_name(flag): value})):
        with pytest.raises(ConfigError) as info:
            settings_for(argv, env)
        assert flag in str(info.value)
        assert env_name(flag) in str(info.value)


@pytest.mark.slow
@settings(deadline=None)  # a whole start-up's parsing per example: no timing is asserted
@given(st.text(max_size=30))
def test_any_text_for_any_setting_is_a_value_or_a_config_error(text: str) -> None:
    for opt in OPTIONS:
        if opt.metavar is None or opt.flag.startswith(("--access", "--bearer", "--api")):
            continue
        with contextlib.suppress(ConfigError):
            settings_for([f"{opt.flag}={text}"], ENV)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--since", "9999-12-31T23:59:59-14:00"], "--since"),  # parses, cannot be rendered
        (["--since", "0001-01-01T00:00:00+14:00"], "--since"),
        (["--since", "2999-01-01T00:00:00Z"], "--since"),  # in the future
        (["--since", "999999999999d"], "--since"),
        (["--shard", "1/99999999999999999999"], "--shard"),
        (["--listen", "127.0.0.1:²"], "--listen"),
        (["--trace-url-template", "http://x/{trace_id}\n"], "--trace-url-template"),
        (["--task-buckets", "1,nan"], "--task-buckets"),
        (["--node-buckets", ",".join(str(i) for i in range(1, 100))], "--node-buckets"),
    ],
)
def test_checked_text_outside_its_domain_names_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_for(argv, ENV)
    assert flag in str(info.value)


def test_a_switch_variable_that_is_neither_true_nor_false_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        settings_for([], {**ENV, "REQUENCE_EXPORTER_LOG_FAILURES": "maybe"})
    assert info.value.code == 2
    assert "REQUENCE_EXPORTER_LOG_FAILURES" in capsys.readouterr().err
    assert settings_for([], {**ENV, "REQUENCE_EXPORTER_LOG_FAILURES": "off"}).log_failures is False


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--checkpoint-interval", "0"], {}, "--checkpoint-interval"),
        ([], {"REQUENCE_EXPORTER_READ_TIMEOUT": "0"}, "REQUENCE_EXPORTER_READ_TIMEOUT"),
    ],
)
def test_the_process_exits_2_with_one_line_naming_the_setting(
    argv: list[str], env: dict[str, str], named: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "run", "--listen", "127.0.0.1:0", *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **ENV, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert named in done.stderr
    assert "Traceback" not in done.stderr
