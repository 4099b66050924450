"""The GitHub workflows: valid against the workflow schema, zizmor-clean, and doing what they must.

GitHub itself is not reachable here, so the workflows are checked with the tools that read them
(`check-jsonschema`'s vendored workflow schema; `zizmor --offline`, which covers pinned actions,
permissions, persisted credentials, trusted publishing and injection, and is shown to catch each)
and by following what they run: CI runs `.ci/run`'s command on every supported Python, every
`make` target and script they call exists, the release's version gate comes before every other
job, and what is published is what the tested jobs built.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
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
    ("name", "edit", "audit"),
    [
        # A tag instead of a commit.
        (
            "ci.yml",
            lambda t: re.sub(r"@[0-9a-f]{40} # (v[\d.]+)", r"@\1", t, count=1),
            "unpinned-uses",
        ),
        # Checkout keeping the token in .git/config.
        (
            "ci.yml",
            lambda t: t.replace("persist-credentials: false", "fetch-depth: 1", 1),
            "artipacked",
        ),
        # An expression expanded into a shell script.
        (
            "ci.yml",
            lambda t: t.replace(
                "run: make test PYTHON=python", 'run: echo "${{ github.head_ref }}"'
            ),
            "template-injection",
        ),
        # A job given every permission.
        (
            "ci.yml",
            lambda t: t.replace("permissions:\n      contents: read", "permissions: write-all", 1),
            "excessive-permissions",
        ),
        # PyPI by a stored token instead of trusted publishing.
        (
            "release.yml",
            lambda t: re.sub(
                r"(uses: pypa/gh-action-pypi-publish@.*\n)",
                r"\1        with:\n          password: ${{ secrets.PYPI_TOKEN }}\n",
                t,
            ),
            "use-trusted-publishing",
        ),
    ],
)
def test_zizmor_catches_what_the_workflows_avoid(
    tmp_path: Path, name: str, edit: Any, audit: str
) -> None:
    target = tmp_path / ".github" / "workflows"
    target.mkdir(parents=True)
    original = (WORKFLOWS / name).read_text()
    edited = edit(original)
    assert edited != original
    (target / name).write_text(edited)
    done = zizmor(target / name)
    assert done.returncode != 0
    assert audit in done.stdout + done.stderr


def runs(workflow: dict[str, Any]) -> list[str]:
    """Every shell script of a workflow's steps."""
    return [step["run"] for step in all_steps(workflow) if "run" in step]


def needs(jobs: dict[str, Any], name: str) -> set[str]:
    """The jobs `name` waits for, directly or through another job."""
    direct = jobs[name].get("needs", [])
    direct = [direct] if isinstance(direct, str) else direct
    return set(direct).union(*(needs(jobs, d) for d in direct))


def test_every_job_is_bounded_in_time() -> None:
    for name in ("ci.yml", "release.yml"):
        for job_name, job in load(name)["jobs"].items():
            assert job.get("timeout-minutes"), f"{name}: {job_name}"


def test_ci_runs_the_ci_script_on_every_supported_python_after_the_tools() -> None:
    ci_run = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci_run == ["make test"], "this test follows .ci/run's one command"
    job = load("ci.yml")["jobs"]["test"]
    commands = [shlex.split(step.get("run", "")) for step in job["steps"]]
    tests_at = next(i for i, c in enumerate(commands) if c[:2] == ["make", "test"])
    tools_at = next(i for i, c in enumerate(commands) if c == ["sudo", "./scripts/ensure-tools"])
    # The tools first: under CI=true a test that misses one fails instead of skipping.
    assert tools_at < tests_at
    supported = {
        c.rpartition(":: ")[2] for c in PYPROJECT["project"]["classifiers"] if "Python :: 3." in c
    }
    assert set(job["strategy"]["matrix"]["python"]) == supported


def test_every_make_target_and_script_the_workflows_run_exists() -> None:
    scripts = [
        (ROOT / ".ci" / "run").read_text(),
        PYPROJECT["tool"]["cibuildwheel"]["test-command"],
    ]
    for name in ("ci.yml", "release.yml"):
        scripts += runs(load(name))
    text = "\n".join(scripts)
    targets = set(re.findall(r"\bmake (?:-C \S+ )?([\w-]+)", text))
    assert {"test", "bench-smoke", "test-installed"} <= targets
    for target in sorted(targets):
        done = run("make", "-n", "-C", str(ROOT), target, "INSTALLED_PYTHON=python")
        assert done.returncode == 0, f"make {target}: {done.stderr}"
    paths = set(re.findall(r"(?<![\w/])(?:\./)?(scripts/[\w.-]+)", text))
    assert "scripts/check_version.py" in paths
    for path in paths:
        assert (ROOT / path).is_file(), path


def test_release_refuses_a_tag_that_disagrees_before_anything_else() -> None:
    release = load("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    jobs = release["jobs"]
    gate = next(s["run"] for s in jobs["version"]["steps"] if "run" in s)
    assert 'scripts/check_version.py --tag "$GITHUB_REF_NAME"' in gate
    for name in jobs:
        if name != "version":
            assert "version" in needs(jobs, name), name


def artifact_names(job: dict[str, Any]) -> set[str]:
    """The artifacts a job uploads, with its matrix expanded."""
    names = set()
    for step in job["steps"]:
        if step.get("uses", "").startswith("actions/upload-artifact@"):
            for entry in job.get("strategy", {}).get("matrix", {}).get("include", [{}]):
                name = step["with"]["name"]
                for key, value in entry.items():
                    name = name.replace(f"${{{{ matrix.{key} }}}}", str(value))
                names.add(name)
    return names


def test_what_is_published_is_what_the_tested_jobs_built() -> None:
    jobs = load("release.yml")["jobs"]
    made = {name: artifact_names(job) for name, job in jobs.items()}
    dists = {
        artifact for names in made.values() for artifact in names if artifact.startswith("dist-")
    }
    # The pure wheel and sdist, and the compiled wheels of each architecture.
    assert len(dists) >= 3
    for publisher in ("pypi", "github-release"):
        download = next(
            s for s in jobs[publisher]["steps"] if "download-artifact" in s.get("uses", "")
        )
        patterns = re.sub(r"^\{(.*)\}$", r"\1", download["with"]["pattern"]).split(",")
        taken = {
            (job, a)
            for job, names in made.items()
            for a in names
            if any(fnmatch.fnmatchcase(a, p) for p in patterns)
        }
        # Every distribution, each from a job that must have finished first.
        assert dists <= {a for _, a in taken}, publisher
        assert {job for job, _ in taken} <= needs(jobs, publisher), publisher
    # Each distribution is tested before it is uploaded: the pure ones installed by
    # `make test-installed`, the compiled ones by cibuildwheel's test command.
    sdist = [s.get("run", "") + s.get("uses", "") for s in jobs["sdist"]["steps"]]
    tested = next(i for i, s in enumerate(sdist) if "make test-installed" in s)
    assert tested < next(i for i, s in enumerate(sdist) if "upload-artifact" in s)
    cibw = PYPROJECT["tool"]["cibuildwheel"]
    assert "make -C {project} test-installed" in cibw["test-command"]
    # The compiled wheels: every supported CPython, the settings read from pyproject.toml only
    # (where `make release-check` reads them too), tested with the test extra's packages.
    supported = [
        c.rpartition(":: 3.")[2] for c in PYPROJECT["project"]["classifiers"] if ":: 3." in c
    ]
    assert cibw["build"].split() == [f"cp3{minor}-manylinux_*" for minor in supported]
    cibuildwheel = next(s for s in jobs["wheels"]["steps"] if "cibuildwheel" in s.get("uses", ""))
    assert set(cibuildwheel["env"]) == {"CIBW_ARCHS"}
    test_extra = PYPROJECT["project"]["optional-dependencies"]["test"]
    for requirement in cibw["test-requires"]:
        assert requirement in test_extra, f"{requirement} drifted from the test extra"


def test_the_image_signed_is_the_one_pushed_and_the_chart_pushed_is_the_one_packaged() -> None:
    jobs = load("release.yml")["jobs"]
    image = jobs["image"]["steps"]
    build = next(s for s in image if "build-push-action" in s.get("uses", ""))
    sign = next(s for s in image if "cosign sign" in s.get("run", ""))
    assert sign["env"]["DIGEST"] == f"${{{{ steps.{build['id']}.outputs.digest }}}}"
    assert '"$IMAGE@$DIGEST"' in sign["run"]
    chart = yaml.safe_load((ROOT / "helm" / "requence-exporter" / "Chart.yaml").read_text())
    script = next(s["run"] for s in jobs["chart"]["steps"] if "helm push" in s.get("run", ""))
    package = next(shlex.split(line) for line in script.splitlines() if "helm package" in line)
    pushed = next(shlex.split(line) for line in script.splitlines() if "helm push" in line)
    directory = package[package.index("--destination") + 1]
    # `helm package` writes <directory>/<chart name>-<chart version>.tgz.
    assert pushed[2] == f"{directory}/{chart['name']}-$VERSION.tgz"
