"""Write the current Gmsh mesh (.msh with physical tags; .vtu via meshio; .xdmf with
DOLFINx, readable by ``XDMFFile.read_mesh``/``read_meshtags``) and render
an off-screen PyVista preview (3D: a corner clipped away so inclusions and holes show)."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import gmsh
import meshio
import numpy as np

from .errors import MeshError

FORMATS = (".msh", ".xdmf", ".vtu")
_PALETTE = ["#d9d9d9", "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def _suffix(path: str, allowed: tuple[str, ...], what: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in allowed:
        raise MeshError(f"{what}={path!r}: unsupported format {suffix or '(none)'!r}; "
                        f"use one of {', '.join(allowed)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise MeshError(f"{what}={path!r}: folder {folder!r} does not exist")
    return suffix


def to_meshio() -> tuple[meshio.Mesh, dict[int, str]]:
    """The top-dimensional cells of the current Gmsh mesh with cell data "phase" (tags)."""
    dim = max(d for d, _ in gmsh.model.getEntities())
    with tempfile.TemporaryDirectory() as tmp:
        fname = os.path.join(tmp, "mesh.msh")
        gmsh.write(fname)  # meshio's Gmsh reader knows the node orderings of every cell type
        with contextlib.redirect_stdout(io.StringIO()):  # it prints stray blank lines
            m = meshio.read(fname)
    top = {"triangle", "triangle6"} if dim == 2 else {"tetra", "tetra10"}
    blocks, phase = [], []
    for block, tags in zip(m.cells, m.cell_data["gmsh:physical"], strict=True):
        if block.type in top:
            blocks.append(block)
            phase.append(np.asarray(tags, dtype=np.int32))
    points = m.points  # always 3 components (VTU needs them; z = 0 in 2D)
    names = {t: gmsh.model.getPhysicalName(dim, t) for _, t in gmsh.model.getPhysicalGroups(dim)}
    return meshio.Mesh(points, blocks, cell_data={"phase": phase}), names


def write(path: str) -> str:
    """Write the current Gmsh mesh to `path` (.msh keeps every physical group; .xdmf, .vtu)."""
    suffix = _suffix(path, FORMATS, "output")
    if suffix == ".msh":
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.write(path)
    elif suffix == ".xdmf":
        # meshio's XDMF writer needs h5py; DOLFINx writes XDMF/HDF5 that DOLFINx reads back.
        from meshes.fenics import MPI  # deferred: loads DOLFINx

        from .core import distribute  # deferred: loads DOLFINx

        _, xyz, _ = gmsh.model.mesh.getNodes()
        gdim = 2 if np.all(np.asarray(xyz)[2::3] == 0.0) else 3
        write_xdmf(distribute(gmsh.model, MPI.COMM_SELF, gdim), path)
    else:
        mesh, _ = to_meshio()
        meshio.write(path, mesh)
    return path


def write_xdmf(dm, path: str) -> str:
    """Write a DistributedMesh with cell tags "phase" and facet tags "boundary" (collective)."""
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx

    _suffix(path, (".xdmf",), "output")
    with dolfinx.io.XDMFFile(dm.comm, path, "w") as f:
        f.write_mesh(dm.mesh)
        for tags, name in ((dm.cell_tags, "phase"), (dm.facet_tags, "boundary")):
            if tags is not None:
                tags.name = name
                f.write_meshtags(tags, dm.mesh.geometry)
    return path


def preview(path: str, window: tuple[int, int] = (900, 700)) -> str:
    """Render the current Gmsh mesh to a PNG off-screen, coloured by phase."""
    _suffix(path, (".png",), "--preview")
    import pyvista as pv  # deferred: loads PyVista
    import vtk  # deferred: loads PyVista

    # Off-screen rendering without a display works, but VTK warns about X on stderr.
    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_ERROR)
    pv.OFF_SCREEN = True
    mesh, names = to_meshio()
    grid = pv.from_meshio(mesh)
    phases = sorted(names)
    dim = 2 if mesh.cells[0].type.startswith("triangle") else 3
    plotter = pv.Plotter(off_screen=True, window_size=window)
    plotter.set_background("white")
    for i, tag in enumerate(phases):
        part = grid.extract_cells(np.flatnonzero(grid.cell_data["phase"] == tag))
        if part.n_cells == 0:
            continue
        if dim == 3 and names[tag] != "inclusion":  # inclusions stay whole, the rest is cut
            # Remove a corner so the inclusions / holes behind the faces are visible.
            lo, hi = np.array(part.bounds[::2]), np.array(part.bounds[1::2])
            mid = lo + 0.4 * (hi - lo)
            part = part.clip_box([mid[0], hi[0] + 1, mid[1], hi[1] + 1, lo[2] - 1, hi[2] + 1],
                                 invert=True, crinkle=True)
        plotter.add_mesh(part, color=_PALETTE[i % len(_PALETTE)], show_edges=True,
                         edge_color="#404040", line_width=0.5, label=names[tag] or str(tag))
    plotter.add_legend(bcolor="white", loc="upper left", face="rectangle",
                       size=(0.22, 0.05 * len(phases)))
    if dim == 2:
        plotter.view_xy()
    else:
        plotter.view_isometric()
    plotter.screenshot(path)
    plotter.close()
    return path
