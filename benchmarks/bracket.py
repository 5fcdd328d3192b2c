"""P1 vs P2 FEM on the bracket under an end load: how far apart, what each costs.

    python -m benchmarks.bracket [--config examples/bracket-bending.toml] [--size H]
                                 [--p1-finer H2] [--repeats 3]
                                 [--out benchmarks/results/bracket-p1-p2]

The mesh and the problem are those of the example config (the built-in ``bracket``
clamped at the walls of its bolt holes, a traction on the free end of the upright), solved
by DOLFINx with degree 1 and with degree 2 on the same mesh. The P1 solution lies in the
P2 space (same mesh), so it is interpolated there exactly and the two are compared as P2
functions: relative L2 difference ‖u₁ − u₂‖/‖u₂‖, the largest nodal displacement |u| of
each, the mean x-displacement of the loaded face (∫_load u_x ds / area) and the
compliance L(u) = ∫_load t·u ds (= 2 × the strain energy at the solution; a locking
element is too stiff, so its compliance is too small). `--p1-finer H2` adds a P1 solve on
a finer mesh (size H2, e.g. as many dofs as P2 on the example's mesh): its scalars against
P2's (does refining P1 buy what P2 gives?).

Times: DOLFINx/PETSc, best of `--repeats` fresh solvers (assembly with the Dirichlet rows,
then factorisation or AMG setup and the solve), once with MUMPS LU and once with CG +
GAMG carrying the rigid-body near-nullspace (rtol 1e-10), what ``[problem.solver]``
picks (``auto``: LU up to 60 000 dofs) marked. Writes OUT.json and OUT.md (rank 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "bracket-bending.toml"
OUT = ROOT / "benchmarks" / "results" / "bracket-p1-p2"


def _spec(doc: dict, degree: int, method: str | None = None):
    """The validated [problem] table of the config with `degree` (and the solver `method`)."""
    from fem.config import parse_problem  # deferred: loads DOLFINx

    table = {**doc["problem"], "degree": degree}
    if method:
        table["solver"] = {**table.get("solver", {}), "method": method}
    return parse_problem(table)


def _solve(problem, doc: dict, degree: int, method: str, repeats: int):
    """(solution, best assemble s, best solve s, iterations) of `repeats` fresh solvers."""
    from fem.solvers import LinearSolver  # deferred: loads DOLFINx
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx

    settings = _spec(doc, degree, method).solver
    best_a = best_s = float("inf")
    for _ in range(repeats):
        u = dolfinx.fem.Function(problem.V, name="u")
        solver = LinearSolver(problem.stiffness, problem.load, problem.bcs, u, settings,
                              near_nullspace=True)
        solver.solve()
        best_a, best_s = min(best_a, solver.assemble_time), min(best_s, solver.solve_time)
        iterations = solver.iterations
    return u, best_a, best_s, iterations


def _scalars(u, problem, traction: np.ndarray) -> dict:
    """Largest nodal |u|, mean u_x on the loaded face, compliance ∫_load t·u ds (global)."""
    from meshes.fenics import MPI, dolfinx, ufl  # deferred: loads DOLFINx

    dm, comm = problem.dmesh, problem.dmesh.comm
    V = u.function_space
    n = V.dofmap.index_map.size_local
    bs = V.dofmap.index_map_bs
    mag = np.linalg.norm(u.x.array[: n * bs].reshape(n, bs), axis=1)
    ds = ufl.ds(domain=dm.mesh, subdomain_data=dm.facet_tags,
                subdomain_id=dm.facet_names["load"])
    t = ufl.as_vector([float(c) for c in traction])

    def integral(form):
        return comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(form)), op=MPI.SUM)

    area = integral(1.0 * ds)
    return {"max_u": comm.allreduce(float(mag.max(initial=0.0)), op=MPI.MAX),
            "tip_ux": integral(u[0] * ds) / area, "compliance": integral(ufl.inner(t, u) * ds)}


def _relative_l2(u1, u2) -> float:
    """‖u₁ − u₂‖/‖u₂‖ with u₁ (P1) interpolated exactly into u₂'s P2 space."""
    from meshes.fenics import MPI, dolfinx, ufl  # deferred: loads DOLFINx

    comm = u2.function_space.mesh.comm
    w = dolfinx.fem.Function(u2.function_space)
    w.interpolate(u1)
    e = w - u2

    def integral(form):
        return comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(form)), op=MPI.SUM)

    return float(np.sqrt(integral(ufl.inner(e, e) * ufl.dx) / integral(ufl.inner(u2, u2)
                                                                        * ufl.dx)))


def _level(doc: dict, size: float, repeats: int, comm, degrees=(1, 2)) -> dict:
    """P1 and P2 on one mesh: dofs, times per method, scalars, their difference."""
    from fem.config import parse_mesh  # deferred: loads DOLFINx
    from fem.problems import build_problem  # deferred: loads DOLFINx, Gmsh

    dm = parse_mesh({**doc["mesh"], "size": size}).build(comm)
    traction = next(bc["value"] for bc in doc["problem"]["bcs"] if bc["boundary"] == "load")
    traction = np.asarray(traction, dtype=np.float64)
    out = {"size": size, "cells": int(dm.mesh.topology.index_map(dm.tdim).size_global),
           "vertices": int(dm.mesh.topology.index_map(0).size_global)}
    sol = {}
    for degree in degrees:
        problem = build_problem(dm, _spec(doc, degree))
        V = problem.V
        dofs = int(V.dofmap.index_map.size_global * V.dofmap.index_map_bs)
        row = {"dofs": dofs, "auto": problem.spec.solver.resolve(dofs)}
        for method in ("lu", "cg"):
            u, a, s, its = _solve(problem, doc, degree, method, repeats)
            row[method] = {"assemble_s": a, "solve_s": s, "total_s": a + s, "iterations": its}
        row.update(_scalars(u, problem, traction))
        sol[degree] = u
        out[f"P{degree}"] = row
    if len(sol) < 2:
        return out
    out["p1_vs_p2_rel_l2"] = _relative_l2(sol[1], sol[2])
    p1, p2 = out["P1"], out["P2"]
    out["p1_vs_p2_max_u"] = abs(p1["max_u"] - p2["max_u"]) / p2["max_u"]
    out["p1_vs_p2_tip_ux"] = abs(p1["tip_ux"] - p2["tip_ux"]) / abs(p2["tip_ux"])
    return out


def main(argv: list[str] | None = None) -> int:
    """Solve P1 and P2, write OUT.json and OUT.md (rank 0)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bracket",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(CONFIG.relative_to(ROOT)))
    parser.add_argument("--size", type=float, help="mesh size (default: the config's)")
    parser.add_argument("--p1-finer", type=float, help="also P1 alone on a mesh of this size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(OUT.relative_to(ROOT)))
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from fem.config import load_toml  # deferred: loads DOLFINx
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    doc = load_toml(ROOT / args.config if not Path(args.config).is_absolute() else args.config)
    t0 = time.perf_counter()
    levels = [_level(doc, args.size or doc["mesh"]["size"], args.repeats, comm)]
    if args.p1_finer:
        levels.append(_level(doc, args.p1_finer, args.repeats, comm, degrees=(1,)))
    if comm.rank == 0:
        _write(args, levels, comm.size, time.perf_counter() - t0)
    return 0


def _time_cell(row: dict, method: str) -> str:
    r = row[method]
    its = f", {r['iterations']} it." if method == "cg" else ""
    mark = " (auto)" if row["auto"] == method else ""
    return f"{r['total_s']:.2f} ({r['assemble_s']:.2f} + {r['solve_s']:.2f}{its}){mark}"


def _reading(levels: list[dict]) -> str:
    """What the numbers say, in one paragraph made from them."""
    first = levels[0]
    p1, p2 = first["P1"], first["P2"]
    fastest = {d: min(first[d][m]["total_s"] for m in ("lu", "cg")) for d in ("P1", "P2")}
    text = (f"P1 tetrahedra lock in bending: on the example's mesh the P1 solution is "
            f"{first['p1_vs_p2_rel_l2']:.1%} (relative L2) from the P2 one and its loaded face "
            f"moves {first['p1_vs_p2_tip_ux']:.1%} less (compliance "
            f"{p1['compliance'] / p2['compliance']:.2f}× P2's: too stiff). P2 has "
            f"{p2['dofs'] / p1['dofs']:.1f}× the dofs and its fastest solve here took "
            f"{fastest['P2'] / fastest['P1']:.0f}× P1's.")
    for lv in levels[1:]:
        if "P2" not in lv:
            q = lv["P1"]
            text += (f" P1 refined to size {lv['size']:g} ({q['dofs']:,} dofs, "
                     f"{q['dofs'] / p2['dofs']:.2f}× P2's) is still "
                     f"{abs(q['tip_ux'] - p2['tip_ux']) / abs(p2['tip_ux']):.1%} short of P2's "
                     "end displacement.")
    return text


def _write(args, levels: list[dict], ranks: int, wall: float) -> None:
    load = os.popen("uptime").read().strip()
    command = (f"mpiexec -n {ranks} " if ranks > 1 else "") + "python -m benchmarks.bracket"
    command += (" " + shlex.join(args.argv)) if args.argv else ""
    doc = {"date": date.today().isoformat(), "command": command, "uptime": load,
           "ranks": ranks, "config": args.config, "levels": levels, "wall_s": wall}
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    first = levels[0]
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    lines = [
        "# Bracket under an end load: P1 vs P2 FEM on the example's mesh", "",
        f"Command: `{command}`", "",
        f"{doc['date']}, {ranks} rank(s), OMP_NUM_THREADS={threads}; `uptime`: {load}. "
        "Problem and mesh of "
        f"`{args.config}`: the built-in `bracket` (size {first['size']:g}, "
        f"{first['vertices']:,} vertices, {first['cells']:,} tetrahedra), clamped at the "
        "walls of the bolt holes, traction (0.01, 0, 0) on the free end of the upright "
        "(E = 210, ν = 0.3). Written by `benchmarks/bracket.py`.", "",
        "| mesh size | degree | dofs | max \\|u\\| | mean u_x, loaded face | compliance ∫t·u "
        "| MUMPS LU s (assembly + solve) | CG + GAMG s (assembly + solve, iterations) |",
        "|---|---|---|---|---|---|---|---|"]
    for lv in levels:
        for d in (d for d in ("P1", "P2") if d in lv):
            r = lv[d]
            lines.append(f"| {lv['size']:g} | {d} | {r['dofs']:,} | {r['max_u']:.4e} | "
                         f"{r['tip_ux']:.4e} | {r['compliance']:.4e} | {_time_cell(r, 'lu')} "
                         f"| {_time_cell(r, 'cg')} |")
    lines += ["", "| mesh size | P1 vs P2: relative L2 | max \\|u\\| | mean u_x, loaded face |",
              "|---|---|---|---|"]
    lines += [f"| {lv['size']:g} | {lv['p1_vs_p2_rel_l2']:.2%} | {lv['p1_vs_p2_max_u']:.2%} | "
              f"{lv['p1_vs_p2_tip_ux']:.2%} |" for lv in levels if "P2" in lv]
    p2 = first["P2"]
    lines += [f"| {lv['size']:g}, P1 alone ({lv['P1']['dofs']:,} dofs) vs P2 at "
              f"{first['size']:g} | – | {abs(lv['P1']['max_u'] - p2['max_u']) / p2['max_u']:.2%} | "
              f"{abs(lv['P1']['tip_ux'] - p2['tip_ux']) / abs(p2['tip_ux']):.2%} |"
              for lv in levels[1:] if "P2" not in lv]
    lines += ["", _reading(levels), "",
              "Relative L2: ‖u₁ − u₂‖/‖u₂‖ over the bracket, u₁ (P1) interpolated exactly "
              "into the P2 space of the same mesh; max |u| and mean u_x: |P1 − P2| / |P2|. "
              "Times: best of the repeats, each a fresh PETSc solver; (auto) is what "
              "`[problem.solver] method = \"auto\"` picks for that many dofs."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
