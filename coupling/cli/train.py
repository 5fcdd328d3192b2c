"""`neurofem train CONFIG --out DIR` and `neurofem resume RUN_DIR`: MPI-parallel training runs.

Launch in parallel with ``mpiexec -n N neurofem train run.toml --out runs/x``. Every rank
runs the same command; rank 0 alone prints and writes. Errors end all ranks with one line.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from fem.errors import FemError
from meshes.errors import MeshError
from spiking import SpikingConfigError

from ..checkpoint import CheckpointError
from ..errors import TrainingError

USER_ERRORS = (FemError, MeshError, SpikingConfigError, CheckpointError, TrainingError)


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
    p.set_defaults(handler=train)
    r = sub.add_parser("resume", help="continue a run from its latest checkpoint",
                       description="Continue RUN_DIR from its latest checkpoint with its own "
                       "config.toml (refused if the checkpoint is from another config).")
    r.add_argument("run_dir", help="run directory written by `neurofem train`")
    r.add_argument("--steps", type=int, help="train up to this many steps in total")
    r.set_defaults(handler=resume)


def _with_steps(doc: dict, steps: int | None) -> dict:
    if steps is not None:
        doc = copy.deepcopy(doc)
        doc.setdefault("training", {})["steps"] = steps
    return doc


# What `model = "..."` in a run config trains: module and function (doc, run_dir, comm,
# resume) -> trainer.RunResult. "network": a coordinate network on a PDE residual;
# "clif": the conservative spiking solver (C-LIF neurons moving flux quanta).
MODELS = {"network": ("coupling.trainer", "train_network"), "clif": ("coupling.clif", "train_clif")}


def _run(doc: dict, run_dir: Path, resume_run: bool) -> int:
    import importlib

    from fem.errors import ConfigError
    from meshes.fenics import MPI

    from ..parallel import collective_errors, set_threads_per_rank

    comm = MPI.COMM_WORLD
    result = None
    with collective_errors(comm, user_errors=USER_ERRORS):
        model = doc.get("model", "network")
        if model not in MODELS:
            raise ConfigError("model", f"unknown value {model!r} (choose from {', '.join(MODELS)})")
        set_threads_per_rank(comm)
        module, function = MODELS[model]
        result = getattr(importlib.import_module(module), function)(doc, run_dir, comm, resume_run)
    if result is None:  # the guard ended this rank's part after another rank failed
        return 2
    if comm.rank == 0:
        err = f"{result.rel_l2:.3%}" if result.rel_l2 is not None else "n/a"
        act = f"{result.activity:.1%}" if result.activity is not None else "n/a"
        how = "stopped by signal at" if result.stopped_by_signal else "finished"
        print(f"neurofem: {how} step {result.step}: loss {result.loss:.6g}, rel L2 vs reference "
              f"{err}, activity {act}, {result.wall_s:.1f} s -> {run_dir}", file=sys.stderr,
              flush=True)
    return 0


def train(args: argparse.Namespace) -> int:
    """Start a run of CONFIG in --out (refused if a run is there, unless --force)."""
    from fem.config import load_toml

    run_dir = Path(args.out)
    if (run_dir / "metrics.jsonl").exists() and not args.force:
        raise CheckpointError(f"{run_dir} already holds a run; use `neurofem resume {run_dir}` "
                              "or pass --force to start over")
    return _run(_with_steps(load_toml(args.config), args.steps), run_dir, resume_run=False)


def resume(args: argparse.Namespace) -> int:
    """Continue RUN_DIR from its latest checkpoint with its own config."""
    from fem.config import load_toml

    from ..trainer import CONFIG

    run_dir = Path(args.run_dir)
    if not (run_dir / CONFIG).exists():
        raise CheckpointError(f"{run_dir / CONFIG} not found: not a run directory")
    return _run(_with_steps(load_toml(run_dir / CONFIG), args.steps), run_dir, resume_run=True)
