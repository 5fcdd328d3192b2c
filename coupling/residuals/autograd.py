"""The vanilla PINN's residual of scalar problems: the strong form by automatic differentiation.

−k Δu + κ²u − f at volume quadrature points of the owned cells, soft Dirichlet data and
Neumann data (k ∂u/∂n = h) as penalties at boundary quadrature points. ANN only: spikes
have no input derivative. Piecewise elasticity: :mod:`coupling.residuals.autograd_elastic`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import fem.data
from coupling.boundary import dirichlet_boundaries
from coupling.residuals.base import (
    BuildContext,
    RowSampled,
    SoftDirichlet,
    batch_weights,
    phase_values,
    soft_dirichlet,
    total,
)


@dataclass
class AutogradResidual(RowSampled):
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
            w = batch_weights(w, batch)
        x = x.detach().requires_grad_(True)
        u = net(x).reshape(-1)
        (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        lap = sum(torch.autograd.grad(grad[:, i].sum(), x, create_graph=True)[0][:, i]
                  for i in range(x.shape[1]))
        r = -k * lap + self.kappa2 * u - f
        return total(net, torch.sum(w * r * r), bc=self.soft, neumann=self.neumann)


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


def build(ctx: BuildContext) -> AutogradResidual:
    """Vanilla PINN residual at volume quadrature points, soft Dirichlet, Neumann by autograd."""
    problem, r, t, weight = ctx.problem, ctx.spec, ctx.t, ctx.weight
    dmesh, spec = problem.dmesh, problem.strong_form
    gdim = dmesh.mesh.geometry.dim
    qd = fem.data.quadrature_data(dmesh, degree=r.quadrature_degree)
    k = phase_values(spec.coefficients, qd.phase_names, qd.phase)
    f = (spec.source[0].numpy()(qd.points.T) if spec.source else np.zeros(len(qd.weights)))
    soft = soft_dirichlet(problem, weight, t) if dirichlet_boundaries(spec) else None
    nbcs = [bc for bc in spec.bcs if bc.type == "neumann"]
    neumann = _neumann(problem, nbcs, weight, t) if nbcs else None
    return AutogradResidual(t(qd.points[:, :gdim]), t(k), spec.kappa**2, t(f),
                            t(qd.weights), soft, neumann)


def _neumann(problem, nbcs, weight: float, t) -> NeumannTerm:
    """∫_ΓN (k ∂u/∂n − h)² at boundary quadrature points of the Neumann boundaries."""
    dmesh, spec = problem.dmesh, problem.strong_form
    gdim, tdim = dmesh.mesh.geometry.dim, dmesh.tdim
    bd = fem.data.boundary_data(dmesh, degree=2)
    f2c = dmesh.mesh.topology.connectivity(tdim - 1, tdim)
    cell_phase = fem.data.cell_tag_array(dmesh, dmesh.mesh.topology.index_map(tdim).size_local)
    xs, ns, hs, ws, ks = [], [], [], [], []
    for bc in nbcs:
        sel = bd.tags == dmesh.facet_names.get(bc.boundary, -2)
        xs.append(bd.points[sel][:, :gdim])
        ns.append(bd.normals[sel][:, :gdim])
        hs.append(bc.value[0].numpy()(bd.points[sel].T))
        ws.append(bd.weights[sel])
        cells = np.array([f2c.links(f)[0] for f in bd.facets[sel]], dtype=np.int64)
        ks.append(phase_values(spec.coefficients, dmesh.cell_names, cell_phase[cells]))
    cat = lambda parts: t(np.concatenate(parts))  # noqa: E731
    return NeumannTerm(cat(xs), cat(ns), cat(ks), cat(hs), cat(ws), weight)
