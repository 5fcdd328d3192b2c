"""Neighbourhoods for stochastic projection: CSR neighbour lists and where they come from.

A :class:`Neighbourhoods` holds, for each centre point, the indices of its neighbours
(the point itself excluded). A :class:`NeighbourSource` produces them and can *grow*
them on request (``level`` > 0) when a neighbourhood is too small or degenerate for the
SP fit: :class:`MeshAdjacency` (k-ring of a mesh graph, one more ring per growth),
:class:`KNearest` (k nearest points, k doubled) and :class:`Radius` (a ball, r doubled).
:func:`cell_vertex_adjacency` and :func:`mesh_vertex_graph` build the mesh graph.

>>> import numpy as np
>>> graph = cell_vertex_adjacency([0, 3, 6], [0, 1, 2, 1, 2, 3], 4)  # two triangles
>>> graph.row(0).tolist(), graph.row(1).tolist()
([1, 2], [0, 2, 3])
>>> pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
>>> MeshAdjacency(graph, rings=2).neighbourhoods(pts, np.array([0]), 0).row(0).tolist()
[1, 2, 3]
>>> KNearest(2).neighbourhoods(pts, np.array([3]), 0).counts().tolist()
[2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sps
from scipy.spatial import cKDTree

__all__ = [
    "KNearest", "MeshAdjacency", "NeighbourSource", "Neighbourhoods", "Radius", "SPError",
    "cell_vertex_adjacency", "mesh_vertex_graph",
]


class SPError(ValueError):
    """A stochastic-projection operator cannot be built (bad points, degenerate neighbourhoods)."""


@dataclass(frozen=True)
class Neighbourhoods:
    """Neighbour lists in CSR form: row r's neighbours are indices[indptr[r]:indptr[r+1]]."""

    indptr: np.ndarray
    indices: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def counts(self) -> np.ndarray:
        """Number of neighbours of each row."""
        return np.diff(self.indptr)

    def row(self, r: int) -> np.ndarray:
        """Neighbours of row r."""
        return self.indices[self.indptr[r] : self.indptr[r + 1]]

    def to_matrix(self, n_cols: int) -> sps.csr_matrix:
        """The neighbour pattern as a boolean n_rows × n_cols sparse matrix."""
        data = np.ones(len(self.indices), dtype=bool)
        return sps.csr_matrix((data, self.indices, self.indptr), shape=(self.n_rows, n_cols))

    @classmethod
    def from_matrix(cls, pattern: sps.spmatrix) -> Neighbourhoods:
        """Neighbourhoods from the nonzero pattern of a sparse matrix (duplicates merged)."""
        m = sps.csr_matrix(pattern, dtype=bool)
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        return cls(m.indptr.astype(np.int64), m.indices.astype(np.int64))


def _drop_self(pattern: sps.csr_matrix, rows: np.ndarray) -> sps.csr_matrix:
    """Remove entry (r, rows[r]) from each row r: a point is not its own neighbour."""
    pattern = sps.csr_matrix(pattern, dtype=np.int32)
    pattern = pattern - sps.csr_matrix(
        (pattern[np.arange(len(rows)), rows].A1, (np.arange(len(rows)), rows)), shape=pattern.shape
    )
    pattern.eliminate_zeros()
    return pattern


def cell_vertex_adjacency(offsets: np.ndarray, cell_vertices: np.ndarray, n_points: int):
    """Vertex-to-vertex adjacency (vertices sharing a cell) from a CSR cell→vertex map."""
    offsets = np.asarray(offsets, dtype=np.int64)
    cell_vertices = np.asarray(cell_vertices, dtype=np.int64)
    n_cells = len(offsets) - 1
    incidence = sps.csr_matrix(
        (np.ones(len(cell_vertices), dtype=np.int32), cell_vertices, offsets),
        shape=(n_cells, n_points),
    )
    pattern = (incidence.T @ incidence).tocsr()
    pattern = _drop_self(pattern, np.arange(n_points))
    return Neighbourhoods.from_matrix(pattern)


class NeighbourSource(Protocol):
    """Where neighbourhoods come from; `level` > 0 asks for a larger one (growth)."""

    def neighbourhoods(self, points: np.ndarray, rows: np.ndarray, level: int) -> Neighbourhoods:
        """Neighbours (indices into points, excluding the row itself) of points[rows]."""
        ...


@dataclass(frozen=True)
class MeshAdjacency:
    """Neighbours from a mesh graph (e.g. vertices sharing a cell): `rings`-ring, +1 per growth."""

    graph: Neighbourhoods  # square: one row per point, over all points
    rings: int = 1

    def __post_init__(self):
        if self.rings < 1:
            raise SPError(f"MeshAdjacency: rings must be >= 1, got {self.rings}")

    def neighbourhoods(self, points: np.ndarray, rows: np.ndarray, level: int) -> Neighbourhoods:
        n = len(points)
        if self.graph.n_rows != n:
            raise SPError(
                f"MeshAdjacency: graph has {self.graph.n_rows} rows but there are {n} points"
            )
        step = self.graph.to_matrix(n).astype(np.int32) + sps.identity(
            n, dtype=np.int32, format="csr"
        )
        reach = step[rows]
        for _ in range(self.rings + level - 1):
            reach = (reach @ step).astype(bool).astype(np.int32)
        return Neighbourhoods.from_matrix(_drop_self(reach.tocsr(), rows))


@dataclass(frozen=True)
class KNearest:
    """The k nearest other points (Euclidean, KD-tree); growth doubles k."""

    k: int

    def __post_init__(self):
        if self.k < 1:
            raise SPError(f"KNearest: k must be >= 1, got {self.k}")

    def neighbourhoods(self, points: np.ndarray, rows: np.ndarray, level: int) -> Neighbourhoods:
        k = min(self.k * 2**level, len(points) - 1)
        _, idx = cKDTree(points).query(points[rows], k=k + 1)
        idx = np.asarray(idx).reshape(len(rows), k + 1)
        # Drop the point itself wherever it appears (ties may put it second), keep k others.
        keep = idx != rows[:, None]
        keep &= np.cumsum(keep, axis=1) <= k
        indices = idx[keep]
        indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        return Neighbourhoods.from_matrix(
            sps.csr_matrix(
                (np.ones(len(indices), bool), indices, indptr), shape=(len(rows), len(points))
            )
        )


@dataclass(frozen=True)
class Radius:
    """All other points within distance r (KD-tree); growth doubles r."""

    r: float

    def __post_init__(self):
        if not self.r > 0:
            raise SPError(f"Radius: r must be > 0, got {self.r}")

    def neighbourhoods(self, points: np.ndarray, rows: np.ndarray, level: int) -> Neighbourhoods:
        lists = cKDTree(points).query_ball_point(points[rows], r=self.r * 2**level)
        counts = np.array([len(a) for a in lists], dtype=np.int64)
        indices = (
            np.concatenate([np.asarray(a, dtype=np.int64) for a in lists]) if len(lists) else []
        )
        indptr = np.concatenate([[0], np.cumsum(counts)])
        pattern = sps.csr_matrix(
            (np.ones(len(indices), np.int8), indices, indptr), shape=(len(rows), len(points))
        )
        return Neighbourhoods.from_matrix(_drop_self(pattern, rows))


def mesh_vertex_graph(mesh) -> tuple[np.ndarray, Neighbourhoods, int]:
    """A DOLFINx mesh's local vertices (owned, then ghosts), their cell adjacency, and #owned.

    Vertices on a partition boundary see only the cells this rank holds (DOLFINx ghosts
    cells sharing a facet), so their 1-ring may be smaller than in serial.
    """
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx

    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim, 0)
    mesh.topology.create_connectivity(0, tdim)  # entities_to_geometry needs vertex→cell
    imap = mesh.topology.index_map(0)
    n_local = imap.size_local + imap.num_ghosts
    c2v = mesh.topology.connectivity(tdim, 0)
    geom = dolfinx.mesh.entities_to_geometry(mesh, 0, np.arange(n_local, dtype=np.int32))
    points = mesh.geometry.x[geom[:, 0], : mesh.geometry.dim].astype(np.float64)
    graph = cell_vertex_adjacency(c2v.offsets, c2v.array, n_local)
    return points, graph, imap.size_local
