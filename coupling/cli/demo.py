"""`neurofem demo`: the default job — a VSN network learns the elastic field of a 3D RVE.

Unit cube (1 mm) of epoxy (E = 3.5 GPa, ν = 0.35) with eight spherical glass inclusions
(E = 70 GPa, ν = 0.22; 15 % by volume) under uniaxial tension (u_x = 0.01 mm on x1,
symmetry rollers on x0, y0, z0): Gmsh mesh → DOLFINx reference → VSN network trained on
the Galerkin energy → validation against FEM → report.html / report.md / summary.json.
The config ships with this package (``coupling/cli/configs/demo-rve-elasticity.toml``,
the same file as ``examples/demo-rve-elasticity.toml`` of the repository), so an installed
``neurofem demo`` runs anywhere. ``--mpi N`` re-launches the same
command under ``mpiexec -n N`` (the mpiexec beside this Python).
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from coupling.cli.report import build_report
from coupling.training.errors import CheckpointError, TrainingError
from fem.errors import FemError
from meshes.errors import MeshError
from validation.provenance import COMMAND_FILE, flag
from validation.report import write_report

# FemError: every bad request, the one ConfigError (any layer's config keys) included
USER_ERRORS = (FemError, MeshError, CheckpointError, TrainingError, OSError)

CONFIG = Path(str(resources.files(__package__) / "configs" / "demo-rve-elasticity.toml"))
UNITS = {"length": "mm", "displacement": "mm", "stress": "GPa"}
DESCRIPTION = (
    "Uniaxial tension of a unit-cube RVE (edge 1 mm): epoxy matrix (E = 3.5 GPa, nu = 0.35) "
    "with 8 spherical glass inclusions (E = 70 GPa, nu = 0.22, 15 % by volume); u_x = 0.01 mm "
    "on x1 (1 % strain), symmetry rollers on x0, y0, z0, y1 and z1 traction-free. A Variable "
    "Spiking Neuron network trained on the FEM-backed Galerkin energy is compared with the "
    "DOLFINx solution. Units: mm, GPa (stresses and stress errors in GPa, forces in kN).")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    p = sub.add_parser("demo", help="run the default job: a spiking network learns the elastic "
                       "field of a 3D RVE, validated against FEM",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--mpi", type=int, metavar="N", help="run under mpiexec -n N")
    p.add_argument("--config", default=str(CONFIG), help="run config (default: the demo's)")
    p.add_argument("--steps", type=int, help="override training.steps (quick checks)")
    p.add_argument("--mesh-size", type=float, help="override mesh.size (quick checks)")
    p.set_defaults(handler=run)


def _relaunch(args: argparse.Namespace) -> int:
    """The same command under mpiexec -n N (one thread per rank)."""
    if args.mpi < 1:
        raise FemError(f"--mpi: expected a positive number of ranks, got {args.mpi}")
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        raise FemError(f"--mpi: {mpiexec} not found (the MPI launcher beside this Python)")
    cmd = [str(mpiexec), "-n", str(args.mpi), sys.executable, "-m", "coupling.cli", "demo",
           "--out", args.out, "--config", args.config]
    if args.steps is not None:
        cmd += ["--steps", str(args.steps)]
    if args.mesh_size is not None:
        cmd += ["--mesh-size", str(args.mesh_size)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.call(cmd, env=env)


def _document(args: argparse.Namespace) -> dict:
    from fem.config import load_toml  # deferred: loads DOLFINx

    doc = copy.deepcopy(load_toml(args.config))
    if args.steps is not None:
        if args.steps < 1:
            raise FemError(f"--steps: expected a positive integer, got {args.steps}")
        doc.setdefault("training", {})["steps"] = args.steps
    if args.mesh_size is not None:
        if not args.mesh_size > 0:
            raise FemError(f"--mesh-size: expected a positive number, got {args.mesh_size}")
        doc["mesh"]["size"] = args.mesh_size
    return doc


def _command(args: argparse.Namespace, ranks: int) -> str:
    """The command that reruns this demo: `mpiexec -n N neurofem demo ...` under N ranks."""
    parts = (["mpiexec", "-n", str(ranks)] if ranks > 1 else []) + ["neurofem", "demo",
                                                                    "--out", args.out]
    if args.config != str(CONFIG):
        parts += ["--config", args.config]
    if args.steps is not None:
        parts += ["--steps", str(args.steps)]
    if args.mesh_size is not None:
        parts += ["--mesh-size", str(args.mesh_size)]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Train, validate and report; print one summary line (rank 0)."""
    if args.mpi is not None:
        return _relaunch(args)
    wall0 = time.perf_counter()
    doc = _document(args)
    from coupling.config import parse_run_config  # deferred: loads DOLFINx, torch
    from coupling.runs.network import train_network  # deferred: loads DOLFINx, torch, Gmsh, SciPy

    # deferred: loads DOLFINx, torch
    from coupling.training.parallel import collective_errors, set_threads_per_rank
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    out = Path(args.out)
    say = (lambda m: print(f"neurofem demo: {m}", file=sys.stderr, flush=True)) \
        if comm.rank == 0 else (lambda m: None)
    with collective_errors(comm, user_errors=USER_ERRORS):
        set_threads_per_rank(comm)
        if comm.rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.jsonl").unlink(missing_ok=True)
            (out / COMMAND_FILE).write_text(_command(args, comm.size) + "\n")
        say(f"meshing the RVE, solving the FEM reference and training on {comm.size} rank(s)")
        train_network(parse_run_config(doc), out, comm, resume=False)
        say("validating against FEM and writing the report")
        summary = build_report(out, comm, description=DESCRIPTION, units=UNITS)
        wall = time.perf_counter() - wall0
        summary["wall_s"] = wall
        summary["timings"]["total_s"] = wall
        if comm.rank == 0:
            write_report(summary, summary["figures"], out)
    if comm.rank == 0:
        def fmt(key: str, spec: str, suffix: str = "") -> str:  # an ANN run has no activity
            value = summary.get(key)
            return "n/a" if value is None else f"{value:{spec}}{suffix}"

        lead = f"{flag(summary)}: " if flag(summary) else ""
        print(f"neurofem demo: {lead}displacement error {fmt('displacement_rel_l2', '.2%')} "
              f"(rel. L2 vs FEM), stress error {fmt('stress_rel_l2', '.2%')}, mean activity "
              f"{fmt('mean_activity', '.1%')}, energy {fmt('energy_ratio', '.3g', 'x')} ANN, "
              f"{wall:.0f} s -> {out / 'report.html'}", flush=True)
    return 0
