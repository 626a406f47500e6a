"""The layers are real: the import contracts hold, they catch a violation, and the decisions
import without kopf, kubernetes or the Prometheus client installed."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the package under `tree`/operator with the contracts in `tree`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / ".importlinter")],
        cwd=tree,
        env={"PYTHONPATH": str(tree / "operator"), "PATH": str(LINT_IMPORTS.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_import_contracts_hold() -> None:
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BROKEN" not in run.stdout


@pytest.mark.parametrize(
    ("module", "injected"),
    [
        ("decide.py", "import kubernetes"),
        ("drift/check.py", "import prometheus_api_client"),
        ("analysis.py", "from rollforward import kube"),
    ],
)
def test_the_contracts_fail_when_a_decision_imports_io(
    tmp_path: Path, module: str, injected: str
) -> None:
    shutil.copytree(
        ROOT / "operator" / "rollforward",
        tmp_path / "operator" / "rollforward",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    target = tmp_path / "operator" / "rollforward" / module
    target.write_text(target.read_text() + f"\n{injected}  # a layer violation\n")

    run = _lint_imports(tmp_path)

    assert run.returncode != 0
    assert "Decisions are pure" in run.stdout
    assert "BROKEN" in run.stdout


_BLOCKER = textwrap.dedent(
    """
    import sys

    BLOCKED = {"kopf", "kubernetes", "prometheus_api_client", "requests", "urllib3"}


    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed (blocked by the test)")
            return None


    sys.meta_path.insert(0, Blocker())
    """
)


@pytest.mark.parametrize("module", ["rollforward.decide", "rollforward.reconcile"])
def test_decisions_import_without_kopf_kubernetes_or_prometheus_client(module: str) -> None:
    check = _BLOCKER + f"import {module}\nprint('imported')\nimport kubernetes\n"
    run = subprocess.run(
        [sys.executable, "-c", check],
        env={"PYTHONPATH": str(ROOT / "operator")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.stdout.strip() == "imported", run.stderr
    # The deliberate `import kubernetes` afterwards failed: the blocker was in force.
    assert "kubernetes is not installed (blocked by the test)" in run.stderr


def _contract_modules(contract: str, key: str) -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    return set(parser[f"importlinter:contract:{contract}"][key].split())


def test_every_module_of_the_package_has_a_place_in_the_layers() -> None:
    """A new module is covered only when the contracts name it: the API contract forbids every
    other module, so a module missing there (and so, likely, everywhere) fails here."""
    package = ROOT / "operator" / "rollforward"
    modules = {
        f"rollforward.{path.stem if path.is_file() else path.name}"
        for path in package.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    listed = _contract_modules("api-alone", "forbidden_modules") | {"rollforward.api"}
    assert modules - listed == set()
