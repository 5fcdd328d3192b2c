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


def curves(records: list[dict], path: str | Path) -> str:
    """Loss, relative L2 error and spiking activity against the step (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(steps, [r["loss"] for r in records], color="#3182bd")
    ax[0].set(xlabel="step", ylabel="loss", title="training loss")
    err = [(s, r["rel_l2"]) for s, r in zip(steps, records, strict=True)
           if r.get("rel_l2") is not None]
    if err:
        ax[1].semilogy(*zip(*err, strict=True), color="#e6550d")
    ax[1].set(xlabel="step", ylabel="relative L2 error vs FEM", title="error (lumped L2)")
    act = [(s, r["activity"]["mean"]) for s, r in zip(steps, records, strict=True)
           if r.get("activity")]
    if act:
        ax[2].plot(*zip(*act, strict=True), color="#31a354", label="mean")
        layers = records[-1]["activity"].get("layers", {}) if records[-1].get("activity") else {}
        for name in layers:
            ax[2].plot(steps, [r["activity"]["layers"].get(name, np.nan) for r in records],
                       lw=0.8, ls="--", label=name)
        ax[2].legend(fontsize=7)
    ax[2].set(xlabel="step", ylabel="fraction of neuron-steps spiking", title="spiking activity")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def pixel_std(path: str | Path) -> float:
    """Standard deviation of a PNG's pixel values (0 for a blank image)."""
    import matplotlib.image

    return float(np.std(matplotlib.image.imread(str(path))))
