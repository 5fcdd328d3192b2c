"""The float finite-volume update beside PISNN's C-LIF solver: the same scheme, no quanta.

A C-LIF rollout (:class:`spiking.cfq.CLIFSolver`, Zhang & Wang, arXiv 2511.21784) moves
integer quanta driven by a learned two-point flux. The classical scheme it imitates is the
explicit finite-volume update on the same geometry, boundary data, sources and Δt,

    u_i ← u_i + Δt/V_i · [ −Σ_{f = (i, j)} F_f + Σ_{f = (j, i)} F_f − Σ_{b ∈ i} F_b + s_i V_i ],

in float64 with no quantisation, where F_f = F(u_i, u_j, A/d) is the flux from i to j
(value facets use the ghost value as u_j; flux facets add their inward density · area).
With ``flux=None`` it is linear diffusion, F = k·(A/d)·(u_i − u_j): the standard
two-point-flux FV scheme with the true diffusivity, the baseline a trained flux network is
compared with. Any callable F(a, b, w) — a :class:`spiking.FluxNet` included — can be
given instead (the same network without quanta).

Torch + NumPy only; reads the solver's public buffers (no DOLFINx, no other package).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .cfq import CLIFSolver

Flux = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def linear_flux(diffusivity: float = 1.0) -> Flux:
    """The two-point diffusive flux F(a, b, w) = k·w·(a − b) (w = A/d)."""
    k = float(diffusivity)
    return lambda a, b, w: k * w * (a - b)


@torch.no_grad()
def fv_step(solver: CLIFSolver, u: torch.Tensor, t: float, flux: Flux) -> torch.Tensor:
    """One explicit float FV step of the cell values u (n,) at time t; returns the new u."""
    s = solver
    change = torch.zeros_like(u)  # amount per unit time entering each cell
    f = flux(u[s.i], u[s.j], s.w)
    change.index_add_(0, s.i, -f)
    change.index_add_(0, s.j, f)
    if len(s.b_val) or len(s.b_flx):
        data = s.bc_data(float(t)).to(u.dtype)
        if len(s.b_val):  # ghost value on the far side of the facet: outward flux
            cells = s.b_cells[s.b_val]
            change.index_add_(0, cells, -flux(u[cells], data[s.b_val], s.b_w[s.b_val]))
        if len(s.b_flx):  # prescribed inward flux density times the facet area
            change.index_add_(0, s.b_cells[s.b_flx], data[s.b_flx] * s.b_area[s.b_flx])
    if s.source is not None:
        change += s.source(float(t)).to(u.dtype) * s.volumes
    return u + s.dt * change / s.volumes


def fv_rollout(solver: CLIFSolver, u0: torch.Tensor, steps: int, *, t0: float = 0.0,
               flux: Flux | None = None, diffusivity: float = 1.0,
               callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """`steps` float FV steps from u0 at t0 on the solver's geometry, data and Δt; calls
    callback(step, u) after each step; returns u. flux=None: linear diffusion (k given)."""
    flux = flux or linear_flux(diffusivity)
    u = torch.as_tensor(u0, dtype=torch.float64).clone()
    for n in range(int(steps)):
        u = fv_step(solver, u, t0 + n * solver.dt, flux)
        if callback is not None:
            callback(n + 1, u)
    return u
