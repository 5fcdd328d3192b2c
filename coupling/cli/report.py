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

from fem.errors import FemError
from meshes.errors import MeshError
from spiking import SpikingConfigError

from ..checkpoint import CheckpointError
from ..errors import TrainingError

USER_ERRORS = (FemError, MeshError, SpikingConfigError, CheckpointError, TrainingError)

COMMAND_FILE = "command.txt"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""
    p = sub.add_parser("report", help="validate a trained run against FEM and write its report",
                       description="Errors and conservation checks of the trained network "
                       "against the FEM reference, figures, report.html/report.md/summary.json "
                       "and XDMF fields, written into RUN_DIR.")
    p.add_argument("run_dir", help="run directory written by `neurofem train`")
    p.add_argument("--html-scene", action="store_true",
                   help="also export the 3D comparison as interactive HTML (needs trame)")
    p.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    """Validate RUN_DIR against its FEM reference and write its report (collective)."""
    from meshes.fenics import MPI

    from ..parallel import collective_errors, set_threads_per_rank

    comm = MPI.COMM_WORLD
    with collective_errors(comm, user_errors=USER_ERRORS):
        set_threads_per_rank(comm)
        run_dir = Path(args.run_dir)
        if run_model(run_dir) == "clif":
            from .report_clif import build_clif_report

            summary = build_clif_report(run_dir, comm, html_scene=args.html_scene)
        else:
            summary = build_report(run_dir, comm, html_scene=args.html_scene)
    if comm.rank == 0:
        print(f"neurofem: {summary['headline']} -> {Path(args.run_dir) / 'report.html'}",
              file=sys.stderr, flush=True)
    return 0


def run_model(run_dir: Path) -> str:
    """The `model` of the run in run_dir ("network" when it names none or has no config)."""
    from fem.config import load_toml

    from ..trainer import CONFIG

    path = run_dir / CONFIG
    if not path.exists():
        return "network"  # build_report says that this is no run directory
    doc = load_toml(path)
    return str(doc.get("model", "network")) if isinstance(doc, dict) else "network"


def _records(run_dir: Path) -> list[dict]:
    from ..callbacks import METRICS, read_metrics

    return read_metrics(run_dir / METRICS)


def _activity(trainer, monitor) -> dict:
    """Global spiking activity per layer (counts summed over ranks)."""
    from ..measure import global_activity

    activity = global_activity(monitor, trainer.comm)
    return {"mean": activity["mean"], "layers": activity["layers"]}


def _units(problem_type: str) -> dict[str, str]:
    if problem_type in ("elasticity", "homogenisation"):
        return {"u": "displacement", "stress": "stress"}
    return {"u": "u", "stress": ""}


def build_report(run_dir: Path, comm, html_scene: bool = False,
                 description: str | None = None, units: dict | None = None) -> dict:
    """Evaluate the run in run_dir and write its report (collective); returns the summary."""
    import torch

    import spiking
    from validation import figures as fig
    from validation.evaluate import compare, mesh_statistics
    from validation.fields import network_function, nodal_function, on_space
    from validation.report import write_report

    t0 = time.perf_counter()
    from ..trainer import load_trained

    trainer = load_trained(run_dir, comm)
    t_setup = time.perf_counter() - t0
    disc, net = trainer.disc, trainer.net
    problem = disc.problem
    V = problem.V
    t1 = time.perf_counter()
    monitor = spiking.ActivityMonitor(net)
    with torch.no_grad(), monitor:
        coeffs = disc.field(net)
    u_net = network_function(coeffs, V, "u_network")
    u_ref = on_space(trainer.ref.u, V, "u_fem")
    activity = _activity(trainer, monitor)
    point_activity = None
    if monitor.records:
        point_activity = nodal_function(monitor.per_point().numpy(), V.mesh, "activity")
    energy = None
    if getattr(net, "neuron", "ann") in ("vsn", "lif"):
        energy = spiking.energy_report(net, monitor).to_dict()
    cmp = compare(problem, u_net, reference=u_ref)
    mesh_stats = mesh_statistics(trainer.dmesh)
    t_validate = time.perf_counter() - t1

    t2 = time.perf_counter()
    fields_path = _write_fields(cmp.fields, point_activity, run_dir)
    figures = _figures(fig, cmp, point_activity, trainer, run_dir, html_scene, units or {})
    records = _records(run_dir) if comm.rank == 0 else []
    if comm.rank == 0 and records:
        fig.curves(records, run_dir / "curves.png")
        figures["curves.png"] = "training loss, error against FEM and spiking activity per step"
    t_figures = time.perf_counter() - t2

    e = cmp.numbers["errors"]
    train_wall = records[-1]["wall_s"] if records else None
    summary = {
        "title": f"{trainer.cfg.problem.type} on {trainer.cfg.mesh.kind}",
        "units": units or {},
        "description": description or _describe(trainer),
        "run_dir": str(run_dir),
        "step": trainer.step,
        "displacement_rel_l2": e["l2"]["relative"],
        "h1_rel": e["h1"]["relative"],
        "stress_rel_l2": e.get("stress", {}).get("relative"),
        "energy_rel": e.get("energy", {}).get("relative"),
        "mean_activity": activity["mean"],
        "energy_ratio": energy["ratio"] if energy else None,
        "errors": e,
        "conservation": cmp.numbers["conservation"],
        "activity": activity,
        "energy": energy,
        "mesh": mesh_stats,
        "config": trainer.cfg.resolved(),
        "timings": {"train_s": train_wall, "setup_s": t_setup, "validate_s": t_validate,
                    "figures_s": t_figures},
        "command": _command(run_dir, comm.size),
        "field_files": [fields_path.name],
        "figures": figures,
    }
    summary["headline"] = _headline(summary)
    if comm.rank == 0:
        _keep_end_to_end_time(summary, run_dir)
        write_report(summary, figures, run_dir)
    comm.barrier()
    return summary


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
    return (f"A {net.get('neuron', 'vsn').upper()} network {net.get('hidden', '')} trained "
            f"{trainer.step} steps on the {cfg.residual.kind} residual of a "
            f"{cfg.problem.type} problem (degree {cfg.problem.degree}) on the "
            f"'{cfg.mesh.kind}' mesh, compared with the DOLFINx reference solution.")


def _headline(s: dict) -> str:
    parts = [f"displacement/field error {s['displacement_rel_l2']:.2%}"]
    if s.get("stress_rel_l2") is not None:
        parts.append(f"stress error {s['stress_rel_l2']:.2%}")
    parts.append(f"activity {s['mean_activity']:.1%}")
    if s.get("energy_ratio") is not None:
        parts.append(f"energy {s['energy_ratio']:.3g}x ANN")
    return ", ".join(parts)


def _command(run_dir: Path, ranks: int) -> str:
    saved = run_dir / COMMAND_FILE
    if saved.exists():
        return saved.read_text().strip()
    launch = f"mpiexec -n {ranks} " if ranks > 1 else ""
    return (f"{launch}neurofem train {run_dir}/config.toml --out {run_dir} --force && "
            f"{launch}neurofem report {run_dir}")


def _write_fields(fields: dict, activity, run_dir: Path) -> Path:
    """FEM, network and error fields (+ von Mises, imbalance, activity) as one XDMF file."""
    from meshes.fenics import dolfinx

    path = run_dir / "fields.xdmf"
    mesh = fields["u_fem"].function_space.mesh
    with dolfinx.io.XDMFFile(mesh.comm, str(path), "w") as f:
        f.write_mesh(mesh)
        for name, w in list(fields.items()) + ([("activity", activity)] if activity else []):
            if w.function_space.ufl_element().embedded_superdegree > 1:
                continue  # XDMF stores P1 / DG0 only; the reference cache holds the rest
            w.name = (f"{name.strip('|')}_magnitude" if name.startswith("|") else name)
            f.write_function(w)
    return path


def _figures(fig, cmp, activity, trainer, run_dir: Path, html_scene: bool, units: dict) -> dict:
    """Render every figure (collective gather, rank 0 renders); returns {file: caption}."""
    f = cmp.fields
    elastic = "von_mises_fem" in f
    point = {k: f[k] for k in ("u_fem", "u_network", "error")}
    for k in ("|u_fem|", "|u_network|", "|error|"):
        if k in f:
            point[k] = f[k]
    if activity is not None:
        point["activity"] = activity
    cell = {k: f[k] for k in ("von_mises_fem", "von_mises_network", "imbalance_fem",
                              "imbalance_network") if k in f}
    dmesh = trainer.dmesh
    grid = fig.gather_grid(dmesh.mesh, point, cell, dmesh.cell_tags)
    if trainer.comm.rank != 0:
        return {}
    lu = units.get("length", "")
    du = units.get("displacement", "")
    su = units.get("stress", "")
    out = {}
    br = lambda u: f" [{u}]" if u else ""  # noqa: E731
    key = "|u_fem|" if elastic else "u_fem"
    net_key = "|u_network|" if elastic else "u_network"
    err_key = "|error|"
    lo = float(min(grid.point_data[key].min(), grid.point_data[net_key].min()))
    hi = float(max(grid.point_data[key].max(), grid.point_data[net_key].max()))
    qty = "displacement magnitude" if elastic else "u"
    fig.panels(grid, [
        {"field": key, "label": f"{qty} FEM{br(du)}", "clim": (lo, hi), "title": "FEM"},
        {"field": net_key, "label": f"{qty} network{br(du)}", "clim": (lo, hi),
         "title": "network"},
        {"field": err_key, "label": f"error magnitude{br(du)}", "cmap": "magma",
         "title": "|error|"}],
        run_dir / "comparison.png", html=str(run_dir / "comparison.html") if html_scene else None)
    out["comparison.png"] = "FEM | network | |error| (3D: corner clipped to show the inside)"
    if dmesh.tdim == 3 and "phase" in grid.cell_data and len(dmesh.cell_names) > 1:
        fig.phases_figure(grid, dmesh.cell_names, run_dir / "phases.png")
        out["phases.png"] = "phases of the mesh (matrix clipped so the inclusions show)"
    if elastic:
        factor = fig.warp_factor(grid, "u_fem")
        fig.panels(grid, [
            {"field": "|u_fem|", "label": f"displacement magnitude FEM{br(du)}",
             "warp": ("u_fem", factor),
             "title": f"FEM, deformed x{factor:g}"},
            {"field": "|u_network|", "label": f"displacement magnitude network{br(du)}",
             "warp": ("u_network", factor), "title": f"network, deformed x{factor:g}"}],
            run_dir / "deformed.png", window=(1100, 560))
        out["deformed.png"] = (f"displacement magnitude on the deformed shape (displacements "
                               f"scaled by {factor:g})")
        vlo = 0.0
        vhi = float(max(grid.cell_data["von_mises_fem"].max(),
                        grid.cell_data["von_mises_network"].max()))
        fig.panels(grid, [
            {"field": "von_mises_fem", "label": f"von Mises FEM{br(su)}", "cell": True,
             "clim": (vlo, vhi), "cmap": "inferno", "title": "von Mises stress, FEM"},
            {"field": "von_mises_network", "label": f"von Mises network{br(su)}", "cell": True,
             "clim": (vlo, vhi), "cmap": "inferno", "title": "von Mises stress, network"}],
            run_dir / "von_mises.png", window=(1100, 560))
        out["von_mises.png"] = "von Mises stress per cell, FEM | network"
    if activity is not None:
        view = {"field": "activity", "label": "spiking activity (fraction)",
                "cmap": "cividis", "clim": (0.0, 1.0), "title": "per-point spiking activity"}
        fig.panels(grid, [view], run_dir / "activity.png", window=(620, 560))
        out["activity.png"] = ("spiking activity at each mesh node (fraction of "
                               "neuron-steps that spiked, all layers)")
    if "imbalance_network" in grid.cell_data:
        unit = f"{su or 'stress'}/{lu or 'length'}" if elastic else "units of f"
        label = "force imbalance density" if elastic else "flux imbalance density"
        fig.panels(grid, [
            {"field": "imbalance_network", "label": f"{label}, network [{unit}]",
             "cell": True, "cmap": "plasma", "title": "conservation error, network"},
            {"field": "imbalance_fem", "label": f"{label}, FEM [{unit}]",
             "cell": True, "cmap": "plasma", "title": "conservation error, FEM"}],
            run_dir / "imbalance.png", window=(1100, 560))
        out["imbalance.png"] = ("local conservation error per cell: Galerkin residual of the "
                                "field spread over its patches, per unit volume")
    return out
