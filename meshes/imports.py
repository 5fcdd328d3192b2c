"""Meshes from files: STEP (OCC import, meshed at `size`), STL (closed surface → volume
mesh) and Gmsh .msh (kept as it is, with its physical groups).

Missing groups are added: ``domain`` (all top-dimensional entities) and ``boundary``
(their exterior boundary).
"""

from __future__ import annotations

import math
import os

import gmsh

from .errors import MeshError
from .registration import Option, check_cell_budget, register
from .sizing import set_global_size
from .tagging import add_group, exterior_boundary

SUFFIXES = (".step", ".stp", ".stl", ".msh")


def _check_path(path: str) -> str:
    if not path:
        raise MeshError("file: --path is required")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise MeshError(f"--path={path!r}: unsupported file type {suffix or '(none)'!r}; "
                        f"use one of {', '.join(SUFFIXES)}")
    if not os.path.isfile(path):
        raise MeshError(f"--path={path!r}: no such file")
    if not os.access(path, os.R_OK):
        raise MeshError(f"--path={path!r}: not readable")
    return suffix


def _gmsh_call(path: str, fn, *args):
    """Run a Gmsh reader; turn its exceptions into MeshError naming the file."""
    try:
        return fn(*args)
    except Exception as exc:  # gmsh raises plain Exception
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MeshError(f"--path={path!r}: Gmsh could not read it ({msg})") from None


def _top_dim() -> int:
    return max((d for d, _ in gmsh.model.getEntities()), default=-1)


def _ensure_groups(dim: int) -> None:
    """Add "domain"/"boundary" where the model has no cell/facet physical groups."""
    tops = [t for _, t in gmsh.model.getEntities(dim)]
    if not gmsh.model.getPhysicalGroups(dim):
        add_group(dim, tops, "domain")
    if not gmsh.model.getPhysicalGroups(dim - 1):
        add_group(dim - 1, exterior_boundary(dim, tops), "boundary")


@register("file", size=0.1, dim=3,
          groups='the .msh file\'s own groups; else cells "domain", facets "boundary"',
          options=[Option("path", "str", "", "input .step/.stp (OCC), .stl (closed surface) or "
                          ".msh file"),
                   Option("angle", "float", 40.0, "STL: feature angle (degrees) splitting the "
                          "surface into patches", positive=True)])
def from_file(model, o) -> dict:
    """Import a STEP/STL/MSH file (STEP and STL are meshed at `size`; .msh is kept)."""
    path = o["path"]
    suffix = _check_path(path)
    set_global_size(o["size"])
    if suffix == ".msh":
        _gmsh_call(path, gmsh.merge, path)
        dim = _top_dim()
        if dim < 2 or len(gmsh.model.mesh.getElements(dim)[0]) == 0:
            raise MeshError(f"--path={path!r}: no 2D/3D elements in the file")
    elif suffix in (".step", ".stp"):
        _gmsh_call(path, gmsh.model.occ.importShapes, path)
        gmsh.model.occ.synchronize()
        dim = _top_dim()
        if dim < 2:
            raise MeshError(f"--path={path!r}: no surfaces or solids in the STEP file")
        volume = sum(gmsh.model.occ.getMass(dim, t) for _, t in gmsh.model.getEntities(dim))
        check_cell_budget(o, volume, dim, 0.0)
        _gmsh_call(path, gmsh.model.mesh.generate, dim)
    else:  # STL: classify the triangulation into patches, rebuild geometry, fill the volume
        _gmsh_call(path, gmsh.merge, path)
        if not gmsh.model.getEntities(2):
            raise MeshError(f"--path={path!r}: no triangles in the STL file")
        gmsh.model.mesh.classifySurfaces(math.radians(o["angle"]), True, True, math.pi)
        gmsh.model.mesh.createGeometry()
        surfaces = [t for _, t in gmsh.model.getEntities(2)]
        loop = gmsh.model.geo.addSurfaceLoop(surfaces)
        gmsh.model.geo.addVolume([loop])
        gmsh.model.geo.synchronize()
        _gmsh_call(path, gmsh.model.mesh.generate, 3)
        dim = 3
        if len(gmsh.model.mesh.getElements(3)[0]) == 0:
            raise MeshError(f"--path={path!r}: the STL surface is not closed (no volume mesh)")
    _ensure_groups(dim)
    return {"gdim": 3 if dim == 3 or suffix != ".msh" else _gdim_of_msh(), "source": path,
            "tdim": dim, "keep_mesh": suffix == ".msh"}


def _gdim_of_msh() -> int:
    """2 when every node of the loaded mesh has z == 0, else 3."""
    _, xyz, _ = gmsh.model.mesh.getNodes()
    return 2 if len(xyz) and max(abs(v) for v in xyz[2::3]) == 0.0 else 3
