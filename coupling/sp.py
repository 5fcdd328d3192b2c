"""Stochastic-projection (SP) derivatives at scattered points, as sparse operators.

NeuroPINNs (Garg & Chakraborty, arXiv 2511.06081) replace autograd — biased through
spikes — by the stochastic-projection estimate of the gradient at point i with
neighbour set N(i):

    ∇u(x_i) ≈ [Σ_j (u_j − u_i)(x_j − x_i)ᵀ] · [Σ_j (x_j − x_i)(x_j − x_i)ᵀ]⁻¹ .

Everything except the values u is geometry, so we precompute it once: for each
coordinate k a sparse matrix G_k with (∂u/∂x_k)(centres) = G_k @ u. The estimate is
exact for linear fields; second derivatives come from applying it twice,
G_k @ (G_l @ u). Points may live in any dimension d, including space-time (x, t).

Rows are *centres* (where derivatives are wanted), columns are *all* points (the
neighbours). Under MPI the columns are a rank's owned + ghost points and the rows its
owned ones, so no communication is needed to apply the operator. A neighbourhood
whose second-moment matrix is singular (too few or collinear/coplanar neighbours) is
grown (next ring / more nearest neighbours) or reported — never inverted blindly.

Typical use::

    source = MeshAdjacency(*cell_vertex_adjacency(offsets, cell_vertices, n))  # or KNearest(12)
    op = build_sp_operator(points, source, second_order=True)
    top = op.to_torch(torch.float32)
    du = top.gradient(u)        # (n_centres, c, d), differentiable in u
    lap = top.laplacian(u)      # (n_centres, c)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sps
from scipy.spatial import cKDTree


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


def _features(dxs: np.ndarray, order: int) -> np.ndarray:
    """Taylor features of scaled offsets: dx̂ (order 1, the SP projection) [+ ½ dx̂_a dx̂_b]."""
    if order == 1:
        return dxs
    d = dxs.shape[1]
    quad = [dxs[:, a] * dxs[:, b] * (0.5 if a == b else 1.0) for a in range(d) for b in range(a, d)]
    return np.column_stack([dxs, *quad])


def _moments(points: np.ndarray, rows: np.ndarray, nb: Neighbourhoods, order: int = 1):
    """Scaled Taylor features per neighbour and their second-moment matrices Σ φφᵀ per row."""
    m = len(rows)
    owner = np.repeat(np.arange(m), nb.counts())
    dx = points[nb.indices] - points[rows][owner]
    # Scale each neighbourhood to unit RMS radius so the rank test does not depend on h.
    r2 = np.bincount(owner, weights=(dx * dx).sum(axis=1), minlength=m)
    h = np.sqrt(r2 / np.maximum(nb.counts(), 1))
    h_e = h[owner]
    phi = _features(dx / np.where(h_e > 0, h_e, 1.0)[:, None], order)
    p = phi.shape[1]
    moment = np.empty((m, p, p))
    for a in range(p):
        for b in range(a, p):
            moment[:, a, b] = moment[:, b, a] = np.bincount(
                owner, weights=phi[:, a] * phi[:, b], minlength=m
            )
    return owner, phi, h, moment


def _deficient(moment: np.ndarray, h: np.ndarray, rcond: float) -> np.ndarray:
    """Rows whose moment matrix is (numerically) singular: λ_min < rcond·λ_max, or no spread."""
    lam = np.linalg.eigvalsh(moment)  # ascending, batched
    return (h <= 0) | ~(lam[:, 0] > rcond * lam[:, -1])


def _merge(m: int, parts: list[tuple[np.ndarray, Neighbourhoods]]) -> Neighbourhoods:
    """One Neighbourhoods over m rows from (row positions, neighbourhoods of those rows) pieces."""
    counts = np.zeros(m, dtype=np.int64)
    for pos, nb in parts:
        counts[pos] = nb.counts()
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.empty(indptr[-1], dtype=np.int64)
    for pos, nb in parts:
        starts = np.repeat(indptr[pos], nb.counts())
        local = np.arange(len(nb.indices)) - np.repeat(nb.indptr[:-1], nb.counts())
        indices[starts + local] = nb.indices
    return Neighbourhoods(indptr, indices)


def select_neighbourhoods(
    points: np.ndarray,
    source: NeighbourSource,
    rows: np.ndarray,
    *,
    order: int = 1,
    rcond: float = 1e-8,
    max_grow: int = 3,
) -> tuple[Neighbourhoods, int]:
    """Full-rank neighbourhoods of points[rows] (deficient ones grown) and how many grew."""
    m = len(rows)
    nb = source.neighbourhoods(points, rows, 0)
    _, _, h, moment = _moments(points, rows, nb, order)
    bad = np.flatnonzero(_deficient(moment, h, rcond))
    n_grown = len(bad)
    parts = [(np.setdiff1d(np.arange(m), bad), _subset(nb, np.setdiff1d(np.arange(m), bad)))]
    for level in range(1, max_grow + 1):
        if len(bad) == 0:
            break
        grown = source.neighbourhoods(points, rows[bad], level)
        _, _, h, moment = _moments(points, rows[bad], grown, order)
        still = _deficient(moment, h, rcond)
        parts.append((bad[~still], _subset(grown, np.flatnonzero(~still))))
        bad = bad[still]
    if len(bad):
        first = rows[bad[0]]
        raise SPError(
            f"stochastic projection: {len(bad)} of {m} centre points have a rank-deficient "
            f"neighbourhood (too few or collinear/coplanar neighbours for an order-{order} fit in "
            f"{points.shape[1]}D) even "
            f"after growing it {max_grow} times; first: point {first} at {points[first].tolist()}"
        )
    return _merge(m, parts), n_grown


def _subset(nb: Neighbourhoods, pos: np.ndarray) -> Neighbourhoods:
    """The rows `pos` of nb."""
    counts = nb.counts()[pos]
    indptr = np.concatenate([[0], np.cumsum(counts)])
    take = np.repeat(nb.indptr[pos] - indptr[:-1], counts) + np.arange(indptr[-1])
    return Neighbourhoods(indptr, nb.indices[take])


def gradient_matrices(
    points: np.ndarray, rows: np.ndarray, nb: Neighbourhoods, order: int = 1
) -> list[sps.csr_matrix]:
    """The d SP matrices G_k (len(rows) × n_points) for given full-rank neighbourhoods."""
    n, d = points.shape
    m = len(rows)
    owner, phi, h, moment = _moments(points, rows, nb, order)
    # Order 1: (Σ dx dxᵀ)⁻¹ dx_j = (Σ dx̂ dx̂ᵀ)⁻¹ dx̂_j / h, dx̂ = dx/h — the weight of u_j − u_i.
    # Order 2: the same projection onto [dx̂, ½dx̂⊗dx̂]; its first d components are h∇u.
    inverse = np.linalg.inv(moment)
    coef = np.einsum("eab,eb->ea", inverse[owner][:, :d, :], phi) / h[owner][:, None]
    cols = np.concatenate([nb.indices, rows])
    mats = []
    for k in range(d):
        diag = -np.bincount(owner, weights=coef[:, k], minlength=m)
        data = np.concatenate([coef[:, k], diag])
        rr = np.concatenate([owner, np.arange(m)])
        g = sps.csr_matrix((data, (rr, cols)), shape=(m, n))  # duplicates summed
        g.sort_indices()
        mats.append(g)
    return mats


@dataclass
class SPOperator:
    """SP derivative matrices (first, optionally second): rows = centres, columns = all points."""

    grad: list[sps.csr_matrix]  # d matrices, n_out × n_in: ∂u/∂x_k at the centres = grad[k] @ u
    centres: np.ndarray  # indices of the centre points among the n_in points
    neighbourhoods: Neighbourhoods  # used at the centres (after growth)
    n_grown: int  # centres whose neighbourhood had to be grown
    support_grad: list[sps.csr_matrix] | None = None  # n_in × n_in, rows filled where needed

    @property
    def dim(self) -> int:
        return len(self.grad)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grad[0].shape

    def gradient(self, u: np.ndarray) -> np.ndarray:
        """SP gradient of u (n_in,) or (n_in, c) at the centres: (n_out, d) or (n_out, c, d)."""
        return np.stack([g @ u for g in self.grad], axis=-1)

    def hessian_matrix(self, k: int, l: int) -> sps.csr_matrix:
        """G_k G_l (n_out × n_in): ∂/∂x_k of the SP estimate of ∂u/∂x_l, at the centres."""
        if self.support_grad is None:
            raise SPError("second derivatives need build_sp_operator(..., second_order=True)")
        return (self.grad[k] @ self.support_grad[l]).tocsr()

    def laplacian_matrix(self, dims: list[int] | None = None) -> sps.csr_matrix:
        """Σ_k G_k G_k over `dims` (default: all; e.g. the space dims of (x, t) points)."""
        dims = list(range(self.dim)) if dims is None else dims
        return sum((self.hessian_matrix(k, k) for k in dims), sps.csr_matrix(self.shape)).tocsr()

    def to_torch(
        self, dtype=None, device=None, *, second_order: bool | None = None, laplacian_dims=None
    ):
        """The operator as torch sparse CSR tensors (see TorchSPOperator)."""
        import torch

        dtype = torch.float32 if dtype is None else dtype
        stacked = sps.vstack(self.grad, format="csr")
        second = self.support_grad is not None if second_order is None else second_order
        lap = self.laplacian_matrix(laplacian_dims) if second else None
        hess = None
        if second:
            hess = sps.vstack(
                [self.hessian_matrix(k, l) for k in range(self.dim) for l in range(self.dim)],
                format="csr",
            )
        return TorchSPOperator(
            stacked=to_torch_csr(stacked, dtype, device),
            laplacian=None if lap is None else to_torch_csr(lap, dtype, device),
            hessian=None if hess is None else to_torch_csr(hess, dtype, device),
            n_out=self.shape[0],
            dim=self.dim,
        )


def build_sp_operator(
    points: np.ndarray,
    source: NeighbourSource,
    centres: np.ndarray | None = None,
    *,
    second_order: bool = False,
    order: int = 1,
    rcond: float = 1e-8,
    max_grow: int = 3,
) -> SPOperator:
    """Precompute the SP derivative matrices at `centres` (default: all points) over `points`.

    With second_order, gradient rows are also built at every neighbour of a centre so that
    G_k @ (G_l @ u) is available; under MPI those neighbours must themselves have their
    neighbourhoods on the rank (two ghost layers) for results to match a serial run.
    max_grow=0 turns growth off: a deficient neighbourhood raises SPError at once.
    order=1 is the NeuroPINNs projection (exact for linear fields). order=2 projects on the
    quadratic Taylor basis instead (our extension): first derivatives exact for quadratics,
    so G_k G_l is exact for quadratics too; plain SP applied twice is not consistent
    pointwise on irregular point sets (O(1) error where a stencil is asymmetric).
    """
    if order not in (1, 2):
        raise SPError(f"stochastic projection: order must be 1 or 2, got {order!r}")
    points = np.ascontiguousarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] == 0:
        raise SPError(
            f"stochastic projection: points must be an (n, d) array, got shape {points.shape}"
        )
    if not np.all(np.isfinite(points)):
        raise SPError("stochastic projection: points contain NaN or inf")
    n = len(points)
    centres = np.arange(n) if centres is None else np.asarray(centres, dtype=np.int64)
    if centres.ndim != 1 or (len(centres) and (centres.min() < 0 or centres.max() >= n)):
        raise SPError(
            f"stochastic projection: centres must be indices in [0, {n}), got {centres!r:.80}"
        )
    kw = dict(order=order, rcond=rcond, max_grow=max_grow)
    nb, n_grown = select_neighbourhoods(points, source, centres, **kw)
    grad = gradient_matrices(points, centres, nb, order)
    support_grad = None
    if second_order:
        support = np.union1d(centres, nb.indices)
        snb, _ = select_neighbourhoods(points, source, support, **kw)
        place = sps.csr_matrix(
            (np.ones(len(support)), (support, np.arange(len(support)))), shape=(n, len(support))
        )
        support_grad = [(place @ g).tocsr() for g in gradient_matrices(points, support, snb, order)]
    return SPOperator(grad, centres, nb, n_grown, support_grad)


def to_torch_csr(matrix: sps.spmatrix, dtype=None, device=None):
    """A scipy sparse matrix as a torch sparse CSR tensor of the given dtype/device."""
    import torch

    m = sps.csr_matrix(matrix)
    m.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": known, and what we want
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float64)).to(dtype or torch.float32),
            size=m.shape,
            device=device,
            check_invariants=False,
        )


@dataclass
class TorchSPOperator:
    """SP derivatives of torch tensors u (n_in, c), differentiable in u (sparse CSR @ dense)."""

    stacked: object  # torch sparse CSR, (d·n_out) × n_in: the G_k one above the other
    laplacian: object | None  # n_out × n_in
    hessian: object | None  # (d·d·n_out) × n_in, block (k, l) = G_k G_l
    n_out: int
    dim: int

    def gradient(self, u):
        """∂u/∂x_k at the centres as (n_out, c, d) (or (n_out, d) for 1-D u), one sparse product."""
        import torch

        flat = u.unsqueeze(-1) if u.dim() == 1 else u
        out = torch.sparse.mm(self.stacked, flat).reshape(self.dim, self.n_out, flat.shape[1])
        out = out.permute(1, 2, 0)
        return out[:, 0, :] if u.dim() == 1 else out

    def derivative(self, u, k: int):
        """∂u/∂x_k at the centres, shaped like u's rows."""
        return self.gradient(u)[..., k]

    def second_derivatives(self, u):
        """G_k G_l u at the centres as (n_out, c, d, d) (or (n_out, d, d) for 1-D u)."""
        import torch

        if self.hessian is None:
            raise SPError("second derivatives need an operator built with second_order=True")
        flat = u.unsqueeze(-1) if u.dim() == 1 else u
        out = torch.sparse.mm(self.hessian, flat).reshape(
            self.dim, self.dim, self.n_out, flat.shape[1]
        )
        out = out.permute(2, 3, 0, 1)
        return out[:, 0] if u.dim() == 1 else out

    def laplacian_of(self, u):
        """Σ_k G_k G_k u at the centres, shaped (n_out, c) or (n_out,)."""
        import torch

        if self.laplacian is None:
            raise SPError("the Laplacian needs an operator built with second_order=True")
        flat = u.unsqueeze(-1) if u.dim() == 1 else u
        out = torch.sparse.mm(self.laplacian, flat)
        return out[:, 0] if u.dim() == 1 else out


def mesh_vertex_graph(mesh) -> tuple[np.ndarray, Neighbourhoods, int]:
    """A DOLFINx mesh's local vertices (owned, then ghosts), their cell adjacency, and #owned.

    Vertices on a partition boundary see only the cells this rank holds (DOLFINx ghosts
    cells sharing a facet), so their 1-ring may be smaller than in serial.
    """
    from meshes._dolfinx import dolfinx

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
