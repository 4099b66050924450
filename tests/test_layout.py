"""The package layout holds: dependencies point one way, modules stay small, the top stays short.

`exporter/` is the wiring (command line, settings, `app`) over subpackages by stage; see
docs/architecture.md. Imports are read with `ast`, those inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "exporter"
MAX_LINES = 400
MAX_TOP_ENTRIES = 12
# Which subpackage may import which besides itself. The top-level modules (the wiring) may
# import any subpackage; no subpackage imports the wiring.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "traces": {"core"},
    "metrics": {"core", "traces"},
    "requence": {"core", "metrics"},
    "serving": {"core", "metrics"},
    "simulator": {"core", "requence", "serving"},
}
# `from exporter import __version__, is_compiled`: the root package's own names.
ROOT_NAMES = {"__version__", "is_compiled"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _unit(path: Path) -> str:
    """The subpackage a file belongs to; '' for the top-level modules."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every import of the package in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "exporter" or node.module.startswith("exporter."):
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name, [])
                for a in node.names
                if a.name == "exporter" or a.name.startswith("exporter.")
            ]
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "." * node.level + (node.module or ""), []))
    return found


def _subpackages() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_every_subpackage_has_a_rule() -> None:
    assert _subpackages() == set(ALLOWED), "add the new subpackage to ALLOWED (and the docs)"


def test_the_allowed_edges_have_no_cycle() -> None:
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(unit: str, path: tuple[str, ...]) -> None:
        assert seen.get(unit) != 1, f"cycle: {' -> '.join((*path, unit))}"
        if seen.get(unit) == 2:
            return
        seen[unit] = 1
        for target in ALLOWED[unit]:
            visit(target, (*path, unit))
        seen[unit] = 2

    for unit in ALLOWED:
        visit(unit, ())


def test_dependencies_point_one_way() -> None:
    problems = []
    for path in _modules():
        unit = _unit(path)
        where = path.relative_to(ROOT)
        for line, module, names in _imports(path):
            if module.startswith("."):
                problems.append(f"{where}:{line}: relative import {module}")
                continue
            parts = module.split(".")
            if len(parts) == 1:  # the root package
                if path.parent != PACKAGE or path.name != "__init__.py":
                    unknown = [n for n in names if n not in ROOT_NAMES]
                    if unknown or not names:
                        problems.append(f"{where}:{line}: from exporter import {names}")
                continue
            target = parts[1]
            if target not in ALLOWED:  # a top-level module: the wiring
                if unit:
                    problems.append(f"{where}:{line}: {unit}/ imports the wiring ({module})")
                continue
            if target == unit:
                continue
            if unit and target not in ALLOWED[unit]:
                problems.append(f"{where}:{line}: {unit}/ may not import {target}/ ({module})")
            private = [n for n in names if n.startswith("_")]
            if private:
                problems.append(f"{where}:{line}: {private} are private to {module}")
    assert not problems, "\n".join(problems)


def test_modules_stay_small() -> None:
    """The package's modules and the generators of the dashboards and rule files (grafana/)."""
    generators = sorted((ROOT / "grafana").rglob("*.py"))
    assert len(generators) > 5, "the generators moved: point this test at them"
    big = {
        str(p.relative_to(ROOT)): n
        for p in [*_modules(), *generators]
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not big, f"split by job (over {MAX_LINES} lines): {big}"


def test_the_top_of_the_package_stays_short() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= MAX_TOP_ENTRIES, entries


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_subpackage_init_is_its_docstring(package: str) -> None:
    """Modules import what they use from the module that defines it; a package's `__init__`
    only says what the package owns, so importing it loads nothing."""
    tree = ast.parse((PACKAGE / package / "__init__.py").read_text())
    assert ast.get_docstring(tree), f"exporter.{package} needs a docstring saying what it owns"
    assert len(tree.body) == 1, f"exporter/{package}/__init__.py holds more than its docstring"
