"""NeuroPINNs' strong-form residual of scalar problems by stochastic projection (SP).

Garg & Chakraborty, arXiv 2511.06081: the residual −k Δu + κ²u − f at the owned free
nodes, Δ from the SP gradient operator (:mod:`coupling.residuals.sp_derivatives`) applied
twice; the neighbours come from the mesh (vertex rings), k nearest points or a radius.
Under MPI the rows are the owned free nodes with their serial stencils: the whole mesh is
gathered to every rank (:mod:`coupling.residuals.sp_global`) and the columns extend past the
local nodes to the off-rank nodes the stencils reach (the network is evaluated there too).
Piecewise elasticity has its own module (:mod:`coupling.residuals.sp_elastic`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from coupling.boundary import BoundaryValues
from coupling.residuals import sp_derivatives as sp
from coupling.residuals.base import (
    BuildContext,
    RowSampled,
    SoftDirichlet,
    SparseOperator,
    batch_weights,
    soft_dirichlet,
    total,
)
from coupling.residuals.sp_global import compress_columns, extend_boundary, gather_mesh
from fem.errors import ConfigError
from fem.operators import assemble_owned_vector, to_torch_csr
from meshes.fenics import dolfinx, ufl


@dataclass
class SPResidual(RowSampled):
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
            w = batch_weights(w, batch)
        r = -k * (lap @ u) + self.kappa2 * uc - f
        return total(net, torch.sum(w * r * r), bc=self.soft)


def build(ctx: BuildContext) -> SPResidual:
    """NeuroPINNs' residual: Laplacian from the SP operator applied twice, at owned free nodes."""
    problem, r, ops, t = ctx.problem, ctx.spec, ctx.ops, ctx.t
    dmesh, spec = problem.dmesh, problem.strong_form
    if any(bc.type == "neumann" for bc in spec.bcs):
        raise ConfigError("residual.kind", "'sp' imposes no Neumann data (use 'galerkin', which "
                          "has them in its load vector, or 'autograd')")
    layout = ops.layout
    gdim = dmesh.mesh.geometry.dim
    x = layout.coordinates[:, :gdim]
    n_owned = layout.n_owned
    free = np.ones(n_owned, bool)
    free[ops.dirichlet_dofs[ops.dirichlet_dofs < n_owned]] = False
    centres = np.flatnonzero(free)
    boundary, cells = ctx.boundary, np.asarray(problem.V.dofmap.list, dtype=np.int64)
    comm = dmesh.mesh.comm
    if comm.size > 1:  # the whole mesh on every rank: the serial stencils (see sp_global)
        n_cells = dmesh.mesh.topology.index_map(dmesh.mesh.topology.dim).size_local
        gm = gather_mesh(comm, layout.local_to_global, n_owned, x, x, cells, n_cells,
                         np.zeros(len(cells), dtype=np.int64))
        op = sp.build_sp_operator(gm.x, _sp_source(r, gm.cells, len(gm.x)), centres,
                                  second_order=True, order=r.order)
        lap, keep = compress_columns(op.laplacian_matrix(), gm.n_local, 1)
        x = gm.x[keep]
        boundary = extend_boundary(comm, boundary, layout.local_to_global, n_owned,
                                   gm.glob[keep])
    else:
        op = sp.build_sp_operator(x, _sp_source(r, cells, len(x)), centres, second_order=True,
                                  order=r.order)
        lap = op.laplacian_matrix()  # rows: the centres
    k = _node_coefficient(problem)[centres]
    f = (spec.source[0].numpy()(layout.coordinates[centres].T) if spec.source
         else np.zeros(len(centres)))
    soft = soft_dirichlet(problem, ctx.weight, t) if ctx.mode == "soft" else None
    return SPResidual(SparseOperator(to_torch_csr(lap, dtype=ctx.dtype)),
                      torch.as_tensor(centres, dtype=torch.int64), t(k),
                      spec.kappa**2, t(f), t(ctx.lumped[centres]), boundary, t(x), soft)


def _sp_source(r, cells: np.ndarray, n_points: int):
    """The neighbour source of the sp residual: mesh rings (of the cells' node lists),
    k nearest or a radius."""
    if r.neighbours == "mesh":
        offsets = np.arange(0, cells.size + 1, cells.shape[1], dtype=np.int64)
        graph = sp.cell_vertex_adjacency(offsets, cells.reshape(-1), n_points)
        return sp.MeshAdjacency(graph, rings=r.rings)
    if r.neighbours == "knn":
        return sp.KNearest(r.k)
    return sp.Radius(r.radius)


def _node_coefficient(problem) -> np.ndarray:
    """k at owned nodes: ∫kφ_i / ∫φ_i (the cell average around a node; exact for constant k)."""
    v = ufl.TestFunction(problem.V)
    num = assemble_owned_vector(problem.k * v * problem.dx)
    den = assemble_owned_vector(dolfinx.fem.Constant(problem.V.mesh, 1.0) * v * problem.dx)
    return num / den
