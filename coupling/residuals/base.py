"""What every residual estimator shares: the protocol, sparse operators, batch weights, soft BCs.

A residual estimator turns a network's outputs at mesh points into this rank's part of
the loss (:class:`Residual`); one module per kind sits beside this one and
:func:`coupling.discretise` picks it (:data:`coupling.discretisation.RESIDUALS`):

- :mod:`~coupling.residuals.galerkin` (ours): the discrete energy ½ uᵀKu − bᵀu of the
  network's FE coefficients, whole or sampled by elements;
- :mod:`~coupling.residuals.sp` (NeuroPINNs, Garg & Chakraborty, arXiv 2511.06081): the
  strong form by stochastic projection, and :mod:`~coupling.residuals.sp_elastic` for
  piecewise elasticity;
- :mod:`~coupling.residuals.autograd` (vanilla PINN) and
  :mod:`~coupling.residuals.autograd_elastic`;
- :mod:`~coupling.residuals.spacetime` (1D heat/Burgers in x, t),
  :mod:`~coupling.residuals.parametric` (one network for a family of problems) and
  :mod:`~coupling.residuals.cfq` (PISNN's rollout windows).

Every loss is an integral (quadrature or lumped-mass weights), so it does not depend on
mesh density, and it is this rank's part only: the global loss is the sum over ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

import fem.data
from coupling.boundary import BoundaryValues, dirichlet_boundaries
from fem.errors import ConfigError


class Residual(Protocol):
    """What a discretisation needs from an estimator."""

    def loss(self, net: torch.nn.Module, batch: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """This rank's loss and its named terms (each a 0-d tensor)."""

    def sample(self, step: int, batch: int | float = 0) -> torch.Tensor | None:
        """This step's mini-batch (what `loss` takes as `batch`), or None for the whole loss.

        What a batch is belongs to the residual: rows (points) of a strong form, `batch`
        of them or that fraction; cells of the element-sampled Galerkin energy (set at
        :func:`coupling.discretise`); none for the whole Galerkin energy."""


def sample_rows(n: int, batch: int | float) -> torch.Tensor | None:
    """`batch` of n rows (a count, or that fraction) drawn at random; None: all of them."""
    rows = batch if isinstance(batch, int) else max(1, round(batch * n))
    if not batch or not n or rows >= n:
        return None
    return torch.randperm(n)[:rows]


class RowSampled:
    """Mini-batches of a strong-form residual: random rows (its points) of this rank."""

    def batch_size(self) -> int:
        """Rows a mini-batch draws from on this rank."""
        return len(self.w)

    def sample(self, step: int, batch: int | float = 0) -> torch.Tensor | None:
        """`batch` random rows (or that fraction of them), or None with no batch."""
        return sample_rows(self.batch_size(), batch)


class SparseOperator:
    """A constant sparse CSR matrix (n, m) with its transpose built once, applied to vectors.

    torch differentiates ``CSR @ dense`` by transposing the matrix on every backward pass
    (a sort of all nonzeros): on a 3D RVE that was two thirds of a Galerkin training
    step. Here the backward pass multiplies by the stored transpose instead.
    """

    def __init__(self, A: torch.Tensor) -> None:
        self.A = A
        self.At = A.to_sparse_coo().t().coalesce().to_sparse_csr()

    @property
    def shape(self) -> torch.Size:
        return self.A.shape

    def __matmul__(self, u: torch.Tensor) -> torch.Tensor:
        """A @ u for u of shape (m,) or (m, c) → (n,) or (n, c), differentiable in u."""
        if u.dim() == 1:
            return _SpMV.apply(self.A, self.At, u.unsqueeze(1)).squeeze(1)
        return _SpMV.apply(self.A, self.At, u)

    def to_device(self, device: torch.device) -> SparseOperator:
        """The same operator on `device` (its transpose rebuilt there)."""
        return SparseOperator(self.A.to(device))

    def rows(self, rows: torch.Tensor) -> SparseOperator:
        """The operator of a subset of rows (mini-batches; its transpose is built anew)."""
        return SparseOperator(csr_rows(self.A, rows))


class _SpMV(torch.autograd.Function):
    """y = A u with dy/du applied as Aᵀ g (A, Aᵀ constant sparse CSR)."""

    @staticmethod
    def forward(ctx, A, At, u):  # u: (m, c)
        ctx.At = At
        return torch.sparse.mm(A, u)

    @staticmethod
    def backward(ctx, g):
        return None, None, torch.sparse.mm(ctx.At, g.contiguous())


@dataclass
class BuildContext:
    """What a residual builder gets from :func:`coupling.discretise` (this rank's data)."""

    problem: Any  # a fem.Problem
    spec: Any  # coupling.config.ResidualSpec: the kind and its options
    mode: str  # boundary mode: "exact" | "hard" | "soft"
    weight: float  # soft-penalty weight of boundary terms
    ops: Any  # fem.operators.Operators (K, M, b on owned rows)
    boundary: BoundaryValues  # Dirichlet data on every local column
    x: np.ndarray  # (n_nodes_local, in_dim) network inputs at the nodes (with features)
    lumped: np.ndarray  # lumped-mass weights of the local dofs
    dtype: torch.dtype
    interface_input: bool = False  # the network sees the inclusion depth/distance
    batch: int | float = 0  # galerkin: cells (or that fraction) sampled per step
    seed: int = 0
    refresh: int = 20
    cluster_cells: int = 32

    def t(self, a) -> torch.Tensor:
        """`a` as a contiguous tensor of the training dtype."""
        return torch.as_tensor(np.ascontiguousarray(a), dtype=self.dtype)


def csr_rows(A: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows of a sparse CSR tensor (for mini-batches of residual points)."""
    return torch.index_select(A.to_sparse_coo(), 0, rows).to_sparse_csr()


def batch_weights(w: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Weights of a mini-batch's rows, rescaled so the batch sum estimates the full integral."""
    return w[batch] * (len(w) / len(batch))


def total(net: torch.nn.Module, pde: torch.Tensor, **penalties
           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss pde + Σ penalty(net) over the boundary terms given (None: absent), and its terms."""
    terms = {"pde": pde}
    terms.update({name: term.penalty(net) for name, term in penalties.items() if term is not None})
    return sum(terms.values()), terms


@dataclass
class SoftDirichlet:
    """Penalty weight · ∫_ΓD (u − g)² at boundary quadrature points."""

    x: torch.Tensor  # (n_b, gdim)
    g: torch.Tensor  # (n_b,)
    w: torch.Tensor  # (n_b,) facet quadrature weights
    weight: float

    def penalty(self, net: torch.nn.Module) -> torch.Tensor:
        d = net(self.x).reshape(-1) - self.g
        return self.weight * torch.sum(self.w * d * d)


def soft_dirichlet(problem, weight: float, t) -> SoftDirichlet:
    """∫_ΓD (u − g)² at boundary quadrature points of every Dirichlet boundary."""
    dmesh = problem.dmesh
    bd = fem.data.boundary_data(dmesh, degree=2)
    gdim = dmesh.mesh.geometry.dim
    xs, gs, ws = [], [], []
    for bc in dirichlet_boundaries(problem.strong_form):
        sel = (np.ones(len(bd.weights), bool) if bc.boundary == "*"
               else bd.tags == dmesh.facet_names.get(bc.boundary, -2))
        if bc.boundary not in ("*",) and bc.boundary not in dmesh.facet_names:
            raise ConfigError(f"{bc.key}.boundary", f"no facet group {bc.boundary!r} in this mesh "
                              f"(it has {sorted(dmesh.facet_names)})")
        pts = bd.points[sel]
        xs.append(pts[:, :gdim])
        gs.append(bc.value[0].numpy()(pts.T))
        ws.append(bd.weights[sel])
    return SoftDirichlet(t(np.concatenate(xs)), t(np.concatenate(gs)), t(np.concatenate(ws)),
                         weight)


def phase_values(coefficients, names: dict[str, int], tags: np.ndarray) -> np.ndarray:
    """A coefficient per point from its phase tag (a number: the same everywhere)."""
    if not isinstance(coefficients, dict):
        return np.full(len(tags), float(coefficients))
    out = np.full(len(tags), np.nan)
    for name, value in coefficients.items():
        out[tags == names[name]] = value
    return out
