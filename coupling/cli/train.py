"""`neurofem train CONFIG --out DIR` and `neurofem resume RUN_DIR`: MPI-parallel training runs.

Launch in parallel with ``mpiexec -n N neurofem train run.toml --out runs/x``. Every rank
runs the same command; rank 0 alone prints and writes. Errors end all ranks with one line.

Before any mesh or FEM work the config is validated, its memory and work are estimated
(:mod:`coupling.training.resources`; ``--ignore-limits`` or ``training.max_memory_gb`` to go beyond
this machine) and the run directory is checked and locked (:mod:`coupling.training.rundir`: a
second writer is refused at once). ``--cache DIR|off`` picks the user cache of meshes and
references (:mod:`fem.cache`; default ``$NEUROFEM_CACHE`` or the platform cache folder).

Exit codes: 0 finished; 2 bad input (config, paths, a locked or foreign run directory,
resources, disk full: one line naming the key or file); 1 an internal error; 128 + the
signal number when SIGTERM (143) or SIGINT (130) stopped the run after a checkpoint —
``neurofem resume DIR`` continues it bit-identically.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import signal
import sys
from pathlib import Path

from coupling.cli import run_command
from coupling.training.errors import CheckpointError, TrainingError
from coupling.training.resources import check
from fem.cache import use
from fem.errors import ConfigError, FemError
from meshes.errors import MeshError

# FemError: every bad request, the one ConfigError (any layer's config keys) included
USER_ERRORS = (FemError, MeshError, CheckpointError, TrainingError, OSError)
SIGNAL_EXIT = 128  # a run stopped by signal N exits with 128 + N (SIGTERM 143, SIGINT 130)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` and `resume` subcommands."""
    p = sub.add_parser("train", help="train a network on a PDE (mpiexec -n N for parallel)",
                       description="Train the network of CONFIG on its PDE residual; writes "
                       "DIR/config.toml, DIR/metrics.jsonl and checkpoints.")
    p.add_argument("config", help="run config (TOML): [mesh] [problem] [network] [residual] "
                   "[boundary] [training]")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--steps", type=int, help="override training.steps")
    p.add_argument("--force", action="store_true", help="reuse a run directory that has a run")
    p.add_argument("--flux-from", metavar="RUN", help="model = \"clif\": use the flux network "
                   "of the trained C-LIF run RUN (sets clif.flux_from; unchanged: "
                   "training.steps = 0 unless --steps is given)")
    _common(p)
    p.set_defaults(handler=train)

    r = run_command(sub, "resume", "continue a run from its latest checkpoint",
                    "Continue RUN_DIR from its latest checkpoint with its own config.toml "
                    "(refused if the checkpoint is from another config).", resume)
    r.add_argument("--steps", type=int, help="train up to this many steps in total")
    _common(r)


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_positive, metavar="N", help="torch/BLAS threads per "
                   "rank (default OMP_NUM_THREADS, else 1: use more ranks for more cores)")
    p.add_argument("--ignore-limits", action="store_true", help="skip the memory/work "
                   "estimate that refuses configs beyond this machine")
    p.add_argument("--cache", metavar="DIR", help="user cache of meshes and FEM references "
                   "(default $NEUROFEM_CACHE or the platform cache folder; 'off' disables it)")
    p.epilog = ("exit codes: 0 done, 2 bad input (one line), 1 internal error, 143/130 "
                "stopped by SIGTERM/SIGINT after a checkpoint (then `neurofem resume DIR`)")


def _with_steps(doc: dict, steps: int | None) -> dict:
    if steps is not None:
        doc = copy.deepcopy(doc)
        doc.setdefault("training", {})["steps"] = steps
    return doc


# What `model = "..."` in a run config trains: module and function (doc, run_dir, comm,
# resume) -> trainer.RunResult. "network": a coordinate network on a PDE residual;
# "clif": the conservative spiking solver (C-LIF neurons moving flux quanta).
MODELS = {"network": ("coupling.runs.network", "train_network"),
          "clif": ("coupling.runs.clif", "train_clif")}


def _checks(doc: dict, args: argparse.Namespace):
    """The validated config (the one object every layer below uses), once its resource
    estimate passed; before any work (every rank)."""
    from coupling.config import parse_config  # deferred: loads DOLFINx, torch

    if args.cache is not None:
        use(args.cache)
    cfg = parse_config(doc)
    check(cfg, force=args.ignore_limits)
    return cfg


def _run(doc: dict, run_dir: Path, args: argparse.Namespace, resume_run: bool) -> int:
    # deferred: loads DOLFINx, torch
    from coupling.training.parallel import collective_errors, set_threads_per_rank
    from coupling.training.resume import check_resume  # deferred: loads torch
    from coupling.training.rundir import claimed  # deferred: loads torch
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    result = None
    with collective_errors(comm, user_errors=USER_ERRORS), _SignalSeen() as seen:
        model = doc.get("model", "network")
        if model not in MODELS:
            raise ConfigError("model", f"unknown value {model!r} (choose from {', '.join(MODELS)})")
        cfg = _checks(doc, args)  # parsed once: this object is what every layer below reads
        with claimed(run_dir, "train", comm):
            if not resume_run:
                _fresh(run_dir, args.force, comm)
            else:  # refused before anything in the run directory changes
                check_resume(run_dir, cfg.resolved(), comm)
            set_threads_per_rank(comm, args.threads or cfg.training.threads)  # CLI wins
            module, function = MODELS[model]
            run = getattr(importlib.import_module(module), function)
            result = run(cfg, run_dir, comm, resume_run)
    if result is None:  # the guard ended this rank's part after another rank failed
        return 2
    signum = comm.allreduce(seen.signum if result.stopped_by_signal else 0, op=MPI.MAX)
    if comm.rank == 0:
        err = f"{result.rel_l2:.3%}" if result.rel_l2 is not None else "n/a"
        act = f"{result.activity:.1%}" if result.activity is not None else "n/a"
        how = "stopped by signal at" if result.stopped_by_signal else "finished"
        print(f"neurofem: {how} step {result.step}: loss {result.loss:.6g}, rel L2 vs reference "
              f"{err}, activity {act}, {result.wall_s:.1f} s -> {run_dir}", file=sys.stderr,
              flush=True)
    if result.stopped_by_signal:
        return SIGNAL_EXIT + (signum or 15)
    return 0


def _fresh(run_dir: Path, force: bool, comm) -> None:
    """A new run: refuse a directory that holds one unless --force (checked under the lock)."""
    from coupling.training.callbacks import METRICS  # deferred: loads torch

    taken = comm.bcast((run_dir / METRICS).exists() if comm.rank == 0 else None, root=0)
    if taken and not force:
        raise CheckpointError(f"{run_dir} already holds a run; use `neurofem resume {run_dir}` "
                              "or pass --force to start over")


class _SignalSeen:
    """Which signal stopped the run: the wakeup fd gets the number of every signal caught
    by a Python handler (fit installs its own handlers; this one only listens)."""

    def __enter__(self) -> _SignalSeen:
        self.signum, self._old = 0, None
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        try:
            self._old = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: no wakeup fd, SIGTERM assumed
            self._old = None
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.set_wakeup_fd(self._old)
        try:
            data = os.read(self._r, 4096)
        except BlockingIOError:
            data = b""
        self.signum = data[-1] if data else 0
        os.close(self._r)
        os.close(self._w)


def train(args: argparse.Namespace) -> int:
    """Start a run of CONFIG in --out (refused if a run is there, unless --force)."""
    from fem.config import load_toml  # deferred: loads DOLFINx

    doc = load_toml(args.config)
    if args.flux_from is not None and isinstance(doc, dict):  # a transfer: unchanged unless --steps
        doc = _with_steps(doc, 0 if args.steps is None else args.steps)
        doc.setdefault("clif", {})["flux_from"] = args.flux_from
    return _run(_with_steps(doc, args.steps), Path(args.out), args, resume_run=False)


def resume(args: argparse.Namespace) -> int:
    """Continue RUN_DIR from its latest checkpoint with its own config."""
    from coupling.training.rundir import CONFIG  # deferred: loads torch
    from fem.config import load_toml  # deferred: loads DOLFINx

    run_dir = Path(args.run_dir)
    if not (run_dir / CONFIG).exists():
        raise CheckpointError(f"{run_dir / CONFIG} not found: not a run directory")
    doc = _with_steps(load_toml(run_dir / CONFIG), args.steps)
    return _run(doc, run_dir, args, resume_run=True)
