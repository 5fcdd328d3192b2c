"""The layering of the five packages (and benchmarks), checked by import-linter's contracts,
and the config's shape: one schema class per table, one config error type; every
function-level import says why it is deferred; no module over 400 lines, no function over 60.

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
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neurofem_errors", "meshes", "fem", "spiking", "coupling", "validation",
            "benchmarks")
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


def _unexplained_deferred_imports(path: Path) -> list[str]:
    """Imports inside a function without a ``# deferred: <why>`` comment on (or above) them.

    A function-level import is kept only where it buys start-up time (it loads torch,
    DOLFINx, Gmsh, ... that its module does not) or guards an optional extra; the comment
    says which, so a light import cannot hide there (and hide a cycle) unexplained.
    """
    lines = path.read_text().splitlines()
    found = set()
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import | ast.ImportFrom):
                here, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
                if "# deferred: " not in here and not above.startswith("# deferred: "):
                    found.add(f"{path}:{node.lineno}")
    return sorted(found)


def test_every_function_level_import_says_why_it_is_deferred():
    found = [hit for pkg in PACKAGES for f in sorted((ROOT / pkg).rglob("*.py"))
             for hit in _unexplained_deferred_imports(f)]
    assert found == []


def test_the_deferred_import_check_sees_a_planted_one(tmp_path):
    planted = tmp_path / "m.py"
    planted.write_text("def f():\n    import json\n    import torch  # deferred: loads torch\n"
                       "    # deferred: loads DOLFINx\n    import dolfinx\n")
    assert _unexplained_deferred_imports(planted) == [f"{planted}:2"]


def test_the_cli_parser_imports_neither_torch_nor_dolfinx():
    """`neurofem --help` builds every subcommand's parser without the heavy stacks."""
    code = ("import sys; from coupling.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'dolfinx', 'petsc4py', 'pyvista', 'pymor') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


# -- the config: one schema class per table, no dataclass mirroring one, one error type ---

def _models(annotation) -> list[type]:
    """The pydantic models an annotation names (through Optional, unions, Annotated, lists
    and dicts), in order, without repeats."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += [m for m in _models(arg) if m not in found]
    return found


def _tables() -> dict[str, dict[str, list[type]]]:
    """{run model: {top-level key: the schema classes of that table}}."""
    from coupling.config import ClifRun, NetworkRun

    return {run.__name__: {key: _models(field.annotation)
                           for key, field in run.model_fields.items() if key != "model"}
            for run in (NetworkRun, ClifRun)}


def _all_schemas(models) -> set[type]:
    """The models and every table nested in them."""
    seen: set[type] = set()
    todo = list(models)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += [n for f in m.model_fields.values() for n in _models(f.annotation)]
    return seen


def _dataclass_fields(path: Path) -> dict[str, set[str]]:
    """{class name: annotated field names} of the @dataclass classes of one module."""
    out = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in node.decorator_list):
            out[node.name] = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)
                              and isinstance(s.target, ast.Name)
                              and "ClassVar" not in ast.unparse(s.annotation)}
    return out


def _mirrors(paths, schemas) -> set[tuple[str, str]]:
    """(dataclass, schema) pairs where a dataclass holds most of a table's keys (3 or more
    keys, 3/4 of them): a second record of the same table."""
    found = set()
    for path in paths:
        for name, fields in _dataclass_fields(path).items():
            for m in schemas:
                keys = set(m.model_fields)
                if len(keys) >= 3 and len(keys & fields) >= 0.75 * len(keys):
                    found.add((f"{path.stem}.{name}", m.__name__))
    return found


# Python-API records that still repeat a table's keys (the next ones to merge; each is
# what a lower layer's Python API takes, its table the TOML schema of it):
# fem.solvers.SolverSettings (LinearSolver, fem.VariationalProblem(solver=...)) ↔
# [problem.solver]; spiking.energy.EnergyTable (the price table) ↔ [energy];
# coupling.training.levels.Level (fit's coarse-to-fine levels) ↔ [[training.levels]].
KNOWN_MIRRORS = {("solvers.SolverSettings", "SolverTable"), ("energy.EnergyTable", "EnergySpec"),
                 ("levels.Level", "LevelSpec")}


def test_every_config_table_has_one_schema_class():
    counts = {run: {key: len(models) for key, models in tables.items()}
              for run, tables in _tables().items()}
    # a clif run's [mesh] is one of two alternatives chosen by mesh.kind ("grid" or a
    # builder kind), each one class; every other table is one class per run model
    assert counts["NetworkRun"] == dict.fromkeys(counts["NetworkRun"], 1), counts
    assert counts["ClifRun"] == {**dict.fromkeys(counts["ClifRun"], 1), "mesh": 2}, counts
    assert {"mesh", "problem", "network", "training", "parameters"} <= set(counts["NetworkRun"])


def test_no_dataclass_mirrors_a_config_table():
    schemas = _all_schemas(m for t in _tables().values() for ms in t.values() for m in ms)
    paths = [f for pkg in PACKAGES for f in sorted((ROOT / pkg).rglob("*.py"))]
    assert _mirrors(paths, schemas) <= KNOWN_MIRRORS  # no new one (measured: 3 left)


def test_the_mirror_check_sees_a_planted_one(tmp_path):
    from fem.config import TimeTable

    planted = tmp_path / "m.py"
    planted.write_text("from dataclasses import dataclass\n@dataclass\nclass TimeSpec:\n"
                       "    t_end: float\n    dt: float\n    theta: float\n")
    assert _mirrors([planted], {TimeTable}) == {("m.TimeSpec", "TimeTable")}


def test_the_run_record_holds_the_validated_tables_themselves():
    """What the code downstream reads is the schema instance (nothing rebuilt from dicts)."""
    from coupling.config import parse_config
    from fem.config import load_toml

    for example in ("poisson-parametric.toml", "diffusion3d-clif.toml"):
        cfg = parse_config(load_toml(ROOT / "examples" / example))
        tables = _tables()["ClifRun" if hasattr(cfg, "clif") else "NetworkRun"]
        held = {key: type(getattr(cfg, key)) for key in tables if hasattr(cfg, key)
                and getattr(cfg, key) is not None}
        assert len(held) >= 4, example
        assert all(held[key] in tables[key] for key in held), (example, held)


def test_there_is_one_config_error_type():
    import neurofem_errors
    import spiking
    from fem.errors import ConfigError

    names = [f"{f.parent.name}.{n.name}" for pkg in PACKAGES
             for f in sorted((ROOT / pkg).rglob("*.py"))
             for n in ast.walk(ast.parse(f.read_text()))
             if isinstance(n, ast.ClassDef) and "ConfigError" in n.name]
    assert names == ["neurofem_errors.ConfigError"]
    assert spiking.ConfigError is ConfigError is neurofem_errors.ConfigError
    assert not hasattr(spiking, "SpikingConfigError")  # one type, one name


@pytest.mark.parametrize("make, key", [
    (lambda: __import__("spiking").MLPConfig.from_dict({"slope": 0}), "network.slope"),
    (lambda: __import__("coupling.config").config.parse_config(
        {"mesh": {"kind": "rectangle"}, "problem": {"type": "poisson"},
         "network": {"slope": 0}}), "network.slope"),
    (lambda: __import__("fem.config").config.parse_problem(
        {"type": "heat", "time": {"t_end": 1.0, "dt": -1.0}}), "problem.time.dt"),
    (lambda: __import__("fem.parameters").parameters.parse_parameters(
        {"ranges": {"k": [2.0, 1.0]}}), "parameters.ranges.k"),
    (lambda: __import__("spiking.circuit").circuit.CircuitParams(neurons=3), "circuit.neurons"),
])
def test_a_bad_value_in_any_layer_is_the_one_error_naming_its_key(make, key):
    from neurofem_errors import ConfigError

    with pytest.raises(ConfigError) as err:
        make()
    assert str(err.value).startswith(f"config {key}: ") and "\n" not in str(err.value)


def _oversized(path: Path, max_module: int = 400, max_function: int = 60) -> list[str]:
    """A module over `max_module` lines, or a function over `max_function` lines."""
    text = path.read_text()
    lines = len(text.splitlines())
    found = [f"{path}: {lines} lines"] if lines > max_module else []
    for fn in ast.walk(ast.parse(text)):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            n = fn.end_lineno - fn.lineno + 1
            if n > max_function:
                found.append(f"{path}:{fn.lineno} {fn.name}: {n} lines")
    return found


def test_no_module_over_400_lines_and_no_function_over_60():
    found = [hit for pkg in PACKAGES for f in sorted((ROOT / pkg).rglob("*.py"))
             for hit in _oversized(f)]
    assert found == []


def test_the_size_check_sees_a_planted_function(tmp_path):
    planted = tmp_path / "m.py"
    planted.write_text("def f():\n" + "    x = 1\n" * 60 + "    return x\n")
    assert _oversized(planted) == [f"{planted}:1 f: 62 lines"]
