"""Bad input and faults: every case ends with one `neurofem: error:` line, a non-zero exit,
and nothing lost (no run directory changed, no file written where none was asked for).

Configs, meshes, paths, checkpoints and PETSc options run in-process through
`coupling.cli.main` (milliseconds each); signals, two concurrent trainings and a full
disk run `python -m coupling.cli` in subprocesses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from conftest import set_key as _set
from coupling.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXE = [sys.executable, "-m", "coupling.cli"]


def _example(name: str) -> dict:
    return tomllib.loads((ROOT / "examples" / name).read_text())


def tiny(steps: int = 10, **training) -> dict:
    """A seconds-long L-shape run."""
    doc = _example("lshape-vsn-galerkin.toml")
    doc["mesh"]["size"] = 0.25
    doc["network"]["hidden"] = [16, 16]
    doc["training"].update({"steps": steps, "log_every": 5, "checkpoint_every": 5,
                            "progress": False, **training})
    return doc




def _tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` and its SHA-256 (what 'nothing lost' compares)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(capsys, code: int, expected_code: int = 2, match: str = "") -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith("neurofem: error:")]
    assert code == expected_code, err
    assert len(lines) == 1 and "Traceback" not in "\n".join(err), err
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def _run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse errors
        return exc.code


HEAT = _example("heat1d-vsn-sp.toml")
CLIF = _example("heat1d-clif.toml")
BASE = tiny()

CONFIG_CASES = {
    "threshold-negative": (_set(BASE, "network.threshold", -1.0), "network.threshold"),
    "threshold-zero-lif": (_set(_set(BASE, "network.threshold", 0.0), "network.neuron", "lif"),
                           "network.threshold"),
    "num-steps-1e9": (_set(BASE, "network.num_steps", 10**9), "network.num_steps"),
    "num-steps-zero": (_set(BASE, "network.num_steps", 0), "network.num_steps"),
    "hidden-zero": (_set(BASE, "network.hidden", [0]), "network.hidden"),
    "hidden-huge": (_set(BASE, "network.hidden", [100_000] * 6), "network.hidden"),
    "hidden-empty": (_set(BASE, "network.hidden", []), "network.hidden"),
    "fourier-huge": (_set(_set(BASE, "network.fourier_features", 100_000), "network.hidden",
                          [100_000] * 3), "network.hidden"),
    "steps-negative": (_set(BASE, "training.steps", -1), "training.steps"),
    "lr-string": (_set(BASE, "training.lr", "fast"), "training.lr"),
    "lr-nan": (_set(BASE, "training.lr", float("nan")), "training.lr"),
    "dtype-float16": (_set(BASE, "training.dtype", "float16"), "training.dtype"),
    "max-memory-tiny": (_set(BASE, "training.max_memory_gb", 1e-6), "GB limit"),
    "max-memory-negative": (_set(BASE, "training.max_memory_gb", -1.0), "max_memory_gb"),
    "dt-1e-9": (_set(HEAT, "problem.time.dt", 1e-9), "problem.time.dt"),
    "dt-not-dividing": (_set(HEAT, "problem.time.dt", 0.3), "problem.time.dt"),
    "output-points-1e8": (_set(HEAT, "problem.output.points", 10**8), "problem.output.points"),
    "output-grid-1e10": (_set(_set(HEAT, "problem.output.points", 10**5),
                              "problem.output.times", 10**5), "problem.output.points"),
    "clif-window-1e8": (_set(CLIF, "clif.window", 10**8), "clif.window"),
    "clif-grid-1e12": (_set(CLIF, "mesh.n", [10**6, 10**6]), "clif.window"),
    "mesh-size-tiny": (_set(BASE, "mesh.size", 1e-6), "mesh"),
    "mesh-size-zero": (_set(BASE, "mesh.size", 0.0), "mesh.size"),
    "mesh-kind-unknown": (_set(BASE, "mesh.kind", "donut"), "mesh.kind"),
    "mesh-option-unknown": (_set(BASE, "mesh.wobble", 1), "wobble"),
    "petsc-view-file": (_set(BASE, "problem.solver.petsc", {"ksp_view": ":/tmp/nfpetsc-x"}),
                        "ksp_view"),
    "petsc-options-file": (_set(BASE, "problem.solver.petsc", {"options_file": "/etc/hosts"}),
                           "options_file"),
    "petsc-log-view": (_set(BASE, "problem.solver.petsc", {"log_view": "ascii:/tmp/nfpetsc-l"}),
                       "log_view"),
    "petsc-monitor": (_set(BASE, "problem.solver.petsc", {"ksp_monitor": "/tmp/nfpetsc-m"}),
                      "ksp_monitor"),
    "petsc-value-path": (_set(BASE, "problem.solver.petsc", {"ksp_type": ":/tmp/nfpetsc-p"}),
                         "ksp_type"),
    "petsc-table-value": (_set(BASE, "problem.solver.petsc", {"ksp_rtol": {"a": 1}}),
                          "ksp_rtol"),
    "unknown-table": (_set(BASE, "wibble.x", 1), "wibble"),
    "unknown-key": (_set(BASE, "training.stpes", 10), "training.stpes"),
    "model-unknown": (_set(BASE, "model", "transformer"), "model"),
    "in-dim-set": (_set(BASE, "network.in_dim", 3), "network.in_dim"),
    "residual-unknown": (_set(BASE, "residual.kind", "magic"), "residual.kind"),
    "boundary-mismatch": (_set(BASE, "boundary.mode", "soft") | {"residual": {"kind": "sp"}}
                          | {"boundary": {"mode": "exact"}}, "boundary.mode"),
    "seed-negative": (_set(BASE, "training.seed", -1), "training.seed"),
    "degree-9": (_set(BASE, "problem.degree", 9), "problem.degree"),
    "bc-unknown-type": (_set(BASE, "problem.bcs", [{"boundary": "boundary", "type": "glue",
                                                    "value": 0.0}]), "problem.bcs[0].type"),
}


PROBES = "nfpetsc-*"  # the files the PETSc cases ask for (must never appear)


def _clear_probes() -> None:
    for stale in Path("/tmp").glob(PROBES):  # left by an older, failed run
        stale.unlink()


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_bad_config_is_one_line_before_any_work(name, tmp_path, capsys):
    # "before any work" is asserted by what exists afterwards, not by a wall-clock limit
    # (timings on a shared machine are noise): no run directory, no PETSc file
    doc, key = CONFIG_CASES[name]
    _clear_probes()
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(doc))
    code = _run_main(["train", str(cfg), "--out", str(tmp_path / "run")])
    _one_line_error(capsys, code, match=key)
    assert not (tmp_path / "run").exists()  # refused before any work: nothing created
    assert not list(Path("/tmp").glob(PROBES))  # no PETSc file written


FILE_CASES = {
    "missing": (None, "file not found"),
    "syntax": ("[mesh\nkind = 1", "run.toml"),
    "not-utf8": (b"\xff\xfe[mesh]", "run.toml"),
    "empty": ("", "mesh"),
    "directory": ("<dir>", "run.toml"),
}


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_bad_config_file_is_one_line(name, tmp_path, capsys):
    content, match = FILE_CASES[name]
    cfg = tmp_path / "run.toml"
    if content == "<dir>":
        cfg.mkdir()
    elif isinstance(content, bytes):
        cfg.write_bytes(content)
    elif content is not None:
        cfg.write_text(content)
    code = _run_main(["train", str(cfg), "--out", str(tmp_path / "run")])
    _one_line_error(capsys, code, match=match)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 10-step run (with its checkpoints, metrics and reference)."""
    base = tmp_path_factory.mktemp("trained")
    cfg = base / "run.toml"
    cfg.write_text(tomli_w.dumps(tiny()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROFEM_CACHE", str(base / "cache"))
        assert main(["train", str(cfg), "--out", str(base / "run")]) == 0
    return base / "run"


def _copy(trained: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


def _make_cases(run: Path, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, expected words) of command-line faults around a finished run."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(tiny()))
    afile = tmp_path / "afile"
    afile.write_text("x")
    fem_out = tmp_path / "femout"
    fem_out.mkdir()
    (fem_out / ".neurofem").write_text(json.dumps({"command": "fem solve"}))
    (fem_out / "summary.json").write_text("{}")
    return {
        "train-into-run": (["train", str(cfg), "--out", str(run)], "already holds a run"),
        "train-out-is-file": (["train", str(cfg), "--out", str(afile)], "not a directory"),
        "train-out-under-file": (["train", str(cfg), "--out", str(afile / "x")],
                                 "not a writable directory"),
        "train-into-fem-output": (["train", str(cfg), "--out", str(fem_out), "--force"],
                                  "neurofem fem solve"),
        "resume-not-a-run": (["resume", str(tmp_path)], "not a run directory"),
        "resume-missing": (["resume", str(tmp_path / "nope")], "not a run directory"),
        "fem-solve-into-run": (["fem", "solve", str(cfg), "--out", str(run)], "neurofem train"),
        "fem-solve-out-file": (["fem", "solve", str(cfg), "--out", str(afile)],
                               "not a directory"),
        "mesh-out-dir": (["mesh", "rectangle", "-o", str(tmp_path)], "unsupported format"),
        "mesh-out-dir-msh": (["mesh", "rectangle", "-o", str(_mkdir(tmp_path / "d.msh"))],
                             "is a directory"),
        "mesh-out-missing-folder": (["mesh", "rectangle", "-o", str(tmp_path / "a" / "m.msh")],
                                    "does not exist"),
        "mesh-preview-suffix": (["mesh", "rectangle", "-o", str(tmp_path / "m.msh"),
                                 "--preview", str(tmp_path / "p.jpg")], "--preview"),
        "mesh-radii-word": (["mesh", "plate_with_holes", "--radii", "big", "-o",
                             str(tmp_path / "m.msh")], "--radii"),
        "mesh-size-negative": (["mesh", "rectangle", "--size", "-1", "-o",
                                str(tmp_path / "m.msh")], "size"),
        "mesh-size-tiny": (["mesh", "rectangle", "--size", "1e-6", "-o",
                            str(tmp_path / "m.msh")], "max_cells"),
        "mesh-unknown-option": (["mesh", "rectangle", "--wobble", "1", "-o",
                                 str(tmp_path / "m.msh")], "unrecognized"),
        "mesh-stl-missing": (["mesh", "file", "--path", str(tmp_path / "no.stl"), "-o",
                              str(tmp_path / "m.msh")], "no.stl"),
        "mesh-stl-garbage": (["mesh", "file", "--path", str(_write(tmp_path / "g.stl", "x")),
                              "-o", str(tmp_path / "m.msh")], "g.stl"),
        "bench-out-file": (["bench", "--quick", "--out", str(afile)], "not a directory"),
        "bench-runs-file": (["bench", "--quick", "--runs", str(afile)], "not a directory"),
    }


def _mkdir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CLI_CASES = ["train-into-run", "train-out-is-file", "train-out-under-file",
             "train-into-fem-output", "resume-not-a-run", "resume-missing", "fem-solve-into-run",
             "fem-solve-out-file", "mesh-out-dir", "mesh-out-dir-msh", "mesh-out-missing-folder",
             "mesh-preview-suffix", "mesh-radii-word", "mesh-size-negative", "mesh-size-tiny",
             "mesh-unknown-option", "mesh-stl-missing", "mesh-stl-garbage", "bench-out-file",
             "bench-runs-file"]


@pytest.mark.parametrize("name", CLI_CASES)
def test_bad_paths_and_options_are_one_line(name, trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    before = _tree(tmp_path)
    argv, match = _make_cases(run, tmp_path)[name]
    before = _tree(tmp_path)
    code = _run_main(argv)
    _one_line_error(capsys, code, match=match)
    assert _tree(tmp_path) == before  # nothing written, nothing lost


def _damage(run: Path, what: str) -> None:
    if what == "all-checkpoints-truncated":
        for p in run.glob("ckpt-*.pt"):
            p.write_bytes(p.read_bytes()[:100])
    elif what == "checkpoint-is-pickle":
        import pickle

        for p in run.glob("ckpt-*.pt"):
            p.write_bytes(pickle.dumps(os.system))  # would run code if unpickled freely
    elif what == "config-changed":
        doc = tomllib.loads((run / "config.toml").read_text())
        doc["training"]["lr"] = 0.5
        (run / "config.toml").write_text(tomli_w.dumps(doc))
    elif what == "config-garbage":
        (run / "config.toml").write_text("lr = = 1")
    elif what == "config-bad-value":
        doc = tomllib.loads((run / "config.toml").read_text())
        doc["network"]["threshold"] = -1.0
        (run / "config.toml").write_text(tomli_w.dumps(doc))


CHECKPOINT_CASES = {"all-checkpoints-truncated": "no checkpoint to resume from",
                    "checkpoint-is-pickle": "no checkpoint to resume from",
                    "config-changed": "different config",
                    "config-garbage": "config.toml",
                    "config-bad-value": "network.threshold"}


@pytest.mark.parametrize("name", sorted(CHECKPOINT_CASES))
def test_bad_checkpoints_refuse_resume_in_one_line(name, trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    _damage(run, name)
    before = _tree(run)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROFEM_CACHE", "off")
        code = _run_main(["resume", str(run), "--steps", "20"])
    _one_line_error(capsys, code, match=CHECKPOINT_CASES[name])
    after = _tree(run)
    for name_ in ("latest", *[p.name for p in run.glob("ckpt-*.pt")]):
        assert after.get(name_) == before.get(name_)  # the run's state is untouched
    assert set(after) == set(before)


def _damage_cache(run: Path, what: str) -> None:
    ref = next((run / "reference").iterdir())
    if what == "torn-metrics":
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write('{"step": 99, "loss"')
    elif what == "damaged-metrics-line":
        lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
        lines[0] = '{"step": 5, "lo\n'
        (run / "metrics.jsonl").write_text("".join(lines))
    elif what in ("field.npz", "meta.json", "manifest.json"):
        (ref / what).write_bytes((ref / what).read_bytes()[:20])
    elif what == "reference-deleted":
        shutil.rmtree(run / "reference")


@pytest.mark.parametrize("what", ["torn-metrics", "damaged-metrics-line", "field.npz",
                                  "meta.json", "manifest.json", "reference-deleted"])
def test_damaged_metrics_and_reference_resume_and_repair(what, trained, tmp_path, capsys):
    """Resume works after the damage, repairs it and continues to the requested step."""
    from coupling.training.callbacks import read_metrics
    from fem.cache import verify

    run = _copy(trained, tmp_path)
    _damage_cache(run, what)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROFEM_CACHE", str(tmp_path / "empty-cache"))
        assert main(["resume", str(run), "--steps", "15"]) == 0, capsys.readouterr().err
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == 15
    if what != "damaged-metrics-line":
        assert steps == [5, 10, 15]
    ref = next((run / "reference").iterdir())
    assert verify(ref, ("field.npz", "meta.json")) is None


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NEUROFEM_CACHE": str(tmp_path / "cache")}


def _wait_for_metrics(run: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    metrics = run / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_with_documented_code_then_resumes(sig, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(tiny(steps=100_000, checkpoint_every=100_000)))
    run = tmp_path / "run"
    proc = subprocess.Popen([*EXE, "train", str(cfg), "--out", str(run)], env=_env(tmp_path),
                            stderr=subprocess.PIPE, text=True)
    _wait_for_metrics(run, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err  # 143 (SIGTERM), 130 (SIGINT)
    assert "stopped by signal" in err and "Traceback" not in err
    stopped = int((run / "latest").read_text().split("-")[1].split(".")[0])
    res = subprocess.run([*EXE, "resume", str(run), "--steps", str(stopped + 5)],
                         env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_two_concurrent_trainings_exactly_one_runs(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(tiny(steps=100_000, checkpoint_every=50)))
    other = tmp_path / "other.toml"
    other.write_text(tomli_w.dumps(_set(tiny(steps=20), "training.lr", 0.1)))
    run = tmp_path / "run"
    first = subprocess.Popen([*EXE, "train", str(cfg), "--out", str(run)], env=_env(tmp_path),
                             stderr=subprocess.PIPE, text=True)
    _wait_for_metrics(run, first)
    config_before = (run / "config.toml").read_bytes()
    for argv in (["train", str(other), "--out", str(run), "--force"], ["resume", str(run)]):
        second = subprocess.run([*EXE, *argv], env=_env(tmp_path), capture_output=True,
                                text=True, timeout=60)
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert "is in use by pid" in lines[0] and str(first.pid) in lines[0]
    assert first.poll() is None  # the first one still runs, undisturbed
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 143, err
    assert (run / "config.toml").read_bytes() == config_before
    from coupling.training.callbacks import read_metrics

    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[0] == 5  # one writer's records only
    res = subprocess.run([*EXE, "resume", str(run), "--steps", str(steps[-1] + 5)],
                         env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr  # the lock died with its holder


FULL_DISK = """
import resource, signal, sys
from mpi4py import MPI  # noqa: F401 - MPI's own shared-memory files come first
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
from coupling.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_disk_full_while_checkpointing_names_the_file(tmp_path):
    """A file-size limit makes every write past 20 kB fail (EFBIG, as ENOSPC would): the
    first checkpoint (~50 kB) cannot be written."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(tiny()))
    env = {**_env(tmp_path), "NEUROFEM_CACHE": "off"}
    res = subprocess.run([sys.executable, "-c", FULL_DISK, "train", str(cfg), "--out",
                          str(tmp_path / "run")], env=env, capture_output=True, text=True,
                         timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "File too large" in lines[0] and str(tmp_path / "run" / "ckpt-") in lines[0]
    assert not list((tmp_path / "run").glob(".*.tmp"))  # no temporary file left behind


MPI_CASES = {
    "threshold": ("network.threshold", -1.0, "network.threshold"),
    "hidden-huge": ("network.hidden", [100_000] * 6, "network.hidden"),
    "petsc-view": ("problem.solver.petsc", {"ksp_view": ":/tmp/nfpetsc-mpi"}, "ksp_view"),
    "locked": (None, None, "is in use by pid"),
    "out-is-file": (None, None, "not a directory"),
}


@pytest.mark.parametrize("name", sorted(MPI_CASES))
def test_two_ranks_bad_input_is_one_line_exit_2(name, tmp_path):
    """Under `mpiexec -n 2` too: exit 2, one line (rank 0's), no MPI_Abort, nothing written."""
    import filelock

    key, value, match = MPI_CASES[name]
    _clear_probes()
    doc = tiny() if key is None else _set(tiny(), key, value)
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(doc))
    out = tmp_path / "run"
    held = contextlib.nullcontext()
    if name == "locked":  # another process holds the run directory
        out.mkdir()
        held = filelock.FileLock(out / ".lock", timeout=0)
        (out / ".lock.owner").write_text(json.dumps({"pid": 4242, "host": "h",
                                                     "command": "train", "since": "now"}))
    elif name == "out-is-file":
        out.write_text("x")
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    with held:
        before = _tree(tmp_path)
        res = subprocess.run([mpiexec, "-n", "2", *EXE, "train", str(cfg), "--out", str(out)],
                             env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith("neurofem: error:") and match in lines[0], lines[0]
    assert _tree(tmp_path) == before and not list(Path("/tmp").glob(PROBES))


def test_report_after_torn_metrics_and_damaged_reference(trained, tmp_path, capsys):
    """`neurofem report` works on a run whose metrics end torn and whose reference is damaged
    (the reference is solved again and its cache entry repaired)."""
    from fem.cache import verify

    run = _copy(trained, tmp_path)
    _damage_cache(run, "torn-metrics")
    _damage_cache(run, "field.npz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROFEM_CACHE", str(tmp_path / "empty-cache"))
        assert main(["report", str(run)]) == 0, capsys.readouterr().err
    assert verify(next((run / "reference").iterdir()), ("field.npz", "meta.json")) is None
