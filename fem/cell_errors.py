"""Errors of a field against a reference at points inside the cells (off the nodes).

Shared by training measures (:mod:`coupling.pointwise`) and reports
(:mod:`validation.offnode`): relative L2 over all cells, over the cells that touch the
boundary and over the interior ones, and the worst pointwise deviation.
"""

from __future__ import annotations

import math

import numpy as np

from meshes.fenics import MPI, dolfinx


def boundary_cells(V) -> np.ndarray:
    """Owned cells with a vertex on the exterior boundary (same on any number of ranks)."""
    mesh = V.mesh
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    facets = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    Q = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
    mark = dolfinx.fem.Function(Q)
    mark.x.array[dolfinx.fem.locate_dofs_topological(Q, tdim - 1, facets)] = 1.0
    mark.x.scatter_reverse(dolfinx.la.InsertMode.add)
    mark.x.scatter_forward()
    n = mesh.topology.index_map(tdim).size_local
    return (mark.x.array[Q.dofmap.list[:n]] > 0).any(axis=1)


def point_errors(values: np.ndarray, ref: np.ndarray, weights: np.ndarray,
                 boundary: np.ndarray, comm) -> dict:
    """Relative L2 (all / boundary cells / interior cells) and the worst deviation vs `ref`
    (absolute and as a fraction of the reference's range), over all ranks."""
    d2 = np.sum((np.asarray(values, float).reshape(len(ref), -1) - ref) ** 2, axis=1)
    r2 = np.sum(ref**2, axis=1)
    w, b = np.asarray(weights, float), np.asarray(boundary, bool)
    local = [w @ d2, w @ r2, w[b] @ d2[b], w[b] @ r2[b], w[~b] @ d2[~b], w[~b] @ r2[~b]]
    sums = comm.allreduce(np.array(local, dtype=float), op=MPI.SUM)
    rel = [math.sqrt(sums[i] / sums[i + 1]) if sums[i + 1] > 0 else None for i in (0, 2, 4)]
    worst = comm.allreduce(float(np.sqrt(d2.max(initial=0.0))), op=MPI.MAX)
    lo = comm.allreduce(float(ref.min(initial=np.inf)), op=MPI.MIN)
    hi = comm.allreduce(float(ref.max(initial=-np.inf)), op=MPI.MAX)
    return {"rel_l2": rel[0], "boundary_cells": rel[1], "interior_cells": rel[2],
            "max_abs": worst, "max_of_range": worst / (hi - lo) if hi > lo else None}
