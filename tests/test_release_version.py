"""One version: package, chart, image and changelog agree, and a drift or a wrong tag fails.

Runs `scripts/check_version.py` as the release workflow does, on the real tree and on copies
with one place changed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_version.py"
CHART = "helm/requence-exporter/Chart.yaml"
FILES = ("pyproject.toml", "exporter/__init__.py", CHART, "Dockerfile", "CHANGELOG.md")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def run_check(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the files that state the version."""
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_tree_agrees_with_itself_and_its_tag() -> None:
    done = run_check(ROOT, "--tag", f"v{VERSION}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == VERSION


def test_a_tag_naming_another_version_is_refused() -> None:
    major, minor, patch = map(int, VERSION.split(".")[:3])
    for tag in (f"v{major}.{minor}.{patch + 1}", VERSION, f"v{VERSION}-rc1"):
        done = run_check(ROOT, "--tag", tag)
        assert done.returncode == 1, tag
        assert f"tag {tag!r}" in done.stderr


# Each edit moves one place off the version; the checker must name that place.
DRIFTS = {
    "pyproject.toml": (r'^version = "[^"]+"', 'version = "9.9.9"', "Dockerfile ARG VERSION"),
    "exporter/__init__.py": (
        r'__version__ = "[^"]+"',
        '__version__ = "9.9.9"',
        "exporter/__init__.py fallback",
    ),
    f"{CHART}:version": (r"^version: \S+", "version: 9.9.9", f"{CHART} version"),
    f"{CHART}:appVersion": (r"^appVersion: \S+", 'appVersion: "9.9.9"', f"{CHART} appVersion"),
    f"{CHART}:image": (
        r"(image: \S+):[^\s:]+$",
        r"\1:9.9.9",
        f"{CHART} artifacthub.io/images tag",
    ),
    "Dockerfile": (r"^ARG VERSION=\S+", "ARG VERSION=9.9.9", "Dockerfile ARG VERSION"),
    "CHANGELOG.md": (
        r"^## \[Unreleased\]",
        "## [9.9.9] - 2030-01-01",
        "CHANGELOG.md newest release heading",
    ),
}


@pytest.mark.parametrize("where", sorted(DRIFTS))
def test_each_place_drifting_fails_and_is_named(tree: Path, where: str) -> None:
    pattern, replacement, named = DRIFTS[where]
    path = tree / where.split(":", maxsplit=1)[0]
    text, count = re.subn(pattern, replacement, path.read_text(), count=1, flags=re.M)
    assert count == 1, f"{where}: the version is no longer where the checker looks"
    path.write_text(text)
    done = run_check(tree)
    assert done.returncode == 1
    assert named in done.stderr
    assert done.stdout == ""


def test_release_notes_are_the_version_section(tree: Path) -> None:
    notes = tree / "notes.md"
    done = run_check(tree, "--notes", str(notes))
    assert done.returncode == 0, done.stderr
    changelog = (ROOT / "CHANGELOG.md").read_text()
    body = notes.read_text()
    assert body.strip()
    assert body.strip() in changelog
    # Neither the heading nor the next section, nor the link references, leak in.
    assert "## [" not in body
    assert "]: https://" not in body
    assert changelog.index(body.strip()) > changelog.index(f"## [{VERSION}] - ")


def test_keep_a_changelog_shape() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings[0] == "Unreleased"
    assert VERSION in headings
    for name in headings:
        # Every heading has its link reference at the bottom.
        assert re.search(rf"^\[{re.escape(name)}\]: https://", text, re.M), name


def test_the_image_the_chart_runs_is_the_one_released() -> None:
    values = yaml.safe_load((ROOT / "helm/requence-exporter/values.yaml").read_text())
    chart = yaml.safe_load((ROOT / CHART).read_text())
    [image] = yaml.safe_load(chart["annotations"]["artifacthub.io/images"])
    assert image["image"] == f"{values['image']['repository']}:{chart['appVersion']}"
    assert chart["annotations"]["artifacthub.io/license"] == "Apache-2.0"
    release = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    assert release["env"]["IMAGE"] == values["image"]["repository"]
