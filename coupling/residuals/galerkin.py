"""The Galerkin energy (ours): the network's nodal values as FE coefficients, E = ½ uᵀKu − bᵀu.

The network evaluated at the dofs of the problem's Lagrange space gives FE coefficients u;
the loss is the discrete energy E(u) = ½ uᵀKu − bᵀu with the DOLFINx-assembled K and b.
Its minimiser is the FEM solution and E(u) − E(u_h) = ½‖u − u_h‖²_K, so it needs no
derivative of the network with respect to its input (:class:`GalerkinEnergy`).

The degree is the space's (``[problem] degree``, default 1). P1: the dofs are the mesh
vertices. P2: the vertices and the edge midpoints (V's dof coordinates; 6 per triangle,
10 per tetrahedron), K and b are the P2 operators, the element tensors are 6×6 / 10×10
(30×30 for P2 elasticity in 3D), and the boundary map (exact dofs, ADF lift g̃ + D·N, or
the harmonic lift solved in P2) is evaluated at the same points: nothing else changes,
since all of it reads V. A P2 energy has the P2 FEM solution as its minimiser.
Training steps of other kinds read the public ``K``, ``b`` (owned rows) and ``x`` (the
network inputs at the local dof nodes) of :class:`GalerkinEnergy`.

With ``batch`` the energy is a sum over elements, sampled (:class:`ElementGalerkinEnergy`):
E(u) = Σ_e [½ u_eᵀ K_e u_e − b_eᵀ u_e] over cells e (element tensors from
:func:`fem.elements.element_operators`, Dirichlet dofs imposed). A step keeps each
*cluster* of cells (the cells whose centroids share a bin of a uniform grid, about
``cluster_cells`` each; 1 = single cells) with probability p and evaluates the network
only at the nodes of the kept cells S; the estimate (1/p) Σ_{e∈S} E_e is unbiased for E
and for its gradient. Clusters keep the touched nodes near a fraction p of all nodes
(independent cells of a tetrahedral mesh would touch most nodes: a node lies in ~20
cells). Clusters are drawn from a generator seeded by (seed, step) and identified by
geometry alone, so every rank decides its own cells independently, a resumed run redraws
the same cells, and 1 and N ranks use the same sample.

Plain sampling keeps its variance at the solution (each element's residual K_e u_e − b_e
is not zero there, only their sum is), so SGD stalls at a noise floor. With
``refresh = R`` a control variate removes it: every R steps a snapshot ū of the network
field is taken (one forward pass at all nodes, no gradient), with its global energy E(ū)
and gradient g = Kū − b (summed over all ranks' cells). Since E is quadratic,

    E(u) = E(ū) + Σ_e [h_eᵀ(u_e − ū_e) + ½ (u_e − ū_e)ᵀ K_e (u_e − ū_e)],  h_e,i = g_i / c_i,

with c_i the number of cells holding dof i; sampling that sum of cell terms is still
unbiased, and its variance vanishes as u → ū → u_h.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from coupling.boundary import BoundaryValues
from coupling.residuals.base import BuildContext, SparseOperator


@dataclass
class GalerkinEnergy:
    """Discrete energy ½ uᵀKu − bᵀu of the network's FE coefficients (owned rows).

    ``K`` (rows: owned dofs, columns: every local dof, unrolled blocked), ``b`` and ``x``
    (network inputs at the local dof nodes: P1 vertices, or P2 vertices and edge midpoints)
    are public: ``u = boundary.apply(net(x).reshape(-1))`` are the coefficients, and
    ``K @ u − b`` is this rank's rows of the energy gradient with respect to them.
    """

    K: SparseOperator  # (n_owned, n_local), unrolled blocked dofs, no Dirichlet elimination
    b: torch.Tensor  # (n_owned,)
    boundary: BoundaryValues  # maps raw network values to dofs with Dirichlet data imposed
    x: torch.Tensor  # (n_nodes_local, in_dim) network inputs at the dof nodes (P1 / P2)
    n_owned: int
    degree: int = 1  # Lagrange degree of the space whose dofs x are

    def coefficients(self, net: torch.nn.Module) -> torch.Tensor:
        """FE coefficients on all local dofs (owned, ghosts, extra columns), unrolled."""
        return self.boundary.apply(net(self.x).reshape(-1))

    def loss(self, net, batch=None):
        u = self.coefficients(net)
        uo = u[: self.n_owned]
        energy = 0.5 * torch.dot(uo, self.K @ u) - torch.dot(self.b, uo)
        return energy, {"energy": energy}

    def sample(self, step: int, batch: int | float = 0) -> None:
        """The whole energy every step (element batches: :class:`ElementGalerkinEnergy`)."""
        return None


@dataclass
class ElementGalerkinEnergy:
    """The Galerkin energy as a sum over this rank's owned cells, optionally sampled."""

    K: torch.Tensor  # (n_cells, m, m) element stiffness
    b: torch.Tensor  # (n_cells, m) element load
    dofs: torch.Tensor  # (n_cells, m) local unrolled dofs
    cluster: torch.Tensor  # (n_cells,) cluster id of each cell (rank-count independent)
    n_clusters: int  # clusters over all ranks
    x: torch.Tensor  # (n_nodes, in_dim) network inputs at V's local dof nodes
    boundary: BoundaryValues  # Dirichlet data on V's local dofs
    block_size: int
    fraction: float = 1.0  # p: the probability a cluster enters a step's sample
    seed: int = 0
    refresh: int = 0  # steps between control-variate snapshots (0: plain sampling)
    operators: object = None  # fem.elements.ElementOperators (for the snapshot's sums)
    degree: int = 1  # Lagrange degree (K_e of a P2 tetrahedron: 10·bs × 10·bs)
    _snapshot: dict = field(default_factory=dict, repr=False)

    def sample(self, step: int, batch: int | float = 0) -> torch.Tensor:
        """This rank's cells of step `step`'s sample (local indices; the fraction was set at
        construction, so `batch` is not read)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        keep = torch.rand(self.n_clusters, generator=gen, dtype=torch.float64) < self.fraction
        if self.refresh and step % self.refresh == 0:
            self._snapshot["due"] = True
        return torch.nonzero(keep.to(self.cluster.device)[self.cluster]).reshape(-1)

    def field(self, net: torch.nn.Module, nodes: torch.Tensor) -> torch.Tensor:
        """The network at local `nodes` with the boundary data imposed, (k, bs)."""
        bs = self.block_size
        raw = net(self.x[nodes]).reshape(len(nodes), bs)
        comp = torch.arange(bs, device=nodes.device)
        return self.boundary.apply_at(raw, nodes[:, None] * bs + comp)

    def loss(self, net: torch.nn.Module, batch: torch.Tensor | None = None):
        """Energy estimate of the sampled cells (the exact energy without a batch)."""
        if batch is None:
            return self._exact(net)
        if self.refresh and (self._snapshot.get("due") or "u" not in self._snapshot):
            self._take_snapshot(net)
        if len(batch) == 0:  # nothing sampled on this rank: a zero that still has a gradient
            zero = 0.0 * net(self.x[:1]).sum()
            energy = zero + (self._snapshot["energy"] if self.refresh else 0.0)
            return energy, {"energy": energy}
        dofs = self.dofs[batch]
        nodes, where = torch.unique(dofs[:, :: self.block_size] // self.block_size,
                                    return_inverse=True)
        u_e = self.field(net, nodes)[where].reshape(len(dofs), -1)  # (n_s, m)
        K = self.K[batch]
        if not self.refresh:
            energy = (0.5 * torch.einsum("ci,cij,cj->", u_e, K, u_e)
                      - torch.sum(self.b[batch] * u_e)) / self.fraction
            return energy, {"energy": energy}
        snap = self._snapshot
        d = u_e - snap["u"][dofs]
        cells = torch.sum(snap["h"][batch] * d) + 0.5 * torch.einsum("ci,cij,cj->", d, K, d)
        energy = snap["energy"] + cells / self.fraction
        return energy, {"energy": energy}

    def _exact(self, net: torch.nn.Module):
        nodes = torch.arange(len(self.x), device=self.x.device)
        u = self.field(net, nodes).reshape(-1)
        u_e = u[self.dofs]
        energy = 0.5 * torch.einsum("ci,cij,cj->", u_e, self.K, u_e) - torch.sum(self.b * u_e)
        return energy, {"energy": energy}

    def _take_snapshot(self, net: torch.nn.Module) -> None:
        """ū, this rank's share of E(ū) and the per-cell gradient shares h_e (no gradient)."""
        ops = self.operators
        with torch.no_grad():
            u = self.field(net, torch.arange(len(self.x), device=self.x.device)).reshape(-1)
            u_e = u[self.dofs]
            Ku = torch.einsum("cij,cj->ci", self.K, u_e)
            energy = 0.5 * torch.sum(u_e * Ku) - torch.sum(self.b * u_e)
        if "counts" not in self._snapshot:
            ones = np.ones(tuple(self.dofs.shape))
            self._snapshot["counts"] = torch.as_tensor(ops.sum_to_dofs(ones), dtype=u.dtype,
                                                       device=u.device)
        g = torch.as_tensor(ops.sum_to_dofs((Ku - self.b).cpu().numpy()), dtype=u.dtype,
                            device=u.device)
        counts = self._snapshot["counts"]
        self._snapshot.update(u=u.detach(), energy=energy,
                              h=(g / counts.clamp(min=1))[self.dofs], due=False)

    def batch_size(self) -> int:
        """Cells on this rank (what a sample draws from)."""
        return len(self.K)


def build(ctx: BuildContext) -> GalerkinEnergy | ElementGalerkinEnergy:
    """The whole energy on this rank's rows, or its element-sampled estimate with a batch."""
    layout = ctx.ops.layout
    n_fun, bs = layout.n_function, layout.block_size
    if ctx.batch:
        return _element_energy(ctx, ctx.boundary.restrict(n_fun), ctx.t(ctx.x[: n_fun // bs]))
    return GalerkinEnergy(SparseOperator(ctx.ops.K.to(ctx.dtype)), ctx.ops.b.to(ctx.dtype),
                          ctx.boundary, ctx.t(ctx.x), layout.n_owned, ctx.ops.degree)


def _element_energy(ctx: BuildContext, boundary: BoundaryValues, x: torch.Tensor
                    ) -> ElementGalerkinEnergy:
    """The galerkin energy over elements, sampling `batch` cells (or that fraction) a step."""
    from fem.elements import cell_clusters, element_operators  # deferred: only batched runs

    el = element_operators(ctx.problem)
    batch = ctx.batch
    fraction = min(1.0, batch / el.n_global_cells) if batch >= 1 else float(batch)
    ids, n_clusters = cell_clusters(el, ctx.cluster_cells)
    return ElementGalerkinEnergy(ctx.t(el.K), ctx.t(el.b), torch.as_tensor(el.dofs.copy()),
                                 torch.as_tensor(ids), n_clusters, x, boundary, el.block_size,
                                 fraction, ctx.seed, ctx.refresh, el, ctx.ops.degree)
