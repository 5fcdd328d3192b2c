"""The figures of a network-vs-FEM report, drawn from one gathered grid (rank 0).

:func:`network_figures` renders: FEM | network | error (shared colour range for the first
two), phases (matrix clipped), the deformed shape and von Mises stress (elasticity), the
stress-error map |σ_network − σ_FEM| on the clipped body and on a plane cut through the
inclusions with their outlines, the per-node spiking activity on its own data range, and
the local conservation error of FEM and network on one shared log scale, FEM first. Each
:func:`validation.figures.panels` figure comes back with its colour ranges and the
rendered check that no colour-bar title touches its tick labels (``checks``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import figures as fig


def _br(unit: str) -> str:
    return f" [{unit}]" if unit else ""


def network_figures(grid, cell_names: dict[str, int], tdim: int, run_dir: str | Path,
                    units: dict | None = None, html_scene: bool = False
                    ) -> tuple[dict[str, str], dict[str, list]]:
    """Render every figure of a network report into run_dir (rank 0). Returns
    ({file: caption}, {file: colour-bar checks of that figure})."""
    run_dir = Path(run_dir)
    units = units or {}
    elastic = "von_mises_fem" in grid.cell_data
    out: dict[str, str] = {}
    checks: dict[str, list] = {}

    def panels(name: str, views: list[dict], caption: str, **kw) -> None:
        info = fig.panels(grid, views, run_dir / name, **kw)
        out[name] = caption
        checks[name] = info["colorbars"]

    du = units.get("displacement", "")
    key, net_key = ("|u_fem|", "|u_network|") if elastic else ("u_fem", "u_network")
    lo, hi = fig.data_range(np.concatenate([grid.point_data[key], grid.point_data[net_key]]))
    qty = "displacement magnitude" if elastic else "u"
    panels("comparison.png", [
        {"field": key, "label": f"{qty} FEM{_br(du)}", "clim": (lo, hi), "title": "FEM"},
        {"field": net_key, "label": f"{qty} network{_br(du)}", "clim": (lo, hi),
         "title": "network"},
        {"field": "|error|", "label": f"error magnitude{_br(du)}", "cmap": "magma",
         "title": "|error|"}],
        "FEM | network | |error| (3D: corner clipped to show the inside)",
        html=str(run_dir / "comparison.html") if html_scene else None)
    if tdim == 3 and "phase" in grid.cell_data and len(cell_names) > 1:
        fig.phases_figure(grid, cell_names, run_dir / "phases.png")
        out["phases.png"] = "phases of the mesh (matrix clipped so the inclusions show)"
    if elastic:
        _elastic_figures(grid, cell_names, units, panels)
    if "activity" in grid.point_data:
        panels("activity.png", [
            {"field": "activity", "label": "spiking activity (fraction of neuron-steps)",
             "cmap": "cividis", "title": "per-point spiking activity"}],
            "spiking activity at each mesh node (fraction of neuron-steps that spiked, all "
            "layers), colour range = the data's own range", window=(620, 600))
    if "imbalance_network" in grid.cell_data:
        _imbalance_figure(grid, elastic, units, panels)
    if "offnode_error" in grid.cell_data:
        lo, hi = fig.data_range(grid.cell_data["offnode_error"])
        panels("offnode.png", [{"field": "offnode_error", "label": "off-node RMS error",
                                "cell": True, "cmap": "magma", "clim": (lo, hi)}],
               "off-node error map: RMS deviation of the raw network from FEM at quadrature "
               "points inside each cell (the nodal error map cannot show it)", window=(620, 600))
    return out, checks


def _elastic_figures(grid, cell_names: dict[str, int], units: dict, panels) -> None:
    du, su = units.get("displacement", ""), units.get("stress", "")
    factor = fig.warp_factor(grid, "u_fem")
    lo, hi = fig.data_range(np.concatenate([grid.point_data["|u_fem|"],
                                            grid.point_data["|u_network|"]]))
    panels("deformed.png", [
        {"field": "|u_fem|", "label": f"displacement magnitude FEM{_br(du)}", "clim": (lo, hi),
         "warp": ("u_fem", factor), "title": f"FEM, deformed x{factor:g}"},
        {"field": "|u_network|", "label": f"displacement magnitude network{_br(du)}",
         "clim": (lo, hi), "warp": ("u_network", factor),
         "title": f"network, deformed x{factor:g}"}],
        f"displacement magnitude on the deformed shape (displacements scaled by {factor:g})",
        window=(1100, 600))
    vhi = fig.data_range(np.concatenate([grid.cell_data["von_mises_fem"],
                                         grid.cell_data["von_mises_network"]]))[1]
    panels("von_mises.png", [
        {"field": "von_mises_fem", "label": f"von Mises FEM{_br(su)}", "cell": True,
         "clim": (0.0, vhi), "cmap": "inferno", "title": "von Mises stress, FEM"},
        {"field": "von_mises_network", "label": f"von Mises network{_br(su)}", "cell": True,
         "clim": (0.0, vhi), "cmap": "inferno", "title": "von Mises stress, network"}],
        "von Mises stress per cell, FEM | network (one colour range)", window=(1100, 600))
    if "stress_error" not in grid.cell_data:
        return
    matrix = min(cell_names.values()) if cell_names else None
    inclusions = [t for t in cell_names.values() if t != matrix]
    axis = 2
    origin = fig.cut_origin(grid, axis, inclusions[0] if inclusions else None)
    lines = fig.outlines(grid, inclusions, axis, origin) if inclusions else []
    elo, ehi = fig.data_range(grid.cell_data["stress_error"])
    label = f"stress error norm, network - FEM{_br(su)}"
    panels("stress_error.png", [
        {"field": "stress_error", "label": label, "cell": True, "cmap": "magma",
         "clim": (elo, ehi), "title": "stress error, corner clipped"},
        {"field": "stress_error", "label": label + " ", "cell": True, "cmap": "magma",
         "clim": (elo, ehi), "cut": (axis, origin), "outlines": lines, "outline_color": "cyan",
         "title": f"cut z = {origin[axis]:.3g}, inclusions outlined"}],
        "stress-error map: Frobenius norm of σ(network) − σ(FEM) per cell, on the clipped "
        "body and on a plane cut through the inclusions (outlines in cyan), one colour range",
        window=(1100, 600))


def _imbalance_figure(grid, elastic: bool, units: dict, panels) -> None:
    su, lu = units.get("stress", ""), units.get("length", "")
    unit = f"{su or 'stress'}/{lu or 'length'}" if elastic else "units of f"
    label = "force imbalance density" if elastic else "flux imbalance density"
    clim = fig.data_range(np.concatenate([grid.cell_data["imbalance_fem"],
                                          grid.cell_data["imbalance_network"]]), log=True)
    panels("imbalance.png", [
        {"field": "imbalance_fem", "label": f"{label}, FEM [{unit}]", "cell": True,
         "cmap": "plasma", "clim": clim, "log": True, "title": "conservation error, FEM"},
        {"field": "imbalance_network", "label": f"{label}, network [{unit}]", "cell": True,
         "cmap": "plasma", "clim": clim, "log": True, "title": "conservation error, network"}],
        "local conservation error per cell (Galerkin residual of the field spread over its "
        "patches, per unit volume), FEM | network on one log scale", window=(1100, 600))
