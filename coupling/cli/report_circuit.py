"""Outputs of a `neurofem circuit` run: config, summary, report.md and its figures.

The convergence figure plots the relative error of the averaged readout (solid) and the
raw readout (thin) against the step for every start, with the FEM's own error against
the exact solution where one exists; the spike-rate picture colours each mesh node by
its population's spikes per step (cold start, summed over a node's components).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tomli_w

from fem.cache import atomic_write


def _convergence_figure(traces: dict, fem_error: float | None, path: Path) -> str:
    """Relative error vs step of each start (log scale)."""
    import matplotlib  # deferred: loads matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: loads matplotlib

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for (name, tr), color in zip(traces.items(), ("tab:blue", "tab:orange"), strict=False):
        steps = [r["step"] for r in tr.records]
        ax.semilogy(steps, [max(r["rel_fem"], 1e-16) for r in tr.records], color=color,
                    label=f"{name}: averaged readout vs FEM")
        ax.semilogy(steps, [max(r["rel_fem_raw"], 1e-16) for r in tr.records], color=color,
                    lw=0.6, alpha=0.6, label=f"{name}: raw readout vs FEM")
        if "rel_exact" in tr.records[0]:
            ax.semilogy(steps, [r["rel_exact"] for r in tr.records], color=color, ls=":",
                        label=f"{name}: averaged readout vs exact")
    if fem_error is not None:
        ax.axhline(fem_error, color="k", ls="--", lw=0.8, label="P1 FEM vs exact")
    ax.set_xlabel("circuit step")
    ax.set_ylabel("relative L2 error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def _rate_picture(s: dict, built, rates: np.ndarray, path: Path, comm) -> str | None:
    """Spike rate per node on the mesh (PyVista, rank 0 writes; collective)."""
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx
    from validation.figures import gather_grid, panels  # deferred: loads DOLFINx

    V = s["problem"].V
    f = dolfinx.fem.Function(V, name="spike_rate")
    f.x.array[:] = 0.0
    f.x.array[: built.system.layout.n_owned][built.system.free] = rates
    f.x.scatter_forward()
    grid = gather_grid(s["dmesh"].mesh, {"spike_rate": f})
    if comm.rank != 0:
        return None
    panels(grid, [{"field": "spike_rate", "label": "spikes per step", "cmap": "magma"}],
           path, title="spike rate per node (cold start)", check=False)
    return path.name


def _markdown(result: dict) -> str:
    """report.md: the system, each start's targets, counts and energy."""
    si = result["system"]
    p = si["params"]
    lines = ["# Spiking FEM circuit", "",
             f"{si['dofs']} free dofs, {si['neurons_total']} neurons ({p['neurons']} per dof), "
             f"nnz {si['nnz']}; mode {p['mode']}, dt {p['dt']:g}, gamma {p['gamma']:.3g}, "
             f"k_p {p['k_p']:.4g}, k_i {p['k_i']:.4g}, leak {p['leak']:.4g}, averaged readout "
             f"over {p['average']:g} steps.",
             f"Spectrum of D^-1 K: L = {si['L']:.4g} (Gershgorin), mu = {si['mu']:.4g} "
             f"(Lanczos, {si['setup_matvecs']} products), condition {si['condition']:.4g}; "
             f"stable dt <= {si['stable_dt']:.4g}; raw-readout bound ||x - x*||_D <= "
             f"{si['precision_bound_D']:.3g}.", "",
             "Errors are relative lumped-mass weighted L2 norms over the free dofs; a target is "
             "met by the averaged readout (the raw readout's reach is in summary.json).", "",
             "| start | target | step | spikes | synaptic events | energy (pJ) |",
             "|---|---|---|---|---|---|"]
    for name in ("cold", "warm"):
        r = result.get(name)
        if r is None:
            continue
        for key, v in r["reached"].items():
            if v is None:
                lines.append(f"| {name} | {key} | not reached | – | – | – |")
                continue
            pj = r["energy_to"][key]["total"]["pj"]
            lines.append(f"| {name} | {key} | {v['step']} | {v['spikes']} | {v['synaptic']} | "
                         f"{pj:.4g} |")
    for name in ("cold", "warm"):
        r = result.get(name)
        if r:
            fin = r["final"]
            lines.append(f"\n{name}: final step {fin['step']}, rel. error vs FEM "
                         f"{fin['rel_fem']:.3g} (raw {fin['rel_fem_raw']:.3g})"
                         + (f", vs exact {fin['rel_exact']:.3g}" if "rel_exact" in fin else "")
                         + f"; {r['spikes_per_dof_step']:.3g} spikes per dof per step, "
                         f"{r['s_per_step'] * 1e3:.3g} ms per step.")
    if result.get("network"):
        n = result["network"]
        lines.append(f"\nNetwork start: rel. error vs FEM {n.get('rel_fem', float('nan')):.3g}, "
                     f"inference {n['wall_s']:.3g} s over {n['points']} points"
                     + (f", {n['pj']:.4g} pJ ({n['table']})" if "pj" in n else "") + ".")
    lines += ["", "![convergence](convergence.png)", "", "![spike rates](spike_rates.png)"]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, result: dict, traces: dict, built, s: dict, comm) -> dict:
    """Write config.toml, summary.json, report.md and the figures (collective)."""

    fem_error = result.get("fem_error")
    rate = _rate_picture(s, built, traces["cold"].rates, out / "spike_rates.png", comm)
    if comm.rank == 0:
        result["figures"] = [_convergence_figure(traces, fem_error, out / "convergence.png"),
                             rate]
        atomic_write(out / "config.toml", tomli_w.dumps(result["config"]).encode())
        atomic_write(out / "summary.json", json.dumps(result, indent=1, default=str).encode())
        atomic_write(out / "report.md", _markdown(result).encode())
    return result
