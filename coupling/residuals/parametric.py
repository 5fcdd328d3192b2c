"""Parametric Galerkin energy: one network for a family of problems, no FEM solve in training.

The network maps (x, μ_op) to L·bs outputs N_k(x, μ_op), one field per load channel k of
:class:`fem.problems.parametric.ParametricProblem`; the FE coefficients at μ are

    u(μ) = Σ_k c_k(μ) (g̃_k + D ∘ N_k(·, μ_op)),   Dirichlet dofs overwritten by g(μ),

with μ_op the operator parameters (moduli, conductivities; normalised to [0, 1], in log
where the range says so), c(μ) the load coefficients (load parameters enter linearly, as
they do in the solution of a linear problem, so the network represents that linearity
exactly instead of learning it), g̃_k and D the ADF lift of channel k's boundary data
(:mod:`coupling.lift`; no PDE solved). The loss is the expected scale-normalised energy

    E_μ~P [ (½ uᵀK(μ)u − b(μ)ᵀu) / s(μ_op) ],  K(μ) = Σ_q θ_q(μ) K_q,  b(μ) = Σ_k c_k(μ) b_k.

Since E_μ(u) − E_μ(u_h(μ)) = ½‖u − u_h(μ)‖² in K(μ), its minimiser is the FEM solution at
every μ and no solve is needed. The energy is quadratic in c, so its expectation over the
loads is exact — Σ_kl E[c_k c_l] (½ w_kᵀK w_l − b_kᵀw_l) with w_k the channel fields
and the second moments of the (independent, uniform) load parameters — and only μ_op is
sampled, a batch per step and rank. s(μ_op) > 0 (E|c|² times the trace of K(μ_op) relative
to the box centre, to the power +1 for boundary-data loads, −1 for body loads, 0 mixed)
only balances the draws and leaves every minimiser alone.
Under MPI each rank draws its own μ for its own mesh partition (``draws = "per_rank"``):
Σ_r E_r(μ_r) is an unbiased estimate of the expected energy; ``"shared"`` draws the same
μ on every rank (then 2 ranks == serial). Draws depend on (seed, step, rank) only, so a
resumed run continues the same sequence.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

import spiking
from coupling.boundary import boundary_values
from coupling.geometry import with_interface_distance
from coupling.measure import global_activity, relative_l2
from coupling.residuals.base import SparseOperator
from coupling.training.parallel import allreduce_scalars
from fem.flops import best_time
from fem.operators import to_torch_csr
from fem.problems.parametric import ParametricProblem
from fem.progress import progress
from fem.reference import reference
from meshes.core import bounding_box
from meshes.fenics import MPI, dolfinx


@dataclass
class ParametricDiscretisation:
    """A parametric problem made trainable (a :class:`coupling.training.loop.Trainable`)."""

    problem: ParametricProblem
    K: list[SparseOperator]  # K_q, (n_owned, n_local)
    trace: np.ndarray  # global trace of each K_q (for the scale s(μ))
    b: torch.Tensor  # (L, n_owned)
    lift: torch.Tensor  # (L, n_local) g̃_k at every local column
    distance: torch.Tensor  # (n_local,) D
    index: torch.Tensor  # Dirichlet columns
    data: torch.Tensor  # (L, n_index) g_k there
    x: torch.Tensor  # (n_local_nodes, gdim) coordinates of every column's node
    weights: torch.Tensor  # (n_owned,) lumped-mass weights
    n_owned: int
    n_function: int
    block_size: int
    bounds: tuple[list[float], list[float]]
    comm: Any
    exponent: int  # of the trace ratio in s(μ)
    validation: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    targets: list[torch.Tensor] = field(default_factory=list)  # FEM at the validation points

    @property
    def box(self):
        return self.problem.box

    @property
    def in_dim(self) -> int:
        """Coordinates plus the operator parameters."""
        return self.x.shape[1] + len(self.problem.operator_names)

    @property
    def n_channels(self) -> int:
        return self.b.shape[0]

    @property
    def out_dim(self) -> int:
        """Network outputs: one field (bs components) per load channel."""
        return self.block_size * self.n_channels

    # -- μ draws ----------------------------------------------------------------------------
    def sample(self, step: int, batch: int | float = 0) -> torch.Tensor:
        """This rank's batch of μ for `step` (float64, (B, p)), from (seed, step, rank); its
        size is ``[parameters] batch`` (`batch`, the rows setting of `fit`, is not read)."""
        box, B = self.box, self.box.batch
        shared = box.draws == "shared" or self.comm.size == 1
        start = step * B * (1 if shared else self.comm.size) + (0 if shared
                                                                 else self.comm.rank * B)
        if box.sampling == "sobol":
            from scipy.stats import qmc  # deferred: loads SciPy

            if getattr(self, "_sobol", None) is None:
                self._sobol = qmc.Sobol(len(box), scramble=True, seed=box.seed)
            self._sobol.reset()
            if start:
                self._sobol.fast_forward(start)
            with warnings.catch_warnings():  # chunks of a power-of-2-balanced stream
                warnings.simplefilter("ignore", UserWarning)
                t = self._sobol.random(B)
        else:
            t = np.random.default_rng([box.seed, step, 0 if shared else self.comm.rank]
                                      ).random((B, len(box)))
        return torch.as_tensor(box.from_unit(t))

    # -- fields -----------------------------------------------------------------------------
    def _inputs(self, mu: np.ndarray, x: torch.Tensor) -> torch.Tensor:
        """(B·n, gdim + p_op) network inputs: every node with every μ's operator part."""
        idx = [self.box.names.index(n) for n in self.problem.operator_names]
        if not idx:
            return x
        t = torch.as_tensor(self.box.to_unit(mu)[:, idx], dtype=x.dtype, device=x.device)
        B, n = len(t), len(x)
        return torch.cat([x.repeat(B, 1), t.repeat_interleave(n, 0)], 1)

    def raw(self, net: torch.nn.Module, mu: np.ndarray, x: torch.Tensor | None = None
            ) -> torch.Tensor:
        """N at the nodes `x` (all columns by default): (B, n_nodes·bs, L); zero for no net."""
        x = self.x if x is None else x
        if net is None:  # the lift alone (N = 0)
            return torch.zeros(len(mu), len(x) * self.block_size, self.n_channels,
                               dtype=self.lift.dtype, device=self.lift.device)
        B = 1 if not self.problem.operator_names else len(mu)
        out = net(self._inputs(mu, x)).reshape(B, len(x), self.n_channels, self.block_size)
        out = out.transpose(2, 3).reshape(B, len(x) * self.block_size, self.n_channels)
        return out.expand(len(mu), -1, -1)

    def fields(self, net: torch.nn.Module, mu: np.ndarray, c: np.ndarray | None = None
               ) -> torch.Tensor:
        """FE coefficients at every local column for each μ (B, n_local), data imposed;
        `c` (B, L) overrides the load coefficients (e.g. one unit load case)."""
        mu = np.atleast_2d(np.asarray(mu, float))
        c = self.problem.load_coefficients(mu) if c is None else np.atleast_2d(c)
        ct = torch.as_tensor(c, dtype=self.lift.dtype, device=self.lift.device)
        return torch.einsum("bl,bln->bn", ct, self.channels(net, mu))

    def channels(self, net: torch.nn.Module, mu: np.ndarray) -> torch.Tensor:
        """Each load channel's field g̃_k + D∘N_k with its data g_k imposed: (B, L, n_local)."""
        N = self.raw(net, mu).transpose(1, 2)  # (B, L, n_local)
        w = self.lift + self.distance * N
        if not len(self.index):
            return w
        keep = torch.ones(w.shape[-1], dtype=w.dtype, device=w.device)
        keep[self.index] = 0
        data = torch.zeros_like(self.lift).index_copy(1, self.index, self.data)
        return w * keep + data

    def load_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """E[c] and E[c cᵀ] of the load coefficients over the box (independent, uniform in
        their scale): the expectation over loads is taken exactly, only μ_op is sampled."""
        if getattr(self, "_moments", None) is None:
            m, v = [], []
            for name in self.problem.load_names:
                p = self.box.parameters[self.box.names.index(name)]
                lo, hi = p.low, p.high
                if hi == lo:
                    m.append(lo)
                    v.append(0.0)
                elif p.scale == "log":
                    r = math.log(hi / lo)
                    m.append((hi - lo) / r)
                    v.append((hi * hi - lo * lo) / (2 * r) - m[-1] ** 2)
                else:
                    m.append((lo + hi) / 2)
                    v.append((hi - lo) ** 2 / 12)
            if self.problem.has_fixed_channel():
                m, v = [1.0, *m], [0.0, *v]
            m = np.array(m)
            self._moments = (m, np.outer(m, m) + np.diag(v))
        return self._moments

    def scale(self, mu: np.ndarray) -> np.ndarray:
        """s(μ_op) > 0 of the scale-normalised energy (see the module docstring)."""
        m2 = np.trace(self.load_moments()[1])
        tr = np.array([self.problem.theta(r) @ self.trace for r in np.atleast_2d(mu)])
        s = m2 * tr ** self.exponent
        if getattr(self, "_scale_ref", None) is None:  # the box centre's value: s ≈ 1
            self._scale_ref = float(m2 * (self.problem.theta(self.box.centre()) @ self.trace)
                                    ** self.exponent) or 1.0
        return np.maximum(s / self._scale_ref, 1e-12)

    def loss(self, net: torch.nn.Module, batch: torch.Tensor | None = None):
        """This rank's mean over its μ_op batch of the scale-normalised energy, its
        expectation over the load coefficients taken exactly (quadratic in c)."""
        mu = (batch if batch is not None else self.sample(0)).cpu().numpy()
        w = self.channels(net, mu)  # (B, L, n_local)
        B, L, n = w.shape
        theta = torch.as_tensor(np.array([self.problem.theta(m) for m in mu]),
                                dtype=w.dtype, device=w.device)  # (B, Q)
        flat = w.reshape(B * L, n).T  # (n_local, B·L)
        Kw = sum(theta[:, q].repeat_interleave(L) * (K @ flat) for q, K in enumerate(self.K))
        wo = flat[: self.n_owned]
        A = torch.einsum("nbk,nbl->bkl", wo.reshape(-1, B, L), Kw.reshape(-1, B, L))
        R = torch.einsum("jn,nbk->bjk", self.b, wo.reshape(-1, B, L))  # b_jᵀ w_k
        M = torch.as_tensor(self.load_moments()[1], dtype=w.dtype, device=w.device)
        energy = ((0.5 * A - R) * M).sum((1, 2))
        s = torch.as_tensor(self.scale(mu), dtype=w.dtype, device=w.device)
        loss = (energy / s).mean()
        return loss, {"energy": loss}

    # -- measures ---------------------------------------------------------------------------
    def errors(self, net: torch.nn.Module, mu: np.ndarray, targets: list[torch.Tensor]
               ) -> list[float]:
        """Relative L2 error (owned dofs, all ranks) at each μ against its FEM target."""
        with torch.no_grad():
            u = self.fields(net, mu)[:, : self.n_owned]
        return [relative_l2(u[i], targets[i], self.weights, self.comm) for i in range(len(mu))]

    def measure(self, net: torch.nn.Module, final: bool = True) -> dict:
        """Errors at the fixed validation points (median, max, each) and activity."""
        monitor = spiking.ActivityMonitor(net)
        with monitor:  # no validation points (references=False): activity alone
            errs = self.errors(net, self.validation, self.targets) if self.targets else []
        out: dict = {}
        if errs and None not in errs:
            out = {"rel_l2": float(np.median(errs)), "rel_l2_max": float(max(errs)),
                   "rel_l2_points": errs}
        activity = global_activity(monitor, self.comm)
        if activity["layers"]:
            out["activity"] = {k: activity[k] for k in ("mean", "layers")}
        return out

    def to_function(self, net: torch.nn.Module, mu: np.ndarray, name: str = "u_network",
                    c: np.ndarray | None = None) -> dolfinx.fem.Function:
        """The network's field at μ as a DOLFINx function (collective)."""
        u = dolfinx.fem.Function(self.problem.V, name=name)
        with torch.no_grad():
            v = self.fields(net, mu, c)[0, : self.n_function]
        u.x.array[:] = v.detach().cpu().to(torch.float64).numpy()
        u.x.scatter_forward()
        return u


def discretise_parametric(problem: ParametricProblem, *, dtype: torch.dtype | None = None,
                          reference_cache=None, interface_distance: bool = False,
                          inputs: Callable | None = None, references: bool = True
                          ) -> ParametricDiscretisation:
    """Make a parametric problem trainable: assemble its terms once, build the lifts, solve
    the FEM references at the validation points (cached; none when not `references`)
    (collective). With `interface_distance` the network also sees |distance to the nearest
    inclusion surface| (spherical-inclusion RVEs;
    :func:`coupling.geometry.with_interface_distance`);
    `inputs(x, box) -> (inputs, box)` replaces the nodes' coordinates by any other network
    inputs and their box (e.g. the microstructure features of :mod:`coupling.residuals.bank`)."""
    dtype = dtype or torch.get_default_dtype()
    comm = problem.dmesh.comm
    ops = problem.operators()
    layout = ops.layout
    gdim = problem.dmesh.mesh.geometry.dim
    x = layout.coordinates[:, :gdim]
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731
    lifts, distance, index, data = _channel_lifts(problem, ops, dtype, x)
    lo, hi = bounding_box(problem.dmesh.mesh)
    box = lo.tolist(), hi.tolist()
    if interface_distance:
        x, box = with_interface_distance(x, box, problem.dmesh)
    if inputs is not None:
        x, box = inputs(x, box)
    n_op = len(problem.operator_names)
    bounds = (box[0] + [0.0] * n_op, box[1] + [1.0] * n_op)
    trace = np.array([comm.allreduce(float(K.diagonal().sum()), op=MPI.SUM)
                      for K in ops.K_terms])
    lumped = np.asarray(ops.M.sum(axis=1)).reshape(-1)
    disc = ParametricDiscretisation(
        problem, [SparseOperator(to_torch_csr(K, dtype=dtype)) for K in ops.K_terms], trace,
        t(ops.b), lifts, distance, index, data, t(x), t(lumped), layout.n_owned,
        layout.n_function, layout.block_size, bounds, comm, _exponent(ops, comm))
    if references:
        disc.validation = problem.box.validation_points()
        disc.targets = reference_targets(problem, disc.validation, reference_cache,
                                         layout.n_owned)
    return disc


def _exponent(ops, comm) -> int:
    """+1 when every load channel is boundary data, −1 when every one is a body load."""
    has_b = [comm.allreduce(float(np.abs(b).max(initial=0)), op=MPI.MAX) > 0 for b in ops.b]
    has_g = [comm.allreduce(float(np.abs(g).max(initial=0)), op=MPI.MAX) > 0 for g in ops.g]
    if not any(has_b):
        return 1
    if not any(has_g):
        return -1
    return 0


def _channel_lifts(problem: ParametricProblem, ops, dtype, x):
    """g̃_k, D (ADF lift, :mod:`coupling.lift`) and the Dirichlet data g_k at every column."""
    layout = ops.layout
    fixed = problem.has_fixed_channel()
    probes = ([None] if fixed else []) + list(range(len(problem.load_names)))
    base = None
    lifts, datas = [], []
    for i, k in enumerate(probes):
        p = problem.probe_problem(k)  # the same problems operators() assembled
        fake = SimpleNamespace(layout=layout, dirichlet_dofs=ops.dirichlet_dofs,
                               dirichlet_values=ops.g[i] + (0 if k is None or not fixed
                                                            else ops.g[0]))
        bv = boundary_values(p, fake, "exact", torch.float64, "adf", x)
        if k is not None and fixed:  # the probe carries the fixed data too: remove it
            lifts.append(bv.lift - base.lift)
            datas.append(bv.values - base.values)
        else:
            lifts.append(bv.lift)
            datas.append(bv.values)
        if k is None:
            base = bv
        distance, index = bv.distance, bv.index
    return (torch.stack(lifts).to(dtype), distance.to(dtype), index,
            torch.stack(datas).to(dtype))


def reference_targets(problem: ParametricProblem, mu: np.ndarray, cache_dir, n_owned: int
                      ) -> list[torch.Tensor]:
    """FEM solutions at the points μ (owned dofs, float64), cached like every reference."""

    out = []
    points = np.atleast_2d(mu)
    for m in progress(points, len(points), "FEM references", problem.dmesh.comm, minimum=8):
        ref = reference(problem.dmesh, problem.spec_at(m), cache_dir=cache_dir,
                        write_fields=False)
        out.append(torch.as_tensor(ref.u.x.array[:n_owned].copy(),
                                   dtype=torch.float64))
    return out


def time_query(disc: ParametricDiscretisation, net: torch.nn.Module, mu, train_s: float
               ) -> dict:
    """One query (the network at every dof for μ) against a DOLFINx assembly + solve at the
    same μ: wall times (max over ranks), speed-up, queries to pay back `train_s` seconds of
    training, and the query's energy in both conventions (spiking networks) (collective)."""

    mu = np.asarray(mu, float)[None]
    with torch.no_grad():
        t_query = best_time(lambda: disc.fields(net, mu), 3)
        monitor = spiking.ActivityMonitor(net)
        with monitor:
            disc.fields(net, mu)
    problem, comm = disc.problem, disc.comm
    problem.problem_at(mu[0]).solve()  # compiles the forms (JIT, cached on disk) once
    t_fem = best_time(lambda: problem.problem_at(mu[0]).solve(), 2)
    t_query, t_fem = (comm.allreduce(t, op=MPI.MAX) for t in (t_query, t_fem))
    nodes = int(allreduce_scalars([float(disc.n_owned // disc.block_size)], comm)[0])
    out = {"dofs": nodes * disc.block_size, "query_s": t_query, "fem_s": t_fem,
           "speedup": t_fem / t_query,
           "break_even_queries": (math.ceil(train_s / (t_fem - t_query))
                                  if t_fem > t_query else None)}
    try:
        report = spiking.energy_report(net, monitor)
    except (ValueError, AttributeError):  # an ANN: no spiking energy accounting
        return out
    per_point = report.to_dict()
    out["energy"] = {"points": nodes, "snn_pj": per_point.get("snn_pj"),
                     "ratio_full": report.ratio, "ratio_compute": report.compute_only().ratio,
                     "query_snn_uj_full": report.snn_pj * nodes * 1e-6,
                     "query_snn_uj_compute": report.compute_only().snn_pj * nodes * 1e-6}
    return out
