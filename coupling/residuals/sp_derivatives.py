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
grown (next ring / more nearest neighbours) or reported — never inverted blindly. The
neighbour lists and their sources live in :mod:`coupling.residuals.sp_neighbours`
(re-exported here).

Typical use (exact for a linear field, a Laplacian with ``second_order=True``):

>>> import numpy as np, torch
>>> pts = np.random.default_rng(0).random((60, 2))
>>> op = build_sp_operator(pts, KNearest(8), second_order=True)
>>> u = 3 * pts[:, 0] - 2 * pts[:, 1]
>>> np.allclose(op.gradient(u), [3.0, -2.0])
True
>>> top = op.to_torch(torch.float64)
>>> top.gradient(torch.from_numpy(u)).shape, top.laplacian_of(torch.from_numpy(u)).shape
(torch.Size([60, 2]), torch.Size([60]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps

# re-exported: the neighbour sources are part of this module's API
from coupling.residuals.sp_neighbours import (
    KNearest,
    MeshAdjacency,
    Neighbourhoods,
    NeighbourSource,
    Radius,
    SPError,
    cell_vertex_adjacency,
    mesh_vertex_graph,
)
from fem.operators import to_torch_csr

__all__ = [
    "KNearest", "MeshAdjacency", "NeighbourSource", "Neighbourhoods", "Radius", "SPError",
    "SPOperator", "TorchSPOperator", "build_sp_operator", "cell_vertex_adjacency",
    "gradient_matrices", "mesh_vertex_graph", "select_neighbourhoods",
]


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
        import torch  # deferred: loads torch

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
            stacked=to_torch_csr(stacked, dtype or torch.float32, device),
            laplacian=None if lap is None else to_torch_csr(lap, dtype or torch.float32, device),
            hessian=None if hess is None else to_torch_csr(hess, dtype or torch.float32, device),
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
        import torch  # deferred: loads torch

        flat = u.unsqueeze(-1) if u.dim() == 1 else u
        out = torch.sparse.mm(self.stacked, flat).reshape(self.dim, self.n_out, flat.shape[1])
        out = out.permute(1, 2, 0)
        return out[:, 0, :] if u.dim() == 1 else out

    def derivative(self, u, k: int):
        """∂u/∂x_k at the centres, shaped like u's rows."""
        return self.gradient(u)[..., k]

    def second_derivatives(self, u):
        """G_k G_l u at the centres as (n_out, c, d, d) (or (n_out, d, d) for 1-D u)."""
        import torch  # deferred: loads torch

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
        import torch  # deferred: loads torch

        if self.laplacian is None:
            raise SPError("the Laplacian needs an operator built with second_order=True")
        flat = u.unsqueeze(-1) if u.dim() == 1 else u
        out = torch.sparse.mm(self.laplacian, flat)
        return out[:, 0] if u.dim() == 1 else out
