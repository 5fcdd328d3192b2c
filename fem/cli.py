"""`neurofem fem solve CONFIG --out DIR`: solve a reference problem from a TOML config.

Writes DIR/field.xdmf (P1) or DIR/field.bp (VTX), DIR/field.npz (loadable cache format),
DIR/summary.json (dofs, solve time, solver iterations, norms, problem) and prints one line.
DIR is checked before any work: a file, an unwritable folder or another command's output
folder (a training run) is refused in one line (fem.cache.claim_output), and so is a mesh,
matrix or time loop beyond this machine (fem.resources.check_solve; ``--force`` skips it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from meshes.errors import MeshError

from .cache import atomic_write, claim_output
from .errors import FemError
from .resources import check_solve

USER_ERRORS = (FemError, MeshError, OSError)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `fem` subcommand group."""
    p = sub.add_parser("fem", help="finite-element reference solutions (DOLFINx)")
    fem_sub = p.add_subparsers(dest="fem_command", required=True, metavar="ACTION")
    s = fem_sub.add_parser("solve", help="solve the [mesh]/[problem] of a TOML config")
    s.add_argument("config", help="TOML file with [mesh] and [problem] tables")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--cache", default=None, help="reference cache folder (reuse earlier solves)")
    s.add_argument("--force", action="store_true",
                   help="skip the memory/time estimate made before any work (fem.resources)")
    s.set_defaults(handler=solve_command)


def solve_command(args: argparse.Namespace) -> int:
    """Handler of `neurofem fem solve`."""
    # deferred: loads DOLFINx
    # deferred: loads DOLFINx
    from .config import load_toml, parse_mesh, parse_problem, require_table

    doc = load_toml(args.config)
    mesh_spec = parse_mesh(require_table(doc, "mesh"))
    spec = parse_problem(require_table(doc, "problem"))  # validate before any heavy work

    check_solve(mesh_spec, spec, force=getattr(args, "force", False))  # bounded before work

    from meshes.fenics import MPI  # deferred: loads DOLFINx

    from .reference import reference, save  # deferred: loads DOLFINx, Gmsh

    comm = MPI.COMM_WORLD
    # The output folder is checked before any work: never another command's (a run's) folder.
    error = None
    if comm.rank == 0:
        try:
            claim_output(args.out, "fem solve")
        except FemError as exc:
            error = str(exc)
    error = comm.bcast(error, root=0)
    if error is not None:
        raise FemError(error)
    t0 = time.perf_counter()
    dmesh = mesh_spec.build(comm)
    t_mesh = time.perf_counter() - t0
    ref = reference(dmesh, spec, args.cache)
    out = Path(args.out)
    save(ref, out)
    summary = _summary(spec, dmesh, ref, t_mesh, comm.size)
    if comm.rank == 0:
        atomic_write(out / "summary.json", json.dumps(summary, indent=2, default=float).encode())
        print(_headline(spec, dmesh, ref, summary, comm.size, out), flush=True)
    return 0


def _summary(spec, dmesh, ref, t_mesh: float, ranks: int) -> dict:
    """summary.json of a solve: problem, mesh, solver numbers, results (collective)."""
    summary = {
        "problem": spec.raw,
        "mesh": {
            "kind": dmesh.kind,
            "options": dmesh.options,
            "cells": dmesh.mesh.topology.index_map(dmesh.tdim).size_global,
        },
        "dofs": ref.info.get("global_dofs"),
        "solve_time_s": ref.info.get("solve_time_s"),
        "solver_iterations": ref.info.get("iterations"),
        "solver": ref.info.get("method"),
        "norms": ref.info.get("norms"),
        "mesh_time_s": t_mesh,
        "ranks": ranks,
        "from_cache": ref.from_cache,
        "results": ref.results,
    }
    if spec.exact is not None:
        from .errors_norms import l2_error  # deferred: only problems with an exact solution

        t_end = spec.time.t_end if spec.time is not None else 0.0  # transient: final time
        summary["l2_error"] = l2_error(ref.u, spec.exact, t=t_end)
    return summary


def _headline(spec, dmesh, ref, summary: dict, ranks: int, out: Path) -> str:
    """The one line `fem solve` ends with."""
    n = summary["norms"] or {}
    extra = ""
    if "K" in ref.results:
        extra = f", K={ref.results['K']:.6g}, G={ref.results['G']:.6g}"
    if "l2_error" in summary:
        extra += f", L2 error={summary['l2_error']:.3e}"
    return (f"fem solve: {spec.type} P{spec.degree} on {dmesh.kind or 'mesh'} "
            f"({summary['mesh']['cells']} cells, {summary['dofs']} dofs, {ranks} ranks): "
            f"{summary['solver']} {summary['solver_iterations']} its, "
            f"{summary['solve_time_s']:.3g} s, |u|_L2={n.get('l2', float('nan')):.6g}{extra} "
            f"-> {out}")
