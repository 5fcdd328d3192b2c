"""The fields of a report as files: ``fields.xdmf`` (+ ``.h5``) for ParaView and
``fields.vtu`` that ParaView, ``meshio`` and ``pyvista`` all read with every field.

One public name per field, the same in both files: for elasticity ``displacement_fem``,
``displacement_network``, ``displacement_error`` (vectors at the nodes), their magnitudes,
``strain_fem`` / ``strain_network`` / ``stress_fem`` / ``stress_network`` (tensors per cell,
row-major components), ``von_mises_fem`` / ``von_mises_network`` / ``von_mises_error``,
``stress_error`` (|σ_network − σ_FEM| per cell), ``imbalance_fem`` / ``imbalance_network``
(local conservation error), ``activity`` (spiking activity per node) and ``phase`` (the
cell tag of each cell). Scalar problems name the field ``u_fem`` / ``u_network`` / ``error``.

The XDMF file holds what DOLFINx's XDMF writer stores (P1 and DG0 functions on the
distributed mesh, written collectively). Its multi-grid layout is what ParaView expects but
not what meshio's or pyvista's XDMF readers handle, hence the VTU beside it: one
unstructured grid gathered to rank 0 (points of cells on different ranks appear once per
rank; the values agree).
"""

from __future__ import annotations

import os
from pathlib import Path

ELASTIC_NAMES = {"u_fem": "displacement_fem", "u_network": "displacement_network",
                 "error": "displacement_error", "|u_fem|": "displacement_fem_magnitude",
                 "|u_network|": "displacement_network_magnitude",
                 "|error|": "displacement_error_magnitude"}


def public_name(key: str, elastic: bool) -> str:
    """The file name of the report field `key` (e.g. "u_fem" → "displacement_fem")."""
    if elastic and key in ELASTIC_NAMES:
        return ELASTIC_NAMES[key]
    return f"{key.strip('|')}_magnitude" if key.startswith("|") else key


def write_xdmf(fields: dict, path: str | Path, elastic: bool, cell_tags=None) -> Path:
    """Every P1 / DG0 field (and the phase tags as a DG0 field) into one XDMF file
    (collective); higher degrees are left to the VTU (interpolated to the nodes)."""
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx

    path = Path(path)
    mesh = next(iter(fields.values())).function_space.mesh
    with dolfinx.io.XDMFFile(mesh.comm, str(path), "w") as f:
        f.write_mesh(mesh)
        for key, w in fields.items():
            element = w.function_space.ufl_element()
            if element.embedded_superdegree > 1 or (element.embedded_superdegree == 1
                                                    and element.discontinuous):
                continue  # P2 fields, and DG1 (the stress of a P2 displacement): VTU only
            w.name = public_name(key, elastic)
            f.write_function(w)
        if cell_tags is not None:
            f.write_function(phase_function(mesh, cell_tags))
    return path


def phase_function(mesh, cell_tags):
    """The cell tags as a DG0 function named "phase" (0 where a cell has no tag)."""
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx

    Q = dolfinx.fem.functionspace(mesh, ("DG", 0))
    w = dolfinx.fem.Function(Q, name="phase")
    n = mesh.topology.index_map(mesh.topology.dim).size_local
    keep = cell_tags.indices < n
    w.x.array[Q.dofmap.list[cell_tags.indices[keep], 0]] = cell_tags.values[keep]
    w.x.scatter_forward()
    return w


def write_vtu(grid, path: str | Path, elastic: bool) -> Path:
    """The gathered grid (rank 0) with public field names as a binary VTU file."""
    out = grid.copy(deep=False)
    out.clear_data()
    for key in grid.point_data.keys():
        out.point_data[public_name(key, elastic)] = grid.point_data[key]
    for key in grid.cell_data.keys():
        out.cell_data[public_name(key, elastic)] = grid.cell_data[key]
    path = Path(path)
    out.save(str(path), binary=True)
    readable(path)
    return path


def readable(path: str | Path) -> None:
    """Make an output file readable by group and others (rw-r--r--), whatever the umask."""
    try:
        os.chmod(path, 0o644)
    except OSError:
        pass
