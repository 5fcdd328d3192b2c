"""Point evaluation of finite-element functions at arbitrary points, in parallel.

Each rank passes its own points (any number, possibly none). DOLFINx's
``determine_point_ownership`` finds the rank whose cell contains each point (bounding-box
tree + GJK collision); that rank evaluates the function and the values travel back with
one ``Alltoallv``, so the caller gets values in the order of its input points. Points
outside the mesh get NaN. Build a :class:`PointEvaluator` once to evaluate many
functions (or time steps) at the same points.
"""

from __future__ import annotations

import numpy as np

from fem.mpi import displacements
from meshes.core import bounding_box
from meshes.fenics import MPI, dolfinx


def _as_points(points: np.ndarray) -> np.ndarray:
    """Points as a C-contiguous (n, 3) float64 array (missing coordinates are 0)."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    out = np.zeros((p.shape[0], 3))
    out[:, : p.shape[1]] = p
    return out


class PointEvaluator:
    """Collective: locate this rank's `points` on the mesh once, evaluate functions later."""

    def __init__(self, mesh: dolfinx.mesh.Mesh, points: np.ndarray, padding: float = 1e-10):
        self.mesh = mesh
        self.points = _as_points(points)
        comm = mesh.comm
        own = dolfinx.geometry.determine_point_ownership(mesh, self.points, padding)
        self.src_owner = np.asarray(own.src_owner, dtype=np.int32)
        self.dest_owner = np.asarray(own.dest_owner, dtype=np.int32)
        self.dest_points = np.asarray(own.dest_points, dtype=np.float64).reshape(-1, 3)
        self.dest_cells = np.asarray(own.dest_cells, dtype=np.int32)
        size = comm.size
        self.send_counts = np.bincount(self.dest_owner, minlength=size).astype(np.int64)
        found = self.src_owner >= 0
        self.recv_counts = np.bincount(self.src_owner[found], minlength=size).astype(np.int64)
        # values from rank r arrive in the order in which we sent r our points
        self.order = np.argsort(np.where(found, self.src_owner, size), kind="stable")[: found.sum()]
        self.found = found

    def __call__(self, u: dolfinx.fem.Function) -> np.ndarray:
        """Values of `u` at this rank's points, shape (n,) or (n, components); NaN outside."""
        comm = self.mesh.comm
        bs = int(np.prod(u.ufl_shape)) if u.ufl_shape else 1
        if len(self.dest_cells):
            local = u.eval(self.dest_points, self.dest_cells).reshape(-1, bs)
        else:
            local = np.zeros((0, bs))
        local = np.ascontiguousarray(local, dtype=np.float64)
        recv = np.empty((int(self.recv_counts.sum()), bs), dtype=np.float64)
        sc, rc = self.send_counts * bs, self.recv_counts * bs
        comm.Alltoallv(
            [local, (sc, displacements(sc)), MPI.DOUBLE],
            [recv, (rc, displacements(rc)), MPI.DOUBLE],
        )
        out = np.full((len(self.points), bs), np.nan)
        out[self.order] = recv
        return out[:, 0] if not u.ufl_shape else out




def evaluate(u: dolfinx.fem.Function, points: np.ndarray, padding: float = 1e-10) -> np.ndarray:
    """Collective: values of `u` at this rank's `points` (n, gdim or 3), in input order."""
    return PointEvaluator(u.function_space.mesh, points, padding)(u)


def grid_points(mesh: dolfinx.mesh.Mesh, n: int) -> np.ndarray:
    """A uniform grid of n points per axis over the mesh's global bounding box, shape (N, 3)."""
    gdim = mesh.geometry.dim
    lo, hi = bounding_box(mesh)
    axes = [np.linspace(lo[d], hi[d], n) for d in range(gdim)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, gdim)
    return _as_points(grid)
