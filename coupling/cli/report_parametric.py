"""`neurofem report RUN` for a parametric run: the surrogate against FEM at held-out μ.

The held-out points (``parameters.held_out`` scrambled-Sobol points of their own seed,
never drawn in training) each get a FEM solve (cached in the run's reference folder and
the user cache), the network's relative L2 error there, and — for homogenisation runs —
the apparent stiffness C(μ) from the network's six unit load cases beside the FEM
homogenisation at the same moduli (E, G, Hashin–Shtrikman bounds). One query is timed
against a FEM assembly + solve at the same μ (:mod:`coupling.cli.query`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import spiking


def is_parametric(run_dir: Path) -> bool:
    """Whether run_dir/config.toml has a ``[parameters]`` table."""
    from coupling.training.rundir import CONFIG  # deferred: loads torch
    from fem.config import load_toml  # deferred: loads DOLFINx

    path = run_dir / CONFIG
    return path.exists() and isinstance(doc := load_toml(path), dict) and "parameters" in doc


def held_out(trainer, comm) -> dict:
    """Network vs FEM at every held-out μ (collective): errors, activity, C(μ) when defined."""
    from coupling.measure import global_activity  # deferred: loads DOLFINx, torch

    # deferred: loads DOLFINx, torch, Gmsh
    # deferred: loads DOLFINx, torch, Gmsh
    from coupling.residuals.parametric import reference_targets
    from validation.parametric import distribution  # deferred: loads DOLFINx, Gmsh

    disc, net, problem = trainer.disc, trainer.net, trainer.problem
    pts = problem.box.held_out_points()
    targets = reference_targets(problem, pts, trainer.reference_cache, disc.n_owned)
    monitor = spiking.ActivityMonitor(net)
    with monitor:
        errs = disc.errors(net, pts, targets)
    activity = global_activity(monitor, comm)["mean"]
    lift = disc.errors(None, pts, targets)  # the lift alone (N = 0) at the same points
    out = {"names": problem.box.names, "points": pts.tolist(), "point_errors": errs,
           "errors": distribution(errs), "activity": activity,
           "lift_errors": distribution(lift), "point_lift_errors": lift}
    if problem.name == "homogenisation":
        out["homogenisation"] = homogenisation(trainer, pts)
    return out


def homogenisation(trainer, pts: np.ndarray) -> dict | None:
    """C(μ) of the network (six unit strains) vs FEM homogenisation at each point's moduli."""
    from fem.problems.parametric import VOIGT_NAMES  # deferred: loads DOLFINx, Gmsh
    from fem.reference import reference  # deferred: loads DOLFINx, Gmsh

    # deferred: loads DOLFINx, Gmsh
    # deferred: loads DOLFINx, Gmsh
    from validation.parametric import apparent_stiffness, energy_stiffness, moduli_comparison

    disc, net, problem = trainer.disc, trainer.net, trainer.problem
    strains = [f"strain.{v}" for v in VOIGT_NAMES]  # Voigt order of the columns of C
    if sorted(problem.load_names) != sorted(strains) or problem.has_fixed_channel():
        return None  # the six unit load cases are not all channels of this network
    unit = np.eye(6)[[problem.load_names.index(s) for s in strains]]  # c of load case j
    rows = []
    for mu in pts:
        p = problem.problem_at(mu)
        fields = [disc.to_function(net, mu[None], c=unit[j][None]) for j in range(6)]
        ref = reference(trainer.dmesh, problem.homogenisation_spec_at(mu),
                        cache_dir=trainer.reference_cache, write_fields=False)
        materials = dict(problem.spec_at(mu).materials)
        C_fem, phases = np.array(ref.results["C_voigt"]), ref.results["volume_fractions"]
        row = moduli_comparison(energy_stiffness(p, fields), C_fem, materials, phases)
        row["stress_average"] = moduli_comparison(apparent_stiffness(p, fields), C_fem,
                                                  materials, phases)
        rows.append(row)
    return {"points": rows, "E_rel_max": max(r["E_rel"] for r in rows),
            "G_rel_max": max(r["G_rel"] for r in rows),
            "E_rel_max_stress": max(r["stress_average"]["E_rel"] for r in rows),
            "G_rel_max_stress": max(r["stress_average"]["G_rel"] for r in rows),
            "all_inside_hs": all(r["inside_hs"] for r in rows)}


def build_parametric_report(run_dir: Path, comm) -> dict:
    """Validate a parametric run at its held-out points and write its report (collective)."""
    from coupling.residuals.parametric import time_query  # deferred: loads DOLFINx, torch, Gmsh
    from coupling.runs.network import load_trained  # deferred: loads DOLFINx, torch, Gmsh, SciPy
    from coupling.training.callbacks import METRICS, read_metrics  # deferred: loads torch
    from validation.parametric import plot_errors, write_report  # deferred: loads DOLFINx, Gmsh

    trainer = load_trained(run_dir, comm)
    summary = held_out(trainer, comm)
    records = read_metrics(run_dir / METRICS) if comm.rank == 0 else []
    train_s = comm.bcast(records[-1]["wall_s"] if records else 0.0, root=0)
    mu = np.asarray(summary["points"][0])
    summary["query"] = time_query(trainer.disc, trainer.net, mu, train_s)
    d = summary["errors"]
    field = "displacement" if trainer.problem.vector else "field"
    summary.update(
        title=f"parametric {trainer.cfg.problem.type} on {trainer.cfg.mesh.kind}",
        description=(f"One network for {len(trainer.problem.box)} parameters "
                     f"({', '.join(trainer.problem.box.names)}), trained on the expected "
                     "Galerkin energy over the box (no FEM solve in training)."),
        step=trainer.step, train_s=train_s, figure="parametric_errors.png", run_dir=str(run_dir),
        field=field, headline=(f"held-out {field} rel. L2 median {100 * d['median']:.3g}%, "
                               f"worst {100 * d['max']:.3g}% over {d['n']} points"))
    rom = run_dir / "rom" / "rom.json"  # `neurofem rom CONFIG --out RUN/rom`: the rival
    if rom.exists():
        from validation.rom import markdown as rom_markdown  # deferred: loads DOLFINx, Gmsh, SciPy

        summary["rom"] = json.loads(rom.read_text())
        summary["rom_markdown"] = rom_markdown(summary["rom"], "Rival: reduced basis "
                                               "(POD–Galerkin, pyMOR; `neurofem rom`)")
    hom = summary.get("homogenisation")
    if hom:
        summary["headline"] += (f"; E within {100 * hom['E_rel_max']:.2g}%, G within "
                                f"{100 * hom['G_rel_max']:.2g}% of FEM")
    if comm.rank == 0:
        plot_errors(summary["names"], np.asarray(summary["points"]), summary["point_errors"],
                    run_dir / summary["figure"], summary["headline"])
        write_report(summary, run_dir)
    comm.barrier()
    return summary
