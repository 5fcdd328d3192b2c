"""Control of the field between the nodes without input derivatives: a consistency term.

The Galerkin energy (and the SP residual) only sees the network at the nodes, so between
them the raw network u(x) = g̃(x) + D(x)·N(x) is free. This term pulls it towards the P1
interpolant I_h u of its own nodal values at points sampled inside every cell:

    C(u) = w / h² · Σ_q ω_q |u(x_q) − (I_h u)(x_q)|²,

with ω_q = |cell| / (points per cell) (so the sum is ∫ |u − I_h u|²), h the mean cell
diameter (so C is on the scale of the H1 seminorm of the off-node deviation and a weight w
of order one balances it against the energy for unit coefficients), and I_h u detached:
the nodal values stay decided by the energy, whose minimiser is unchanged, while the
network between them is drawn to the FE field. Only forward passes: no derivative of the
network with respect to its input (spikes have none). The points are drawn once, with
fresh random barycentric coordinates in every cell (not the validation's quadrature
points), and a step uses a random subset of ``batch`` of them (all when 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from coupling.pointwise import network_inputs, quadrature_points, random_points
from coupling.training.parallel import allreduce_scalars
from fem.errors import ConfigError

POINTS_PER_CELL = 2
POOL = 8  # fixed points per cell the per-step ones are drawn from (measured: see the tests)


@dataclass
class ConsistencyTerm:
    """w/h² · Σ_q ω_q |u(x_q) − I_h u(x_q)|² at fixed in-cell points (this rank's part)."""

    inputs: torch.Tensor  # (n, in_dim) network inputs at the points
    lift: torch.Tensor | None  # (n, bs) g̃ at the points (None: raw network)
    distance: torch.Tensor | None  # (n, bs) D at the points
    rows: torch.Tensor  # sparse CSR (n·bs, n_local_dofs): P1 interpolation
    weights: torch.Tensor  # (n,) ω_q
    scale: float  # w / h²
    batch: int = 0  # points per step (0: all)
    step: int = 0
    pool: int = 1  # points per cell in the arrays (cell-major)
    per_cell: int = 1  # of which every step uses so many per cell

    def draw(self) -> torch.Tensor | None:
        """This step's point indices (None: all points)."""
        n = len(self.weights)
        gen = torch.Generator().manual_seed(1_000_003 + self.step)
        idx = None
        if self.pool > self.per_cell:
            cells = n // self.pool
            pick = torch.randint(self.pool, (cells, self.per_cell), generator=gen)
            idx = (torch.arange(cells)[:, None] * self.pool + pick).reshape(-1)
        m = n if idx is None else len(idx)
        if self.batch and self.batch < m:
            sub = torch.randperm(m, generator=gen)[: self.batch]
            idx = sub if idx is None else idx[sub]
        return None if idx is None else idx.to(self.weights.device)

    def penalty(self, disc, net: torch.nn.Module) -> torch.Tensor:
        """The term for the current network (differentiable in the network off the nodes)."""
        bs = disc.block_size
        idx = self.draw()
        self.step += 1
        x = self.inputs if idx is None else self.inputs[idx]
        u = net(x).reshape(-1, bs)
        if self.lift is not None:
            g, d = (self.lift, self.distance) if idx is None else (self.lift[idx],
                                                                  self.distance[idx])
            u = g + d * u
        with torch.no_grad():
            nodal = disc.field(net).reshape(-1, 1)
            target = (self.rows @ nodal).reshape(-1, bs)
        w = self.weights
        if idx is not None:  # an unbiased estimate of the sum over all points
            target, w = target[idx], w[idx] * (len(self.weights) / len(idx))
        return self.scale * torch.sum(w * torch.sum((u - target) ** 2, dim=1))


def mean_cell_size(V, comm) -> float:
    """Mean cell diameter over all ranks (volume-equivalent: |cell|^(1/tdim))."""

    q = quadrature_points(V, 1)
    tdim = V.mesh.topology.dim
    vol = q.weights.reshape(len(np.unique(q.cells)) or 1, -1).sum(1) if len(q.weights) else []
    total, count = allreduce_scalars([float(np.sum(np.asarray(vol) ** (1.0 / tdim))),
                                      float(len(vol))], comm)
    return total / max(count, 1.0)


def consistency_term(disc, weight: float, seed: int = 0, per_cell: int = POINTS_PER_CELL,
                     batch: int = 0, pool: int = POOL) -> ConsistencyTerm:
    """The term of weight `weight` for a discretisation (collective): `per_cell` points per
    cell and step, drawn from `pool` fixed ones per cell."""
    if not (weight > 0):
        raise ConfigError("training.consistency_weight", f"must be > 0, got {weight!r}")
    V = disc.problem.V
    pool = max(int(pool), int(per_cell))
    pts = random_points(V, pool, seed)
    dtype, dev = disc.x_nodes.dtype, disc.x_nodes.device
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=dev)  # noqa: E731
    lifter = disc.boundary.lifter
    g = d = None
    if lifter is not None:
        g, d = (t(a) for a in lifter(pts.x))
    h = mean_cell_size(V, disc.comm)
    return ConsistencyTerm(network_inputs(disc, pts.x), g, d, pts.rows.to(dtype), t(pts.weights),
                           float(weight) / h**2, batch, pool=pool, per_cell=int(per_cell))
