# # PISNN: a conservative spiking solver for 1D heat
#
# Zhang & Wang, "Physics-informed spiking neural networks with conservative flux
# quantization" (arXiv 2511.21784), with neurofem's public pieces: the finite-volume
# geometry from `fem`, the C-LIF solver from `spiking`, training with `coupling.fit`.
#
# Run: `python examples/pisnn_heat1d.py` (about 10 s; `--cells 16 --steps 40` is quicker).
#
# ## The problem
#
# Heat with a source on [0, 1], homogeneous Dirichlet ends, starting from rest:
#
#     u_t = u_xx + 100 sin(πx),   u(0, t) = u(1, t) = 0,   u(x, 0) = 0,
#
# whose exact solution is u(x, t) = (100/π²)(1 − e^{−π²t}) sin(πx).

import argparse
import math

import numpy as np
import torch
from mpi4py import MPI

from coupling.training.loop import fit
from fem.fv_geometry import grid_cell_average, grid_geometry, stable_dt
from spiking import CLIFSolver, FluxNet
from spiking.cfq import FIXED_VALUE

parser = argparse.ArgumentParser(description="PISNN (C-LIF) solver for 1D heat")
parser.add_argument("--cells", type=int, default=40)
parser.add_argument("--steps", type=int, default=200, help="Adam steps")
args = parser.parse_args()
torch.set_num_threads(1)  # tiny tensors: one thread is fastest


def exact(x: np.ndarray, t: float) -> np.ndarray:
    return 100 / math.pi**2 * (1 - math.exp(-math.pi**2 * t)) * np.sin(math.pi * x[0])


# ## Geometry: cells are control volumes
#
# A uniform grid of n cells; each interior facet joins two cells (i, j), each end is a
# boundary facet named x0 / x1. The solver needs only volumes, facet pairs, areas and
# centroid distances, so a DOLFINx mesh (`fem.volumes.finite_volumes`) works the same way.

geo = grid_geometry([args.cells])
h = [1.0 / args.cells]


def cell_averages(t: float) -> np.ndarray:
    return grid_cell_average(geo, lambda x: exact(x, t), h, order=4)


# ## Quanta and C-LIF neurons
#
# Cell i holds an integer number N_i of quanta of value q: u_i V_i = N_i q. Every facet
# has a C-LIF neuron integrating the flux it should pass, v ← βv + F Δt / q; it fires
# the signed integer count s = trunc(v), keeps v − s, and s quanta leave one cell and
# enter the other. So Σ N_i changes only by what the boundary and source neurons count:
# conservation is exact, in integers, whatever the flux network says.
#
# The flux F(a, b) = (A/d) u_s [g(a/u_s, b/u_s) − g(b/u_s, a/u_s)] is one small network g
# shared by every facet, antisymmetric by construction (what leaves i enters j). For
# diffusion the ideal is g(α, β) = α (k = 1); the network has to learn it.

scale = 100 / math.pi**2  # field scale u_s: the largest value of the solution
quantum = 1e-4 * scale * float(geo.volumes.min())
# explicit in time: Δt ≤ V / (k Σ A/d) (times 0.9), and a whole number of steps to t = 1
steps = math.ceil(1.0 / stable_dt(geo, diffusivity=1.0, safety=0.9))
dt = 1.0 / steps
bc_kind = np.full(len(geo.boundary_cells), FIXED_VALUE)  # ghost value 0 at both ends
zero = torch.zeros(len(bc_kind), dtype=torch.float64)
source = torch.as_tensor(grid_cell_average(geo, lambda x: 100 * np.sin(math.pi * x[0]), h, 4))

net = FluxNet(hidden=[16, 16], scale=scale, seed=0)
solver = CLIFSolver(geo, net, quantum, dt, bc_kind=bc_kind, bc_data=lambda t: zero,
                    source=lambda t: source)

# ## The loss: short rollouts from reference states
#
# A training window starts at a random time t0 ≤ 0.2 from the exact cell averages, runs
# K = 20 solver steps and compares with the exact state at t0 + KΔt:
#
#     L = mean over windows of ‖u_K − u_ref‖²_V / ‖u_ref(t0 + KΔt) − u_ref(t0)‖²_V.
#
# The rollout is the float "shadow" of the integer one (same values); trunc passes its
# gradient straight through. `fit` needs an object with `comm`, `bounds` (the network's
# input box, or None), `sample(step, batch)` (this step's mini-batch, or None),
# `loss(net, batch)` and `measure(net, final)` (numbers for the logged records).


class Windows:
    comm = MPI.COMM_SELF  # one process; under MPI each rank could roll out its own windows
    bounds = None  # the flux network's inputs are cell states, not coordinates
    window, batch, train_until = 20, 8, 0.2

    def __init__(self) -> None:
        self.gen = torch.Generator().manual_seed(0)
        self.w = torch.as_tensor(geo.volumes)

    def sample(self, step, batch=0):
        return None  # the windows are drawn in `loss`, not rows of a data set

    def measure(self, net, final=True):
        return {}

    def loss(self, net, batch=None):
        span = self.train_until - self.window * dt
        t0 = torch.rand(self.batch, generator=self.gen, dtype=torch.float64) * span
        u0 = torch.as_tensor(np.stack([cell_averages(float(t)) for t in t0]))
        u1 = torch.as_tensor(np.stack([cell_averages(float(t) + self.window * dt) for t in t0]))
        uk = solver.rollout_float(u0, t0, self.window)
        err = ((uk - u1) ** 2 * self.w).sum(-1)
        ref = ((u1 - u0) ** 2 * self.w).sum(-1)
        return (err / ref).mean(), {}


result = fit(net, Windows(), steps=args.steps, lr=1e-2, schedule="cosine", log_every=50)
print(f"trained {result.step} steps in {result.wall_s:.1f} s, final loss {result.loss:.3g}")

# ## Inference: the integer rollout
#
# From u = 0 to t = 1 (five times the training horizon) in integer arithmetic only.
# The budget closes exactly: N(t) − N(0) = boundary quanta in + source quanta in.

state = solver.init_state(torch.zeros(geo.num_cells, dtype=torch.float64))
moved = []
solver.rollout(state, steps, callback=lambda s, stats: moved.append(stats.quanta_moved))

u = solver.values(state.quanta).numpy()
ref = cell_averages(1.0)
rel_l2 = math.sqrt(np.sum(geo.volumes * (u - ref) ** 2) / np.sum(geo.volumes * ref**2))
print(f"t = 1: rel. L2 error {rel_l2:.2%} after {steps} steps; quanta moved per step "
      f"{np.mean(moved):.0f}; drift {state.drift()} quanta "
      f"({state.total()} = {state.boundary_in} boundary + {state.source_in} source)")
assert state.drift() == 0
