"""`neurofem report RUN_DIR`: validate a trained run against its FEM reference and write
report.html, report.md, summary.json, the figures and the fields (XDMF) into RUN_DIR.

The run's config names its model: a coordinate network (``model = "network"``, here) or
PISNN's conservative spiking solver (``model = "clif"``, :mod:`coupling.cli.report_clif`).

Collective: ``mpiexec -n N neurofem report RUN_DIR`` works on any number of ranks (the
reference is reloaded onto the new partition); rank 0 alone renders and writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import spiking
from coupling.cli import run_command
from coupling.cli.report_bank import build_bank_report, is_bank
from coupling.cli.report_parametric import build_parametric_report, is_parametric
from coupling.training.errors import CheckpointError, TrainingError
from fem.cache import check_no_links
from fem.errors import FemError
from meshes.errors import MeshError
from validation import export
from validation.provenance import flagged, run_command_line, run_header
from validation.report import write_report

# FemError: every bad request, the one ConfigError (any layer's config keys) included
USER_ERRORS = (FemError, MeshError, CheckpointError, TrainingError)



def register(sub: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""

    p = run_command(sub, "report", "validate a trained run against FEM and write its report",
                    "Errors and conservation checks of the trained network against the FEM "
                    "reference, figures, report.html/report.md/summary.json and XDMF fields, "
                    "written into RUN_DIR.", report)
    p.add_argument("--html-scene", action="store_true",
                   help="also export the 3D comparison as interactive HTML (needs trame)")
    p.add_argument("--points", type=int, default=2, metavar="N",
                   help="bank runs: parameter points per held-out microstructure (default 2)")
    p.add_argument("--compare", default=None, metavar="RUN",
                   help="bank runs: a parametric run trained on one microstructure, "
                   "evaluated beside the bank's network on every held-out one")


def report(args: argparse.Namespace) -> int:
    """Validate RUN_DIR against its FEM reference and write its report (collective)."""
    # deferred: loads DOLFINx, torch
    from coupling.training.parallel import collective_errors, set_threads_per_rank
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    with collective_errors(comm, user_errors=USER_ERRORS):
        set_threads_per_rank(comm)
        run_dir = Path(args.run_dir)
        check_no_links(run_dir, "report")  # a planted link would write outside the run

        if is_bank(run_dir):  # held-out microstructures (coupling.cli.report_bank)
            summary = build_bank_report(run_dir, comm, args.points,
                                        Path(args.compare) if args.compare else None)
        elif is_parametric(run_dir):
            summary = build_parametric_report(run_dir, comm)
        elif run_model(run_dir) == "clif":
            from coupling.cli.report_clif import build_clif_report  # deferred: loads DOLFINx, torch

            summary = build_clif_report(run_dir, comm, html_scene=args.html_scene)
        else:
            summary = build_report(run_dir, comm, html_scene=args.html_scene)
    if comm.rank == 0:
        print(f"neurofem: {summary['headline']} -> {Path(args.run_dir) / 'report.html'}",
              file=sys.stderr, flush=True)
    return 0


def run_model(run_dir: Path) -> str:
    """The `model` of the run in run_dir ("network" when it names none or has no config)."""
    from coupling.training.rundir import CONFIG  # deferred: loads torch
    from fem.config import load_toml  # deferred: loads DOLFINx

    path = run_dir / CONFIG
    if not path.exists():
        return "network"  # build_report says that this is no run directory
    doc = load_toml(path)
    return str(doc.get("model", "network")) if isinstance(doc, dict) else "network"


def _activity(trainer, monitor) -> dict:
    """Global spiking activity per layer (counts summed over ranks)."""
    from coupling.measure import global_activity  # deferred: loads DOLFINx, torch

    activity = global_activity(monitor, trainer.comm)
    return {"mean": activity["mean"], "layers": activity["layers"]}


def _units(problem_type: str) -> dict[str, str]:
    if problem_type in ("elasticity", "homogenisation"):
        return {"u": "displacement", "stress": "stress"}
    return {"u": "u", "stress": ""}


def _network_fields(trainer) -> tuple:
    """The network and FEM fields on the problem's space, activity (global, per node) and
    energy vs the equal ANN, from one monitored evaluation at the dofs."""
    import torch  # deferred: loads torch

    # deferred: loads DOLFINx, torch
    from validation.fields import network_function, nodal_function, on_space

    disc, net = trainer.disc, trainer.net
    V = disc.problem.V
    monitor = spiking.ActivityMonitor(net)
    with torch.no_grad(), monitor:
        coeffs = disc.field(net)
    u_net = network_function(coeffs, V, "u_network")
    u_ref = on_space(trainer.ref.u, V, "u_fem")
    point_activity = None
    if monitor.records:
        point_activity = nodal_function(monitor.per_point().numpy(), V.mesh, "activity",
                                        V.ufl_element().embedded_superdegree)
    energy = None
    if getattr(net, "neuron", "ann") in ("vsn", "lif"):
        energy = spiking.energy_report(net, monitor).to_dict()
    return u_net, u_ref, _activity(trainer, monitor), point_activity, energy


def build_report(run_dir: Path, comm, html_scene: bool = False,
                 description: str | None = None, units: dict | None = None) -> dict:
    """Evaluate the run in run_dir and write its report (collective); returns the summary."""
    from coupling.training.callbacks import METRICS, read_metrics  # deferred: loads torch
    from validation.evaluate import compare, mesh_statistics  # deferred: loads DOLFINx, torch, Gmsh

    t0 = time.perf_counter()
    from coupling.runs.network import load_trained  # deferred: loads DOLFINx, torch, Gmsh, SciPy

    trainer = load_trained(run_dir, comm)
    t_setup = time.perf_counter() - t0
    disc, net = trainer.disc, trainer.net
    problem = disc.problem
    t1 = time.perf_counter()
    u_net, u_ref, activity, point_activity, energy = _network_fields(trainer)
    cmp = compare(problem, u_net, reference=u_ref)
    offnode = _offnode(disc, net, u_ref, cmp)
    mesh_stats = mesh_statistics(trainer.dmesh)
    mechanics = _mechanics(trainer, problem, u_ref, u_net)
    t_validate = time.perf_counter() - t1

    t2 = time.perf_counter()
    records = comm.bcast(read_metrics(run_dir / METRICS) if comm.rank == 0 else None, root=0)
    field_files, figures, checks = _outputs(cmp, point_activity, trainer, run_dir, html_scene,
                                            units or {}, records)
    t_figures = time.perf_counter() - t2

    summary = {
        "title": f"{trainer.cfg.problem.type} on {trainer.cfg.mesh.kind}",
        "units": units or {},
        "description": description or _describe(trainer),
        "run_dir": str(run_dir),
        "step": trainer.step,
        "run": _header(trainer, records, comm.size),
        **_headline_numbers(cmp, activity, energy, offnode),
        "mechanics": mechanics,
        "mesh": mesh_stats,
        "config": trainer.cfg.resolved(),
        "timings": {"train_s": records[-1]["wall_s"] if records else None,
                    "setup_s": t_setup, "validate_s": t_validate, "figures_s": t_figures},
        "field_files": field_files,
        "figures": figures,
        "figure_checks": checks,
    }
    summary["complete"] = summary["run"]["complete"]
    summary["command"] = run_command_line(run_dir, summary["run"])
    summary["headline"] = _headline(summary)
    if comm.rank == 0:
        _keep_end_to_end_time(summary, run_dir)
        write_report(summary, figures, run_dir)
    comm.barrier()
    return summary


def _headline_numbers(cmp, activity: dict, energy: dict | None, offnode: dict) -> dict:
    """The summary's errors, conservation, activity and energy entries."""
    e = cmp.numbers["errors"]
    return {
        "displacement_rel_l2": e["l2"]["relative"],
        "h1_rel": e["h1"]["relative"],
        "stress_rel_l2": e.get("stress", {}).get("relative"),
        "energy_rel": e.get("energy", {}).get("relative"),
        "mean_activity": activity["mean"],
        "energy_ratio": energy["ratio"] if energy else None,
        "energy_ratio_compute": energy["compute_only"]["ratio"] if energy else None,
        "errors": e,
        "offnode": offnode,
        "lift_rel_l2": offnode.get("lift_nodal_rel_l2"),
        "conservation": cmp.numbers["conservation"],
        "activity": activity,
        "energy": energy,
    }


def _offnode(disc, net, u_ref, cmp) -> dict:
    """Errors vs FEM at quadrature points inside every cell (network, interpolant of its
    nodal values, lift alone) and the nodal lift-alone error; adds the off-node error map
    (a per-cell field) to the comparison's fields. Collective."""
    from coupling.pointwise import OffNodeProbe  # deferred: loads DOLFINx, torch, SciPy

    # deferred: loads DOLFINx
    from validation.offnode import boundary_cells, error_map, off_node_report, reference_values

    probe = OffNodeProbe(disc)
    pts = probe.pts
    ref = reference_values(u_ref, pts.x, pts.cells)
    values = probe.values(disc, net)
    out = off_node_report(values, ref, pts.weights, pts.cells, boundary_cells(disc.problem.V),
                          disc.comm)
    lift = disc.off_node_measures(net) if disc.boundary.lift is not None else {}
    out["lift_nodal_rel_l2"] = lift.get("lift_rel_l2")
    out["nodal_rel_l2"] = cmp.numbers["errors"]["l2"]["relative"]
    cmp.fields["offnode_error"] = error_map(disc.problem.V.mesh, values["network"], ref,
                                            pts.weights, pts.cells)
    return out


def _header(trainer, records: list[dict], ranks: int) -> dict:
    """Training settings, steps done / planned, ranks, date, versions, commit."""

    cfg = trainer.cfg
    net = cfg.network
    t = cfg.training
    settings = {"network": f"{net.neuron} {net.hidden}", "neuron": net.neuron,
                **{k: getattr(net, k) for k in ("activation", "num_steps", "threshold",
                                                "surrogate", "fourier_features")},
                "residual": cfg.residual.kind, "degree": f"P{cfg.problem.degree}",
                "boundary": cfg.boundary.mode,
                "lr": t.lr, "schedule": t.schedule, "dtype": t.dtype, "seed": t.seed,
                "optimizer": t.optimizer if isinstance(t.optimizer, str) else
                t.optimizer.model_dump(), **trainer.scaling()}
    train_ranks = next((r["ranks"] for r in reversed(records) if "ranks" in r), ranks)
    return run_header(settings, trainer.step, t.steps, train_ranks, ranks)


def _mechanics(trainer, problem, u_ref, u_net) -> dict | None:
    """Apparent moduli of FEM and network beside the Hashin–Shtrikman bounds (elasticity)."""
    materials = getattr(trainer.cfg.problem, "materials", None)
    if not (hasattr(problem, "lmbda") and hasattr(problem, "mu") and materials):
        return None
    from validation.mechanics import moduli_report  # deferred: loads DOLFINx, Gmsh

    mats = {n: (m.E, m.nu) if hasattr(m, "E") else m for n, m in materials.items()}
    return moduli_report(u_ref, u_net, problem.lmbda, problem.mu, trainer.dmesh, mats)


def _keep_end_to_end_time(summary: dict, run_dir: Path) -> None:
    """A report rerun on a demo's folder keeps the demo's end-to-end wall time of the same
    training (the report cannot measure it, and must not lose it)."""
    try:
        old = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return
    if isinstance(old, dict) and old.get("step") == summary["step"] and "wall_s" in old:
        summary["wall_s"] = old["wall_s"]
        summary["timings"]["total_s"] = old.get("timings", {}).get("total_s", old["wall_s"])


def _describe(trainer) -> str:
    cfg = trainer.cfg
    net = cfg.network
    return (f"A {net.neuron.upper()} network {net.hidden} trained "
            f"{trainer.step} steps on the {cfg.residual.kind} residual of a "
            f"{cfg.problem.type} problem (degree {cfg.problem.degree}) on the "
            f"'{cfg.mesh.kind}' mesh, compared with the DOLFINx reference solution.")


def _headline(s: dict) -> str:
    parts = [f"displacement/field error {s['displacement_rel_l2']:.2%}"]
    if s.get("stress_rel_l2") is not None:
        parts.append(f"stress error {s['stress_rel_l2']:.2%}")
    parts.append(f"activity {s['mean_activity']:.1%}")
    if s.get("energy_ratio") is not None:
        co = s.get("energy_ratio_compute")
        parts.append(f"energy {s['energy_ratio']:.3g}x ANN"
                     + (f" (compute-only {co:.3g}x)" if co is not None else ""))
    return flagged(", ".join(parts), s)


def _outputs(cmp, activity, trainer, run_dir: Path, html_scene: bool, units: dict,
             records: list[dict]) -> tuple[list[str], dict, dict]:
    """fields.xdmf (collective) and, from one gathered grid, fields.vtu and every figure
    (rank 0). Returns (field files, {figure: caption}, {figure: colour-bar checks})."""
    from validation.figures import curves, gather_grid  # deferred: loads DOLFINx
    from validation.report_figures import network_figures  # deferred: loads DOLFINx

    f = dict(cmp.fields)
    if activity is not None:
        f["activity"] = activity
    elastic = "von_mises_fem" in f
    dmesh = trainer.dmesh
    export.write_xdmf(f, run_dir / "fields.xdmf", elastic, dmesh.cell_tags)
    cell = {k: w for k, w in f.items() if k.startswith(("von_mises", "imbalance"))
            or w.function_space.ufl_element().embedded_superdegree == 0}  # per-cell values
    point = {k: w for k, w in f.items() if k not in cell}
    grid = gather_grid(dmesh.mesh, point, cell, dmesh.cell_tags)
    files = ["fields.vtu", "fields.xdmf"]
    if trainer.comm.rank != 0:
        return files, {}, {}
    export.write_vtu(grid, run_dir / "fields.vtu", elastic)
    figures, checks = network_figures(grid, dict(dmesh.cell_names), dmesh.tdim, run_dir,
                                      units, html_scene)
    if records:
        curves(records, run_dir / "curves.png")
        figures["curves.png"] = ("training loss, error against FEM and spiking activity per "
                                 "step (layers named as in the tables)")
    return files, figures, checks
