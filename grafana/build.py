"""Write the committed Grafana dashboards and the Prometheus rule file from their generators.

Run `python grafana/build.py` from the repository root (or anywhere); `--check` only reports
files that differ from what would be written. Others import `render_rules` from here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts grafana/ itself on the path; the generators import each other
# as the `grafana` package, so the repository root has to be there too.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exporter.metrics.alerting.objectives import RuleConfig  # noqa: E402
from exporter.metrics.alerting.render import rules_text  # noqa: E402
from exporter.metrics.alerting.rule_groups import render_rules  # noqa: E402
from exporter.metrics.alerting.rules import DEFAULT_THRESHOLDS  # noqa: E402
from grafana.dashboards import DASHBOARDS  # noqa: E402
from grafana.slo_dashboard import slo_dashboard  # noqa: E402

__all__ = ["DEFAULT_THRESHOLDS", "render_rules", "rendered_files", "rules_yaml"]

GRAFANA = ROOT / "grafana"


def rules_yaml(thresholds: dict[str, Any] | None = None) -> str:
    """The rule file text for `thresholds` (defaults when None): `requence-exporter rules`."""
    config = RuleConfig()
    for key, value in (thresholds or {}).items():
        config.set_threshold(key, value)
    return rules_text(config)


def rendered_files() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    files = {
        GRAFANA / "dashboards" / name: json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in {**DASHBOARDS, "requence-slos.json": slo_dashboard}.items()
    }
    files[GRAFANA / "alerts.yml"] = rules_yaml()
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the generated files; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    for path in stale:
        sys.stdout.write(f"{verb}: {path}\n")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
