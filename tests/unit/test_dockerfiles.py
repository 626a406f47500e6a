"""The image recipes in images/ follow the rules a real cluster needs, checked on their text
(hadolint itself runs in tests/integration/test_images.py): a pinned base that is a build
argument, multi-stage Python builds, a numeric non-root user, no `latest`, no upgrades, no
package caches; and every image reference in charts/, operator/ and examples/ is pinned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from devenv.cluster import REPO_ROOT
from rollforward.settings import OperatorSettings

IMAGES = REPO_ROOT / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))
PYTHON_IMAGES = {"operator", "bento-runtime", "trainer"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_there_is_a_recipe_for_every_image() -> None:
    assert {path.parent.name for path in DOCKERFILES} == PYTHON_IMAGES | {"router"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_the_base_is_a_pinned_build_argument(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    assert steps[0][0] == "ARG", "ARG BASE comes first, so every FROM can use it"
    name, _, default = steps[0][1].partition("=")
    assert name == "BASE"
    repository, _, tag = default.partition(":")
    assert repository in {"python", "debian"} and tag and tag != "latest"
    assert all(args.split()[0] == "${BASE}" for keyword, args in steps if keyword == "FROM")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_the_image_runs_as_a_numeric_non_root_user(dockerfile: Path) -> None:
    users = [args for keyword, args in instructions(dockerfile) if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    # Numeric, so the kubelet can verify runAsNonRoot without reading /etc/passwd.
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0
    assert gid == "" or (gid.isdigit() and int(gid) > 0)


@pytest.mark.parametrize(
    "dockerfile", [p for p in DOCKERFILES if p.parent.name in PYTHON_IMAGES], ids=str
)
def test_python_images_ship_only_what_a_build_stage_made(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    stages = [args for keyword, args in steps if keyword == "FROM"]
    assert len(stages) >= 2 and stages[0].endswith("AS build")
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    final = steps[last_from:]
    assert not [args for keyword, args in final if keyword == "RUN"], (
        "the runtime stage runs nothing"
    )
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert any(args.startswith("--from=build /opt/venv /opt/venv") for args in copies)
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    # A read-only root filesystem: HOME is the /tmp emptyDir, and no bytecode is written.
    assert "HOME=/tmp" in env and "PYTHONDONTWRITEBYTECODE=1" in env


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_no_upgrades_no_caches_no_latest(dockerfile: Path) -> None:
    runs = [args for keyword, args in instructions(dockerfile) if keyword == "RUN"]
    for run in runs:
        assert not re.search(r"apt-get\s+(dist-)?upgrade", run)
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists" in run
        if re.search(r"pip install", run):
            assert "--no-cache-dir" in run
    assert ":latest" not in dockerfile.read_text()


def test_uv_in_the_builders_is_the_version_the_repository_uses() -> None:
    setup = (REPO_ROOT / "hack" / "setup-python.sh").read_text()
    (version,) = re.findall(r"^uv_version=(\S+)$", setup, re.MULTILINE)
    for dockerfile in DOCKERFILES:
        if dockerfile.parent.name in PYTHON_IMAGES:
            assert f"ARG UV_VERSION={version}" in dockerfile.read_text()


def pinned_references() -> list[str]:
    """Every image the product names by default: settings, chart values, example."""
    chart = yaml.safe_load((REPO_ROOT / "charts" / "rollforward" / "Chart.yaml").read_text())
    values = yaml.safe_load((REPO_ROOT / "charts" / "rollforward" / "values.yaml").read_text())
    example = yaml.safe_load((REPO_ROOT / "examples" / "modeldeployment.yaml").read_text())
    trainer = example["spec"]["retraining"]["template"]["spec"]["containers"][0]["image"]
    settings = OperatorSettings()
    from_values = [
        f"{image['repository']}:{image['tag'] or chart['appVersion']}"
        for image in (
            values["image"],
            values["config"]["bentoImage"],
            values["config"]["routerImage"],
        )
    ]
    return [settings.bento_image, settings.router_image, trainer, *from_values]


def test_every_default_image_is_pinned_to_a_tag() -> None:
    for reference in pinned_references():
        repository, _, tag = reference.rpartition(":")
        assert repository and "/" not in tag and tag not in {"", "latest"}, reference


def test_our_images_are_named_with_the_release_version() -> None:
    chart = yaml.safe_load((REPO_ROOT / "charts" / "rollforward" / "Chart.yaml").read_text())
    version = chart["appVersion"]
    references = pinned_references()
    assert f"rollforward/bento-runtime:{version}" in references
    assert f"rollforward/upsell-trainer:{version}" in references
    assert f"ghcr.io/rollforward/operator:{version}" in references
    # The chart's default for the bento image is the operator's own default.
    assert references.count(OperatorSettings().bento_image) == 2
    assert references.count(OperatorSettings().router_image) == 2


def test_nothing_names_a_latest_image() -> None:
    pattern = re.compile(r"[\w.-]+/[\w./-]+:latest\b")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {match}"
        for folder in ("charts", "operator", "examples", "images")
        for path in (REPO_ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".json", ".md", ".tpl", ""}
        for match in pattern.findall(path.read_text(errors="replace"))
    ]
    assert offenders == []


def test_the_operator_gets_the_same_malloc_arenas_from_image_chart_and_dev_env() -> None:
    """Peak memory measured by the benches is the memory a cluster sees."""
    from devenv.operator import IMAGE_ENV

    steps = instructions(IMAGES / "operator" / "Dockerfile")
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    env = " ".join(args for keyword, args in steps[last_from:] if keyword == "ENV")
    template = (REPO_ROOT / "charts/rollforward/templates/deployment.yaml").read_text()
    for name, value in IMAGE_ENV.items():
        assert f"{name}={value}" in env.split()
        assert re.search(rf"- name: {name}\n\s+value: \"{value}\"", template)
