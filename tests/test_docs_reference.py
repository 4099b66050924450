"""The reference pages stay in step with the code and each other: every `run` flag in
docs/configuration.md with its variable and default, every metric family in docs/metrics.md,
and every relative link in README.md, CONTRIBUTING.md and docs/ leads to a file and a heading
that exist (GitHub's heading anchors, or an `<a id>`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.config import OPTIONS, Option
from exporter.core.options import env_name
from exporter.metrics.families import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def table_rows(path: Path) -> dict[str, list[str]]:
    """Markdown table rows by their first cell."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("option", OPTIONS, ids=[o.flag for o in OPTIONS])
def test_every_run_flag_is_in_the_configuration_reference(option: Option) -> None:
    rows = table_rows(DOCS / "configuration.md")
    row = rows.get(f"`{option.flag}`")
    assert row is not None, f"{option.flag} is missing from docs/configuration.md"
    assert row[1] == f"`{env_name(option.flag)}`"
    if option.default is not None and "," not in option.default:
        assert row[2] == f"`{option.default}`", option.flag


def test_every_metric_family_is_in_the_metrics_reference() -> None:
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    assert len(FAMILIES) > 20
    for family in FAMILIES:
        short = family.name.removeprefix("requence_exporter_")
        assert f"`{short}" in text, f"{family.name} is missing from docs/metrics.md"


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings (lower case, punctuation dropped, spaces as -)."""
    text = page.read_text(encoding="utf-8")
    headings = re.findall(r"(?m)^#+ (.*)$", text)
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
    return slugs | set(re.findall(r'<a id="([^"]+)"', text))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        dest = page.parent / path if path else page
        assert dest.exists(), f"{page.name}: {target} leads to no file"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{page.name}: {target} leads to no heading"
