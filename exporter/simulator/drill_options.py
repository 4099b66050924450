"""`--incident` and `--incident-after` of `demo` and `simulate`: which fire drill, and when."""

from __future__ import annotations

import argparse
from typing import Any

from exporter.simulator.incidents import INCIDENTS, Incident

__all__ = ["add_incident_options", "chosen_incident"]


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("give 0 to 86400 seconds")
    return value


def add_incident_options(parser: Any) -> None:
    """Add the fire-drill options to a subcommand's parser."""
    parser.add_argument(
        "--incident",
        metavar="INCIDENT",
        choices=sorted(INCIDENTS),
        help=f"Run the normal workload, then this incident: a fire drill for the alerts "
        f"({', '.join(sorted(INCIDENTS))}).",
    )
    parser.add_argument(
        "--incident-after",
        type=_delay,
        default=60.0,
        metavar="SECONDS",
        help="Seconds of normal workload before the incident starts.",
    )


def chosen_incident(args: argparse.Namespace) -> Incident | None:
    """The incident the options name, if any."""
    name = getattr(args, "incident", None)
    return None if name is None else INCIDENTS[name]
