"""`neurofem report RUN_DIR` for a PISNN run (``model = "clif"``, conservative C-LIF solver).

The run is rebuilt from its config and latest checkpoint
(:func:`coupling.runs.clif.load_trained_clif`) and rolled out again with integer quanta from
t = 0 over the whole horizon, so the report validates the checkpoint itself rather than
repeating what training recorded (the rollout is deterministic: it equals the run's
``rollout.json`` for the same checkpoint). The report holds the rel. L2 error against the
reference (exact solution or FEM cell averages; final and max over the rollout), the mass
drift in quanta (exactly 0 by construction), boundary/source/total quanta, spikes per step
and activity of the interface neurons, the energy per step of the spiking update against a
float finite-volume update, the training settings, and figures: rollout curves (error,
total quanta, spikes), u against the reference at the cell centroids, and the training
curves from ``metrics.jsonl``, and the network beside the float finite-volume update of the
same case (for a run with ``clif.flux_from``: the transferred network; see
:mod:`coupling.runs.clif_transfer`). Written through :func:`validation.report.write_report`.

Collective: every rank rebuilds the problem; rank 0 rolls out and broadcasts; on DOLFINx
meshes the fields are gathered for a PyVista view and written as XDMF (``fields.xdmf``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from coupling.training.rundir import CONFIG
from fem.config import load_toml
from fem.errors import ConfigError
from validation.export import write_vtu
from validation.provenance import flagged, run_command_line, run_header
from validation.report import write_report


def build_clif_report(run_dir: Path, comm, html_scene: bool = False) -> dict:
    """Roll the C-LIF run in run_dir out again and write its report (collective)."""
    from coupling.runs.clif import load_trained_clif  # deferred: loads DOLFINx, torch, Gmsh, SciPy
    from coupling.training.callbacks import METRICS, read_metrics  # deferred: loads torch

    t0 = time.perf_counter()
    _net, disc = load_trained_clif(run_dir, comm)
    t_setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = _rollout(disc, comm)
    t_rollout = time.perf_counter() - t1
    t2 = time.perf_counter()
    records = comm.bcast(read_metrics(run_dir / METRICS) if comm.rank == 0 else None, root=0)
    figures, field_files = _outputs(disc, out, records, run_dir, comm, html_scene)
    t_figures = time.perf_counter() - t2
    numbers, pb = out["numbers"], disc.pb
    summary = {
        "model": "clif",
        "title": f"PISNN (C-LIF) {pb.cfg.problem.type} on {_mesh_kind(pb)}",
        "units": {},
        "description": _describe(disc, numbers),
        "run_dir": str(run_dir),
        "step": disc.step,
        "run": run_header(_settings(disc), disc.step, disc.cfg.training.steps,
                          next((r["ranks"] for r in reversed(records) if "ranks" in r),
                               comm.size), comm.size),
        "reference": _reference(pb),
        "rel_l2": numbers["rel_l2"],
        "rel_l2_max": numbers["rel_l2_max"],
        "mass_drift": numbers["mass_drift"],
        "mass_drift_max": numbers["mass_drift_max"],
        "mean_activity": numbers["activity"]["mean"],
        "energy_ratio": numbers["energy"]["ratio"],
        "energy_ratio_compute": numbers["energy"].get("ratio_compute"),
        "rollout": numbers,
        "tables": [comparison_table(disc, numbers)],
        "geometry": _geometry(pb, comm.size),
        "training": _training(disc, records),
        "config": disc.cfg.resolved(),
        "timings": {"train_s": records[-1].get("wall_s") if records else None,
                    "setup_s": t_setup, "rollout_s": t_rollout, "figures_s": t_figures},
        "field_files": field_files,
        "figures": figures,
    }
    summary["complete"] = summary["run"]["complete"]
    summary["command"] = run_command_line(run_dir, summary["run"])
    summary["headline"] = flagged(_headline(summary), summary)
    if comm.rank == 0:
        write_report(summary, figures, run_dir)
    comm.barrier()
    return summary


def _settings(disc) -> dict:
    """The C-LIF training settings of the report's header."""
    c, t = disc.cfg.clif, disc.cfg.training
    return {"network": f"C-LIF flux network {c.hidden}", "neuron": "clif",
            "residual": f"rollout windows of {c.window} steps", "lr": t.lr,
            **{k: getattr(t, k) for k in ("schedule", "dtype", "seed") if hasattr(t, k)}}


def _rollout(disc, comm) -> dict:
    """The integer rollout from t = 0 (rank 0, in the thread setting of training), broadcast:
    its numbers, curves in the rollout.json format, and the final cell values."""
    from coupling.runs.clif import torch_threads  # deferred: loads DOLFINx, torch, Gmsh, SciPy

    out = None
    if comm.rank == 0:
        with torch_threads(len(disc.pb.geo.pairs)):
            numbers = disc.evaluate(keep=True)
        f, pb = disc.final, disc.pb
        state = f["state"]
        numbers["initial_quanta"] = int(state.initial_total)
        curves = {**f["curve"], "spikes_quanta_moved": f["moved"].tolist(),
                  "spikes_neurons_fired": f["fired"].tolist()}
        ref = pb.reference(pb.snap(state.t) if not pb.steady else 0.0)
        out = {"numbers": numbers, "curves": curves, "t": float(state.t),
               "u": disc.solver.values(state.quanta).numpy(), "reference": np.asarray(ref)}
    return comm.bcast(out, root=0)


def _outputs(disc, out: dict, records: list[dict], run_dir: Path, comm,
             html_scene: bool) -> tuple[dict[str, str], list[str]]:
    """Figures ({file: caption}, rank 0) and field files; collective on DOLFINx meshes."""
    from validation import figures as fig  # deferred: loads DOLFINx

    pb = disc.pb
    ref = _reference(pb)
    figures: dict[str, str] = {}
    files = ["clif_fields.npz"] if (run_dir / "clif_fields.npz").exists() else []
    if pb.dmesh is not None and pb.geo.gdim > 1:
        figures.update(_mesh_fields(pb, out, run_dir, comm, html_scene))
        files += ["fields.vtu", "fields.xdmf"]
    if comm.rank != 0:
        return {}, files
    fig.rollout_curves(out["curves"], run_dir / "rollout.png", reference=ref)
    figures["rollout.png"] = (f"integer rollout from t = 0: rel. L2 error vs the {ref}, total "
                              "quanta and mass drift over time, spikes per step")
    if "fields.png" not in figures:
        fig.cell_values(pb.geo.centroids, out["u"], out["reference"], run_dir / "fields.png",
                        labels=("C-LIF", ref))
        figures["fields.png"] = (f"u of the C-LIF solver against the {ref} at the cell "
                                 f"centroids, t = {out['t']:.4g}")
    if records:
        fig.curves(records, run_dir / "curves.png", reference=ref)
        figures["curves.png"] = ("training: loss per step; rel. L2 error and interface-neuron "
                                 "activity of the integer rollouts measured during training")
    return figures, files


def _mesh_fields(pb, out: dict, run_dir: Path, comm, html_scene: bool) -> dict[str, str]:
    """u, reference and error as DG0 fields on the DOLFINx mesh: fields.xdmf and a PyVista
    view (collective; rank 0 renders)."""
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx
    from validation import figures as fig  # deferred: loads DOLFINx

    mesh = pb.dmesh.mesh
    tdim = mesh.topology.dim
    n = mesh.topology.index_map(tdim).size_local
    orig = np.asarray(mesh.topology.original_cell_index[:n], dtype=np.int64)
    V = dolfinx.fem.functionspace(mesh, ("DG", 0))
    dofs = V.dofmap.list[:n, 0]
    fields = {}
    for name, vals in (("u_clif", out["u"]), ("u_reference", out["reference"]),
                       ("error", out["u"] - out["reference"])):
        w = dolfinx.fem.Function(V, name=name)
        w.x.array[dofs] = vals[orig]
        w.x.scatter_forward()
        fields[name] = w
    with dolfinx.io.XDMFFile(mesh.comm, str(run_dir / "fields.xdmf"), "w") as f:
        f.write_mesh(mesh)
        for w in fields.values():
            f.write_function(w)
    grid = fig.gather_grid(mesh, None, fields, pb.dmesh.cell_tags)
    if comm.rank != 0:
        return {}

    write_vtu(grid, run_dir / "fields.vtu", elastic=False)
    lo = float(min(out["u"].min(), out["reference"].min()))
    hi = float(max(out["u"].max(), out["reference"].max()))
    emax = float(np.abs(out["u"] - out["reference"]).max()) or 1.0
    ref = _reference(pb)
    fig.panels(grid, [
        {"field": "u_clif", "label": "u C-LIF (cell average)", "cell": True, "clim": (lo, hi),
         "title": "C-LIF"},
        {"field": "u_reference", "label": f"u {ref}", "cell": True, "clim": (lo, hi),
         "title": ref},
        {"field": "error", "label": "error (cell average)", "cell": True, "cmap": "coolwarm",
         "clim": (-emax, emax), "title": "error"}],
        run_dir / "fields.png", html=str(run_dir / "fields.html") if html_scene else None)
    return {"fields.png": f"u of the C-LIF solver | {ref} | error, per cell at t = "
                          f"{out['t']:.4g} (3D: corner clipped to show the inside)"}


def comparison_table(disc, numbers: dict) -> tuple[str, list[str], list[list[str]]]:
    """The network (trained on this case, or transferred from ``clif.flux_from``) beside
    the float finite-volume update on this case: rel. L2 error final and max, drift."""
    c, fv = disc.cfg.clif, numbers.get("float_fv") or {}
    if c.flux_from:
        how = (f"{disc.step} steps on this case from it" if disc.step else "unchanged")
        origin = f"transferred from {c.flux_from} ({how})"
    else:
        origin = f"trained on this case ({disc.step} steps)"

    def pct(v):
        return "n/a" if v is None else f"{v:.3%}"

    rows = [[f"C-LIF flux network, {origin}", pct(numbers["rel_l2"]),
             pct(numbers["rel_l2_max"]), f"{numbers['mass_drift']} / "
             f"{numbers['mass_drift_max']}"]]
    if c.compare_with:
        rows.append(case_trained_row(Path(c.compare_with), disc.cfg.raw, pct))
    rows.append([fv.get("scheme", "float FV"), pct(fv.get("rel_l2")),
                 pct(fv.get("rel_l2_max")), "float: not counted"])
    return (f"The flux network against the float finite-volume update (same case, Δt, "
            f"horizon; vs the {_reference(disc.pb)})",
            ["solver", "rel. L2 (final)", "rel. L2 (max)", "drift in quanta (final / max)"],
            rows)


def case_trained_row(run: Path, raw: dict, pct) -> list[str]:
    """The row of ``clif.compare_with``: that run's final rollout (its rollout.json), if it
    solved this same case ([mesh] and [problem] equal), else why not."""
    label = f"C-LIF flux network trained on this case ({run})"
    try:
        other = load_toml(run / CONFIG)
        summary = json.loads((run / "rollout.json").read_text())["summary"]
    except (ConfigError, OSError, ValueError, KeyError) as exc:
        return [label, "n/a", "n/a", f"n/a: {type(exc).__name__} reading {run}"]
    if any(other.get(k) != raw.get(k) for k in ("mesh", "problem")):
        return [label, "n/a", "n/a", "n/a: that run solved another case"]
    return [f"{label}, {other.get('training', {}).get('steps', '?')} steps",
            pct(summary["rel_l2"]), pct(summary["rel_l2_max"]),
            f"{summary['mass_drift']} / {summary['mass_drift_max']}"]


def _reference(pb) -> str:
    return "exact solution" if pb.dmesh is None else "FEM reference"


def _mesh_kind(pb) -> str:
    if pb.dmesh is None:
        return f"a {' x '.join(str(n) for n in pb.cfg.grid['n'])}-cell grid"
    return f"the '{pb.cfg.mesh.kind}' mesh"


def _geometry(pb, ranks: int) -> dict:
    geo = pb.geo
    return {"mesh": _mesh_kind(pb), "dimension": int(geo.gdim), "cells": int(geo.num_cells),
            "interior facets (interface neurons)": len(geo.pairs),
            "boundary facets": len(geo.boundary_cells),
            "volume": float(np.sum(geo.volumes)), "ranks": ranks}


def _training(disc, records: list[dict]) -> dict:
    last = next((r for r in reversed(records) if r.get("loss") is not None), {})
    return {"loss": last.get("loss"), "clif": disc.cfg.clif.model_dump(),
            "training": disc.cfg.training.model_dump()}


def _describe(disc, numbers: dict) -> str:
    pb, c = disc.pb, disc.cfg.clif
    trained = (f"transferred from the C-LIF run {c.flux_from} (flux_from) and trained"
               if c.flux_from else "trained")
    what = ("relaxed in pseudo-time to the steady state" if pb.steady
            else f"rolled out from t = 0 to t = {pb.t_end:g}")
    return (f"PISNN's conservative spiking solver (C-LIF neurons on the facets moving integer "
            f"quanta of {numbers['quantum']:.3g} between cells; flux network {c.hidden}) "
            f"{trained} {disc.step} steps on rollout windows of {c.window} steps from "
            f"t ≤ {c.train_until:g}, then {what} in {numbers['rollout_steps']} integer steps "
            f"on {_mesh_kind(pb)} and compared with the {_reference(pb)} as cell averages.")


def _headline(s: dict) -> str:
    def pct(v):
        return "n/a" if v is None else f"{v:.2%}"

    ratio = "n/a" if s["energy_ratio"] is None else f"{s['energy_ratio']:.3g}x"
    if s.get("energy_ratio_compute") is not None:
        ratio += f" ({s['energy_ratio_compute']:.3g}x compute-only)"
    return (f"rel. L2 error {pct(s['rel_l2'])} (max {pct(s['rel_l2_max'])}), mass drift "
            f"{s['mass_drift']} quanta, activity {s['mean_activity']:.1%}, energy "
            f"{ratio} float FV")
