"""The layering of the five packages (and benchmarks), checked by import-linter's contracts.

The contracts live in pyproject.toml (``[tool.importlinter]``): meshes ← fem ←
coupling | validation ← benchmarks, spiking beside fem and free of DOLFINx, only the CLI
importing validation, and no import cycles between sibling modules (function-level
imports count). A planted upward import must break them (negative control), and no
module imports another module's private names.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("meshes", "fem", "spiking", "coupling", "validation", "benchmarks")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the packages under `root`, with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy wins over the editable install
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=600)


def _copy(tmp_path: Path) -> Path:
    """The packages' Python sources and pyproject.toml, copied (no data, no caches)."""
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg,
                        ignore=shutil.ignore_patterns("__pycache__", "results", "configs"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def lint_available() -> None:
    if not LINT.exists():
        pytest.fail(f"{LINT} missing: `make setup` installs import-linter (test extra)")


def test_the_contracts_hold(lint_available):
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout


@pytest.mark.parametrize("importer, line, contract", [
    ("fem/operators.py", "import coupling.discretisation  # planted upward import",
     "layers"),
    ("spiking/neurons.py", "import fem.errors  # planted: spiking must stand alone",
     "spiking imports neither"),
    ("coupling/training/parallel.py", "import coupling.runs.network  # planted cycle",
     "no import cycles"),
])
def test_a_planted_import_breaks_its_contract(lint_available, tmp_path, importer, line,
                                              contract):
    root = _copy(tmp_path)
    target = root / importer
    target.write_text(target.read_text() + f"\n{line}\n")
    out = _lint(root)
    assert out.returncode != 0
    broken = out.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, out.stdout[-3000:]


def _private_imports(path: Path) -> list[str]:
    """`from pkg.mod import _name` of another project module's private names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                and node.module.split(".")[0] in PACKAGES):
            found += [f"{path}:{node.lineno} from {node.module} import {a.name}"
                      for a in node.names if a.name.startswith("_")
                      and not a.name.startswith("__")]
    return found


def test_no_module_imports_private_names_of_another():
    found = [hit for pkg in PACKAGES for f in sorted((ROOT / pkg).rglob("*.py"))
             for hit in _private_imports(f)]
    assert found == []


def test_the_private_name_check_sees_a_planted_one(tmp_path):
    planted = tmp_path / "m.py"
    planted.write_text("from fem.data import _secret\nfrom fem.data import public\n")
    assert _private_imports(planted) == [f"{planted}:1 from fem.data import _secret"]


def test_the_cli_parser_imports_neither_torch_nor_dolfinx():
    """`neurofem --help` builds every subcommand's parser without the heavy stacks."""
    code = ("import sys; from coupling.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'dolfinx', 'petsc4py', 'pyvista', 'pymor') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
