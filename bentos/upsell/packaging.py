"""Save a trained Soom model to the BentoML store and build a versioned bento around it.

The bento is built from a staging directory holding this package, the exact model tag,
and a copy of `rollforward.serving`, so it runs wherever BentoML and scikit-learn are
installed, without the operator's code. The build runs in a fresh interpreter, because
the service module pins its model tag at import time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bentoml
import yaml

import rollforward.serving
from upsell.schema import MODEL_NAME
from upsell.training import TrainedModel

PACKAGE_DIR = Path(__file__).parent
BENTOFILE = PACKAGE_DIR / "bentofile.yaml"


class BuildError(RuntimeError):
    """`bentoml build` failed; the message carries its output."""


def save_model(model: TrainedModel, extra_metadata: Mapping[str, Any] | None = None) -> str:
    """Store the pipeline with its metrics and baseline; return the model tag."""
    saved = bentoml.sklearn.save_model(
        MODEL_NAME,
        model.pipeline,
        metadata=model.metadata(extra_metadata),
        labels={"owner": "rollforward"},
    )
    return str(saved.tag)


def stage_build_context(model_tag: str, destination: Path) -> Path:
    """Lay out what the bento contains: upsell/, rollforward/serving/ (with the S3 client
    that writes the prediction log), the model tag."""
    package = destination / "upsell"
    shutil.copytree(
        PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__", "bundled_model.json")
    )
    (package / "bundled_model.json").write_text(json.dumps({"tag": model_tag}))
    serving = Path(rollforward.serving.__file__).parent
    shutil.copytree(
        serving,
        destination / "rollforward" / "serving",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    # Only the serving helper travels with the bento, never the operator package itself.
    (destination / "rollforward" / "__init__.py").write_text("")
    return destination


def build_bento(
    model_tag: str, *, env: Mapping[str, str] | None = None, tag: str | None = None
) -> str:
    """Build the bento for `model_tag`; return its tag. By default the bento is `soom-upsell`
    at the model's version; `tag` (name:version, e.g. the README's `upsell:v1`) names it
    instead, and replaces a bento already stored under that tag."""
    name, _, version = (tag or "").partition(":")
    version = version or model_tag.partition(":")[2]
    if tag:
        _forget(tag)
    with tempfile.TemporaryDirectory(prefix="soom-bento-") as staging:
        context = stage_build_context(model_tag, Path(staging))
        bentofile = _bentofile(context, name)
        command = [
            sys.executable,
            "-m",
            "bentoml",
            "build",
            str(context),
            "-f",
            str(bentofile),
            "--version",
            version,
            "--output",
            "tag",
        ]
        child_env = {**os.environ, **(env or {})}
        child_env.pop("PYTHONPATH", None)
        child_env["PATH"] = _path_with_uv(child_env.get("PATH", ""))
        done = subprocess.run(
            command, cwd=context, env=child_env, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise BuildError(f"bentoml build failed ({done.returncode}):\n{done.stderr[-3000:]}")
    tags = [
        line.split("__tag__:", 1)[1].strip()
        for line in done.stdout.splitlines()
        if "__tag__:" in line
    ]
    if not tags:
        raise BuildError(f"bentoml build printed no tag:\n{done.stdout[-3000:]}")
    return tags[-1]


def _bentofile(context: Path, name: str) -> Path:
    """The bentofile to build with: the package's own, or a copy under another bento name."""
    bentofile = context / "upsell" / "bentofile.yaml"
    if not name:
        return bentofile
    config = yaml.safe_load(bentofile.read_text())
    renamed = context / "bentofile.yaml"
    renamed.write_text(yaml.safe_dump({**config, "name": name}, sort_keys=False))
    return renamed


def _forget(tag: str) -> None:
    """Delete the bento stored under `tag`, if any, so a fixed tag can be built again."""
    with contextlib.suppress(bentoml.exceptions.NotFound):
        bentoml.bentos.delete(tag)


def _path_with_uv(path: str) -> str:
    """PATH with a uv binary on it: BentoML 1.4 runs uv during every build, and would
    otherwise try to pip-install it into a venv that has no pip."""
    if shutil.which("uv", path=path):
        return path
    cache = Path(os.environ.get("ROLLFORWARD_CACHE", Path.home() / ".cache" / "rollforward"))
    found = sorted(cache.glob("uv-*/bin/uv"))
    return f"{found[-1].parent}{os.pathsep}{path}" if found else path


def model_tag_of_bento(bento_tag: str) -> str:
    """The model a bento serves (its first model)."""
    info = bentoml.bentos.get(bento_tag).info
    # BentoML 1.4 lists models per service; older bentos list them at the top level.
    models = [*info.models, *(m for service in info.services for m in service.models)]
    if not models:
        raise BuildError(f"bento {bento_tag} holds no model")
    return str(models[0].tag)
