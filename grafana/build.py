"""Write the committed Grafana dashboards and the Prometheus rule file from their generators.

Run `python grafana/build.py` from the repository root (or anywhere); `--check` only reports
files that differ from what would be written. Others import `render_rules` from here, and
`sync` (the writing and checking) for the chart's copies.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts grafana/ itself on the path; the generators import each other
# as the `grafana` package, so the repository root has to be there too.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exporter.metrics.alerting.objectives import RuleConfig  # noqa: E402
from exporter.metrics.alerting.render import rules_text  # noqa: E402
from exporter.metrics.alerting.rule_groups import render_rules  # noqa: E402
from exporter.metrics.alerting.rules import DEFAULT_THRESHOLDS  # noqa: E402
from grafana.exporter_dashboard import exporter_dashboard  # noqa: E402
from grafana.nodes_dashboard import nodes_dashboard  # noqa: E402
from grafana.slo_dashboard import slo_dashboard  # noqa: E402
from grafana.tasks_dashboard import tasks_dashboard  # noqa: E402

__all__ = [
    "DASHBOARDS",
    "DEFAULT_THRESHOLDS",
    "main",
    "render_rules",
    "rendered_files",
    "rules_yaml",
    "sync",
]

GRAFANA = ROOT / "grafana"
# Each dashboard's file under grafana/dashboards/ and the module that builds it.
DASHBOARDS: Final = {
    "requence-tasks.json": tasks_dashboard,
    "requence-nodes.json": nodes_dashboard,
    "requence-exporter.json": exporter_dashboard,
    "requence-slos.json": slo_dashboard,
}


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
        for name, build in DASHBOARDS.items()
    }
    files[GRAFANA / "alerts.yml"] = rules_yaml()
    return files


def sync(
    argv: list[str] | None,
    description: str,
    root: Path,
    wanted: Mapping[Path, str | bytes],
    stale: Iterable[Path] = (),
) -> int:
    """Write each file of `wanted` that differs and remove the `stale` ones, or with --check in
    `argv` only name them; paths are printed relative to `root`. Returns the exit status."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    check = parser.parse_args(argv).check
    changed: list[tuple[str, Path]] = []
    for path, content in wanted.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        if path.exists() and path.read_bytes() == data:
            continue
        changed.append(("out of date" if check else "written", path))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for path in stale:
        changed.append(("not generated" if check else "removed", path))
        if not check:
            path.unlink()
    for verb, path in changed:
        sys.stdout.write(f"{verb}: {path.relative_to(root)}\n")
    return 1 if check and changed else 0


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the generated files; returns the exit status."""
    return sync(argv, __doc__ or "", ROOT, rendered_files())


if __name__ == "__main__":
    raise SystemExit(main())
