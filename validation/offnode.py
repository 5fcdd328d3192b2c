"""Off-node validation: errors vs FEM *between* the nodes, beside the nodal ones.

A nodal error says nothing about a surrogate evaluated elsewhere. Here the values of a
field at points inside every cell (basix quadrature points, given by the caller with
their cells and weights) are compared with the FE reference evaluated at the same points:
relative L2 over all cells, over cells touching the boundary and over interior cells, the
worst deviation (absolute and as a fraction of the reference's range), and a per-cell
RMS deviation (a DG0 field) for the off-node error map. Several readings of the same
network can be compared at once (raw network, interpolant of its nodal values, lift alone).

Plain arrays in, plain JSON out; collective over the mesh's communicator.
"""

from __future__ import annotations

import numpy as np

from fem.cell_errors import boundary_cells, point_errors

__all__ = ["boundary_cells", "error_map", "errors", "off_node_report", "reference_values"]
from meshes.fenics import MPI, dolfinx


def reference_values(u: dolfinx.fem.Function, points: np.ndarray, cells: np.ndarray
                     ) -> np.ndarray:
    """The FE function `u` at points (n, gdim|3) lying in the given local cells: (n, bs)."""
    p = np.zeros((len(points), 3))
    p[:, : np.shape(points)[1]] = points
    bs = int(np.prod(u.ufl_shape)) if u.ufl_shape else 1
    if len(p) == 0:
        return np.zeros((0, bs))
    return np.asarray(u.eval(p, np.asarray(cells, dtype=np.int32)), float).reshape(len(p), bs)


def errors(values: np.ndarray, ref: np.ndarray, weights: np.ndarray, boundary: np.ndarray,
           comm) -> dict:
    """Relative L2 (all / boundary cells / interior cells) and worst deviation vs `ref`."""
    return point_errors(values, ref, weights, boundary, comm)


def off_node_report(values: dict[str, np.ndarray], ref: np.ndarray, weights: np.ndarray,
                    cells: np.ndarray, boundary_of_cell: np.ndarray, comm) -> dict:
    """{name: errors} for every named reading, plus the number of points and cells used."""
    flags = np.asarray(boundary_of_cell, bool)[cells]
    out = {name: errors(v, ref, weights, flags, comm) for name, v in values.items()}
    out["points"] = int(comm.allreduce(len(ref), op=MPI.SUM))
    out["boundary_cells_share"] = (comm.allreduce(int(np.count_nonzero(boundary_of_cell)),
                                                  op=MPI.SUM)
                                   / max(comm.allreduce(len(boundary_of_cell), op=MPI.SUM), 1))
    return out


def error_map(mesh, values: np.ndarray, ref: np.ndarray, weights: np.ndarray,
              cells: np.ndarray, name: str = "offnode_error") -> dolfinx.fem.Function:
    """Per-cell RMS deviation √(∫_T |u − u_ref|² / |T|) at the points, as a DG0 function."""
    d2 = np.sum((np.asarray(values, float).reshape(len(ref), -1) - ref) ** 2, axis=1)
    n = mesh.topology.index_map(mesh.topology.dim).size_local
    num = np.bincount(cells, weights=weights * d2, minlength=n)
    den = np.bincount(cells, weights=weights, minlength=n)
    W = dolfinx.fem.functionspace(mesh, ("DG", 0))
    f = dolfinx.fem.Function(W, name=name)
    # some rules (degree 3 on tetrahedra) have a negative weight: a cell sum can dip below 0
    f.x.array[:n] = np.sqrt(np.maximum(num, 0.0) / np.where(den > 0, den, 1.0))
    f.x.scatter_forward()
    return f
