"""A reduced basis against FEM at the held-out points: the metrics the surrogate reports.

For each snapshot count N: the relative L2 error of the field (lumped-mass weighted, as the
network's), the a posteriori bound beside the true error in the energy norm X, for
homogenisation problems E and G from the six unit load cases (energy and stress-average C)
against the FEM homogenisation, offline time (snapshots + POD + projection), online time per
query (the reduced solves alone, and with the full field), the operations of one query
(for the price tables) and the queries that pay back the offline cost against a FEM solve.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fem.errors import ConfigError
from fem.flops import best_time, solve_cost
from fem.problems.parametric import VOIGT_NAMES, ParametricProblem
from fem.reduced import ReducedBasis
from fem.reference import reference
from meshes.fenics import dolfinx
from validation.parametric import (
    apparent_stiffness,
    distribution,
    energy_stiffness,
    moduli_comparison,
)

# a bound equal to the error (K(θ) a multiple of X: the min-theta constant is exact) may fall
# below it by round-off; relative energy errors are compared up to this
ROUND_OFF = 1e-9
REPEATS = 20  # online queries timed: the best of this many (each well under a millisecond)


def rel_l2(u: np.ndarray, ref: np.ndarray, w: np.ndarray) -> float:
    """√(Σ w (u − ref)² / Σ w ref²), the network's measure."""
    return float(np.sqrt(np.sum(w * (u - ref) ** 2) / np.sum(w * ref**2)))


def fem_targets(problem: ParametricProblem, pts: np.ndarray, cache_dir=None) -> list[np.ndarray]:
    """FEM solutions at the points (owned dofs), from the reference caches or solved."""

    n = problem.V.dofmap.index_map.size_local * problem.V.dofmap.index_map_bs
    return [reference(problem.dmesh, problem.spec_at(mu), cache_dir=cache_dir,
                      write_fields=False).u.x.array[:n].copy() for mu in pts]


def fem_cost(problem, mu: np.ndarray | None = None) -> dict:
    """One FEM assembly + solve (at μ for a parametric problem, built afresh each time as a
    query would): PETSc's count (fem.flops) and the best wall time of two."""

    build = (lambda: problem) if mu is None else (lambda: problem.problem_at(mu))  # noqa: E731
    solve_cost(build())  # compiles the forms once (JIT, cached on disk)
    best = min((solve_cost(build()) for _ in range(2)), key=lambda c: c["wall_s"])
    return {**best, "fem_s": best["wall_s"]}


def six_strains(problem: ParametricProblem) -> np.ndarray | None:
    """c of the six unit strain load cases (Voigt order), or None if not all channels."""
    strains = [f"strain.{v}" for v in VOIGT_NAMES]
    if problem.name != "homogenisation" or sorted(problem.load_names) != sorted(strains) \
            or problem.has_fixed_channel():
        return None
    return np.eye(6)[[problem.load_names.index(s) for s in strains]]


def moduli(problem: ParametricProblem, rb: ReducedBasis, pts: np.ndarray, cache_dir=None
           ) -> dict | None:
    """E, G of the reduced model's C(μ) (energy and stress average) vs FEM homogenisation."""

    unit = six_strains(problem)
    if unit is None:
        return None
    rows = []
    for mu in pts:
        p = problem.problem_at(mu)
        fields = []
        for j in range(6):
            f = dolfinx.fem.Function(problem.V)
            f.x.array[: rb.system.n] = rb.solve(mu, unit[j])
            f.x.scatter_forward()
            fields.append(f)
        ref = reference(problem.dmesh, problem.homogenisation_spec_at(mu), cache_dir=cache_dir,
                        write_fields=False)
        mats = dict(problem.spec_at(mu).materials)
        C, ph = np.array(ref.results["C_voigt"]), ref.results["volume_fractions"]
        row = moduli_comparison(energy_stiffness(p, fields), C, mats, ph)
        row["stress_average"] = moduli_comparison(apparent_stiffness(p, fields), C, mats, ph)
        rows.append(row)
    return {"E_rel_max": max(r["E_rel"] for r in rows), "G_rel_max": max(r["G_rel"] for r in rows),
            "E_rel_max_stress": max(r["stress_average"]["E_rel"] for r in rows),
            "G_rel_max_stress": max(r["stress_average"]["G_rel"] for r in rows)}


def evaluate(rb: ReducedBasis, pts: np.ndarray, targets: list[np.ndarray], weights: np.ndarray,
             fem_s: float | None = None, cache_dir=None) -> dict:
    """One reduced model at the held-out points (module docstring)."""

    errs, true, bound = [], [], []
    for mu, t in zip(pts, targets, strict=True):
        u = rb.solve(mu)
        errs.append(rel_l2(u, t, weights))
        ref = rb.energy_norm(t)
        true.append(rb.energy_norm(u - t) / ref)
        bound.append(rb.estimate(mu) / ref)
    mu = pts[0]
    reduced_s = best_time(lambda: rb.coefficients(mu), REPEATS)
    field_s = best_time(lambda: rb.solve(mu), REPEATS)
    out = {"snapshots": len(rb.points), "mode": rb.mode, "dims": rb.dims, **rb.timings,
           "errors": distribution(errs), "point_errors": errs,
           "energy_error": {"true": true, "bound": bound, "true_max": max(true),
                            "bound_max": max(bound),
                            "bound_holds": bool(all(b >= e * (1 - ROUND_OFF) - ROUND_OFF
                                                    for b, e in zip(bound, true, strict=True)))},
           "online_reduced_s": reduced_s, "online_field_s": field_s,
           "ops_reduced": rb.ops_per_query(False), "ops_field": rb.ops_per_query(True)}
    if fem_s is not None:
        out["speedup_field"] = fem_s / field_s
        out["break_even_queries"] = (math.ceil(rb.timings["offline_s"] / (fem_s - field_s))
                                     if fem_s > field_s else None)
    hom = moduli(rb.problem, rb, pts, cache_dir)
    if hom:
        out["homogenisation"] = hom
    return out


def range_ends(problem: ParametricProblem) -> np.ndarray:
    """Two snapshot points: every operator parameter at its low, then its high end (the
    load parameters at the centre: they are channels, not snapshots)."""
    pts = np.tile(problem.box.centre(), (2, 1))
    for i, p in enumerate(problem.box.parameters):
        if problem.roles[p.name] == "operator":
            pts[:, i] = p.low, p.high
    return pts


def rom_rows(problem: ParametricProblem, counts: list[int], *, mode: str = "channel",
             cache_dir=None, fem: dict | None = None, targets: list | None = None,
             save_dir=None, ends: bool = False) -> dict:
    """Reduced models with each snapshot count in `counts` at the box's held-out points,
    with the FEM solve they compete with (one rank); each saved to save_dir/rom-N<n>.npz."""
    ops = problem.operators()
    pts = problem.box.held_out_points()
    targets = targets if targets is not None else fem_targets(problem, pts, cache_dir)
    weights = np.asarray(ops.M.sum(axis=1)).reshape(-1)
    fem = fem or fem_cost(problem, pts[0])
    rows = []
    for n in counts:
        rb = ReducedBasis.build(problem, n, mode=mode, ops=ops)
        rows.append(evaluate(rb, pts, targets, weights, fem["fem_s"], cache_dir))
        if save_dir is not None:
            rb.save(f"{save_dir}/rom-N{n}.npz")
    if ends:
        rb = ReducedBasis.build(problem, 0, mode=mode, ops=ops, points=range_ends(problem))
        row = evaluate(rb, pts, targets, weights, fem["fem_s"], cache_dir)
        rows.append({**row, "label": "2 at the ends"})
    return {"fem": fem, "rows": rows, "held_out": int(len(pts))}


def query_row(rb: ReducedBasis, mu: np.ndarray, target: np.ndarray | None,
              weights: np.ndarray | None) -> dict:
    """One query of a (saved) reduced model at μ: times, error against FEM, operations."""
    u = rb.solve(mu)
    out = {"snapshots": len(rb.points), "dims": rb.dims, "offline_s": rb.timings["offline_s"],
           "online_reduced_s": best_time(lambda: rb.coefficients(mu), REPEATS),
           "online_field_s": best_time(lambda: rb.solve(mu), REPEATS),
           "ops_reduced": rb.ops_per_query(False), "ops_field": rb.ops_per_query(True)}
    if target is not None:
        out["rel_l2"] = rel_l2(u, target, weights)
    return out


def rom_query(path, problem: ParametricProblem, mu: np.ndarray, weights: np.ndarray,
              cache_dir=None) -> dict:
    """A saved reduced model (``neurofem rom``'s .npz) queried at μ: times, error against
    the FEM solve there, and its price per answer in both 45 nm conventions (pJ)."""
    from spiking.energy import OpCounts  # deferred: loads torch
    from spiking.prices import price  # deferred: loads torch

    if not Path(path).is_file():
        raise ConfigError("--rom", f"{path}: no such file (write one with `neurofem rom`)")
    rb = ReducedBasis.load(path, problem)
    if rb.system.n != len(weights):
        raise ConfigError("--rom", f"{path} was built on another mesh ({rb.system.n} dofs, "
                          f"this run has {len(weights)})")
    row = query_row(rb, mu, fem_targets(problem, mu[None], cache_dir)[0], weights)
    return {**row, "path": str(path), **price(OpCounts(**row["ops_field"]))}


def markdown(rows: dict, title: str = "Reduced basis (POD–Galerkin, pyMOR)") -> str:
    """The ROM rows as a Markdown table (every number from `rows`)."""
    f = rows["fem"]
    lines = [f"## {title}", "",
             f"At the {rows['held_out']} held-out points; FEM assembly + solve "
             f"{1e3 * f['fem_s']:.3g} ms, {f['flops']:.3g} flops (PETSc's log).", "",
             "| N | r per basis | rel. L2 median | worst | E err (stress avg.) | "
             "G err (stress avg.) | energy err worst | bound worst | bound ≥ err | "
             "offline s | reduced solve µs | with field µs | payback queries |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows["rows"]:
        h = r.get("homogenisation") or {}
        e, ee = r["errors"], r["energy_error"]
        eg = (f"{_pct(h.get('E_rel_max'))} ({_pct(h.get('E_rel_max_stress'))}) | "
              f"{_pct(h.get('G_rel_max'))} ({_pct(h.get('G_rel_max_stress'))})") if h else "— | —"
        lines.append(
            f"| {r.get('label', r['snapshots'])} | {'/'.join(map(str, r['dims']))} | "
            f"{_pct(e['median'])} | "
            f"{_pct(e['max'])} | {eg} | {_pct(ee['true_max'])} | {_pct(ee['bound_max'])} | "
            f"{'yes' if ee['bound_holds'] else 'NO'} | {r['offline_s']:.3g} | "
            f"{1e6 * r['online_reduced_s']:.3g} | {1e6 * r['online_field_s']:.3g} | "
            f"{r.get('break_even_queries')} |")
    return "\n".join(lines) + "\n"


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.3g}%"
