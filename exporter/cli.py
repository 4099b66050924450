"""Command line: `run` (the exporter), `simulate` (a Requence stand-in), `demo` (both), `rules`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from functools import partial

from exporter import __version__
from exporter.config import OPTIONS, add_options, resolve
from exporter.core.errors import ConfigError
from exporter.core.logs import setup_logging
from exporter.core.options import HelpFormatter, argument, bind_environment
from exporter.core.runtime import tune
from exporter.core.units import parse_duration, parse_number
from exporter.metrics.alerting.command import add_rules_parser, run_rules
from exporter.simulator.drill_options import add_incident_options, chosen_incident

__all__ = ["main"]

log = logging.getLogger("exporter")


def _parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="requence-exporter",
        description="Prometheus metrics and OpenTelemetry traces from Requence's task stream.",
        epilog="Each command's options: requence-exporter COMMAND --help. Every option can "
        "also be set by its environment variable, shown in that help.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="Show the version and exit.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="Follow a Requence account and serve its metrics.",
        description="Follow a Requence account's tasks through the watch-all stream; serve "
        "Prometheus metrics, the status page and, with OTLP set up, send traces.",
    )
    add_options(run, env)
    simulate = commands.add_parser(
        "simulate",
        help="Serve a simulated Requence account.",
        description="Serve a simulated Requence account's watch-all stream and print the "
        "REQUENCE_ACCESS_TOKEN that reads it.",
    )
    simulate.add_argument(
        "--listen", metavar="HOST:PORT", default="127.0.0.1:8780", help="Address to serve on."
    )
    _workload_options(simulate)
    bind_environment(simulate, env)
    demo = commands.add_parser(
        "demo",
        help="Run the simulator and the exporter reading it, in one process.",
        description="A simulated Requence account and the exporter reading it, in one process: "
        "prints where to look, then a summary line every few seconds.",
    )
    demo.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:9721",
        help="Address of the exporter's HTTP server.",
    )
    _workload_options(demo)
    demo.add_argument(
        "--summary-every",
        metavar="SECONDS",
        type=argument(partial(parse_duration, low=0.001, high=86400)),
        default=5.0,
        help="Seconds between summary lines.",
    )
    template = next(o for o in OPTIONS if o.flag == "--trace-url-template")
    demo.add_argument(template.flag, metavar=template.metavar, help=template.help)
    bind_environment(demo, env)
    add_rules_parser(commands)
    bind_environment(commands.choices["rules"], env)
    bind_environment(parser, env)  # --help and --version only
    return parser


def _workload_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed",
        metavar="N",
        type=int,
        default=1,
        help="Workload seed: the same seed, the same run.",
    )
    parser.add_argument(
        "--rate",
        metavar="UPDATES",
        type=argument(partial(parse_number, low=0.001, high=1_000_000)),
        default=50.0,
        help="Updates a second, on average.",
    )
    add_incident_options(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `requence-exporter` and `python -m exporter`."""
    args = _parser().parse_args(argv)
    if args.command == "rules":
        return run_rules(args)
    tune()
    if args.command == "run":
        setup_logging(
            getattr(args, "log_level", "info") or "info",
            getattr(args, "log_format", "text") or "text",
        )
        try:
            settings = resolve(args)
        except ConfigError as exc:
            print(f"requence-exporter: {exc}", file=sys.stderr)
            return 2
        setup_logging(settings.log_level, settings.log_format)
        from exporter.app import run_exporter

        return asyncio.run(run_exporter(settings))
    setup_logging("info", "text")
    if args.command == "simulate":
        from exporter.demo import run_simulator

        return asyncio.run(
            run_simulator(
                args.listen,
                seed=args.seed,
                rate=args.rate,
                incident=chosen_incident(args),
                delay=args.incident_after,
            )
        )
    from exporter.demo import run_demo

    return asyncio.run(
        run_demo(
            args.listen,
            seed=args.seed,
            rate=args.rate,
            every=args.summary_every,
            trace_url_template=args.trace_url_template,
            incident=chosen_incident(args),
            delay=args.incident_after,
        )
    )
