"""Command line: `run` (the exporter), `simulate` (a Requence stand-in), `demo` (both), `rules`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from exporter import __version__
from exporter.config import add_options, resolve
from exporter.core import ConfigError, pin_mmap_threshold, setup_logging
from exporter.metrics import add_rules_parser, run_rules
from exporter.simulator import add_incident_options, chosen_incident

__all__ = ["main"]

log = logging.getLogger("exporter")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="requence-exporter",
        description="Prometheus metrics and OpenTelemetry traces from Requence's task stream.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="follow a Requence account and serve its metrics")
    add_options(run, os.environ)
    simulate = commands.add_parser("simulate", help="serve a simulated Requence watch-all stream")
    simulate.add_argument("--listen", default="127.0.0.1:8780", help="HOST:PORT to serve on")
    simulate.add_argument(
        "--seed", type=int, default=1, help="workload seed (same seed, same updates)"
    )
    simulate.add_argument("--rate", type=float, default=50.0, help="updates per second")
    add_incident_options(simulate)
    demo = commands.add_parser("demo", help="the simulator and the exporter in one process")
    demo.add_argument("--listen", default="127.0.0.1:9721", help="HOST:PORT for the exporter")
    demo.add_argument("--seed", type=int, default=1, help="workload seed")
    demo.add_argument("--rate", type=float, default=50.0, help="updates per second")
    demo.add_argument(
        "--summary-every", type=float, default=5.0, help="seconds between summary lines"
    )
    demo.add_argument(
        "--trace-url-template", help="link failures on the status page to this URL ({trace_id})"
    )
    add_incident_options(demo)
    add_rules_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `requence-exporter` and `python -m exporter`."""
    args = _parser().parse_args(argv)
    if args.command == "rules":
        return run_rules(args)
    pin_mmap_threshold()
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
