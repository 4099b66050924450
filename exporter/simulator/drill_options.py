"""`--incident` and `--incident-after` of `demo` and `simulate`: which fire drill, and when."""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from exporter.core.options import argument
from exporter.core.units import parse_duration
from exporter.simulator.incidents import INCIDENTS, Incident

__all__ = ["add_incident_options", "chosen_incident"]


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
        type=argument(partial(parse_duration, high=86400)),
        default=60.0,
        metavar="SECONDS",
        help="Seconds of normal workload before the incident starts.",
    )


def chosen_incident(args: argparse.Namespace) -> Incident | None:
    """The incident the options name, if any."""
    name = getattr(args, "incident", None)
    return None if name is None else INCIDENTS[name]
