"""The driver of `neurofem bench`: selected cells → worker processes → one results file.

Each problem's cells run in one worker process (``python -m benchmarks.cells worker``,
one thread per rank); with ``--mpi N`` problem 6 (vsn-galerkin) also runs under
``mpiexec -n N``: the strong-scaling study. The records, the problems' descriptions, the
machine and the commit go to ``DIR/<date>-<host>.json`` and the Markdown table beside it
(:mod:`benchmarks.tables`). A worker that dies leaves its missing cells ``failed`` with
the tail of its output.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from fem.cache import OutputError, check_folder

from .grid import (
    CONVERSION_T,
    METHODS,
    PROBLEMS,
    QUICK_STEPS,
    TARGETS,
    BenchError,
    Problem,
    clif_config,
    select,
)
from .tables import write_results

HERE = Path(__file__).resolve().parent
# In a checkout the recorded results live beside the harness; an installed harness writes
# into the working directory.
RESULTS = HERE / "results" if (HERE / "results").is_dir() else Path("bench-results")


@dataclass
class Options:
    """What `neurofem bench` was asked to do."""

    quick: bool = False
    only: list[str] = field(default_factory=list)
    mpi: int = 1
    out: Path = RESULTS
    runs: Path | None = None
    steps: int | None = None
    command: str = ""


def _launch(problem: str, methods: list[str], ranks: int, opts: Options, workdir: Path,
            out: Path) -> tuple[int, str]:
    """Run one worker (under mpiexec for ranks > 1); its exit code and output tail."""
    bindir = Path(sys.executable).parent
    cmd = [sys.executable, "-m", "benchmarks.cells", "worker", "--problem", problem,
           "--methods", ",".join(methods), "--workdir", str(workdir), "--out", str(out)]
    if opts.quick:
        cmd.append("--quick")
    if opts.steps:
        cmd += ["--steps", str(opts.steps)]
    if ranks > 1:
        mpiexec = bindir / "mpiexec"
        if not mpiexec.exists():
            raise BenchError(f"--mpi {ranks}: no mpiexec next to {sys.executable}")
        cmd = [str(mpiexec), "-n", str(ranks), *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if (HERE.parent / "pyproject.toml").is_file():  # a checkout: the worker imports it too
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent),
                                                          os.environ.get("PYTHONPATH")]))
    tail: list[str] = []
    # cwd = the work folder, so no `benchmarks` folder of the caller's shadows this package
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, cwd=workdir) as proc:
        for line in proc.stdout:  # the cells' one-line results as they finish
            if line.startswith("bench:"):
                print(line.rstrip(), file=sys.stderr, flush=True)
            tail = (tail + [line])[-40:]
    return proc.returncode, "".join(tail)[-2000:]


def _run_jobs(cells: list[tuple[str, str]], opts: Options, workdir: Path) -> list[dict]:
    """Every worker of the selected cells; the records, dead workers' cells as failed."""
    records: list[dict] = []
    jobs = [(p, [m for q, m in cells if q == p], 1) for p in PROBLEMS
            if any(q == p for q, _ in cells)]
    if opts.mpi > 1 and ("rve", "vsn-galerkin") in cells:
        jobs.append(("rve", ["vsn-galerkin"], opts.mpi))
    for problem, methods, ranks in jobs:
        out = workdir / f"{problem}-n{ranks}.jsonl"
        rc, tail = _launch(problem, methods, ranks, opts, workdir, out)
        got = [json.loads(ln) for ln in out.read_text().splitlines()] if out.exists() else []
        done = {r.get("method") for r in got}
        for m in methods:
            if m not in done:  # the worker died before recording this cell
                reason = " ".join(tail.split()[-40:]) or f"worker exited with {rc}"
                got.append({"problem": problem, "number": PROBLEMS[problem].number,
                            "method": m, "label": METHODS[m].label, "ranks": ranks,
                            "status": "failed", "reason": f"worker exit {rc}: {reason}"})
        records.extend(got)
    return records


def run(opts: Options) -> dict:
    """Run the selected grid (and the scaling study with --mpi N > 1); write JSON + Markdown."""

    if opts.mpi < 1:
        raise BenchError(f"--mpi {opts.mpi}: expected a positive number of ranks")
    if opts.steps is not None and opts.steps < 1:
        raise BenchError(f"--steps {opts.steps}: expected a positive integer")
    for flag, folder in (("--out", opts.out), ("--runs", opts.runs)):
        _check_folder(flag, folder)  # before the grid runs, not after
    cells = select(opts.only)
    t_start = time.perf_counter()
    started = _dt.datetime.now().astimezone()
    if opts.runs is None:
        with tempfile.TemporaryDirectory(prefix="neurofem-bench-") as tmp:
            records = _run_jobs(cells, opts, Path(tmp))
    else:
        Path(opts.runs).mkdir(parents=True, exist_ok=True)
        records = _run_jobs(cells, opts, Path(opts.runs).resolve())
    cells_done = [r for r in records if "rival" not in r]  # the FEM rivals apart
    doc = {"command": opts.command, "quick": opts.quick, "started": started.isoformat(),
           "total_s": time.perf_counter() - t_start, "git": git_info(), "machine": machine(),
           "targets": {"time_to": list(TARGETS), "conversion_T": CONVERSION_T},
           "problems": {p.name: _problem_doc(p, opts) for p in PROBLEMS.values()},
           "records": [r for r in cells_done if r["ranks"] == 1],
           "rivals": {r["problem"]: r for r in records if "rival" in r},
           "scaling": scaling(cells_done)}
    stem = f"{started:%Y-%m-%d}-{_machine_tag()}" + ("-quick" if opts.quick else "")
    doc["paths"] = [str(p) for p in write_results(doc, Path(opts.out), stem)]
    return doc


def _check_folder(flag: str, folder: Path | None) -> None:
    """A results folder must be a (creatable, writable) directory: BenchError otherwise."""

    if folder is None:
        return
    try:
        check_folder(folder, flag)
    except OutputError as exc:
        raise BenchError(str(exc)) from None


def _problem_doc(p: Problem, opts: Options) -> dict:
    """What the results say about one problem: config, reference, methods, budgets."""
    doc = {"number": p.number, "title": p.title, "example": f"examples/{p.example}",
           "reference": p.reference, "methods": list(p.cells())}
    if any(m != "clif" for m in p.cells()):
        doc["steps"] = opts.steps or (QUICK_STEPS if opts.quick else p.steps)
    if p.clif:
        doc["clif_example"] = f"examples/{p.clif}"
        doc["clif_steps"] = clif_config(p, opts.quick, opts.steps)["training"]["steps"]
    return doc


def scaling(records: list[dict]) -> list[dict]:
    """Strong scaling of problem 6 (vsn-galerkin): one row per rank count, vs 1 rank."""
    rows = sorted((r for r in records if r["problem"] == "rve" and r["method"] == "vsn-galerkin"
                   and r["status"] == "ok"), key=lambda r: r["ranks"])
    if len(rows) < 2 or rows[0]["ranks"] != 1:
        return []
    base = rows[0]["epochs_per_s"]
    out = []
    for r in rows:
        speedup = r["epochs_per_s"] / base
        out.append({"ranks": r["ranks"], "epochs_per_s": r["epochs_per_s"], "speedup": speedup,
                    "efficiency": speedup / r["ranks"], "train_s": r["train_s"],
                    "rel_l2": r["rel_l2"], "time_to": r["time_to"], "points": r["points"],
                    "peak_mem_mb_per_rank": r["peak_mem_mb_per_rank"]})
    return out


# ---- provenance --------------------------------------------------------------------
def git_info() -> dict:
    """Commit of the harness's checkout and whether its work tree differs ('' if none)."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _machine_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", platform.node() or "machine")[:40]


def machine() -> dict:
    """CPU model, cores, RAM, OS and library versions of this machine."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = round(kb / 1024**2, 1)
    except (OSError, AttributeError):
        pass
    versions = {"python": platform.python_version()}
    for mod in ("torch", "dolfinx", "numpy", "deepxde"):
        versions[mod] = _version(mod)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram,
            "os": platform.platform(), "versions": versions, "load_avg_1min_at_start": load,
            "threads_per_rank": 1,
            "note": "shared machine: other jobs ran at the same time, timings are noisy"}


def _version(module: str) -> str | None:
    names = {"dolfinx": ("fenics-dolfinx", "dolfinx-solver-real", "dolfinx")}.get(module,
                                                                                  (module,))
    for n in names:
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return None


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (for the results' provenance)."""
    return shlex.join(["neurofem", *(argv if argv is not None else sys.argv[1:])])
