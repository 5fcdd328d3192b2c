"""Validation of a parametric surrogate: errors over held-out parameters, C(μ), plots, report.

The numbers come from :mod:`coupling.cli.report_parametric`: the network's relative L2
error against a FEM solve at each held-out μ, and for homogenisation problems the apparent
stiffness C(μ) of the network (the energy of its six unit load cases, and their
volume-averaged stress) beside
the FEM homogenisation at the same moduli, with the isotropic moduli E, G and the
Hashin–Shtrikman bounds of the phases. Here they are summarised, plotted and written as
``parametric.json``, ``report.md`` and ``report.html``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from fem.cache import atomic_write
from fem.problems.elasticity import epsilon, sigma
from fem.problems.homogenisation import VOIGT, bulk_shear, hashin_shtrikman, isotropic_moduli
from meshes.fenics import MPI, dolfinx, ufl


def distribution(values: list[float]) -> dict:
    """Median, mean, 90th percentile and worst of a list of errors."""
    a = np.asarray(values, float)
    return {"median": float(np.median(a)), "mean": float(a.mean()),
            "p90": float(np.percentile(a, 90)), "max": float(a.max()), "n": int(len(a))}


def apparent_stiffness(problem, fields: list[dolfinx.fem.Function]) -> np.ndarray:
    """6x6 Voigt C from the volume-averaged stress of six unit-strain fields (collective).

    `problem` is the elasticity problem at μ (its Lamé fields λ, μ)."""

    comm = problem.dmesh.comm
    mesh = problem.dmesh.mesh
    volume = comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(
        1.0 * ufl.dx(domain=mesh))), op=MPI.SUM)
    C = np.zeros((6, 6))
    for j, u in enumerate(fields):
        s = sigma(u, problem.lmbda, problem.mu)
        C[:, j] = [comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(
            s[a, b] * problem.dx)), op=MPI.SUM) / volume for a, b in VOIGT]
    return C


def energy_stiffness(problem, fields: list[dolfinx.fem.Function]) -> np.ndarray:
    """6x6 Voigt C_ij = a(u_i, u_j) / |Ω| from six unit-strain fields (collective).

    Under kinematic boundary conditions Ē_i:C:Ē_j |Ω| = a(u_i, u_j) (Hill–Mandel); for an
    approximation u_i + e_i with the exact boundary data, Galerkin orthogonality leaves
    a(u_i + e_i, u_j + e_j) = a(u_i, u_j) + a(e_i, e_j): the error of this C is quadratic in
    the field error, where the stress average (:func:`apparent_stiffness`) is linear in it.
    """

    comm = problem.dmesh.comm
    mesh = problem.dmesh.mesh
    volume = comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(
        1.0 * ufl.dx(domain=mesh))), op=MPI.SUM)
    a, b = (dolfinx.fem.Function(fields[0].function_space) for _ in range(2))
    form = dolfinx.fem.form(ufl.inner(sigma(a, problem.lmbda, problem.mu), epsilon(b))
                            * problem.dx)
    C = np.zeros((6, 6))
    for i in range(6):
        for j in range(i, 6):
            a.x.array[:], b.x.array[:] = fields[i].x.array, fields[j].x.array
            C[i, j] = C[j, i] = comm.allreduce(dolfinx.fem.assemble_scalar(form),
                                               op=MPI.SUM) / volume
    return C


def young(K: float, G: float) -> float:
    """Young's modulus from bulk and shear moduli."""
    return 9 * K * G / (3 * K + G)


def moduli_comparison(C_net: np.ndarray, C_fem: np.ndarray, materials: dict,
                      fractions: dict) -> dict:
    """Isotropic E and G of network and FEM, their relative errors and the HS bounds."""
    Kn, Gn = isotropic_moduli(C_net)
    Kf, Gf = isotropic_moduli(C_fem)
    names = [n for n in materials if n in fractions]
    KG = [bulk_shear(*materials[n]) for n in names]
    hs = hashin_shtrikman([k for k, _ in KG], [g for _, g in KG], [fractions[n] for n in names])
    En, Ef = young(Kn, Gn), young(Kf, Gf)
    return {"E_net": En, "E_fem": Ef, "E_rel": abs(En - Ef) / abs(Ef),
            "G_net": Gn, "G_fem": Gf, "G_rel": abs(Gn - Gf) / abs(Gf),
            "K_net": Kn, "K_fem": Kf,
            "C_rel": float(np.linalg.norm(C_net - C_fem) / np.linalg.norm(C_fem)),
            "hs": {k: list(v) for k, v in hs.items()},
            "inside_hs": bool(hs["K"][0] <= Kn <= hs["K"][1] and hs["G"][0] <= Gn <= hs["G"][1])}


def plot_errors(names: list[str], points: np.ndarray, errors: list[float], path: Path,
                title: str) -> Path:
    """One panel per parameter: the held-out error against that parameter's value."""
    import matplotlib  # deferred: loads matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: loads matplotlib

    n = len(names)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    e = 100 * np.asarray(errors)
    for i, name in enumerate(names):
        ax = axes[i // cols][i % cols]
        ax.scatter(points[:, i], e, s=14)
        ax.set_xlabel(name)
        ax.set_ylabel("rel. L2 error (%)")
        ax.axhline(np.median(e), color="k", lw=0.6, ls="--")
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.3g}%"


def markdown(summary: dict) -> str:
    """The report's Markdown (every number from `summary`)."""
    d, q, lf = summary["errors"], summary.get("query", {}), summary["lift_errors"]
    lines = [f"# {summary['title']}", "", summary["description"], "",
             f"Held-out parameter points: {d['n']} (scrambled Sobol, seed of their own, never "
             "trained on); FEM reference solved (and cached) at each.", "",
             f"| {summary['field']} rel. L2 | median | mean | p90 | worst |",
             "|---|---|---|---|---|",
             f"| network vs FEM | {_pct(d['median'])} | {_pct(d['mean'])} | {_pct(d['p90'])} "
             f"| {_pct(d['max'])} |",
             f"| lift alone (N = 0) | {_pct(lf['median'])} | {_pct(lf['mean'])} | "
             f"{_pct(lf['p90'])} | {_pct(lf['max'])} |", "",
             f"Activity over the held-out evaluations: {_pct(summary.get('activity'))}; "
             f"training {summary['train_s']:.0f} s, {summary['step']} steps.", ""]
    hom = summary.get("homogenisation")
    if hom:
        lines += ["## Apparent stiffness C(μ): network vs FEM homogenisation", "",
                  "C of the network from the energy of its six unit load cases, "
                  "C_ij = a(u_i, u_j)/|Ω| (error quadratic in the field error); in brackets "
                  "the same from the volume-averaged stress (linear in it). FEM: the "
                  "homogenisation solve at the same moduli.", "",
                  "| point | E_net | E_fem | E err (stress avg.) | G_net | G_fem | "
                  "G err (stress avg.) | inside HS |", "|---|---|---|---|---|---|---|---|"]
        for i, h in enumerate(hom["points"]):
            sa = h.get("stress_average", {})
            lines.append(f"| {i} | {h['E_net']:.4g} | {h['E_fem']:.4g} | {_pct(h['E_rel'])} "
                         f"({_pct(sa.get('E_rel'))}) | {h['G_net']:.4g} | {h['G_fem']:.4g} | "
                         f"{_pct(h['G_rel'])} ({_pct(sa.get('G_rel'))}) | "
                         f"{'yes' if h['inside_hs'] else 'NO'} |")
        lines += ["", f"Worst E error {_pct(hom['E_rel_max'])}, worst G error "
                  f"{_pct(hom['G_rel_max'])} (stress average: {_pct(hom['E_rel_max_stress'])}"
                  f", {_pct(hom['G_rel_max_stress'])}).", ""]
    if q:
        lines += ["## Query cost", "", f"One query (network at all {q['dofs']} dofs): "
                  f"{1e3 * q['query_s']:.3g} ms; FEM assembly + solve at the same μ: "
                  f"{1e3 * q['fem_s']:.3g} ms ({q['speedup']:.3g}x). Training paid for itself "
                  f"after {q['break_even_queries']} queries.", ""]
        en = q.get("energy")
        if en:
            lines += [f"Energy per query (spiking accounting, {en['points']} points): "
                      f"{en['query_snn_uj_full']:.3g} µJ full = {en['ratio_full']:.3g}× the "
                      f"equal ANN; {en['query_snn_uj_compute']:.3g} µJ compute-only = "
                      f"{en['ratio_compute']:.3g}×.", ""]
    if summary.get("rom_markdown"):  # the reduced-basis rival (validation.rom.markdown)
        lines += [summary["rom_markdown"], ""]
    lines += ["## Per point", "", "| " + " | ".join(summary["names"]) + " | rel. L2 |",
              "|" + "---|" * (len(summary["names"]) + 1)]
    for row, err in zip(summary["points"], summary["point_errors"], strict=True):
        lines.append("| " + " | ".join(f"{v:.4g}" for v in row) + f" | {_pct(err)} |")
    lines += ["", f"![errors over the parameters]({summary['figure']})", ""]
    return "\n".join(lines)


def write_report(summary: dict, run_dir: Path) -> None:
    """parametric.json, summary.json, report.md and report.html into run_dir (rank 0)."""
    text = markdown(summary)
    doc = json.dumps(summary, indent=1, default=float).encode()
    page = ("<!doctype html><meta charset='utf-8'><title>" + html.escape(summary["title"]) +
            "</title><pre style='font-family:monospace'>" + html.escape(text) +
            f"</pre><img src='{summary['figure']}'>").encode()
    for name, data in (("parametric.json", doc), ("summary.json", doc),
                       ("report.md", text.encode()), ("report.html", page)):
        atomic_write(run_dir / name, lambda f, d=data: f.write(d))
