"""Conservative spiking solver: C-LIF neurons moving flux quanta between control volumes.

PISNN (Zhang & Wang, "Physics-informed spiking neural networks with conservative flux
quantization", arXiv 2511.21784). Each cell i of a finite-volume partition holds an
integer number N_i of quanta of value q (amount u_i·V_i = N_i·q). Each interface f
between cells i and j has a conservative LIF neuron (:class:`spiking.neurons.CLIF`)
integrating the learned flux

    v_f ← β v_f + F(u_i, u_j)·Δt/q,   s_f = trunc(v_f),   v_f ← v_f − s_f,

and its signed integer spike count s_f moves s_f quanta from i to j. Every spike leaves
one cell and enters its neighbour, so Σ_i N_i is invariant *exactly* (int64 arithmetic,
``index_add_`` of integer counts) whatever the flux network outputs. Boundary facets
and sources have their own neurons whose spikes are counted separately, so the budget
closes exactly: N(t) − N(0) = (boundary quanta in) + (source quanta in).

The flux operator (CFQ) is one small network shared by all interfaces, antisymmetric by
construction and free of time and position inputs (time- and translation-invariant),
with the two-point flux structure of finite volumes:

    F(a, b) = (A/d) · u_s · [g(a/u_s, b/u_s) − g(b/u_s, a/u_s)],

A the facet area, d the distance between the cell centroids (cell centroid to facet
centroid on a boundary), u_s a fixed field scale. g is learned; for linear diffusion
the ideal is g(α, β) = kα (+ any symmetric part). Training differentiates a float
"shadow" of the same rollout (values equal to the integer counts) with a surrogate
gradient for trunc; inference runs the integer path only.

Event-driven inference (send-on-delta): a cell broadcasts its value to its facets only
when its count moved by θ_i = max(1, round(broadcast·V_i/q)) quanta since its last
broadcast (broadcast = 0: every change, bit for bit the dense rollout); a facet
re-evaluates F only after a broadcast at either end (or with time-dependent boundary
data), else reuses its cached increment. Counts stay exact; training sees every change.

The geometry is any object with the attributes of :class:`FVGeometryLike` (plain NumPy
arrays): ``fem.fv_geometry.grid_geometry`` (boxes) and ``fem.volumes.finite_volumes``
(DOLFINx meshes) make one. Torch + NumPy only: this module imports no other package.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from .energy import EnergyTable, OpCounts, ann_layer_ops
from .neurons import CLIF
from .surrogate import SURROGATE_KINDS

# Boundary facet kinds (per boundary facet): how its neuron treats the facet.
INSULATED, FIXED_VALUE, PRESCRIBED_FLUX = 0, 1, 2
BOUNDARY_KINDS = {"insulated": INSULATED, "value": FIXED_VALUE, "flux": PRESCRIBED_FLUX}


class FVGeometryLike(Protocol):
    """What the solver reads of a finite-volume partition (n cells, m interior facets,
    k boundary facets); ``fem.fv_geometry.FVGeometry`` is one."""

    volumes: np.ndarray  # (n,) cell volumes, > 0
    pairs: np.ndarray  # (m, 2) int: the cells (i, j) a facet joins, normal from i to j
    areas: np.ndarray  # (m,) facet areas
    distances: np.ndarray  # (m,) centroid-to-centroid distances
    boundary_cells: np.ndarray  # (k,) int: the cell of each boundary facet
    boundary_areas: np.ndarray  # (k,)
    boundary_distances: np.ndarray  # (k,) cell centroid to facet centroid


# ---- the flux network ---------------------------------------------------------------------
class FluxNet(nn.Module):
    """Antisymmetric two-point flux F(a, b) = w·u_s·[g(a/u_s, b/u_s) − g(b/u_s, a/u_s)].

    g is an MLP on the two cell values (and, with ``geometry=True``, log w: the facet's
    area/distance ratio); no time, no position. F(a, b) = −F(b, a) exactly.
    """

    def __init__(self, hidden: Sequence[int] = (16, 16), activation: str = "tanh",
                 scale: float = 1.0, geometry: bool = False, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        acts = {"tanh": nn.Tanh, "softplus": nn.Softplus, "gelu": nn.GELU, "silu": nn.SiLU}
        if activation not in acts:
            raise ValueError(f"activation: unknown {activation!r}; choose one of {sorted(acts)}")
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale: expected a positive number, got {scale!r}")
        gen = torch.Generator().manual_seed(seed)
        dims = [3 if geometry else 2, *[int(h) for h in hidden], 1]
        layers: list[nn.Module] = []
        for k, (i, o) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            lin = nn.Linear(i, o, dtype=dtype)
            with torch.no_grad():  # seeded init independent of the global RNG
                bound = 1.0 / math.sqrt(i)
                lin.weight.copy_(torch.rand(o, i, generator=gen, dtype=dtype) * 2 * bound - bound)
                lin.bias.copy_(torch.rand(o, generator=gen, dtype=dtype) * 2 * bound - bound)
            layers.append(lin)
            if k < len(dims) - 2:
                layers.append(acts[activation]())
        self.g = nn.Sequential(*layers)
        self.geometry = geometry
        self.hidden = [int(h) for h in hidden]
        self.activation = activation
        self.register_buffer("scale", torch.tensor(float(scale), dtype=dtype))

    def forward(self, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Flux from the cell of value a to the cell of value b through a facet of weight w."""
        s = self.scale
        # Two passes of identical shape: row k of both sees the same kernel path, so
        # F(a, b) = −F(b, a) and F(a, a) = 0 hold bit for bit.
        x_ab, x_ba = [a / s, b / s], [b / s, a / s]
        if self.geometry:
            lw = torch.log(w).expand_as(a)
            x_ab.append(lw)
            x_ba.append(lw)
        g_ab = self.g(torch.stack(x_ab, dim=-1)).squeeze(-1)
        g_ba = self.g(torch.stack(x_ba, dim=-1)).squeeze(-1)
        return w * s * (g_ab - g_ba)

    def ops_per_evaluation(self) -> OpCounts:
        """Operation counts of one F evaluation (two passes of g, one subtraction, scaling)."""
        dims = [3 if self.geometry else 2, *self.hidden, 1]
        ops = OpCounts()
        for i, o in zip(dims[:-1], dims[1:], strict=True):
            ops = ops + ann_layer_ops(i, o)
        return ops + ops + OpCounts(mac=1, acc=1)


# ---- the solver ---------------------------------------------------------------------------
@dataclass
class CLIFState:
    """Explicit state of a C-LIF rollout: integer quanta, membranes and the counted budget."""

    quanta: torch.Tensor  # (n,) int64
    v: torch.Tensor  # (m,) interior membranes
    v_boundary: torch.Tensor  # (k,)
    v_source: torch.Tensor  # (n,)
    initial_total: int
    boundary_in: int = 0  # quanta that entered through boundary facets (net)
    source_in: int = 0  # quanta injected by sources (net)
    t: float = 0.0
    steps: int = 0
    sent: torch.Tensor | None = None  # (n,) int64: the counts the facets last received

    def total(self) -> int:
        """Σ quanta over all cells (exact)."""
        return int(self.quanta.sum())

    def drift(self) -> int:
        """Total − (initial + boundary + source quanta): 0 exactly if the budget closes."""
        return self.total() - (self.initial_total + self.boundary_in + self.source_in)


@dataclass
class StepStats:
    """One step: quanta moved (Σ|s|), neurons fired (s ≠ 0), flux evaluations, broadcasts
    and the facet notices they sent (Σ of the broadcasting cells' facet counts)."""

    quanta_moved: int
    neurons_fired: int
    evaluated: int = 0
    broadcasts: int = 0
    notices: int = 0


BoundaryData = Callable[[float], torch.Tensor]  # t -> (k,) value (value facets) / flux density


class CLIFSolver(nn.Module):
    """C-LIF layer on an FV geometry with a shared CFQ flux network (explicit in time).

    ``bc_kind`` (k,) holds INSULATED / FIXED_VALUE / PRESCRIBED_FLUX per boundary facet;
    ``bc_data(t)`` gives the ghost value (value facets) or the inward flux density
    (flux facets, amount per area per time). ``source(t)`` gives cell-average source
    density (field units per time); each cell has a source neuron.
    """

    def __init__(self, geometry: FVGeometryLike, flux: FluxNet, quantum: float, dt: float, *,
                 beta: float = 1.0, surrogate: str = "straight_through", slope: float = 1.0,
                 bc_kind: np.ndarray | None = None, bc_data: BoundaryData | None = None,
                 source: Callable[[float], torch.Tensor] | None = None,
                 broadcast: float = 0.0, bc_static: bool = False) -> None:
        super().__init__()
        if not (quantum > 0 and math.isfinite(quantum)):
            raise ValueError(f"quantum: expected a positive number, got {quantum!r}")
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt: expected a positive number, got {dt!r}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta: expected a number in [0, 1], got {beta!r}")
        if surrogate not in SURROGATE_KINDS:
            raise ValueError(f"surrogate: unknown kind {surrogate!r}; choose one of "
                             f"{SURROGATE_KINDS}")
        self.geometry = geometry
        self.flux = flux
        self.q, self.dt, self.beta = float(quantum), float(dt), float(beta)
        self.surrogate, self.slope = surrogate, float(slope)
        f64 = torch.float64
        self.num_cells = len(geometry.volumes)
        self.register_buffer("volumes", torch.as_tensor(geometry.volumes, dtype=f64), False)
        self.register_buffer("i", torch.as_tensor(geometry.pairs[:, 0]), False)
        self.register_buffer("j", torch.as_tensor(geometry.pairs[:, 1]), False)
        self.register_buffer("w", torch.as_tensor(geometry.areas / geometry.distances, dtype=f64),
                             False)
        k = len(geometry.boundary_cells)
        kind = np.zeros(k, dtype=np.int64) if bc_kind is None else np.asarray(bc_kind, np.int64)
        if kind.shape != (k,) or not np.isin(kind, list(BOUNDARY_KINDS.values())).all():
            raise ValueError(f"bc_kind: expected {k} codes in {sorted(BOUNDARY_KINDS.values())}")
        if (kind != INSULATED).any() and bc_data is None:
            raise ValueError("bc_data: required when a boundary facet is not insulated")
        self.bc_data, self.source = bc_data, source
        val, flx = np.flatnonzero(kind == FIXED_VALUE), np.flatnonzero(kind == PRESCRIBED_FLUX)
        self.register_buffer("b_val", torch.as_tensor(val), False)
        self.register_buffer("b_flx", torch.as_tensor(flx), False)
        self.register_buffer("b_cells", torch.as_tensor(geometry.boundary_cells), False)
        self.register_buffer("b_w", torch.as_tensor(
            geometry.boundary_areas / geometry.boundary_distances, dtype=f64), False)
        self.register_buffer("b_area", torch.as_tensor(geometry.boundary_areas, dtype=f64), False)
        self.bc_static = bool(bc_static)
        self.set_broadcast(broadcast)
        # One C-LIF neuron per interior facet, per boundary facet and (with a source) per cell.
        self.neurons = nn.ModuleDict({name: CLIF(count, beta=beta, surrogate=surrogate,
                                                 slope=slope)
                                      for name, count in (("interior", len(geometry.pairs)),
                                                          ("boundary", k),
                                                          ("source", self.num_cells))
                                      if count and (name != "source" or source is not None)})

    def set_broadcast(self, broadcast: float) -> None:
        """Send-on-delta value step of the cells (module docstring); 0: every change."""
        if not (broadcast >= 0 and math.isfinite(broadcast)):
            raise ValueError(f"broadcast: expected a number >= 0, got {broadcast!r}")
        g = self.geometry
        self.broadcast = float(broadcast)
        theta = np.maximum(1, np.round(self.broadcast * g.volumes / self.q)).astype(np.int64)
        self.theta = torch.as_tensor(theta)
        cells = np.concatenate([g.pairs.ravel(), np.asarray(g.boundary_cells)[self.b_val]])
        self.degree = torch.as_tensor(np.bincount(cells, minlength=len(g.volumes)))

    # -- conversions
    def to_quanta(self, u: torch.Tensor) -> torch.Tensor:
        """Nearest integer quanta of a field of cell values u (…, n)."""
        return torch.round(u.detach().to(torch.float64) * self.volumes / self.q).to(torch.int64)

    def values(self, quanta: torch.Tensor) -> torch.Tensor:
        """Cell values u = N·q/V of quanta counts (…, n)."""
        return quanta.to(torch.float64) * self.q / self.volumes

    def init_state(self, u0: torch.Tensor, t0: float = 0.0) -> CLIFState:
        """State holding the quantised field u0 at time t0, membranes at rest."""
        n, m, k = self.num_cells, len(self.i), len(self.b_cells)
        quanta = self.to_quanta(u0)
        if quanta.shape != (n,):
            raise ValueError(f"u0: expected {n} cell values, got shape {tuple(u0.shape)}")
        z = torch.zeros
        return CLIFState(quanta, z(m, dtype=torch.float64), z(k, dtype=torch.float64),
                         z(n, dtype=torch.float64), int(quanta.sum()), t=float(t0),
                         sent=quanta.clone())

    # -- fluxes (shared by the integer and the float path)
    def _increments(self, u: torch.Tensor, t: torch.Tensor | float):
        """Quanta each neuron should pass this step: interior, boundary (outward), source."""
        scale = self.dt / self.q
        m = len(self.i)
        a, b, w = u[..., self.i], u[..., self.j], self.w
        data = self._at(self.bc_data, t, u) if len(self.b_val) or len(self.b_flx) else None
        if len(self.b_val):  # value facets: the same flux network against the ghost value
            a = torch.cat([a, u[..., self.b_cells[self.b_val]]], -1)
            b = torch.cat([b, data[..., self.b_val]], -1)
            w = torch.cat([w, self.b_w[self.b_val]])
        flux = self.flux(a, b, w) * scale
        interior = flux[..., :m]
        boundary = torch.zeros(*u.shape[:-1], len(self.b_cells), dtype=u.dtype)
        if len(self.b_val):
            boundary = boundary.index_copy(-1, self.b_val, flux[..., m:])
        if len(self.b_flx):
            out = -data[..., self.b_flx] * self.b_area[self.b_flx] * scale  # outward
            boundary = boundary.index_copy(-1, self.b_flx, out)
        src = (None if self.source is None
               else self._at(self.source, t, u) * self.volumes * scale)
        return interior, boundary, src

    @staticmethod
    def _at(fn: Callable, t, u: torch.Tensor) -> torch.Tensor:
        if isinstance(t, torch.Tensor) and t.ndim:
            return torch.stack([fn(float(s)) for s in t]).to(u.dtype)
        return fn(float(t)).to(u.dtype)

    # -- integer path (inference)
    @torch.no_grad()
    def step(self, state: CLIFState) -> StepStats:
        """Advance one Δt in place: integer quanta moved by signed spike counts (exact)."""
        return StepStats(*(int(c) for c in self._step(state)))

    def _receive(self, state: CLIFState) -> tuple[int, int, int]:
        """Cells whose count left their last broadcast by ≥ θ broadcast it; returns the
        facets that must re-evaluate F, the broadcasts and the notifications."""
        first = state.sent is None or state.steps == 0
        send = (state.quanta - (state.quanta if first else state.sent)).abs() >= self.theta
        send |= first
        state.sent = torch.where(send, state.quanta, state.sent if not first else state.quanta)
        bval = send[self.b_cells[self.b_val]] | (not self.bc_static)
        return (int((send[self.i] | send[self.j]).sum()) + int(bval.sum()), int(send.sum()),
                int(self.degree[send].sum()))

    def _step(self, state: CLIFState) -> tuple[int, ...]:
        evaluated, broadcasts, notices = self._receive(state)
        u = self.values(state.sent)  # what the facets know (cached increments: same values)
        interior, boundary, src = self._increments(u, state.t)
        counts = []
        if "interior" in self.neurons:
            s, _, state.v = self.neurons["interior"].step(interior, state.v, exact=True)
            state.quanta.index_add_(0, self.i, -s)
            state.quanta.index_add_(0, self.j, s)
            counts.append(s)
        if "boundary" in self.neurons:
            sb, _, state.v_boundary = self.neurons["boundary"].step(boundary, state.v_boundary,
                                                                    exact=True)
            state.quanta.index_add_(0, self.b_cells, -sb)
            state.boundary_in -= int(sb.sum())
            counts.append(sb)
        if src is not None:
            ss, _, state.v_source = self.neurons["source"].step(src, state.v_source, exact=True)
            state.quanta += ss
            state.source_in += int(ss.sum())
            counts.append(ss)
        state.steps += 1
        state.t = state.t + self.dt
        allc = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.int64)
        return allc.abs().sum(), (allc != 0).sum(), evaluated, broadcasts, notices

    def rollout(self, state: CLIFState, steps: int,
                callback: Callable[[CLIFState, StepStats], None] | None = None) -> CLIFState:
        """Run `steps` integer steps in place, calling callback(state, stats) after each."""
        for _ in range(int(steps)):
            stats = self.step(state)
            if callback is not None:
                callback(state, stats)
        return state

    # -- float shadow path (training)
    def rollout_float(self, u0: torch.Tensor, t0: torch.Tensor | float, steps: int) -> torch.Tensor:
        """Differentiable rollout of a batch of fields u0 (B, n) from times t0 (B,): u after
        `steps` steps. Its values are those of the integer path (counts kept in float64,
        exact below 2^53); gradients pass trunc through the surrogate."""
        N = torch.round(u0.detach().to(torch.float64) * self.volumes / self.q)
        shape = N.shape[:-1]
        v = torch.zeros(*shape, len(self.i), dtype=torch.float64)
        vb = torch.zeros(*shape, len(self.b_cells), dtype=torch.float64)
        vs = torch.zeros_like(N)
        t = torch.as_tensor(t0, dtype=torch.float64)
        for _ in range(int(steps)):
            interior, boundary, src = self._increments(N * self.q / self.volumes, t)
            if "interior" in self.neurons:
                s, _, v = self.neurons["interior"].step(interior, v)
                N = N.index_add(-1, self.i, -s).index_add(-1, self.j, s)
            if "boundary" in self.neurons:
                sb, _, vb = self.neurons["boundary"].step(boundary, vb)
                N = N.index_add(-1, self.b_cells, -sb)
            if src is not None:
                ss, _, vs = self.neurons["source"].step(src, vs)
                N = N + ss
            t = t + self.dt
        return N * self.q / self.volumes

    # -- energy
    def energy_per_step(self, quanta_moved: float, neurons_fired: float,
                        table: EnergyTable | None = None, *, evaluated: float | None = None,
                        broadcasts: float = 0.0, notices: float = 0.0) -> dict:
        """Energy (pJ) of one step, spiking vs the float FV update (same net), full and
        compute-only; arguments are means per step. Float FV: F at every facet; per neuron
        1 MAC (F·Δt), 2 ACC into its cells, 3 reads, 2 writes. Spiking: F at the
        ``evaluated`` facets only (None: all), each writing its cached increment and reading
        its notice; per neuron v ← βv + z and the trunc test (2 ACC, or MAC + ACC if β < 1;
        reads v, z; writes v); per firing v − s, two integer ACC into its cells and their
        |N − sent| ≥ θ tests (5 ACC, 6 reads, 2 writes); per broadcast u = N·q/V (1 MAC,
        1 read, 2 writes); per notice one adjacency read and one queue write."""
        table = table or EnergyTable()
        total = len(self.i) + len(self.b_val) + len(self.b_flx) + (
            self.num_cells if self.source is not None else 0)
        n_all = len(self.i) + len(self.b_val)
        n_eval = n_all if evaluated is None else float(evaluated)
        net = self.flux.ops_per_evaluation()
        nets = lambda k: OpCounts(net.mac * k, net.acc * k, net.reads * k, net.writes * k)  # noqa: E731
        mem = OpCounts(mac=total, acc=total) if self.beta < 1 else OpCounts(acc=2 * total)
        f, b, e = neurons_fired, broadcasts, (0.0 if evaluated is None else n_eval)
        spiking = nets(n_eval) + mem + OpCounts(
            mac=b, acc=5 * f, reads=2 * total + 6 * f + b + notices + e,
            writes=total + 2 * f + 2 * b + notices + e)
        dense = nets(n_all) + OpCounts(mac=total, acc=2 * total, reads=3 * total,
                                       writes=2 * total)
        co = EnergyTable.compute_only(table.mac_pj, table.acc_pj)
        e_s, e_d, c_s, c_d = (t.price(o) for t in (table, co) for o in (spiking, dense))
        return {"spiking_pj": e_s, "float_fv_pj": e_d, "ratio": e_s / e_d if e_d else None,
                "spiking_compute_pj": c_s, "float_fv_compute_pj": c_d,
                "ratio_compute": c_s / c_d if c_d else None, "neurons": total,
                "neurons_fired": neurons_fired, "quanta_moved": quanta_moved,
                "evaluated": n_eval, "evaluations_dense": n_all, "broadcasts": broadcasts,
                "notices": notices, "table": table.name}
