"""Conservative spiking solver: C-LIF neurons moving flux quanta between control volumes.

PISNN (Zhang & Wang, "Physics-informed spiking neural networks with conservative flux
quantization", arXiv 2511.21784). Each cell i of a finite-volume partition holds an
integer number N_i of quanta of value q (amount u_i·V_i = N_i·q). Each interface f
between cells i and j has a conservative LIF neuron (C-LIF) integrating the learned flux

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

Torch + numpy only (no DOLFINx): unstructured geometries come from ``fem.volumes``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .energy import EnergyTable, OpCounts, ann_layer_ops
from .surrogate import SURROGATE_KINDS, surrogate_derivative

# Boundary facet kinds (per boundary facet).
INSULATED, FIXED_VALUE, PRESCRIBED_FLUX = 0, 1, 2
BOUNDARY_KINDS = {"insulated": INSULATED, "value": FIXED_VALUE, "flux": PRESCRIBED_FLUX}


# ---- geometry ---------------------------------------------------------------------------
@dataclass
class FVGeometry:
    """A finite-volume partition: cells (control volumes) and the facets between them.

    Interior facet f joins cells ``pairs[f] = (i, j)``; its normal points from i to j.
    Boundary facet b belongs to cell ``boundary_cells[b]`` and carries the tag
    ``boundary_tags[b]`` (names in ``boundary_names``). Distances are centroid to
    centroid (interior) and cell centroid to facet centroid (boundary).
    """

    volumes: np.ndarray  # (n,)
    centroids: np.ndarray  # (n, gdim)
    pairs: np.ndarray  # (m, 2) int64
    areas: np.ndarray  # (m,)
    distances: np.ndarray  # (m,)
    boundary_cells: np.ndarray  # (k,) int64
    boundary_areas: np.ndarray  # (k,)
    boundary_distances: np.ndarray  # (k,)
    boundary_centroids: np.ndarray  # (k, gdim)
    boundary_tags: np.ndarray  # (k,) int
    boundary_names: dict[str, int] = field(default_factory=dict)
    cell_tags: np.ndarray | None = None  # (n,) int, phases (optional)
    cell_names: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        self.boundary_cells = np.asarray(self.boundary_cells, dtype=np.int64)
        n = len(self.volumes)
        if np.any(np.asarray(self.volumes) <= 0):
            raise ValueError("FVGeometry: every cell volume must be positive")
        if len(self.pairs) and (self.pairs.min() < 0 or self.pairs.max() >= n):
            raise ValueError("FVGeometry: pairs index cells out of range")
        if np.any(self.pairs[:, 0] == self.pairs[:, 1]):
            raise ValueError("FVGeometry: a facet joins a cell to itself")
        if np.any(np.asarray(self.distances) <= 0) or np.any(np.asarray(self.areas) <= 0):
            raise ValueError("FVGeometry: facet areas and distances must be positive")

    @property
    def num_cells(self) -> int:
        return len(self.volumes)

    @property
    def gdim(self) -> int:
        return self.centroids.shape[1]

    def boundary(self, name: str) -> np.ndarray:
        """Indices (into the boundary arrays) of the boundary facets tagged `name`."""
        if name == "*":
            return np.arange(len(self.boundary_cells))
        if name not in self.boundary_names:
            raise KeyError(f"no boundary {name!r}; this geometry has {sorted(self.boundary_names)}")
        return np.flatnonzero(self.boundary_tags == self.boundary_names[name])


def grid_geometry(n: Sequence[int], lower: Sequence[float] = (), upper: Sequence[float] = ()
                  ) -> FVGeometry:
    """Uniform Cartesian grid of n[0] x n[1] (x n[2]) cells on a box (default the unit box).

    Boundary facets are named x0, x1 (y0, y1, z0, z1) as on the DOLFINx meshes.
    """
    n = [int(k) for k in n]
    d = len(n)
    if d not in (1, 2, 3) or any(k < 1 for k in n):
        raise ValueError(f"grid: expected 1 to 3 positive cell counts, got {n}")
    lo = np.asarray(lower or [0.0] * d, dtype=float)
    hi = np.asarray(upper or [1.0] * d, dtype=float)
    if lo.shape != (d,) or hi.shape != (d,) or np.any(hi <= lo):
        raise ValueError(f"grid: bad box {lo.tolist()} .. {hi.tolist()}")
    h = (hi - lo) / n
    idx = np.arange(math.prod(n)).reshape(n)  # C order: idx[i, j, k]
    axes = [lo[a] + (np.arange(n[a]) + 0.5) * h[a] for a in range(d)]
    centroids = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    volumes = np.full(idx.size, float(np.prod(h)))
    pairs, areas, dists = [], [], []
    b_cells, b_area, b_dist, b_cent, b_tag = [], [], [], [], []
    names = {}
    for a in range(d):
        area = float(np.prod(np.delete(h, a)))
        left = np.take(idx, np.arange(n[a] - 1), axis=a).ravel()
        right = np.take(idx, np.arange(1, n[a]), axis=a).ravel()
        pairs.append(np.stack([left, right], axis=1))
        areas.append(np.full(len(left), area))
        dists.append(np.full(len(left), h[a]))
        for side, layer in ((0, 0), (1, n[a] - 1)):
            name = f"{'xyz'[a]}{side}"
            names[name] = len(names) + 1
            cells = np.take(idx, [layer], axis=a).ravel()
            cent = centroids[cells].copy()
            cent[:, a] = lo[a] if side == 0 else hi[a]
            b_cells.append(cells)
            b_area.append(np.full(len(cells), area))
            b_dist.append(np.full(len(cells), h[a] / 2))
            b_cent.append(cent)
            b_tag.append(np.full(len(cells), names[name]))
    return FVGeometry(volumes, centroids, np.concatenate(pairs), np.concatenate(areas),
                      np.concatenate(dists), np.concatenate(b_cells), np.concatenate(b_area),
                      np.concatenate(b_dist), np.concatenate(b_cent), np.concatenate(b_tag),
                      names, np.ones(idx.size, dtype=np.int64), {"domain": 1})


def grid_cell_average(geo: FVGeometry, f: Callable[[np.ndarray], np.ndarray], h: Sequence[float],
                      order: int = 3) -> np.ndarray:
    """Cell averages of f(x) (x of shape (3, P)) on a grid of spacing h, tensor Gauss rule."""
    xi, wi = np.polynomial.legendre.leggauss(order)
    d = geo.gdim
    pts = np.stack(np.meshgrid(*[xi] * d, indexing="ij"), axis=-1).reshape(-1, d)
    wts = np.prod(np.stack(np.meshgrid(*[wi] * d, indexing="ij"), axis=-1).reshape(-1, d), axis=1)
    wts = wts / wts.sum()
    x = geo.centroids[:, None, :] + 0.5 * pts[None, :, :] * np.asarray(h)[None, None, :]
    flat = np.zeros((3, x.shape[0] * x.shape[1]))
    flat[:d] = x.reshape(-1, d).T
    return f(flat).reshape(x.shape[0], x.shape[1]) @ wts


# ---- spikes -----------------------------------------------------------------------------
class _TruncSpike(torch.autograd.Function):
    """s = trunc(v) forward (signed integer count); surrogate derivative backward."""

    @staticmethod
    def forward(ctx, v, kind: str, slope: float):
        ctx.save_for_backward(v)
        ctx.kind, ctx.slope = kind, slope
        return torch.trunc(v)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        if ctx.kind == "straight_through":
            return grad, None, None
        # trunc(v) = Σ_{k≥1} H(v − k) − H(−v − k): each step at an integer k ≠ 0 gets the
        # surrogate of H', centred on the nearest such integer.
        a = v.abs()
        nearest = torch.clamp(torch.round(a), min=1.0)
        return grad * surrogate_derivative(a - nearest, ctx.kind, ctx.slope), None, None


def trunc_spike(v: torch.Tensor, kind: str = "straight_through", slope: float = 1.0
                ) -> torch.Tensor:
    """Signed integer spike count trunc(v); backward: a spiking.surrogate ``kind``."""
    if kind not in SURROGATE_KINDS:
        raise ValueError(f"surrogate: unknown kind {kind!r}; choose one of {SURROGATE_KINDS}")
    return _TruncSpike.apply(v, kind, float(slope))


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

    def total(self) -> int:
        """Σ quanta over all cells (exact)."""
        return int(self.quanta.sum())

    def drift(self) -> int:
        """Total − (initial + boundary + source quanta): 0 exactly if the budget closes."""
        return self.total() - (self.initial_total + self.boundary_in + self.source_in)


@dataclass
class StepStats:
    """What one step did: quanta moved (Σ|s|) and neurons that fired (s ≠ 0)."""

    quanta_moved: int
    neurons_fired: int


BoundaryData = Callable[[float], torch.Tensor]  # t -> (k,) value (value facets) / flux density


class CLIFSolver(nn.Module):
    """C-LIF layer on an FV geometry with a shared CFQ flux network (explicit in time).

    ``bc_kind`` (k,) holds INSULATED / FIXED_VALUE / PRESCRIBED_FLUX per boundary facet;
    ``bc_data(t)`` gives the ghost value (value facets) or the inward flux density
    (flux facets, amount per area per time). ``source(t)`` gives cell-average source
    density (field units per time); each cell has a source neuron.
    """

    def __init__(self, geometry: FVGeometry, flux: FluxNet, quantum: float, dt: float, *,
                 beta: float = 1.0, surrogate: str = "straight_through", slope: float = 1.0,
                 bc_kind: np.ndarray | None = None, bc_data: BoundaryData | None = None,
                 source: Callable[[float], torch.Tensor] | None = None) -> None:
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

    # -- conversions
    def to_quanta(self, u: torch.Tensor) -> torch.Tensor:
        """Nearest integer quanta of a field of cell values u (…, n)."""
        return torch.round(u.detach().to(torch.float64) * self.volumes / self.q).to(torch.int64)

    def values(self, quanta: torch.Tensor) -> torch.Tensor:
        """Cell values u = N·q/V of quanta counts (…, n)."""
        return quanta.to(torch.float64) * self.q / self.volumes

    def init_state(self, u0: torch.Tensor, t0: float = 0.0) -> CLIFState:
        """State holding the quantised field u0 at time t0, membranes at rest."""
        n, m, k = self.geometry.num_cells, len(self.i), len(self.b_cells)
        quanta = self.to_quanta(u0)
        if quanta.shape != (n,):
            raise ValueError(f"u0: expected {n} cell values, got shape {tuple(u0.shape)}")
        z = torch.zeros
        return CLIFState(quanta, z(m, dtype=torch.float64), z(k, dtype=torch.float64),
                         z(n, dtype=torch.float64), int(quanta.sum()), t=float(t0))

    # -- fluxes (shared by the integer and the float path)
    def _increments(self, u: torch.Tensor, t: torch.Tensor | float):
        """Quanta each neuron should pass this step: interior, boundary (outward), source."""
        scale = self.dt / self.q
        m = len(self.i)
        a, b, w = u[..., self.i], u[..., self.j], self.w
        data = self._bc(t, u) if len(self.b_val) or len(self.b_flx) else None
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
        src = None
        if self.source is not None:
            src = self._src(t, u) * self.volumes * scale
        return interior, boundary, src

    def _bc(self, t, u):
        if isinstance(t, torch.Tensor) and t.ndim:
            return torch.stack([self.bc_data(float(s)) for s in t]).to(u.dtype)
        return self.bc_data(float(t)).to(u.dtype)

    def _src(self, t, u):
        if isinstance(t, torch.Tensor) and t.ndim:
            return torch.stack([self.source(float(s)) for s in t]).to(u.dtype)
        return self.source(float(t)).to(u.dtype)

    # -- integer path (inference)
    @torch.no_grad()
    def step(self, state: CLIFState) -> StepStats:
        """Advance one Δt in place: integer quanta moved by signed spike counts (exact)."""
        moved, fired = self._step(state)
        return StepStats(int(moved), int(fired))

    def _step(self, state: CLIFState) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.values(state.quanta)
        interior, boundary, src = self._increments(u, state.t)
        b = self.beta
        state.v = b * state.v + interior
        s = torch.trunc(state.v)
        state.v -= s
        s = s.to(torch.int64)
        state.quanta.index_add_(0, self.i, -s)
        state.quanta.index_add_(0, self.j, s)
        counts = [s]
        if len(self.b_cells):
            state.v_boundary = b * state.v_boundary + boundary
            sb = torch.trunc(state.v_boundary)
            state.v_boundary -= sb
            sb = sb.to(torch.int64)
            state.quanta.index_add_(0, self.b_cells, -sb)
            state.boundary_in -= int(sb.sum())
            counts.append(sb)
        if src is not None:
            state.v_source = b * state.v_source + src
            ss = torch.trunc(state.v_source)
            state.v_source -= ss
            ss = ss.to(torch.int64)
            state.quanta += ss
            state.source_in += int(ss.sum())
            counts.append(ss)
        state.steps += 1
        state.t = state.t + self.dt
        allc = torch.cat(counts)
        return allc.abs().sum(), (allc != 0).sum()

    def rollout(self, state: CLIFState, steps: int,
                callback: Callable[[CLIFState, StepStats], None] | None = None) -> CLIFState:
        """Run `steps` integer steps in place, calling callback(state, stats) after each."""
        with torch.no_grad():
            for _ in range(int(steps)):
                moved, fired = self._step(state)
                if callback is not None:
                    callback(state, StepStats(int(moved), int(fired)))
        return state

    # -- float shadow path (training)
    def rollout_float(self, u0: torch.Tensor, t0: torch.Tensor | float, steps: int) -> torch.Tensor:
        """Differentiable rollout of a batch of fields u0 (B, n) from times t0 (B,): u after
        `steps` steps. Its values are those of the integer path (counts kept in float64,
        exact below 2^53); gradients pass trunc through the surrogate."""
        N = torch.round(u0.detach().to(torch.float64) * self.volumes / self.q)
        shape = N.shape
        v = torch.zeros(*shape[:-1], len(self.i), dtype=torch.float64)
        vb = torch.zeros(*shape[:-1], len(self.b_cells), dtype=torch.float64)
        vs = torch.zeros_like(N)
        t = torch.as_tensor(t0, dtype=torch.float64)
        for _ in range(int(steps)):
            u = N * self.q / self.volumes
            interior, boundary, src = self._increments(u, t)
            v = self.beta * v + interior
            s = trunc_spike(v, self.surrogate, self.slope)
            v = v - s
            N = N.index_add(-1, self.i, -s).index_add(-1, self.j, s)
            if len(self.b_cells):
                vb = self.beta * vb + boundary
                sb = trunc_spike(vb, self.surrogate, self.slope)
                vb = vb - sb
                N = N.index_add(-1, self.b_cells, -sb)
            if src is not None:
                vs = self.beta * vs + src
                ss = trunc_spike(vs, self.surrogate, self.slope)
                vs = vs - ss
                N = N + ss
            t = t + self.dt
        return N * self.q / self.volumes

    # -- energy
    def energy_per_step(self, quanta_moved: float, neurons_fired: float,
                        table: EnergyTable | None = None) -> dict:
        """Energy estimate (pJ) of one step: spiking update vs a float FV update, same net.

        Spiking: per active neuron one flux evaluation and one membrane accumulate
        (v ← βv + F·Δt/q, the Δt/q factor folded into the last layer), plus two integer
        accumulates per firing neuron (its count leaves one cell and enters another).
        Float FV baseline: the same flux evaluations, one MAC (F·Δt) and two float
        accumulates per neuron every step, whether or not anything moves.
        """
        table = table or EnergyTable()
        n_neurons = len(self.i) + len(self.b_val) + len(self.b_flx)
        n_src = self.geometry.num_cells if self.source is not None else 0
        net = self.flux.ops_per_evaluation()
        n_eval = len(self.i) + len(self.b_val)
        nets = OpCounts(net.mac * n_eval, net.acc * n_eval, net.reads * n_eval,
                        net.writes * n_eval)
        total = n_neurons + n_src
        spiking = nets + OpCounts(acc=total + 2 * neurons_fired, reads=total + 2 * neurons_fired,
                                  writes=total + 2 * neurons_fired)
        dense = nets + OpCounts(mac=total, acc=2 * total, reads=3 * total, writes=2 * total)
        e_s, e_d = table.price(spiking), table.price(dense)
        return {"spiking_pj": e_s, "float_fv_pj": e_d, "ratio": e_s / e_d if e_d else None,
                "neurons": total, "neurons_fired": neurons_fired, "quanta_moved": quanta_moved,
                "table": table.name}


def stable_dt(geometry: FVGeometry, diffusivity: float, safety: float = 0.45) -> float:
    """Explicit-Euler stability bound for TPFA diffusion, times `safety`:
    Δt ≤ V_i / (k Σ_f w_f) for every cell i (boundary value facets included)."""
    acc = np.zeros(geometry.num_cells)
    w = geometry.areas / geometry.distances
    np.add.at(acc, geometry.pairs[:, 0], w)
    np.add.at(acc, geometry.pairs[:, 1], w)
    np.add.at(acc, geometry.boundary_cells, geometry.boundary_areas / geometry.boundary_distances)
    return float(safety * np.min(geometry.volumes / (diffusivity * acc)))
