"""`requence-exporter rules`: print the Prometheus rule file, configured without editing Python.

Options apply in order after the defaults: `--config FILE` (the shape of the Helm chart's
`prometheusRule` values: thresholds, slo.objectives, slo.latency, disabledAlerts), then
`--slo-window`, `--objective`, `--latency`, `--set`, `--job-regex`, `--enable`, `--disable`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from exporter.metrics.alerting.objectives import RuleConfig, latency_objective
from exporter.metrics.alerting.render import rules_text

__all__ = ["add_rules_parser", "run_rules"]

_DESCRIPTION = """Print the Prometheus rule file: the alerts, the recording rules and the service
level objectives. Without options it is grafana/alerts.yml.

The options apply in this order after the defaults: --config (a YAML file shaped like the Helm
chart's prometheusRule values: thresholds, slo.objectives, slo.latency, disabledAlerts), then
--slo-window, --objective, --latency, --set, --job-regex, --enable, --disable. A repeatable
option's variable takes several values separated by spaces.
"""
_EPILOG = """examples:
  requence-exporter rules > alerts.yml
  requence-exporter rules --objective 0.995 --objective invoice-processing=0.999
  requence-exporter rules --latency image-resize=2.5s:0.95 --job-regex 'requence-exporter-prod'
  requence-exporter rules --set slo_page_fast_long_window=10m --set slo_page_fast_for=0s
  requence-exporter rules --config slo.yaml
"""


def add_rules_parser(commands: Any) -> None:
    """Register `rules` on the CLI's subcommands."""
    rules = commands.add_parser(
        "rules",
        help="Print the Prometheus rule file (alerts and SLOs).",
        description=_DESCRIPTION,
        epilog=_EPILOG,
    )
    rules.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML file shaped like the Helm chart's prometheusRule values.",
    )
    rules.add_argument(
        "--objective",
        action="append",
        default=[],
        metavar="[TASK_NAME=]RATIO",
        help="Availability objective, of every task name or of one (0.999 = 99.9 %%); repeatable.",
    )
    rules.add_argument(
        "--latency",
        action="append",
        default=[],
        metavar="TASK_NAME=THRESHOLD:RATIO",
        help="Latency objective of a task name, e.g. image-resize=2.5s:0.95 (the threshold "
        "is a duration bucket); repeatable.",
    )
    rules.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Any threshold, window, burn-rate factor or for duration, by its name in "
        "docs/dashboards-and-alerts.md; repeatable.",
    )
    rules.add_argument(
        "--slo-window",
        metavar="DURATION",
        help="Window of every SLO, 28d unless --config sets one; the burn-rate factors "
        "scale to match.",
    )
    rules.add_argument(
        "--job-regex", metavar="REGEX", help="Regex matching the exporter's scrape job(s)."
    )
    rules.add_argument(
        "--enable",
        action="append",
        default=[],
        metavar="ALERT",
        help="Turn on an alert that is off by default, such as RequenceTaskErrorRatioHigh; "
        "repeatable.",
    )
    rules.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="ALERT",
        help="Turn off an alert, by its name; repeatable.",
    )


def _split(text: str, sep: str, what: str) -> tuple[str, str]:
    left, found, right = text.rpartition(sep)
    if not found or not left or not right:
        raise ValueError(f"expected {what}, got {text!r}")
    return left, right


def _ratio(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a ratio (use e.g. 0.99): {text!r}") from None


def _line(text: str) -> str:
    """An error message on one printable line (it may quote hostile input)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in " ".join(text.split()))


# A rule configuration is a few kilobytes; anything far larger is not one.
MAX_CONFIG_BYTES = 1 << 20


def load_config(path: Path) -> Any:
    """The YAML document in `path`, read with a bound and without anchors or aliases (an alias
    bomb of a few hundred bytes would otherwise expand to gigabytes)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        """PyYAML's safe loader, refusing anchors and aliases where they appear."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise yaml.YAMLError(f"anchors and aliases are not allowed{event.start_mark}")
            return super().compose_node(parent, index)

    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ValueError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
        return yaml.load(data.decode("utf-8"), Loader=NoAliasLoader)  # noqa: S506 (safe subclass)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ValueError(f"cannot read {path}: {detail}") from None


def build_config(args: argparse.Namespace) -> RuleConfig:
    """The RuleConfig the options describe; ValueError names the bad option."""
    config = RuleConfig()
    if args.config is not None:
        config.update(load_config(args.config), str(args.config))
    if args.slo_window is not None:
        config.set_slo_window(args.slo_window)
    for item in args.objective:
        name, sep, ratio = item.rpartition("=")
        config.set_objective(name if sep else "", _ratio(ratio))
    for item in args.latency:
        name, spec = _split(item, "=", "TASK_NAME=THRESHOLD:RATIO")
        threshold, ratio = _split(spec, ":", "TASK_NAME=THRESHOLD:RATIO")
        config.latency[name] = latency_objective(name, threshold, _ratio(ratio))
    for item in args.set:
        key, value = _split(item, "=", "KEY=VALUE")
        config.set_threshold(key, value)
    if args.job_regex is not None:
        config.set_threshold("exporter_job_regex", args.job_regex)
    config.disabled = [a for a in config.disabled if a not in args.enable] + args.disable
    return config


def run_rules(args: argparse.Namespace) -> int:
    """Print the rule file; exit 2 with one line on stderr for bad options."""
    try:
        text = rules_text(build_config(args))
    except ValueError as exc:
        print(f"requence-exporter rules: {_line(str(exc))}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
