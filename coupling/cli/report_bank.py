"""A bank-trained network on microstructures it has never seen, beside the rivals.

For each held-out microstructure (its own Gmsh mesh, meshing timed apart): the network's
relative L2 error against the FEM solve on that mesh at a few parameter points; one query
timed and split into features, network and the rest (lifts and the operators they need),
against a DOLFINx assembly + solve at the same μ; and, for homogenisation, the effective
stiffness C from the energies of the six unit strain cases (assembly, no solve) beside the
FEM homogenisation, Mori–Tanaka and the Hashin–Shtrikman bounds (analytic, from the mesh's
own inclusion fraction), each as isotropic E and G.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from validation.effective import hashin_shtrikman, kg_from_e_nu, mori_tanaka


def query_times(problem, net, features, mu: np.ndarray) -> dict:
    """One query on a new mesh, split: features at the nodes, the lifts and operators the
    field is composed with, the network; against a FEM assembly + solve at `mu`."""
    import torch  # deferred: loads torch

    # deferred: loads DOLFINx, torch, Gmsh
    from coupling.microstructure_features import microstructure_features
    from coupling.residuals.bank import feature_inputs, microstructure_of  # deferred: loads torch
    from coupling.residuals.parametric import discretise_parametric  # deferred: loads DOLFINx
    from fem.flops import best_time  # deferred: loads PETSc
    from validation.rom import fem_cost  # deferred: loads DOLFINx, PETSc

    micro = microstructure_of(problem.dmesh)
    t0 = time.perf_counter()
    disc = discretise_parametric(problem, dtype=next(net.parameters()).dtype,
                                 references=False, inputs=feature_inputs(problem.dmesh, features))
    setup_s = time.perf_counter() - t0
    x = disc.x[:, : micro["gdim"]].double().numpy()
    features_s = best_time(lambda: microstructure_features(
        x, micro["centres"], micro["radii"], micro["periodic_axes"], micro["gdim"],
        k=features.k, window=features.window), 2)
    with torch.no_grad():
        network_s = best_time(lambda: disc.fields(net, mu[None]), 3)
    cost = fem_cost(problem, mu)  # assembly + solve, best of two, with PETSc's flop count
    query_s = setup_s + network_s  # the setup computed the features once already
    return {"disc": disc, "features_s": features_s, "network_s": network_s,
            "other_s": max(setup_s - features_s, 0.0), "query_s": query_s,
            "fem_s": cost["fem_s"], "speedup": cost["fem_s"] / query_s,
            "energy": query_energy(disc, net, mu, cost)}


def query_energy(disc, net, mu: np.ndarray, cost: dict) -> dict:
    """pJ of one query in the three conventions (45 nm full, compute-only, neuromorphic) for
    the spiking network and its equal ANN, beside the FEM solve's (PETSc flop count)."""
    import torch  # deferred: loads torch

    import spiking  # deferred: loads torch
    from spiking.prices import flop_ops, network_prices, price  # deferred: loads torch

    monitor = spiking.ActivityMonitor(net)
    with monitor, torch.no_grad():
        disc.fields(net, mu[None])
    out = {"fem": price(flop_ops(cost["flops"], cost["reads"], cost["writes"]))}
    try:
        report = spiking.energy_report(net, monitor)
    except (ValueError, AttributeError):  # an ANN: no spiking energy accounting
        return out
    return {**out, **network_prices(report, int(disc.n_owned // disc.block_size))}


def stiffness_rows(problem, disc, net, mu: np.ndarray, cache_dir=None) -> dict:
    """E and G of the network's C (energies of the six unit strains: no solve), FEM
    homogenisation, Mori–Tanaka and the Hashin–Shtrikman bounds at `mu`."""
    from fem.problems.parametric import VOIGT_NAMES  # deferred: loads DOLFINx, Gmsh
    from fem.reference import reference  # deferred: loads DOLFINx, Gmsh
    from validation.parametric import energy_stiffness  # deferred: loads DOLFINx

    unit = np.eye(6)[[problem.load_names.index(f"strain.{v}") for v in VOIGT_NAMES]]
    p = problem.problem_at(mu)
    t0 = time.perf_counter()
    fields = [disc.to_function(net, mu[None], c=unit[j][None]) for j in range(6)]
    C_net = energy_stiffness(p, fields)
    c_s = time.perf_counter() - t0
    ref = reference(problem.dmesh, problem.homogenisation_spec_at(mu), cache_dir=cache_dir,
                    write_fields=False)
    C_fem = np.array(ref.results["C_voigt"])
    mats = dict(problem.spec_at(mu).materials)
    f = float(ref.results["volume_fractions"].get("inclusion", 0.0))
    (Km, Gm), (Ki, Gi) = (kg_from_e_nu(*mats[n]) for n in ("matrix", "inclusion"))
    Ef, Gf = _eg(C_fem)
    rows = {"FEM": (Ef, Gf), "network": _eg(C_net), "Mori–Tanaka": _kg(mori_tanaka(
        Km, Gm, Ki, Gi, f))}
    lo, hi = hashin_shtrikman(Km, Gm, Ki, Gi, f)
    rows["HS lower"], rows["HS upper"] = _kg(lo), _kg(hi)
    out = {name: {"E": e, "G": g, "E_rel": abs(e - Ef) / Ef, "G_rel": abs(g - Gf) / Gf}
           for name, (e, g) in rows.items()}
    return {"fraction": f, "moduli": out, "network_C_s": c_s}


def _eg(C: np.ndarray) -> tuple[float, float]:
    """(E, G) of the isotropic projection of a Voigt stiffness."""
    from fem.problems.homogenisation import isotropic_moduli  # deferred: loads DOLFINx

    return _kg(isotropic_moduli(C))


def _kg(kg) -> tuple[float, float]:
    """(E, G) from (K, G)."""
    K, G = (float(v) for v in kg)
    return 9 * K * G / (3 * K + G), G


def evaluate_member(problem, net, features, points: np.ndarray, cache_dir=None) -> dict:
    """Everything measured on one held-out microstructure (module docstring)."""
    # deferred: loads DOLFINx, torch
    from coupling.residuals.parametric import reference_targets

    times = query_times(problem, net, features, points[0])
    disc = times.pop("disc")
    targets = reference_targets(problem, points, cache_dir, disc.n_owned)
    errors = disc.errors(net, points, targets)
    out = {"errors": errors, "lift_errors": disc.errors(None, points, targets), **times,
           "nodes": int(disc.n_owned // disc.block_size),
           "fraction_geometry": problem.dmesh.info.get("volume_fraction_geometry")}
    if problem.name == "homogenisation":
        out["stiffness"] = [stiffness_rows(problem, disc, net, mu, cache_dir) for mu in points]
    return out


def is_bank(run_dir: Path) -> bool:
    """Whether run_dir/config.toml has a ``[bank]`` table."""
    from coupling.training.rundir import CONFIG  # deferred: loads torch
    from fem.config import load_toml  # deferred: loads DOLFINx

    path = run_dir / CONFIG
    return path.exists() and isinstance(doc := load_toml(path), dict) and "bank" in doc


def held_out_members(trainer, comm, points: int, compare=None) -> list[dict]:
    """Every held-out microstructure evaluated on the rank that holds it (round-robin;
    each mesh on COMM_SELF), gathered in bank order on every rank (collective)."""
    from coupling.residuals.bank import dealt  # deferred: loads torch
    from coupling.runs.bank import members_of, query_problem  # deferred: loads DOLFINx

    cfg = trainer.cfg
    held = members_of(cfg)[1]
    features = cfg.bank.features
    mine = []
    for j in dealt(len(held), comm):
        t0 = time.perf_counter()
        problem = query_problem(cfg, held[j])
        mesh_s = time.perf_counter() - t0
        pts = problem.box.held_out_points()[:points]
        row = {"member": j, **{k: held[j][k] for k in ("volume_fraction", "n", "seed")},
               "mesh_s": mesh_s, "points": pts.tolist(),
               **evaluate_member(problem, trainer.net, features, pts, trainer.reference_cache)}
        if compare is not None:
            row["single_geometry"] = single_geometry(problem, compare, pts,
                                                     trainer.reference_cache)
        mine.append(row)
    rows = [r for part in comm.allgather(mine) for r in part]
    return sorted(rows, key=lambda r: r["member"])


def single_geometry(problem, other, points: np.ndarray, cache_dir) -> dict:
    """The rival trained on one microstructure (a parametric run), applied to this one with
    its own inputs computed on this mesh."""
    # deferred: loads DOLFINx, torch
    from coupling.residuals.parametric import discretise_parametric, reference_targets

    disc = discretise_parametric(problem, dtype=next(other.net.parameters()).dtype,
                                 references=False,
                                 interface_distance=other.cfg.inputs.interface_distance)
    targets = reference_targets(problem, points, cache_dir, disc.n_owned)
    out = {"errors": disc.errors(other.net, points, targets)}
    if problem.name == "homogenisation":
        out["stiffness"] = [_network_moduli(problem, disc, other.net, mu, cache_dir)
                            for mu in points]
    return out


def _network_moduli(problem, disc, net, mu, cache_dir) -> dict:
    """E and G errors of a network's C against FEM at `mu`."""
    return stiffness_rows(problem, disc, net, mu, cache_dir)["moduli"]["network"]


def build_bank_report(run_dir: Path, comm, points: int = 2, compare: Path | None = None
                      ) -> dict:
    """Validate a bank run on its held-out microstructures and write its report
    (collective; `compare`: a parametric run trained on one microstructure, the rival)."""
    from coupling.runs.network import load_trained  # deferred: loads DOLFINx, torch, Gmsh
    from coupling.training.callbacks import METRICS, read_metrics  # deferred: loads torch
    from validation.bank import aggregate, write_report  # deferred: loads DOLFINx

    trainer = load_trained(run_dir, comm)
    other = load_trained(compare, comm) if compare is not None else None
    rows = held_out_members(trainer, comm, points, other)
    records = read_metrics(run_dir / METRICS) if comm.rank == 0 else []
    train_s = comm.bcast(records[-1]["wall_s"] if records else 0.0, root=0)
    summary = {"rows": rows, "aggregate": aggregate(rows), "points": points, "step": trainer.step,
               "train_s": train_s, "ranks": comm.size, "run_dir": str(run_dir),
               "title": f"bank of {trainer.disc.count} {trainer.cfg.mesh.kind} microstructures",
               "description": ("One network for every microstructure of the bank's "
                               "distribution, trained on the expected Galerkin energy over "
                               f"{trainer.disc.count} meshes (no FEM solve in training), "
                               f"{trainer.step} steps, {train_s:.0f} s on {comm.size} "
                               "rank(s); inputs: coordinates, microstructure features, "
                               "operator parameters.")}
    d = summary["aggregate"]["errors"]
    summary["headline"] = (f"held-out microstructures: field rel. L2 median "
                           f"{100 * d['median']:.3g}%, worst {100 * d['max']:.3g}%")
    if comm.rank == 0:
        write_report(summary, run_dir)
    comm.barrier()
    return summary
