"""Code the test files share lives in modules that are not test files (tests/helpers.py,
tests/factories.py, tests/e2e/prometheus.py, ...): importing a test file runs its module-level
setup and, under pytest, collects its tests a second time under another name."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(tree: ast.Module, package: list[str]) -> list[tuple[int, str]]:
    """(line, dotted name) of every module an import statement names, relative ones resolved
    against `package`, and `from package import name` counted as the module `package.name`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def test_no_file_imports_a_test_file() -> None:
    problems = []
    for path in sorted(TESTS.rglob("*.py")):
        package = list(path.relative_to(TESTS.parent).parent.parts)
        for line, module in imported_modules(ast.parse(path.read_text()), package):
            if module.startswith("tests.") and module.rpartition(".")[2].startswith("test_"):
                problems.append(f"{path.relative_to(TESTS.parent)}:{line}: imports {module}")
    assert not problems, "\n".join(problems)


def test_the_check_sees_every_form_of_import() -> None:
    forms = [
        ("import tests.test_a", ["tests"]),
        ("from tests.e2e.test_a import x", ["tests"]),
        ("from tests import test_a", ["tests"]),
        ("from .test_a import x", ["tests", "e2e"]),
        ("from . import test_a", ["tests"]),
        ("from ..test_a import x", ["tests", "e2e"]),
    ]
    for source, package in forms:
        names = [m for _, m in imported_modules(ast.parse(source), package)]
        assert any(m.rpartition(".")[2] == "test_a" for m in names), source
        assert all(m.startswith("tests") for m in names), (source, names)
