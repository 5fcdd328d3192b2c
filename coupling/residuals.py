"""Residual estimators: a network's outputs at mesh points → this rank's part of the loss.

Three estimators behind one interface (:class:`Residual`), each usable with any network
from :mod:`spiking`:

- :class:`GalerkinEnergy` (ours): the network evaluated at the P1 dofs gives FE
  coefficients u; the loss is the discrete energy E(u) = ½ uᵀKu − bᵀu with the
  DOLFINx-assembled K and b. Its minimiser is the FEM solution and E(u) − E(u_h) =
  ½‖u − u_h‖²_K, so it needs no derivative of the network with respect to its input.
- :class:`SPResidual` (NeuroPINNs, Garg & Chakraborty, arXiv 2511.06081): strong-form
  residual −k Δu + κ²u − f at the owned nodes, Δ from the stochastic-projection operator
  (:mod:`coupling.sp`) applied twice.
- :class:`AutogradResidual` (vanilla PINN): the same residual by automatic
  differentiation at volume quadrature points; ANN only (spikes have no input derivative).

Every loss is an integral (quadrature or lumped-mass weights), so it does not depend on
mesh density, and it is this rank's part only: the global loss is the sum over ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .boundary import BoundaryValues


class Residual(Protocol):
    """What the trainer needs from an estimator."""

    def loss(self, net: torch.nn.Module, batch: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """This rank's loss and its named terms (each a 0-d tensor)."""

    def batch_size(self) -> int:
        """Number of rows a mini-batch draws from (0: full batch only)."""


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

    def rows(self, rows: torch.Tensor) -> SparseOperator:
        """The operator of a subset of rows (mini-batches; its transpose is built anew)."""
        return SparseOperator(_csr_rows(self.A, rows))


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
class GalerkinEnergy:
    """Discrete energy ½ uᵀKu − bᵀu of the network's FE coefficients (owned rows)."""

    K: SparseOperator  # (n_owned, n_local), unrolled blocked dofs
    b: torch.Tensor  # (n_owned,)
    boundary: BoundaryValues  # maps raw network values to dofs with Dirichlet data imposed
    x: torch.Tensor  # (n_nodes_local, gdim) coordinates where the network is evaluated
    n_owned: int

    def coefficients(self, net: torch.nn.Module) -> torch.Tensor:
        """FE coefficients on all local dofs (owned, ghosts, extra columns), unrolled."""
        return self.boundary.apply(net(self.x).reshape(-1))

    def loss(self, net, batch=None):
        u = self.coefficients(net)
        uo = u[: self.n_owned]
        energy = 0.5 * torch.dot(uo, self.K @ u) - torch.dot(self.b, uo)
        return energy, {"energy": energy}

    def batch_size(self) -> int:
        return 0


def _batch_weights(w: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Weights of a mini-batch's rows, rescaled so the batch sum estimates the full integral."""
    return w[batch] * (len(w) / len(batch))


def _total(net: torch.nn.Module, pde: torch.Tensor, **penalties
           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss pde + Σ penalty(net) over the boundary terms given (None: absent), and its terms."""
    terms = {"pde": pde}
    terms.update({name: term.penalty(net) for name, term in penalties.items() if term is not None})
    return sum(terms.values()), terms


@dataclass
class SPResidual:
    """Strong-form residual −kΔu + κ²u − f by stochastic projection at owned interior nodes."""

    laplacian: SparseOperator  # (n_centres, n_local): Σ_k G_k G_k
    centres: torch.Tensor  # (n_centres,) local node index of each residual point
    k: torch.Tensor  # (n_centres,) conductivity at the centres
    kappa2: float
    f: torch.Tensor  # (n_centres,) source at the centres
    w: torch.Tensor  # (n_centres,) lumped-mass weights (∫ of the hat function)
    boundary: BoundaryValues
    x: torch.Tensor  # (n_local, gdim) all local nodes
    soft: SoftDirichlet | None = None

    def values(self, net: torch.nn.Module) -> torch.Tensor:
        """Network values (with hard lifting when configured) at all local nodes."""
        return self.boundary.apply(net(self.x).reshape(-1))

    def loss(self, net, batch=None):
        u = self.values(net)
        lap, k, f, w, uc = self.laplacian, self.k, self.f, self.w, u[self.centres]
        if batch is not None:  # rows of a mini-batch; weights rescaled to keep an unbiased integral
            lap = lap.rows(batch)
            k, f, uc = k[batch], f[batch], uc[batch]
            w = _batch_weights(w, batch)
        r = -k * (lap @ u) + self.kappa2 * uc - f
        return _total(net, torch.sum(w * r * r), bc=self.soft)

    def batch_size(self) -> int:
        return len(self.w)


@dataclass
class AutogradResidual:
    """Strong-form residual by autograd at volume quadrature points (ANN only)."""

    x: torch.Tensor  # (n_q, gdim) quadrature points of owned cells
    k: torch.Tensor  # (n_q,) coefficient per point (piecewise constant: ∇k = 0 inside cells)
    kappa2: float
    f: torch.Tensor  # (n_q,)
    w: torch.Tensor  # (n_q,) w·|det J|
    soft: SoftDirichlet | None = None
    neumann: NeumannTerm | None = None

    def loss(self, net, batch=None):
        x, k, f, w = self.x, self.k, self.f, self.w
        if batch is not None:
            x, k, f = x[batch], k[batch], f[batch]
            w = _batch_weights(w, batch)
        x = x.detach().requires_grad_(True)
        u = net(x).reshape(-1)
        (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        lap = sum(torch.autograd.grad(grad[:, i].sum(), x, create_graph=True)[0][:, i]
                  for i in range(x.shape[1]))
        r = -k * lap + self.kappa2 * u - f
        return _total(net, torch.sum(w * r * r), bc=self.soft, neumann=self.neumann)

    def batch_size(self) -> int:
        return len(self.w)


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


@dataclass
class NeumannTerm:
    """Penalty weight · ∫_ΓN (k ∂u/∂n − h)² at boundary quadrature points (autograd)."""

    x: torch.Tensor
    n: torch.Tensor  # (n_b, gdim) outward unit normals
    k: float | torch.Tensor
    h: torch.Tensor
    w: torch.Tensor
    weight: float

    def penalty(self, net: torch.nn.Module) -> torch.Tensor:
        x = self.x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
        d = self.k * (grad * self.n).sum(1) - self.h
        return self.weight * torch.sum(self.w * d * d)


def _csr_rows(A: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows of a sparse CSR tensor (for mini-batches of residual points)."""
    return torch.index_select(A.to_sparse_coo(), 0, rows).to_sparse_csr()




