"""The command line in one style: every option of every command has a metavar, a variable and its
default in --help, variables set options, and a variable's value never shows in --help.
"""

from __future__ import annotations

import argparse
import logging

import orjson
import pytest

from exporter.cli import _parser, main
from exporter.core.logs import JsonFormatter, TextFormatter
from exporter.core.options import env_name

COMMANDS = ("run", "simulate", "demo", "rules")


def subparser(command: str, env: dict[str, str] | None = None) -> argparse.ArgumentParser:
    parser = _parser({} if env is None else env)
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen: argparse.ArgumentParser = commands.choices[command]
    return chosen


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_a_metavar_help_default_and_variable(command: str) -> None:
    parser = subparser(command)
    text = parser.format_help()
    assert "`" not in text  # plain text, not Markdown
    assert " VALUE" not in text  # argparse's word for any value (KEY=VALUE says more)
    assert options(parser)
    for action in options(parser):
        flag = max(action.option_strings, key=len)
        if action.nargs != 0:
            # A word chosen for what it takes, not argparse's upper-cased destination.
            assert action.metavar, flag
        assert action.help, flag
        assert action.help[0].isupper(), f"{flag}: {action.help}"
        assert f"env: {env_name(flag)}]" in action.help, flag
        shown = action.default not in (None, False, [])
        assert ("[default: " in action.help) is shown, flag
        assert f"env: {env_name(flag)}" in " ".join(text.split()), flag


def test_top_level_help_lists_the_commands_in_the_same_style() -> None:
    text = _parser({}).format_help()
    for command in COMMANDS:
        line = next(x for x in text.splitlines() if x.strip().startswith(command + " "))
        assert line.split(maxsplit=1)[1][0].isupper(), line
    assert "`" not in text


def test_a_variable_sets_an_option_and_the_flag_wins() -> None:
    env = {
        "REQUENCE_EXPORTER_SEED": "7",
        "REQUENCE_EXPORTER_RATE": "12.5",
        "REQUENCE_EXPORTER_INCIDENT": "outage",
    }
    args = _parser(env).parse_args(["demo", "--seed", "3"])
    assert (args.seed, args.rate, args.incident) == (3, 12.5, "outage")
    rules = _parser({"REQUENCE_EXPORTER_OBJECTIVE": "0.995 billing=0.999"}).parse_args(
        ["rules", "--objective", "ocr=0.9"]
    )
    assert rules.objective == ["0.995", "billing=0.999", "ocr=0.9"]
    switches = _parser({"REQUENCE_EXPORTER_LOG_FAILURES": "yes"}).parse_args(["run"])
    assert switches.log_failures is True
    assert switches.traces is False


@pytest.mark.parametrize(
    ("name", "value", "command"),
    [
        ("REQUENCE_EXPORTER_RATE", "fast", "demo"),
        ("REQUENCE_EXPORTER_INCIDENT", "meteor", "simulate"),
        ("REQUENCE_EXPORTER_TRACES", "maybe", "run"),
    ],
)
def test_a_bad_variable_stops_with_its_name(
    name: str, value: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        _parser({name: value}).parse_args([command])
    assert stopped.value.code == 2
    assert name in capsys.readouterr().err


def test_one_commands_bad_variable_never_stops_another() -> None:
    env = {"REQUENCE_EXPORTER_RATE": "fast", "REQUENCE_EXPORTER_TRACES": "maybe"}
    assert _parser(env).parse_args(["rules"]).command == "rules"
    assert _parser(env).parse_args(["simulate", "--rate", "5"]).rate == 5.0
    assert _parser(env).parse_args(["run", "--traces"]).traces is True


def test_help_never_shows_a_variables_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REQUENCE_EXPORTER_ACCESS_TOKEN", "do-not-print-me")
    monkeypatch.setenv("REQUENCE_EXPORTER_BEARER_TOKEN", "nor-me")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "REQUENCE_EXPORTER_ACCESS_TOKEN" in out
    assert "do-not-print-me" not in out
    assert "nor-me" not in out


def _record(message: str, *args: object, fields: dict[str, object]) -> logging.LogRecord:
    record = logging.LogRecord("exporter.app", logging.INFO, __file__, 1, message, args, None)
    record.fields = fields
    return record


def test_fields_are_json_fields_and_logfmt_pairs_in_text() -> None:
    fields: dict[str, object] = {"listen": "0.0.0.0:9721", "state_file": None, "note": "a b"}
    record = _record("requence-exporter %s starting", "1.0", fields=fields)
    entry = orjson.loads(JsonFormatter().format(record))
    assert entry["message"] == "requence-exporter 1.0 starting"
    assert {k: entry[k] for k in fields} == fields
    line = TextFormatter().format(record)
    assert line.endswith(
        "exporter.app: requence-exporter 1.0 starting"
        ' listen=0.0.0.0:9721 state_file=null note="a b"'
    )
