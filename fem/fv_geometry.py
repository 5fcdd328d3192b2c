"""Finite-volume geometry: cells as control volumes, facets as the interfaces between them.

The data a conservative (finite-volume) solver needs of a partition — PISNN's C-LIF
solver (:class:`spiking.cfq.CLIFSolver`, Zhang & Wang, arXiv 2511.21784) reads exactly
these arrays: cell volumes and centroids; interior facets as pairs (i, j) of the cells
they join (normal from i to j) with their areas and centroid-to-centroid distances;
boundary facets with their cell, area, centroid, cell-centroid-to-facet-centroid
distance and tag. Two-point flux weights are area / distance.

Sources of an :class:`FVGeometry`: :func:`grid_geometry` (uniform Cartesian boxes, here)
and :func:`fem.volumes.finite_volumes` (any affine simplex DOLFINx mesh). This module
needs NumPy only (no DOLFINx), so grids work wherever NumPy does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class FVGeometry:
    """A finite-volume partition: cells (control volumes) and the facets between them.

    Interior facet f joins cells ``pairs[f] = (i, j)``; its normal points from i to j.
    Boundary facet b belongs to cell ``boundary_cells[b]`` and carries the tag
    ``boundary_tags[b]`` (names in ``boundary_names``). Distances are centroid to
    centroid (interior) and cell centroid to facet centroid (boundary).
    """

    volumes: np.ndarray  # (n,)
    centroids: np.ndarray  # (n, gdim)
    pairs: np.ndarray  # (m, 2) int64
    areas: np.ndarray  # (m,)
    distances: np.ndarray  # (m,)
    boundary_cells: np.ndarray  # (k,) int64
    boundary_areas: np.ndarray  # (k,)
    boundary_distances: np.ndarray  # (k,)
    boundary_centroids: np.ndarray  # (k, gdim)
    boundary_tags: np.ndarray  # (k,) int
    boundary_names: dict[str, int] = field(default_factory=dict)
    cell_tags: np.ndarray | None = None  # (n,) int, phases (optional)
    cell_names: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        self.boundary_cells = np.asarray(self.boundary_cells, dtype=np.int64)
        n = len(self.volumes)
        if np.any(np.asarray(self.volumes) <= 0):
            raise ValueError("FVGeometry: every cell volume must be positive")
        if len(self.pairs) and (self.pairs.min() < 0 or self.pairs.max() >= n):
            raise ValueError("FVGeometry: pairs index cells out of range")
        if np.any(self.pairs[:, 0] == self.pairs[:, 1]):
            raise ValueError("FVGeometry: a facet joins a cell to itself")
        if np.any(np.asarray(self.distances) <= 0) or np.any(np.asarray(self.areas) <= 0):
            raise ValueError("FVGeometry: facet areas and distances must be positive")

    @property
    def num_cells(self) -> int:
        """Number of cells (control volumes)."""
        return len(self.volumes)

    @property
    def gdim(self) -> int:
        """Geometric dimension of the centroids."""
        return self.centroids.shape[1]

    def boundary(self, name: str) -> np.ndarray:
        """Indices (into the boundary arrays) of the boundary facets tagged `name`."""
        if name == "*":
            return np.arange(len(self.boundary_cells))
        if name not in self.boundary_names:
            raise KeyError(f"no boundary {name!r}; this geometry has {sorted(self.boundary_names)}")
        return np.flatnonzero(self.boundary_tags == self.boundary_names[name])


def grid_geometry(n: Sequence[int], lower: Sequence[float] = (), upper: Sequence[float] = ()
                  ) -> FVGeometry:
    """Uniform Cartesian grid of n[0] x n[1] (x n[2]) cells on a box (default the unit box).

    Boundary facets are named x0, x1 (y0, y1, z0, z1) as on the DOLFINx meshes.
    """
    n = [int(k) for k in n]
    d = len(n)
    if d not in (1, 2, 3) or any(k < 1 for k in n):
        raise ValueError(f"grid: expected 1 to 3 positive cell counts, got {n}")
    lo = np.asarray(lower or [0.0] * d, dtype=float)
    hi = np.asarray(upper or [1.0] * d, dtype=float)
    if lo.shape != (d,) or hi.shape != (d,) or np.any(hi <= lo):
        raise ValueError(f"grid: bad box {lo.tolist()} .. {hi.tolist()}")
    h = (hi - lo) / n
    idx = np.arange(math.prod(n)).reshape(n)  # C order: idx[i, j, k]
    axes = [lo[a] + (np.arange(n[a]) + 0.5) * h[a] for a in range(d)]
    centroids = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    volumes = np.full(idx.size, float(np.prod(h)))
    pairs, areas, dists = [], [], []
    b_cells, b_area, b_dist, b_cent, b_tag = [], [], [], [], []
    names = {}
    for a in range(d):
        area = float(np.prod(np.delete(h, a)))
        left = np.take(idx, np.arange(n[a] - 1), axis=a).ravel()
        right = np.take(idx, np.arange(1, n[a]), axis=a).ravel()
        pairs.append(np.stack([left, right], axis=1))
        areas.append(np.full(len(left), area))
        dists.append(np.full(len(left), h[a]))
        for side, layer in ((0, 0), (1, n[a] - 1)):
            name = f"{'xyz'[a]}{side}"
            names[name] = len(names) + 1
            cells = np.take(idx, [layer], axis=a).ravel()
            cent = centroids[cells].copy()
            cent[:, a] = lo[a] if side == 0 else hi[a]
            b_cells.append(cells)
            b_area.append(np.full(len(cells), area))
            b_dist.append(np.full(len(cells), h[a] / 2))
            b_cent.append(cent)
            b_tag.append(np.full(len(cells), names[name]))
    return FVGeometry(volumes, centroids, np.concatenate(pairs), np.concatenate(areas),
                      np.concatenate(dists), np.concatenate(b_cells), np.concatenate(b_area),
                      np.concatenate(b_dist), np.concatenate(b_cent), np.concatenate(b_tag),
                      names, np.ones(idx.size, dtype=np.int64), {"domain": 1})


def grid_cell_average(geo: FVGeometry, f: Callable[[np.ndarray], np.ndarray], h: Sequence[float],
                      order: int = 3) -> np.ndarray:
    """Cell averages of f(x) (x of shape (3, P)) on a grid of spacing h, tensor Gauss rule."""
    xi, wi = np.polynomial.legendre.leggauss(order)
    d = geo.gdim
    pts = np.stack(np.meshgrid(*[xi] * d, indexing="ij"), axis=-1).reshape(-1, d)
    wts = np.prod(np.stack(np.meshgrid(*[wi] * d, indexing="ij"), axis=-1).reshape(-1, d), axis=1)
    wts = wts / wts.sum()
    x = geo.centroids[:, None, :] + 0.5 * pts[None, :, :] * np.asarray(h)[None, None, :]
    flat = np.zeros((3, x.shape[0] * x.shape[1]))
    flat[:d] = x.reshape(-1, d).T
    return f(flat).reshape(x.shape[0], x.shape[1]) @ wts


def stable_dt(geometry: FVGeometry, diffusivity: float, safety: float = 0.45) -> float:
    """Explicit-Euler stability bound of two-point-flux diffusion, times `safety`.

    Δt ≤ V_i / (k Σ_f w_f) for every cell i, w_f = area / distance over its facets
    (boundary facets included, as they are when they carry a value).
    """
    acc = np.zeros(geometry.num_cells)
    w = geometry.areas / geometry.distances
    np.add.at(acc, geometry.pairs[:, 0], w)
    np.add.at(acc, geometry.pairs[:, 1], w)
    np.add.at(acc, geometry.boundary_cells, geometry.boundary_areas / geometry.boundary_distances)
    return float(safety * np.min(geometry.volumes / (diffusivity * acc)))
