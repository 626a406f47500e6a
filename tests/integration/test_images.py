"""The images `make images` builds, run the way a restricted pod runs them: unpacked from
their OCI archives and started by runc with the image's own (non-root) user, a read-only
root filesystem, a tmpfs /tmp, no capabilities. No daemon, no registry.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devenv.cluster import REPO_ROOT
from fixtures.fixtures_images import BuiltImage
from fixtures.oci import archive_references, bundle_config, run

PYTHON_IMAGES = ("operator", "bento-runtime", "trainer")
NOT_IN_THE_OPERATOR = ("bentoml", "sklearn", "numpy", "pandas", "scipy", "matplotlib")


def output_of(bundle: Path, args: list[str]) -> str:
    done = run(bundle, args)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.mark.parametrize("name", ["operator", "bento-runtime", "trainer", "router"])
def test_each_archive_holds_one_image_named_as_the_product_names_it(
    built_images: dict[str, BuiltImage], name: str
) -> None:
    image = built_images[name]
    assert archive_references(image.archive) == [image.reference]


@pytest.mark.parametrize("name", ["operator", "bento-runtime", "trainer", "router"])
def test_each_image_runs_as_a_non_root_user(image_bundle: Callable[[str], Path], name: str) -> None:
    bundle = image_bundle(name)
    user = bundle_config(bundle)["process"]["user"]
    assert user["uid"] != 0 and user["gid"] != 0
    assert output_of(bundle, ["id", "-u"]).strip() == str(user["uid"])


def test_the_operator_image_runs_rollforward_by_default(
    image_bundle: Callable[[str], Path],
) -> None:
    bundle = image_bundle("operator")
    assert bundle_config(bundle)["process"]["args"] == ["rollforward", "run"]
    assert output_of(bundle, ["rollforward", "--version"]).strip() == "rollforward 0.1.0"
    # Every module `rollforward run` loads imports on a read-only root filesystem.
    output_of(bundle, ["python", "-c", "import rollforward.operator_main, rollforward.prometheus"])


def test_the_operator_image_carries_no_model_libraries(image_bundle: Callable[[str], Path]) -> None:
    probe = (
        "import importlib.util, sys; "
        f"print(*[m for m in {NOT_IN_THE_OPERATOR!r} if importlib.util.find_spec(m)])"
    )
    assert output_of(image_bundle("operator"), ["python", "-c", probe]).strip() == ""


def test_the_bento_runtime_runs_bentoml(image_bundle: Callable[[str], Path]) -> None:
    bundle = image_bundle("bento-runtime")
    assert bundle_config(bundle)["process"]["args"][0] == "bentoml"
    assert "bentoml" in output_of(bundle, ["bentoml", "--version"]).lower()
    output_of(bundle, ["python", "-c", "import rollforward.serving, sklearn, pandas, numpy"])


def test_the_trainer_runs_the_retraining_entrypoint(image_bundle: Callable[[str], Path]) -> None:
    bundle = image_bundle("trainer")
    assert bundle_config(bundle)["process"]["args"][:3] == ["python", "-m", "upsell.retrain"]
    assert "--scenario" in output_of(bundle, ["python", "-m", "upsell.retrain", "--help"])


def test_the_router_is_nginx_with_a_config_that_needs_no_writable_root(
    image_bundle: Callable[[str], Path],
) -> None:
    bundle = image_bundle("router")
    assert bundle_config(bundle)["process"]["args"][0] == "nginx"
    assert "nginx version" in output_of(bundle, ["nginx", "-v"])
    assert "test is successful" in output_of(bundle, ["nginx", "-e", "stderr", "-t"])


@pytest.mark.parametrize("dockerfile", sorted((REPO_ROOT / "images").glob("*/Dockerfile")), ids=str)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
