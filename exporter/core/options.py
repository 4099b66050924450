"""Command-line options in one style for every command.

Each flag has an environment variable, REQUENCE_EXPORTER_ and the flag in upper case
(`--max-tracked-tasks` is REQUENCE_EXPORTER_MAX_TRACKED_TASKS); the flag wins over the variable,
the variable over the default. `--help` shows each flag's metavar, its default and its variable.
A variable never shows in `--help` with its value: it may hold a secret.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

__all__ = ["ENV_PREFIX", "HelpFormatter", "argument", "bind_environment", "env_name", "truthy"]

T = TypeVar("T")

ENV_PREFIX: Final = "REQUENCE_EXPORTER_"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})


def env_name(flag: str) -> str:
    """The environment variable that sets `flag`: REQUENCE_EXPORTER_ + upper case."""
    return ENV_PREFIX + re.sub(r"[-.]", "_", flag.lstrip("-")).upper()


def truthy(text: str) -> bool | None:
    """A switch's variable: true for 1/true/yes/on, false for 0/false/no/off or empty."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions and epilogs filled paragraph by paragraph; indented lines (examples) kept."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # Flags, file names and task names hold hyphens, and a variable's name can be wider than
        # the column: never break a line inside one.
        return textwrap.wrap(
            " ".join(text.split()), width, break_on_hyphens=False, break_long_words=False
        )

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.strip("\n").split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines[1:]):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(paragraph.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                    )
                )
        return "\n\n".join(paragraphs)


def _shown(default: Any) -> str | None:
    if default is None or default is False or default in ([], ""):
        return None
    return f"{default:g}" if isinstance(default, float) else str(default)


def _switch(text: str) -> bool:
    value = truthy(text)
    if value is None:
        raise ValueError(f"give true or false (1/0, yes/no, on/off), not {text!r}")
    return value


def _checked(action: argparse.Action, name: str, raw: str) -> Callable[[str], Any]:
    """The action's type, checking its choices too, naming the variable when the text is its."""
    if isinstance(action, argparse._StoreTrueAction):
        convert: Callable[[str], Any] = _switch
    else:
        convert = action.type if callable(action.type) else str
    choices = action.choices

    def parse(text: str) -> Any:
        try:
            value = convert(text)
            if choices is not None and value not in choices:
                raise ValueError(f"give one of {', '.join(map(str, choices))}")
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            where = f"{name}={text!r}" if text == raw else repr(text)
            raise argparse.ArgumentTypeError(f"{where}: {exc}") from None
        return value

    return parse


def bind_environment(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Give each flag of `parser` its variable, and note its default and variable in its help.

    Call it once the flags are added. A variable that does not parse stops the command it belongs
    to, with a message naming it (exit 2).
    """
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            action.help = "Show this help and exit."
            continue
        if not action.option_strings or isinstance(action, argparse._VersionAction):
            continue
        name = env_name(max(action.option_strings, key=len))
        notes = [f"env: {name}"]
        shown = _shown(action.default)
        if shown is not None:
            notes.insert(0, "default: " + shown.replace("%", "%%"))
        action.help = f"{action.help or ''} [{'; '.join(notes)}]".lstrip()
        if name not in env:
            continue
        raw = env[name]
        if isinstance(action, argparse._AppendAction):
            action.default = raw.split()  # a repeatable flag: its values separated by spaces
            continue
        # A text default is converted by `type` only when this command is the one parsed and
        # the flag is not given, so one command's bad variable never stops another command.
        action.default = raw
        if action.type is not None or action.choices is not None or action.nargs == 0:
            action.type = _checked(action, name, raw)


def argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` (one of `exporter.core.units`) as an argparse type: its ValueError becomes a
    usage error with its message."""

    def checked(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return checked
