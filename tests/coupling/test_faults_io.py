"""Configs that cannot run code or write outside the run (issue 28): PETSc options are
matched case-insensitively against the solver allowlist (no viewers, python PCs/KSPs,
output streams, options files); every case is one `neurofem: error:` line, exit 2, and
no file appears (not in the working directory, not in /tmp, no run directory)."""

from __future__ import annotations

import copy
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
    code = run_main(["train", str(cfg), "--out", str(tmp_path / "run")])
    one_line_error(capsys, code, match=culprit)
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


# ---- outputs never written through links or outside the run directory -----------------------
import hashlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402

from fem.cache import OutputError, atomic_write, check_inside, check_no_links  # noqa: E402


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished run (4 steps), trained once for the module."""
    base = tmp_path_factory.mktemp("trained")
    cfg = base / "run.toml"
    cfg.write_text(tomli_w.dumps(tiny()))
    assert main(["train", str(cfg), "--out", str(base / "run")]) == 0
    return base / "run"


@pytest.fixture
def outside(tmp_path):
    """A folder outside the run with files a planted link points at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    for name in ("victim.html", "victim.png", "victim.json"):
        (folder / name).write_text(f"precious {name}\n")
    return folder


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def test_clean_directory_passes_and_a_linked_root_is_resolved(tmp_path):
    (tmp_path / "run" / "sub").mkdir(parents=True)
    (tmp_path / "run" / "sub" / "a.txt").write_text("a")
    os.symlink(tmp_path / "run", tmp_path / "alias")  # the root itself may be a link
    assert check_no_links(tmp_path / "alias") == (tmp_path / "run").resolve()


@pytest.mark.parametrize("where", ["report.html", "figures/curves.png", "reference/x/field.h5"])
def test_planted_file_link_refused_naming_it(where, tmp_path, outside):
    run = tmp_path / "run"
    (run / where).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside / "victim.html", run / where)
    with pytest.raises(OutputError, match=rf"{where} is a symbolic link \(to .*victim") as e:
        check_no_links(run, "report")
    assert len(str(e.value).splitlines()) == 1 and str(e.value).startswith("report: ")


def test_planted_directory_link_refused(tmp_path, outside):
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(outside, run / "figures")
    with pytest.raises(OutputError, match="figures is a symbolic link"):
        check_no_links(run)


def test_dangling_link_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(tmp_path / "not-yet" / "x", run / "summary.json")  # would create a file there
    with pytest.raises(OutputError, match="summary.json is a symbolic link"):
        check_no_links(run)


def test_hard_linked_file_refused(tmp_path, outside):
    run = tmp_path / "run"
    run.mkdir()
    os.link(outside / "victim.html", run / "report.html")
    with pytest.raises(OutputError, match="report.html is hard-linked"):
        check_no_links(run)


def test_atomic_write_refuses_a_link_and_leaves_its_target(tmp_path, outside):
    os.symlink(outside / "victim.json", tmp_path / "summary.json")
    with pytest.raises(OSError, match="symbolic link") as e:
        atomic_write(tmp_path / "summary.json", b"{}")
    assert e.value.filename == str(tmp_path / "summary.json")
    assert (outside / "victim.json").read_text() == "precious victim.json\n"
    assert (tmp_path / "summary.json").is_symlink()  # left as found


def test_check_inside(tmp_path, outside):
    run = tmp_path / "run"
    run.mkdir()
    assert check_inside(run, run / "a" / "b.png") == run / "a" / "b.png"
    with pytest.raises(OutputError, match="outside"):
        check_inside(run, run / ".." / "outside" / "victim.png")
    os.symlink(outside / "victim.png", run / "x.png")
    with pytest.raises(OutputError, match="outside"):
        check_inside(run, run / "x.png")


def test_fem_solve_into_a_folder_with_a_planted_link_is_one_line(tmp_path, outside, capsys):
    doc = tiny()
    cfg = tmp_path / "solve.toml"
    cfg.write_text(tomli_w.dumps({"mesh": doc["mesh"], "problem": doc["problem"]}))
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside / "victim.json", out / "summary.json")
    before = _tree(outside)
    code = run_main(["fem", "solve", str(cfg), "--out", str(out)])
    one_line_error(capsys, code, match="summary.json is a symbolic link")
    assert _tree(outside) == before and sorted(p.name for p in out.iterdir()) == ["summary.json"]


def test_resume_into_a_run_with_a_planted_link_is_one_line(trained, tmp_path, outside, capsys):
    run = _copy(trained, tmp_path)
    os.symlink(outside / "victim.json", run / "curves.png")
    before, run_before = _tree(outside), _tree(run)
    code = run_main(["resume", str(run), "--steps", "6"])
    one_line_error(capsys, code, match="curves.png is a symbolic link")
    assert _tree(outside) == before and _tree(run) == run_before


@pytest.mark.parametrize("name", ["report.html", "report.md", "summary.json", "curves.png",
                                  "fields.xdmf", "fields.h5"])
def test_report_with_a_planted_link_refuses_in_one_line(name, trained, tmp_path, outside,
                                                        capsys):
    run = _copy(trained, tmp_path)
    (run / name).unlink(missing_ok=True)
    os.symlink(outside / "victim.html", run / name)
    before, run_before = _tree(outside), _tree(run)
    code = run_main(["report", str(run)])
    one_line_error(capsys, code, match=f"{name} is a symbolic link")
    assert _tree(outside) == before  # nothing outside written
    assert _tree(run) == run_before  # and nothing inside: refused before any work
