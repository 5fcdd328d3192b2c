"""Off-screen PyVista figures (PNG) of a network-vs-FEM comparison, checked as rendered.

Meshes and fields are gathered to rank 0 (:func:`gather_grid`, collective); only rank 0
renders. 3D meshes are clipped by a corner box so the inside shows, or cut by a plane
(``"cut"``) chosen through the inclusions, whose outlines are drawn on the cut; 2D meshes
are viewed from above. Every panel has an axes triad; every colour bar names the quantity
and its unit, spans the data range of its own figure unless told otherwise, and can be on
a log scale. :func:`panels` checks the PNG it wrote: each colour bar's title and its tick
labels are rendered alone, in the same window, and the pixels they cover must not touch
(:func:`colorbar_check`); the result comes back with the figure's colour ranges.
Matplotlib figures (curves) live in :mod:`validation.plots` and are re-exported here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from meshes.fenics import dolfinx

from .plots import cell_values, curves, layer_label, pixel_std, rollout_curves  # noqa: F401

WINDOW = (1500, 600)


def _pyvista():
    import pyvista as pv  # deferred: loads PyVista
    import vtk  # deferred: loads PyVista

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
        dofs = f.function_space.dofmap.list[:n_cells, 0]  # DG0: one (blocked) dof per cell
        cells[k] = f.x.array.reshape(-1, bs)[dofs].squeeze()
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


def _bar(title: str, log: bool = False) -> dict:
    """A horizontal colour bar, tick labels above it; its own title is drawn below the bar
    by :func:`_bar_title` (VTK stacks title and labels on one side, where they collide)."""
    return {"title": title, "vertical": False, "title_font_size": 1, "label_font_size": 12,
            "color": "black", "fmt": "%.2e" if log else "%.3g", "position_x": 0.12,
            "position_y": 0.075, "width": 0.76, "height": 0.1, "n_labels": 4}


def _bar_title(p, bar, text: str):
    """The colour bar's title as a text actor centred under the bar (the bar's own title
    is made transparent, so the bar's layout stays as it was)."""
    bar.GetTitleTextProperty().SetOpacity(0.0)
    actor = p.add_text(text, position=(0.5, 0.02), viewport=True, font_size=10, color="black")
    actor.GetTextProperty().SetJustificationToCentered()
    return actor


def data_range(values: np.ndarray, log: bool = False) -> tuple[float, float]:
    """(min, max) of the values (magnitudes of vectors); on a log scale the smallest
    positive value, floored at 1e-12 of the largest. An empty or flat range is widened."""
    v = np.asarray(values, dtype=float)
    v = np.linalg.norm(v, axis=1) if v.ndim > 1 else v
    v = v[np.isfinite(v)]
    if log:
        v = np.abs(v)
        hi = float(v.max()) if v.size else 1.0
        hi = hi if hi > 0 else 1.0
        pos = v[v > 0]
        lo = max(float(pos.min()) if pos.size else hi, hi * 1e-12)
        return (lo, hi) if hi > lo else (lo / 10.0, hi * 10.0)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    if hi <= lo:
        pad = abs(lo) * 1e-3 or 1e-12
        return lo - pad, hi + pad
    return lo, hi


def cut_origin(grid, axis: int = 2, phase_tag: int | None = None) -> np.ndarray:
    """A point of the plane normal to `axis` that cuts most cells of phase `phase_tag`
    (the mid-plane without one), within the middle 80 % of the box."""
    b = np.array(grid.bounds).reshape(3, 2)
    origin = b.mean(axis=1)
    if phase_tag is None or "phase" not in grid.cell_data:
        return origin
    sel = grid.cell_data["phase"] == phase_tag
    if not sel.any():
        return origin
    z = grid.cell_centers().points[sel, axis]
    lo, hi = b[axis]
    planes = np.linspace(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo), 33)
    width = (hi - lo) / 40.0
    counts = [np.count_nonzero(np.abs(z - c) < width) for c in planes]
    origin[axis] = planes[int(np.argmax(counts))]
    return origin


def _shown(grid, v: dict, clip: bool):
    """The grid a view shows: warped, then cut by a plane or clipped at a corner (3D)."""
    g = grid
    if v.get("warp"):
        vec, factor = v["warp"]
        g = grid.copy()
        g.point_data["_w"] = g.point_data[vec]
        g = g.warp_by_vector("_w", factor=factor)
    if v.get("cut") is not None and _is3d(g):
        axis, origin = v["cut"]
        return g.slice(normal=np.eye(3)[axis], origin=origin)
    return _clip(g) if clip and _is3d(g) else g


def _add_view(p, grid, v: dict, clip: bool) -> dict:
    """One panel: the field with its colour bar, outlines, title and axes triad."""
    full = grid.cell_data[v["field"]] if v.get("cell") else grid.point_data[v["field"]]
    log = bool(v.get("log"))
    clim = tuple(v["clim"]) if v.get("clim") is not None else data_range(full, log)
    g = _shown(grid, v, clip).copy()
    data = g.cell_data[v["field"]] if v.get("cell") else g.point_data[v["field"]]
    data = np.asarray(data, dtype=float)
    data = np.linalg.norm(data, axis=1) if data.ndim > 1 else data
    g["_s"] = np.maximum(np.abs(data), clim[0]) if log else data
    p.add_mesh(g, scalars="_s", cmap=v.get("cmap", "viridis"), clim=clim, log_scale=log,
               scalar_bar_args=_bar(v["label"], log), show_edges=False,
               preference="cell" if v.get("cell") else "point")
    bar = p.scalar_bars[v["label"]]
    title = _bar_title(p, bar, v["label"])
    for outline in v.get("outlines", []):
        p.add_mesh(outline, color=v.get("outline_color", "white"), line_width=2.5)
    if v.get("title"):
        p.add_text(v["title"], font_size=11, color="black", position="upper_edge")
    p.add_axes(color="black", line_width=2, viewport=(0.0, 0.2, 0.16, 0.42))
    _view(p, g)
    return {"field": v["field"], "title": v["label"], "clim": [float(clim[0]), float(clim[1])],
            "log": log, "_actors": (bar, title)}


def panels(grid, views: list[dict], path: str | Path, title: str | None = None,
           window: tuple[int, int] = WINDOW, clip: bool = True, html: str | None = None,
           check: bool = True) -> dict:
    """Side-by-side panels; each view: {"field", "label", "cmap", "clim", "cell", "title",
    "warp": (vector field, factor), "log", "cut": (axis, origin), "outlines": [PolyData]}.
    Rank 0 only. Returns {"path", "colorbars": [{"field", "title", "clim", "log",
    "overlap_px", "title_px", "label_px"}]} (the pixel counts of the rendered check)."""
    pv = _pyvista()
    p = pv.Plotter(off_screen=True, shape=(1, len(views)), window_size=window, border=False)
    p.set_background("white")
    bars = []
    for i, v in enumerate(views):
        p.subplot(0, i)
        bars.append(_add_view(p, grid, v, clip))
    if title:
        p.subplot(0, 0)
        p.add_text(title, font_size=9, color="black", position="lower_left")
    p.screenshot(str(path))
    if html:
        export_html(p, html)
    pairs = [info.pop("_actors") for info in bars]
    if check:
        for info, c in zip(bars, colorbar_check(p, pairs), strict=True):
            info.update(c)
    p.close()
    return {"path": str(path), "colorbars": bars}


def _ink(img: np.ndarray) -> np.ndarray:
    """Pixels that differ from the white background."""
    return np.any(np.abs(img[..., :3].astype(int) - 255) > 40, axis=-1)


def _grow(mask: np.ndarray, px: int = 1) -> np.ndarray:
    out = mask.copy()
    for dy in range(-px, px + 1):
        for dx in range(-px, px + 1):
            out |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return out


def colorbar_check(plotter, pairs: list) -> list[dict]:
    """For each (colour bar, title actor): pixels of the title and of the bar's tick labels,
    each rendered alone in the plotter's window, and how many label pixels lie within three
    pixels of a title pixel. Hides everything else: call after the screenshot."""
    props = [a for r in plotter.renderers for a in _props(r)]
    for a in props:
        a.SetVisibility(False)
    base = _ink(_image(plotter))  # what cannot be hidden (the axes triads)
    out = []
    for bar, title in pairs:
        title.SetVisibility(True)
        t = _ink(_image(plotter)) & ~base
        title.SetVisibility(False)
        bar.SetVisibility(True)
        bar.SetDrawColorBar(False)
        bar.SetDrawFrame(False)
        labels = _ink(_image(plotter)) & ~base
        bar.SetVisibility(False)
        out.append({"title_px": int(t.sum()), "label_px": int(labels.sum()),
                    "overlap_px": int((_grow(t, 3) & labels).sum())})
    return out


def _image(plotter) -> np.ndarray:
    plotter.render()
    return np.asarray(plotter.screenshot(None, return_img=True))


def _props(renderer) -> list:
    coll = renderer.GetViewProps()
    coll.InitTraversal()
    return [coll.GetNextProp() for _ in range(coll.GetNumberOfItems())]


def export_html(plotter, path: str | Path) -> str | None:
    """Interactive HTML of the scene (needs trame); returns the path, or None with a note."""
    try:
        import trame  # noqa: F401  # deferred: optional extra (interactive HTML only)
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
    p.add_axes(color="black", line_width=2, viewport=(0.0, 0.0, 0.2, 0.25))
    _view(p, grid)
    p.screenshot(str(path))
    p.close()
    return str(path)


def outlines(grid, tags: list[int], axis: int, origin) -> list:
    """Where the plane through `origin` normal to `axis` cuts the boundary of the cells
    tagged `tags` (the inclusions): line sets to draw on a cut."""
    sel = np.isin(grid.cell_data["phase"], tags)
    if not sel.any():
        return []
    surface = grid.extract_cells(np.flatnonzero(sel)).extract_surface(
        algorithm="dataset_surface")
    lines = surface.slice(normal=np.eye(3)[axis], origin=origin)
    return [lines] if lines.n_points else []


def warp_factor(grid, vector: str, fraction: float = 0.1) -> float:
    """The scale that makes the largest displacement `fraction` of the mesh diameter."""
    umax = float(np.linalg.norm(grid.point_data[vector], axis=1).max())
    b = np.array(grid.bounds)
    diam = float(np.linalg.norm(b[1::2] - b[::2]))
    if umax == 0:
        return 1.0
    raw = fraction * diam / umax
    return float(10 ** math.floor(math.log10(raw)) * round(raw / 10 ** math.floor(math.log10(raw))))


