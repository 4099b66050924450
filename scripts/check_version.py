#!/usr/bin/env python3
"""One version: the package, the chart, the image and the changelog must name the same one.

    scripts/check_version.py [--root DIR] [--tag vX.Y.Z] [--notes FILE]

Prints the version when every place agrees (and with the tag, when one is given); otherwise
names each place that disagrees and exits 1. `--notes FILE` writes that version's changelog
section, the release's notes. Standard library only, so the release workflow runs it before
installing anything.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = Path("helm/requence-exporter/Chart.yaml")
SEMVER = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
# `## [1.2.3] - 2026-01-31`: Keep a Changelog's release heading (Unreleased has no date).
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\] - \d{4}-\d{2}-\d{2}\s*$", re.M)


def _top_level(text: str, key: str) -> str | None:
    """A top-level scalar of a flat YAML file such as Chart.yaml, quotes removed."""
    match = re.search(rf"^{key}:\s*(\S+)\s*(?:#.*)?$", text, re.M)
    return match.group(1).strip("'\"") if match else None


def _one(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.M)
    return match.group(1) if match else None


def changelog_releases(text: str) -> list[str]:
    """Versions of the changelog's release headings, newest first."""
    return [match.group("version") for match in RELEASE_HEADING.finditer(text)]


def release_notes(text: str, version: str) -> str:
    """The body of `version`'s changelog section (up to the next `## ` heading)."""
    for match in RELEASE_HEADING.finditer(text):
        if match.group("version") == version:
            rest = text[match.end() :]
            end = re.search(r"^## |^\[[^\]]+\]: ", rest, re.M)
            return (rest[: end.start()] if end else rest).strip() + "\n"
    raise KeyError(version)


def versions(root: Path) -> dict[str, str | None]:
    """Every place that states the version, by a name that says where to fix it."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    chart = (root / CHART).read_text()
    init = (root / "exporter/__init__.py").read_text()
    dockerfile = (root / "Dockerfile").read_text()
    releases = changelog_releases((root / "CHANGELOG.md").read_text())
    return {
        "pyproject.toml [project] version": pyproject["project"].get("version"),
        "exporter/__init__.py fallback __version__": _one(r'^\s+__version__ = "([^"]+)"', init),
        f"{CHART} version": _top_level(chart, "version"),
        f"{CHART} appVersion": _top_level(chart, "appVersion"),
        f"{CHART} artifacthub.io/images tag": _one(r"^\s+image: \S+:(\S+)\s*$", chart),
        "Dockerfile ARG VERSION": _one(r"^ARG VERSION=(\S+)", dockerfile),
        "CHANGELOG.md newest release heading": releases[0] if releases else None,
    }


def check(root: Path, tag: str | None) -> tuple[str | None, list[str]]:
    """The agreed version, or None with one line per disagreement."""
    found = versions(root)
    expected = found["pyproject.toml [project] version"]
    problems = [
        f"{where}: {value or 'missing'} (pyproject.toml says {expected})"
        for where, value in found.items()
        if value != expected
    ]
    if expected is None or not SEMVER.fullmatch(expected):
        problems.append(f"pyproject.toml version {expected!r} is not X.Y.Z")
    if tag is not None and tag != f"v{expected}":
        problems.append(f"tag {tag!r} is not v{expected}, the version the files state")
    return (None if problems else expected), problems


def main(argv: list[str] | None = None) -> int:
    """Check the versions; print the version (and write its notes) when they agree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project's root directory")
    parser.add_argument("--tag", help="the release tag, vX.Y.Z, that must match")
    parser.add_argument("--notes", type=Path, help="write this version's changelog section here")
    args = parser.parse_args(argv)
    version, problems = check(args.root, args.tag)
    if version is None:
        print("versions disagree:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    if args.notes is not None:
        notes = release_notes((args.root / "CHANGELOG.md").read_text(), version)
        args.notes.write_text(notes)
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
