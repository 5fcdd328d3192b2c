"""What a report says about how its numbers were made: settings, versions, date, commit.

:func:`run_header` collects, as plain JSON data, the training settings of a run (network,
neuron, residual, steps done / planned, learning rate, ranks), the date of the report,
the versions of neurofem, DOLFINx, PETSc, torch and Python, and the git commit of the
source tree when it is a git checkout. :func:`completeness` says whether the checkpoint
behind a report is the end of the planned training, and :func:`flag` turns an incomplete
run into the words that lead the summary line, the report and ``summary.json``.
:func:`reproduce_command` writes the commands that redo a run with the same number of
ranks (``mpiexec -n N`` in front of each when N > 1).
"""

from __future__ import annotations

import datetime
import platform
import shlex
import subprocess
from importlib import metadata
from pathlib import Path

import numpy


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of neurofem, DOLFINx, PETSc (petsc4py), torch, numpy and Python."""
    out = {"neurofem": _version("neurofem")}
    try:
        import dolfinx  # deferred: loads DOLFINx

        out["dolfinx"] = dolfinx.__version__
    except ImportError:  # pragma: no cover - DOLFINx is a hard dependency
        out["dolfinx"] = None
    try:
        from petsc4py import PETSc  # deferred: loads DOLFINx

        out["petsc"] = ".".join(str(v) for v in PETSc.Sys.getVersion())
    except ImportError:  # pragma: no cover
        out["petsc"] = None
    import torch  # deferred: loads torch

    out.update(torch=torch.__version__, numpy=numpy.__version__,
               python=platform.python_version())
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding `path` (this package by default), with
    "-dirty" when tracked files differ from it; None outside a checkout or without git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], text=True,
                             capture_output=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain",
                                "--untracked-files=no"], text=True, capture_output=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def now() -> str:
    """The local date and time, ISO 8601 with its UTC offset, to the second."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def completeness(step: int, planned: int | None) -> dict:
    """{"steps_done", "steps_planned", "complete"}: complete when step ≥ planned."""
    done = int(step)
    plan = int(planned) if planned is not None else None
    return {"steps_done": done, "steps_planned": plan,
            "complete": plan is None or done >= plan}


def flag(summary: dict) -> str:
    """"INCOMPLETE run (stopped at step k of N)" for an incomplete run, else ""."""
    run = summary.get("run", {})
    if run.get("complete", True):
        return ""
    return (f"INCOMPLETE run (stopped at step {run['steps_done']} of "
            f"{run['steps_planned']})")


def flagged(headline: str, summary: dict) -> str:
    """The headline, led by the incomplete-run flag when there is one."""
    f = flag(summary)
    return f"{f}: {headline}" if f else headline


def launcher(ranks: int) -> str:
    """"mpiexec -n N " for N > 1 ranks, "" for one."""
    return f"mpiexec -n {int(ranks)} " if ranks and int(ranks) > 1 else ""


#: the command that made a run, saved in its directory where it was not plain `train` (demo)
COMMAND_FILE = "command.txt"


def run_command_line(run_dir: Path, run: dict) -> str:
    """The saved command of the run (the demo writes one), else train + report with the
    ranks of the training and of this report (`mpiexec -n N` when N > 1)."""
    saved = Path(run_dir) / COMMAND_FILE
    if saved.exists():
        return saved.read_text().strip()
    return reproduce_command(run_dir, run["train_ranks"], run["report_ranks"])


def reproduce_command(run_dir: str | Path, train_ranks: int, report_ranks: int,
                      config: str | Path | None = None) -> str:
    """The commands that retrain the run (same config, same ranks) and write its report."""
    run = shlex.quote(str(run_dir))
    cfg = shlex.quote(str(config)) if config else f"{run}/config.toml"
    return (f"{launcher(train_ranks)}neurofem train {cfg} --out {run} --force && "
            f"{launcher(report_ranks)}neurofem report {run}")


def run_header(settings: dict, step: int, planned: int | None, train_ranks: int,
               report_ranks: int) -> dict:
    """The report's header: `settings` (network, neuron, residual, lr, ...) with steps
    done / planned, ranks, date, versions and git commit."""
    out = {"date": now(), **completeness(step, planned), "train_ranks": int(train_ranks),
           "report_ranks": int(report_ranks), "settings": settings,
           "versions": versions(), "git_commit": git_commit()}
    return out


def header_rows(run: dict) -> list[list[str]]:
    """The header as (quantity, value) rows for the report's first table."""
    done, plan = run["steps_done"], run["steps_planned"]
    steps = f"{done} of {plan}" if plan is not None else str(done)
    if not run["complete"]:
        steps += " (INCOMPLETE: training stopped before the planned steps)"
    rows = [["steps done / planned", steps]]
    rows += [[k, str(v)] for k, v in run["settings"].items()]
    rows += [["ranks (training)", str(run["train_ranks"])],
             ["ranks (report)", str(run["report_ranks"])],
             ["report date", run["date"]],
             ["git commit", run["git_commit"] or "not a git checkout"]]
    rows += [[f"{k} version", v or "not installed"] for k, v in run["versions"].items()]
    return rows
