"""Off-screen PyVista figures (PNG) of a network-vs-FEM comparison, and matplotlib curves.

Meshes and fields are gathered to rank 0 (:func:`gather_grid`, collective); only rank 0
renders. 3D meshes are clipped by a corner box so the inside (inclusions, stress
concentrations) shows; 2D meshes are viewed from above. Every colour bar names the
quantity and its unit.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from meshes.fenics import dolfinx

WINDOW = (1500, 560)


def _pyvista():
    import pyvista as pv
    import vtk

    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_ERROR)  # no X warnings
    pv.OFF_SCREEN = True
    return pv


def _p1(f: dolfinx.fem.Function, mesh) -> np.ndarray:
    """Nodal values (P1 node order, owned + ghosts) of a Lagrange field, interpolated if needed."""
    V = f.function_space
    bs = V.dofmap.index_map_bs
    if V.ufl_element().embedded_superdegree != 1 or V.ufl_element().family_name not in (
            "P", "Q", "Lagrange"):
        shape = (bs,) if bs > 1 else None
        W = dolfinx.fem.functionspace(mesh, ("Lagrange", 1, shape) if shape else ("Lagrange", 1))
        g = dolfinx.fem.Function(W)
        g.interpolate(f)
        f = g
    return f.x.array.reshape(-1, bs) if bs > 1 else f.x.array.copy()


def gather_grid(mesh, point_fields: dict[str, dolfinx.fem.Function] | None = None,
                cell_fields: dict[str, dolfinx.fem.Function] | None = None,
                cell_tags=None):
    """A pyvista UnstructuredGrid of the whole mesh on rank 0 (None elsewhere; collective).

    point_fields: Lagrange fields (interpolated to P1 nodes); cell_fields: DG0 fields;
    cell_tags adds the cell data "phase".
    """
    tdim = mesh.topology.dim
    P1 = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
    topo, types, x = dolfinx.plot.vtk_mesh(P1)
    n_cells = mesh.topology.index_map(tdim).size_local
    npc = len(topo) // len(types)
    topo = topo.reshape(-1, npc)[:n_cells]
    types = types[:n_cells]
    points = {k: _p1(f, mesh) for k, f in (point_fields or {}).items()}
    cells = {}
    for k, f in (cell_fields or {}).items():
        bs = f.function_space.dofmap.index_map_bs
        cells[k] = f.x.array.reshape(-1, bs)[:n_cells].squeeze()
    if cell_tags is not None:
        phase = np.zeros(n_cells, dtype=np.int32)
        keep = cell_tags.indices < n_cells
        phase[cell_tags.indices[keep]] = cell_tags.values[keep]
        cells["phase"] = phase
    parts = mesh.comm.gather((topo, types, x, points, cells), root=0)
    if mesh.comm.rank != 0:
        return None
    pv = _pyvista()
    offset, tops, tys, xs = 0, [], [], []
    for t, ty, xx, _, _ in parts:
        tops.append(np.hstack([np.full((len(t), 1), npc - 1), t[:, 1:] + offset]))
        tys.append(ty)
        xs.append(xx)
        offset += len(xx)
    grid = pv.UnstructuredGrid(np.vstack(tops).reshape(-1), np.concatenate(tys), np.vstack(xs))
    for k in points:
        grid.point_data[k] = np.concatenate([p[3][k] for p in parts])
    for k in cells:
        grid.cell_data[k] = np.concatenate([p[4][k] for p in parts])
    return grid


def _clip(grid):
    """The grid minus a corner box (x > mid, y > mid), so the interior shows."""
    lo, hi = np.array(grid.bounds[::2]), np.array(grid.bounds[1::2])
    mid = lo + 0.5 * (hi - lo)
    return grid.clip_box([mid[0], hi[0] + 1, mid[1], hi[1] + 1, lo[2] - 1, hi[2] + 1],
                         invert=True, crinkle=False)


def _is3d(grid) -> bool:
    b = grid.bounds
    return (b[5] - b[4]) > 1e-12 * max(b[1] - b[0], b[3] - b[2], 1.0)


def _view(plotter, grid) -> None:
    if _is3d(grid):
        plotter.view_isometric()
        plotter.camera.zoom(1.1)
    else:
        plotter.view_xy()


def _bar(title: str) -> dict:
    return {"title": title, "vertical": False, "title_font_size": 14, "label_font_size": 12,
            "color": "black", "fmt": "%.3g", "position_x": 0.15, "width": 0.7}


def panels(grid, views: list[dict], path: str | Path, title: str | None = None,
           window: tuple[int, int] = WINDOW, clip: bool = True, html: str | None = None) -> str:
    """Side-by-side panels; each view: {"field", "label", "cmap", "clim", "cell", "title",
    "warp": (vector field, factor), "log"}. Rank 0 only."""
    pv = _pyvista()
    p = pv.Plotter(off_screen=True, shape=(1, len(views)), window_size=window, border=False)
    p.set_background("white")
    show = _clip(grid) if clip and _is3d(grid) else grid
    for i, v in enumerate(views):
        p.subplot(0, i)
        g = show
        if v.get("warp"):
            vec, factor = v["warp"]
            g = grid.copy()
            g.point_data["_w"] = g.point_data[vec]
            g = g.warp_by_vector("_w", factor=factor)
            g = _clip(g) if clip and _is3d(g) else g
        data = g.cell_data[v["field"]] if v.get("cell") else g.point_data[v["field"]]
        if v.get("log"):
            data = np.log10(np.maximum(np.abs(data), 1e-300))
        g = g.copy()
        g["_s"] = data
        if v.get("cell"):
            g = g.point_data_to_cell_data() if False else g
        p.add_mesh(g, scalars="_s", cmap=v.get("cmap", "viridis"), clim=v.get("clim"),
                   scalar_bar_args=_bar(v["label"]), show_edges=False,
                   preference="cell" if v.get("cell") else "point")
        if v.get("title"):
            p.add_text(v["title"], font_size=11, color="black", position="upper_edge")
        _view(p, g)
    if title:
        p.subplot(0, 0)
        p.add_text(title, font_size=9, color="black", position="lower_left")
    p.screenshot(str(path))
    if html:
        export_html(p, html)
    p.close()
    return str(path)


def export_html(plotter, path: str | Path) -> str | None:
    """Interactive HTML of the scene (needs trame); returns the path, or None with a note."""
    try:
        import trame  # noqa: F401
    except ImportError:
        print(f"neurofem: note: interactive HTML {path} skipped: pyvista's export_html needs "
              "the 'trame' package (pip install trame trame-vtk)", flush=True)
        return None
    plotter.export_html(str(path))
    return str(path)


def phases_figure(grid, names: dict[str, int], path: str | Path) -> str:
    """The mesh coloured by phase; in 3D the matrix is clipped and inclusions stay whole."""
    pv = _pyvista()
    p = pv.Plotter(off_screen=True, window_size=(800, 700))
    p.set_background("white")
    palette = ["#d9d9d9", "#e6550d", "#3182bd", "#31a354", "#756bb1"]
    for i, (name, tag) in enumerate(sorted(names.items(), key=lambda kv: kv[1])):
        part = grid.extract_cells(np.flatnonzero(grid.cell_data["phase"] == tag))
        if part.n_cells == 0:
            continue
        if _is3d(grid) and i == 0:
            part = _clip(part)
        p.add_mesh(part, color=palette[i % len(palette)], show_edges=True, edge_color="#505050",
                   line_width=0.3, label=name)
    p.add_legend(bcolor="white", face="rectangle", loc="upper left", size=(0.25, 0.1))
    p.add_text("phases (matrix clipped)" if _is3d(grid) else "phases", font_size=11,
               color="black", position="upper_edge")
    _view(p, grid)
    p.screenshot(str(path))
    p.close()
    return str(path)


def warp_factor(grid, vector: str, fraction: float = 0.1) -> float:
    """The scale that makes the largest displacement `fraction` of the mesh diameter."""
    umax = float(np.linalg.norm(grid.point_data[vector], axis=1).max())
    b = np.array(grid.bounds)
    diam = float(np.linalg.norm(b[1::2] - b[::2]))
    if umax == 0:
        return 1.0
    raw = fraction * diam / umax
    return float(10 ** math.floor(math.log10(raw)) * round(raw / 10 ** math.floor(math.log10(raw))))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(records: list[dict], path: str | Path, reference: str = "FEM") -> str:
    """Loss, relative L2 error and spiking activity against the step (matplotlib).

    Records without a loss, an error or an activity (a C-LIF run measures its rollout only
    every few steps) leave gaps; `reference` names what the error is measured against.
    """
    plt = _plt()
    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    loss = [(s, r["loss"]) for s, r in zip(steps, records, strict=True)
            if r.get("loss") is not None]
    if loss:
        ax[0].plot(*zip(*loss, strict=True), color="#3182bd", marker="." if len(loss) < 30
                   else None)
    ax[0].set(xlabel="step", ylabel="loss", title="training loss")
    err = [(s, r["rel_l2"]) for s, r in zip(steps, records, strict=True)
           if r.get("rel_l2") is not None]
    if err:
        ax[1].semilogy(*zip(*err, strict=True), color="#e6550d", marker=".")
    ax[1].set(xlabel="step", ylabel=f"relative L2 error vs {reference}",
              title="error (lumped L2)")
    act = [(s, r["activity"]) for s, r in zip(steps, records, strict=True) if r.get("activity")]
    if act:
        ax[2].plot([s for s, _ in act], [a["mean"] for _, a in act], color="#31a354",
                   marker=".", label="mean")
        for name in act[-1][1].get("layers", {}):
            ax[2].plot([s for s, _ in act], [a.get("layers", {}).get(name, np.nan)
                                             for _, a in act], lw=0.8, ls="--", label=name)
        ax[2].legend(fontsize=7)
    ax[2].set(xlabel="step", ylabel="fraction of neuron-steps spiking", title="spiking activity")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def rollout_curves(rollout: dict, path: str | Path, reference: str = "reference") -> str:
    """A C-LIF rollout (the rollout.json format): error, total quanta and drift over time,
    and spikes per step (matplotlib)."""
    plt = _plt()
    t = np.asarray(rollout["t"], dtype=float)
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.6))
    err = [(ti, e) for ti, e in zip(t, rollout["rel_l2"], strict=True) if e is not None]
    if err:
        ax[0].plot(*zip(*err, strict=True), color="#e6550d", marker=".")
    ax[0].set(xlabel="t", ylabel=f"relative L2 error vs {reference}", title="rollout error")
    ax[1].plot(t, rollout["total_quanta"], color="#3182bd", marker=".", label="total quanta")
    ax[1].set(xlabel="t", ylabel="quanta in the domain", title="total quanta and drift")
    drift = ax[1].twinx()
    drift.plot(t, rollout["mass_drift"], color="#d62728", ls="--", label="mass drift")
    drift.set_ylabel("mass drift (quanta)", color="#d62728")
    lo, hi = min(rollout["mass_drift"]), max(rollout["mass_drift"])
    drift.set_ylim(lo - 1, hi + 1)
    ax[1].legend(handles=ax[1].get_lines() + drift.get_lines(), fontsize=7, loc="lower right")
    moved = np.asarray(rollout["spikes_quanta_moved"], dtype=float)
    fired = np.asarray(rollout["spikes_neurons_fired"], dtype=float)
    steps = np.arange(1, len(moved) + 1)
    ax[2].plot(steps, moved, color="#756bb1", lw=0.8, label="quanta moved")
    ax[2].plot(steps, fired, color="#31a354", lw=0.8, label="neurons fired")
    ax[2].set(xlabel="rollout step", ylabel="per step", title="spikes per step")
    if len(moved) and moved.max() > 0:
        ax[2].set_yscale("symlog", linthresh=1.0)
    ax[2].legend(fontsize=7)
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def cell_values(centroids: np.ndarray, u: np.ndarray, ref: np.ndarray, path: str | Path,
                labels: tuple[str, str] = ("spiking solver", "reference")) -> str:
    """Cell values against a reference at the cell centroids: a line plot in 1D, scatter
    views (value, reference, error) in 2D and 3D (matplotlib)."""
    plt = _plt()
    x = np.asarray(centroids, dtype=float).reshape(len(u), -1)
    if x.shape[1] == 1:
        order = np.argsort(x[:, 0])
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
        ax[0].plot(x[order, 0], ref[order], color="black", lw=2, label=labels[1])
        ax[0].plot(x[order, 0], u[order], color="#e6550d", ls="--", marker=".", label=labels[0])
        ax[0].set(xlabel="x", ylabel="u (cell average)", title="u at the end of the rollout")
        ax[0].legend(fontsize=8)
        ax[1].plot(x[order, 0], (u - ref)[order], color="#d62728", marker=".")
        ax[1].set(xlabel="x", ylabel=f"{labels[0]} − {labels[1]}", title="error")
        for a in ax:
            a.grid(alpha=0.3)
    else:
        kw = {"projection": "3d"} if x.shape[1] == 3 else {}
        fig = plt.figure(figsize=(15, 4.4))
        lo, hi = float(min(u.min(), ref.min())), float(max(u.max(), ref.max()))
        err = u - ref
        for i, (vals, title, cmap, clim) in enumerate((
                (u, labels[0], "viridis", (lo, hi)), (ref, labels[1], "viridis", (lo, hi)),
                (err, "error", "coolwarm", (-float(np.abs(err).max()) or -1.0,
                                            float(np.abs(err).max()) or 1.0)))):
            ax = fig.add_subplot(1, 3, i + 1, **kw)
            size = max(2.0, 4000.0 / len(u)) if x.shape[1] == 2 else 6.0
            sc = ax.scatter(*x.T, c=vals, s=size, cmap=cmap, vmin=clim[0], vmax=clim[1],
                            marker="s" if x.shape[1] == 2 else "o")
            ax.set(title=title, xlabel="x", ylabel="y")
            if x.shape[1] == 2:
                ax.set_aspect("equal")
            fig.colorbar(sc, ax=ax, shrink=0.8, label="u" if i < 2 else "error")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def pixel_std(path: str | Path) -> float:
    """Standard deviation of a PNG's pixel values (0 for a blank image)."""
    import matplotlib.image

    return float(np.std(matplotlib.image.imread(str(path))))
