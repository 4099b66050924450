"""The GitHub workflows: valid against the workflow schema, zizmor-clean, and shaped as promised.

GitHub itself is not reachable here, so the workflows are checked with the tools that read them
(`check-jsonschema`'s vendored workflow schema, `zizmor --offline`) and by reading what they ask
for: pinned actions, least privilege, no persisted credentials, the version gate on releases.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ZIZMOR_CONFIG = ROOT / ".github" / "zizmor.yml"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# `uses: owner/repo@<40 hex> # vX.Y.Z`
PINNED = re.compile(r"^\s*-?\s*uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){1,2}\s*$")


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("zizmor")
    return run(tool, "--offline", "--no-progress", "--config", str(ZIZMOR_CONFIG), str(path))


def all_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def test_there_are_a_ci_and_a_release_workflow() -> None:
    assert {p.name for p in workflow_files()} == {"ci.yml", "release.yml"}


def test_workflows_validate_against_the_github_schema() -> None:
    tool = require_tool("check-jsonschema")
    done = run(tool, "--builtin-schema", "vendor.github-workflows", *map(str, workflow_files()))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    tool = require_tool("check-jsonschema")
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "ci.yml").read_text().replace("runs-on:", "run-on:"))
    done = run(tool, "--builtin-schema", "vendor.github-workflows", str(broken))
    assert done.returncode != 0


def test_zizmor_finds_nothing() -> None:
    done = zizmor(WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings" in done.stdout + done.stderr


def test_zizmor_config_turns_audits_off_only_with_a_reason() -> None:
    lines = ZIZMOR_CONFIG.read_text().splitlines()
    config = yaml.safe_load("\n".join(lines)) or {}
    assert "rules" in config
    for line in lines:
        code, _, reason = line.partition("#")
        if "disable:" in code or "ignore:" in code:
            assert reason.strip(), f"no reason given for: {line.strip()}"


@pytest.mark.parametrize(
    ("edit", "audit"),
    [
        # A tag instead of a commit.
        (lambda t: re.sub(r"@[0-9a-f]{40} # (v[\d.]+)", r"@\1", t, count=1), "unpinned-uses"),
        # Checkout keeping the token in .git/config.
        (lambda t: t.replace("persist-credentials: false", "fetch-depth: 1", 1), "artipacked"),
        # An expression expanded into a shell script.
        (
            lambda t: t.replace(
                "run: make test PYTHON=python", 'run: echo "${{ github.head_ref }}"'
            ),
            "template-injection",
        ),
    ],
)
def test_zizmor_catches_what_the_workflows_avoid(tmp_path: Path, edit: Any, audit: str) -> None:
    target = tmp_path / ".github" / "workflows"
    target.mkdir(parents=True)
    original = (WORKFLOWS / "ci.yml").read_text()
    edited = edit(original)
    assert edited != original
    (target / "ci.yml").write_text(edited)
    done = zizmor(target / "ci.yml")
    assert done.returncode != 0
    assert audit in done.stdout + done.stderr


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_actions_are_pinned_by_commit_with_the_version_beside(name: str) -> None:
    lines = [line for line in (WORKFLOWS / name).read_text().splitlines() if "uses:" in line]
    assert lines
    for line in lines:
        assert PINNED.match(line), line


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_least_privilege_and_no_persisted_credentials(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {}
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, job_name
        assert "write-all" not in str(job["permissions"])
        assert "timeout-minutes" in job, job_name
    checkouts = [
        s for s in all_steps(workflow) if s.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


def test_ci_runs_make_test_on_every_supported_python_and_the_bench_smoke() -> None:
    ci = load("ci.yml")
    assert {"pull_request", "push"} <= set(ci["on"])
    assert ci["concurrency"]["cancel-in-progress"] is True
    job = ci["jobs"]["test"]
    supported = {
        c.rpartition(":: ")[2] for c in PYPROJECT["project"]["classifiers"] if "Python :: 3." in c
    }
    assert (
        set(job["strategy"]["matrix"]["python"])
        == supported
        == {
            "3.11",
            "3.12",
            "3.13",
            "3.14",
        }
    )
    # No upper bound: a newer Python installs, and CI says whether it works.
    assert "<" not in PYPROJECT["project"]["requires-python"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert "make test PYTHON=python" in runs  # .ci/run's command: lint, pure and compiled
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert any(r.startswith("make bench-smoke") for r in runs)
    assert "bench-smoke:" in (ROOT / "Makefile").read_text()
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["cache"] == "pip"


def test_release_refuses_a_tag_that_disagrees_before_anything_else() -> None:
    release = load("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    gate = release["jobs"]["version"]
    script = next(s["run"] for s in gate["steps"] if "run" in s)
    assert 'scripts/check_version.py --tag "$GITHUB_REF_NAME"' in script
    # Every other job waits for the gate, directly or through another job.
    jobs = release["jobs"]

    def needs(name: str) -> set[str]:
        direct = jobs[name].get("needs", [])
        direct = [direct] if isinstance(direct, str) else direct
        return set(direct).union(*(needs(d) for d in direct))

    for name in jobs:
        if name != "version":
            assert "version" in needs(name), name


def test_release_publishes_what_the_readme_promises() -> None:
    release = load("release.yml")
    jobs = release["jobs"]
    steps = {name: job["steps"] for name, job in jobs.items()}
    # PyPI by trusted publishing: an OIDC token, no password or secret.
    pypi = jobs["pypi"]
    assert pypi["permissions"] == {"id-token": "write"}
    assert pypi["environment"]["name"] == "pypi"
    publish = next(s for s in steps["pypi"] if "gh-action-pypi-publish" in s.get("uses", ""))
    assert "password" not in publish.get("with", {})
    assert {"sdist", "wheels"} <= set(pypi["needs"])
    # Compiled wheels for every supported CPython on both architectures, tested by cibuildwheel.
    wheels = jobs["wheels"]
    assert {e["arch"] for e in wheels["strategy"]["matrix"]["include"]} == {"x86_64", "aarch64"}
    cibw_env = next(s for s in steps["wheels"] if "cibuildwheel" in s.get("uses", ""))["env"]
    # Only the architecture is set here: the rest is read from pyproject.toml, the one place
    # `make release-check` (scripts/build-dist) reads too, so the rehearsal cannot drift.
    assert set(cibw_env) == {"CIBW_ARCHS"}
    cibw = PYPROJECT["tool"]["cibuildwheel"]
    assert cibw["build"].split() == [f"cp3{m}-manylinux_*" for m in (11, 12, 13, 14)]
    assert cibw["build-frontend"] == "build"  # isolated: the build installs its requirements
    assert "before-build" not in cibw  # nothing installed by hand
    assert cibw["environment"]["REQUENCE_EXPORTER_COMPILE"] == "1"
    assert cibw["environment"]["REQUENCE_EXPORTER_EXPECT_COMPILED"] == "1"
    assert "test-installed" in cibw["test-command"]
    test_extra = PYPROJECT["project"]["optional-dependencies"]["test"]
    for requirement in cibw["test-requires"]:
        assert requirement in test_extra, f"{requirement} drifted from the test extra"
    # The pure wheel is tested installed too, and twine checks every file.
    sdist = "\n".join(s.get("run", "") for s in steps["sdist"])
    assert "twine check" in sdist
    assert "make test-installed" in sdist
    # The image: both architectures, SBOM and provenance, signed keylessly.
    build = next(s for s in steps["image"] if "build-push-action" in s.get("uses", ""))["with"]
    assert build["platforms"] == "linux/amd64,linux/arm64"
    assert build["sbom"] is True
    assert build["provenance"] == "mode=max"
    assert "needs.version.outputs.version" in build["tags"]
    assert jobs["image"]["permissions"]["id-token"] == "write"
    assert any("cosign sign" in s.get("run", "") for s in steps["image"])
    # The chart as an OCI artifact, and the release with the changelog's notes.
    chart = "\n".join(s.get("run", "") for s in steps["chart"])
    assert 'helm push "chart-dist/requence-exporter-$VERSION.tgz" "$CHART_REGISTRY"' in chart
    assert release["env"]["CHART_REGISTRY"].startswith("oci://")
    notes = "\n".join(s.get("run", "") for s in steps["github-release"])
    assert "--notes-file release/release-notes.md" in notes
    assert jobs["github-release"]["permissions"] == {"contents": "write"}
