"""Configs that cannot run code or write outside the run (issue 28): PETSc options are
matched case-insensitively against the solver allowlist (no viewers, python PCs/KSPs,
output streams, options files); every case is one `neurofem: error:` line, exit 2, and
no file appears (not in the working directory, not in /tmp, no run directory)."""

from __future__ import annotations

import copy
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from coupling.cli import main
from fem.errors import ConfigError
from fem.solvers import check_petsc_options

ROOT = Path(__file__).resolve().parents[2]
PROBES = "nfpetsc28-*"


def _example(name: str) -> dict:
    return tomllib.loads((ROOT / "examples" / name).read_text())


def tiny() -> dict:
    doc = _example("lshape-vsn-galerkin.toml")
    doc["mesh"]["size"] = 0.25
    doc["network"]["hidden"] = [16, 16]
    doc["training"].update({"steps": 4, "log_every": 2, "checkpoint_every": 2,
                            "progress": False})
    return doc


def _with_petsc(options: dict) -> dict:
    doc = copy.deepcopy(tiny())
    doc.setdefault("problem", {}).setdefault("solver", {})["petsc"] = options
    return doc


def one_line_error(capsys, code, match: str = "") -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith("neurofem: error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in "\n".join(err), err
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


PETSC_CASES = {
    # viewers, in any case: PETSc matches names case-insensitively
    "view-mat-mixed-case": ({"ksp_View_Mat": "binary"}, "ksp_View_Mat"),
    "view-upper": ({"KSP_VIEW": True}, "KSP_VIEW"),
    "view-path-mixed": ({"Ksp_View": f":/tmp/{PROBES[:-1]}v"}, "Ksp_View"),
    "pc-view-solution": ({"PC_view": True}, "PC_view"),
    "mat-view-leading-dash": ({"-mat_mumps_VIEW_info": True}, "mat_mumps_VIEW_info"),
    "monitor-mixed": ({"Ksp_Monitor": f"/tmp/{PROBES[:-1]}m"}, "Ksp_Monitor"),
    "monitor-true-residual": ({"ksp_monitor_true_residual": True}, "ksp_monitor"),
    "converged-reason-viewer": ({"ksp_converged_reason": "binary"}, "ksp_converged_reason"),
    "log-view-upper": ({"LOG_VIEW": f"ascii:/tmp/{PROBES[:-1]}l"}, "LOG_VIEW"),
    "options-file-mixed": ({"-Options_File": "/etc/hosts"}, "Options_File"),
    "options-left": ({"options_left": True}, "options_left"),
    # python implementations: PETSc would import a module named by the config
    "pc-python": ({"pc_type": "python", "pc_python_type": "os.system"}, "pc_type"),
    "pc-python-value-mixed": ({"pc_type": "Python"}, "pc_type"),
    "pc-python-type-mixed": ({"Pc_Python_Type": "os.system"}, "Pc_Python_Type"),
    "ksp-python": ({"ksp_type": "PYTHON"}, "ksp_type"),
    "snes-python": ({"snes_type": "python"}, "snes_type"),
    "mat-python": ({"mat_type": "python"}, "mat_type"),
    "sub-pc-python": ({"sub_pc_type": "python"}, "sub_pc_type"),
    "pc-shell": ({"pc_type": "shell"}, "pc_type"),
    # MUMPS output units and out-of-core files
    "mumps-output-unit": ({"mat_mumps_icntl_1": 6}, "mat_mumps_icntl_1"),
    "mumps-diag-unit": ({"MAT_MUMPS_ICNTL_3": 6}, "MAT_MUMPS_ICNTL_3"),
    "mumps-print-level": ({"mat_mumps_icntl_4": 4}, "mat_mumps_icntl_4"),
    "mumps-out-of-core": ({"mat_mumps_icntl_22": 1}, "mat_mumps_icntl_22"),
    "mumps-ooc-dir": ({"mat_mumps_ooc_tmpdir": "tmp"}, "mat_mumps_ooc_tmpdir"),
    # names and values that are not plain
    "duplicate-by-case": ({"ksp_type": "cg", "KSP_TYPE": "gmres"}, "given twice"),
    "name-not-ascii": ({"ksp_tÿpe": "cg"}, "ksp_tÿpe"),
    "name-with-colon": ({"ksp_type:x": "cg"}, "ksp_type:x"),
    "value-viewer-ascii": ({"pc_factor_mat_ordering_type": "ASCII"}, "pc_factor"),
    "value-not-ascii": ({"ksp_type": "cgé"}, "ksp_type"),
    "not-solver-prefix": ({"malloc_dump": True}, "malloc_dump"),
    "help": ({"help": True}, "help"),
}


@pytest.fixture
def clean(tmp_path, monkeypatch):
    """Run in an empty working directory; no probe file in /tmp before."""
    for stale in Path("/tmp").glob(PROBES):
        stale.unlink()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("name", sorted(PETSC_CASES))
def test_petsc_option_refused_by_train_and_no_file_appears(name, clean, tmp_path, capsys):
    options, culprit = PETSC_CASES[name]
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(_with_petsc(options)))
    t0 = time.perf_counter()
    code = run_main(["train", str(cfg), "--out", str(tmp_path / "run")])
    one_line_error(capsys, code, match=culprit)
    assert time.perf_counter() - t0 < 5.0
    assert not (tmp_path / "run").exists()
    assert list(clean.iterdir()) == []  # no binaryoutput, no viewer file
    assert not list(Path("/tmp").glob(PROBES))


@pytest.mark.parametrize("name", ["view-mat-mixed-case", "pc-python-type-mixed",
                                  "pc-python-value-mixed", "options-file-mixed"])
def test_petsc_option_refused_by_fem_solve_and_no_file_appears(name, clean, tmp_path, capsys):
    options, culprit = PETSC_CASES[name]
    cfg = tmp_path / "solve.toml"
    doc = _with_petsc(options)
    cfg.write_text(tomli_w.dumps({"mesh": doc["mesh"], "problem": doc["problem"]}))
    code = run_main(["fem", "solve", str(cfg), "--out", str(tmp_path / "out")])
    one_line_error(capsys, code, match=culprit)
    assert not (tmp_path / "out").exists()
    assert list(clean.iterdir()) == []


def test_allowed_options_pass_in_lower_case():
    got = check_petsc_options({"KSP_Type": "CG", "-pc_type": "gamg", "ksp_rtol": 1e-9,
                               "mat_mumps_icntl_14": 50, "pc_gamg_threshold": 0.02,
                               "mg_levels_ksp_type": "chebyshev", "ksp_norm_type": "natural"})
    assert got == {"ksp_type": "CG", "pc_type": "gamg", "ksp_rtol": 1e-9,
                   "mat_mumps_icntl_14": 50, "pc_gamg_threshold": 0.02,
                   "mg_levels_ksp_type": "chebyshev", "ksp_norm_type": "natural"}


def test_allowed_mixed_case_option_reaches_the_solver(clean, tmp_path, capsys):
    """A legitimate option in mixed case still works (and writes nothing but the output)."""
    doc = _with_petsc({"KSP_Type": "preonly", "Pc_Type": "lu"})
    cfg = tmp_path / "solve.toml"
    cfg.write_text(tomli_w.dumps({"mesh": doc["mesh"], "problem": doc["problem"]}))
    assert run_main(["fem", "solve", str(cfg), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "summary.json").exists()
    assert list(clean.iterdir()) == []


def test_not_a_table_refused():
    with pytest.raises(ConfigError, match="petsc"):
        check_petsc_options(["ksp_type", "cg"])
