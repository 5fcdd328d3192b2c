"""POD–Galerkin reduced bases of parametric problems (pyMOR), with a posteriori bounds.

The rival a mechanician picks for many queries of an affine parametric problem
(:class:`fem.problems.parametric.ParametricProblem`). On the free (non-Dirichlet) dofs f,
with the Dirichlet dofs d fixed to g(μ) = Σ_k c_k g_k,

    K_ff(θ) u_f = Σ_k c_k (b_k,f − Σ_q θ_q K_q,fd g_k),    K(θ) = Σ_q θ_q K_q,

so the solution is linear in the load coefficients c(μ) and depends on the operator
parameters through θ(μ). Offline: FEM snapshots at N scrambled-Sobol training points
(stream 0 of the box, the network's training stream; one sparse LU per point, reused by
every load channel), POD of the snapshots in the energy product X = K_ff(θ̄) (θ̄ at the box
centre) per load channel (``mode="channel"``: u_f = Σ_k c_k V_k a_k(θ), one r_k × r_k solve
per channel) or of all of them together (``mode="global"``), and the Galerkin projection of
every affine term once (pyMOR's :class:`~pymor.reductors.coercive.CoerciveRBReductor`).
Online: A(θ) = Σ_q θ_q A_q and the reduced load from θ, c; one small dense solve per basis;
the field u_f = V a when asked for.

Error bound: pyMOR's residual estimator ‖u_f − u_rb‖_X ≤ ‖r(u_rb)‖_X' / α_LB(θ), with the
min-theta coercivity bound α_LB(θ) = min_q θ_q / θ̄_q (valid since every K_q,ff is positive
semi-definite: per-phase ∫ tr ε tr ε, ∫ 2 ε:ε, ∫ ∇u·∇v, ∫ uv). In channel mode the bounds add
with |c_k| (triangle inequality). Serial only (the snapshots are SciPy solves).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .errors import ConfigError
from .problems.parametric import AffineOperators, ParametricProblem

MODES = ("channel", "global")
TIMINGS = ("snapshots_s", "pod_s", "projection_s", "offline_s", "fem_solves")
POD_RTOL = 1e-10  # keep every numerically independent snapshot direction (qr_svd POD)


def _pymor():
    """pyMOR's pieces, imported lazily (pyMOR pulls Qt helpers and a logger on import)."""
    from pymor.core.logger import set_log_levels  # deferred: loads pyMOR

    set_log_levels({"pymor": "WARN"})
    from pymor.algorithms.pod import pod  # deferred: loads pyMOR
    from pymor.models.basic import StationaryModel  # deferred: loads pyMOR

    # deferred: loads pyMOR
    # deferred: loads pyMOR
    from pymor.operators.constructions import LincombOperator, VectorOperator
    from pymor.operators.numpy import NumpyMatrixOperator  # deferred: loads pyMOR
    from pymor.parameters.functionals import (  # deferred: loads pyMOR
        GenericParameterFunctional,
        ProductParameterFunctional,
        ProjectionParameterFunctional,
    )
    from pymor.reductors.coercive import CoerciveRBReductor  # deferred: loads pyMOR

    return dict(pod=pod, StationaryModel=StationaryModel, Lincomb=LincombOperator,
                Vector=VectorOperator, Matrix=NumpyMatrixOperator,
                Generic=GenericParameterFunctional, Product=ProductParameterFunctional,
                Projection=ProjectionParameterFunctional, Reductor=CoerciveRBReductor)


@dataclass
class FreeSystem:
    """The affine terms split into free (f) and Dirichlet (d) dofs, serial."""

    free: np.ndarray
    dirichlet: np.ndarray
    K_ff: list  # CSC per θ_q
    K_fd: list  # CSR per θ_q
    b_f: np.ndarray  # (L, n_free)
    g: np.ndarray  # (L, n_dirichlet)
    n: int  # all dofs
    theta_bar: np.ndarray  # θ at the box centre (energy product, coercivity bound)
    _X: object = None

    def rhs(self, theta: np.ndarray, k: int) -> np.ndarray:
        """Channel k's free load at θ (the Dirichlet data lifted)."""
        return self.b_f[k] - sum(t * (K @ self.g[k]) for t, K in zip(theta, self.K_fd,
                                                                     strict=True))

    def K(self, theta: np.ndarray):
        """K_ff(θ) (CSC)."""
        return sum(t * K for t, K in zip(theta, self.K_ff, strict=True)).tocsc()

    def product(self):
        """The energy product X = K_ff(θ̄), one object: pyMOR keeps its LU per matrix object,
        so every channel's estimator reuses one factorisation (measured: 6 → 1 on the RVE)."""
        if self._X is None:
            self._X = self.K(self.theta_bar)
        return self._X


def free_system(problem: ParametricProblem, ops: AffineOperators | None = None) -> FreeSystem:
    """Split the assembled affine terms of `problem` into free and Dirichlet blocks (serial)."""
    if problem.dmesh.comm.size > 1:
        raise ConfigError("rom", "the reduced basis is built on one rank (run without mpiexec)")
    ops = ops or problem.operators()
    n = ops.layout.n_owned
    d = np.unique(ops.dirichlet_dofs)
    order = np.argsort(ops.dirichlet_dofs)
    mask = np.ones(n, bool)
    mask[d] = False
    free = np.flatnonzero(mask)
    K_ff = [K.tocsr()[free][:, free].tocsc() for K in ops.K_terms]
    K_fd = [K.tocsr()[free][:, ops.dirichlet_dofs[order]] for K in ops.K_terms]
    return FreeSystem(free, ops.dirichlet_dofs[order], K_ff, K_fd, ops.b[:, free],
                      ops.g[:, order], n, problem.theta(problem.box.centre()))


def snapshots(system: FreeSystem, thetas: np.ndarray) -> np.ndarray:
    """Free-dof FEM solutions (L, N, n_free) at each θ: one sparse LU per point."""
    L = len(system.b_f)
    out = np.zeros((L, len(thetas), len(system.free)))
    for i, theta in enumerate(thetas):
        lu = spla.splu(system.K(theta))
        for k in range(L):
            out[k, i] = lu.solve(system.rhs(theta, k))
    return out


def full_order_model(system: FreeSystem, channel: int | None):
    """pyMOR model on the free dofs: parameters θ (and c when `channel` is None)."""
    m = _pymor()
    Q, L = len(system.K_ff), len(system.b_f)
    theta = [m["Projection"]("theta", Q, q) for q in range(Q)]
    op = m["Lincomb"]([m["Matrix"](K) for K in system.K_ff], theta)
    space = op.source
    vec = lambda a: m["Vector"](space.from_numpy(np.asarray(a)[:, None]))  # noqa: E731
    channels = range(L) if channel is None else [channel]
    terms, coefs = [], []
    for k in channels:
        ck = 1.0 if channel is not None else m["Projection"]("c", L, k)
        terms.append(vec(system.b_f[k]))
        coefs.append(ck)
        for q, K in enumerate(system.K_fd):
            terms.append(vec(-(K @ system.g[k])))
            coefs.append(theta[q] if channel is not None else m["Product"]([theta[q], ck]))
    X = m["Matrix"](system.product())
    return m["StationaryModel"](op, m["Lincomb"](terms, coefs), products={"energy": X})


@dataclass
class Basis:
    """One reduced model: its basis, pyMOR reduced model and the online arrays."""

    V: np.ndarray  # (n_free, r)
    rom: object  # pyMOR reduced StationaryModel (with its error estimator)
    A: np.ndarray  # (Q, r, r) projected K_q,ff
    F: np.ndarray  # (P, r) projected load terms, in full_order_model's order

    @property
    def r(self) -> int:
        return self.V.shape[1]


@dataclass
class ReducedBasis:
    """A POD–Galerkin reduced model of a parametric problem (see the module docstring)."""

    problem: ParametricProblem
    system: FreeSystem
    mode: str
    points: np.ndarray  # training μ (N, p)
    bases: list[Basis]
    timings: dict = field(default_factory=dict)

    @classmethod
    def build(cls, problem: ParametricProblem, n_snapshots: int, *, mode: str = "channel",
              points: np.ndarray | None = None, ops: AffineOperators | None = None
              ) -> ReducedBasis:
        """Snapshots at `n_snapshots` training points (or `points`), POD, projection."""
        if mode not in MODES:
            raise ConfigError("rom.mode", f"{mode!r}: expected one of {', '.join(MODES)}")
        if points is None and not 1 <= n_snapshots <= 4096:
            raise ConfigError("--snapshots", f"{n_snapshots}: expected 1..4096")
        m = _pymor()
        system = free_system(problem, ops)
        mus = problem.box.points(n_snapshots, 0) if points is None else np.atleast_2d(points)
        t0 = time.perf_counter()
        snaps = snapshots(system, np.array([problem.theta(mu) for mu in mus]))
        t1 = time.perf_counter()
        groups = ([[k] for k in range(len(system.b_f))] if mode == "channel"
                  else [list(range(len(system.b_f)))])
        bases, t_pod = [], 0.0
        for g in groups:
            fom = full_order_model(system, g[0] if mode == "channel" else None)
            U = fom.solution_space.from_numpy(snaps[g].reshape(-1, snaps.shape[2]).T)
            tp = time.perf_counter()
            V, _ = m["pod"](U, product=fom.energy_product, method="qr_svd", rtol=POD_RTOL)
            t_pod += time.perf_counter() - tp
            coercivity = m["Generic"](
                lambda mu, tb=system.theta_bar: float(np.min(mu["theta"] / tb)), fom.parameters)
            rom = m["Reductor"](fom, RB=V, product=fom.energy_product,
                                coercivity_estimator=coercivity).reduce()
            bases.append(_online_arrays(V.to_numpy(), rom))
        t2 = time.perf_counter()
        timings = {"snapshots_s": t1 - t0, "pod_s": t_pod, "projection_s": t2 - t1 - t_pod,
                   "offline_s": t2 - t0, "fem_solves": int(len(mus))}
        return cls(problem, system, mode, mus, bases, timings)

    # -- online ------------------------------------------------------------------------
    def coefficients(self, mu: np.ndarray, c: np.ndarray | None = None) -> list[np.ndarray]:
        """The reduced coefficients per basis at μ (the reduced solves alone)."""
        theta = self.problem.theta(mu)
        c = self.problem.load_coefficients(mu)[0] if c is None else c
        out = []
        for k, b in enumerate(self.bases):
            A = np.tensordot(theta, b.A, axes=1)
            out.append(np.linalg.solve(A, _load_weights(theta, c, self.mode, k) @ b.F))
        return out

    def solve(self, mu: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        """The reduced field at μ on every (owned) dof, Dirichlet data included (load
        coefficients `c` instead of c(μ) if given: a unit load case)."""
        c = self.problem.load_coefficients(mu)[0] if c is None else np.asarray(c, float)
        u = np.zeros(self.system.n)
        u[self.system.dirichlet] = c @ self.system.g
        a = self.coefficients(mu, c)
        scale = c if self.mode == "channel" else np.ones(1)
        u[self.system.free] = sum(s * (b.V @ ak) for s, b, ak in zip(scale, self.bases, a,
                                                                    strict=True))
        return u

    def estimate(self, mu: np.ndarray) -> float:
        """pyMOR's a posteriori bound on ‖u_f − u_rb,f‖_X at μ (X = K_ff(θ̄))."""
        theta = self.problem.theta(mu)
        if self.mode == "global":
            c = self.problem.load_coefficients(mu)[0]
            rom = self.bases[0].rom
            return float(rom.estimate_error(rom.parameters.parse({"theta": theta, "c": c}))[0])
        c = self.problem.load_coefficients(mu)[0]
        return float(sum(abs(ck) * b.rom.estimate_error(b.rom.parameters.parse(
            {"theta": theta}))[0] for ck, b in zip(c, self.bases, strict=True)))

    def energy_norm(self, u: np.ndarray) -> float:
        """‖u_f‖_X of a full (owned) vector's free part."""
        v = u[self.system.free]
        return float(np.sqrt(v @ (self.system.product() @ v)))

    @property
    def dims(self) -> list[int]:
        """r per basis."""
        return [b.r for b in self.bases]

    def ops_per_query(self, full_field: bool = True) -> dict:
        """Arithmetic and memory words of one online query (see :func:`query_ops`)."""
        P = [b.F.shape[0] for b in self.bases]
        return query_ops(self.dims, self.bases[0].A.shape[0], P, len(self.system.free),
                         len(self.system.dirichlet), len(self.system.g), full_field)

    def save(self, path) -> None:
        """The online arrays (bases, projected terms, Dirichlet data) as one .npz."""
        arrays = {"mode": np.array(self.mode), "points": self.points, "free": self.system.free,
                  "dirichlet": self.system.dirichlet, "g": self.system.g,
                  "n": np.array(self.system.n), "timings": np.array(
                      [self.timings.get(k, 0.0) for k in TIMINGS])}
        for i, b in enumerate(self.bases):
            arrays.update({f"V{i}": b.V, f"A{i}": b.A, f"F{i}": b.F})
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path, problem: ParametricProblem) -> ReducedBasis:
        """A saved reduced model for online queries (no error estimator)."""
        d = np.load(path)
        k = len([f for f in d.files if f.startswith("V")])
        system = FreeSystem(d["free"], d["dirichlet"], [], [], np.zeros((0, 0)), d["g"],
                            int(d["n"]), problem.theta(problem.box.centre()))
        bases = [Basis(d[f"V{i}"], None, d[f"A{i}"], d[f"F{i}"]) for i in range(k)]
        return cls(problem, system, str(d["mode"]), d["points"], bases,
                   dict(zip(TIMINGS, map(float, d["timings"]), strict=True)))


def _load_weights(theta: np.ndarray, c: np.ndarray, mode: str, k: int) -> np.ndarray:
    """The coefficients of the projected load terms (full_order_model's order)."""
    if mode == "channel":
        return np.concatenate([[1.0], theta])
    return np.concatenate([ck * np.concatenate([[1.0], theta]) for ck in c])


def _online_arrays(V: np.ndarray, rom) -> Basis:
    """The projected matrices and load vectors of pyMOR's reduced model as arrays."""
    A = np.array([op.matrix for op in rom.operator.operators])
    F = np.array([op.as_range_array().to_numpy()[:, 0] for op in rom.rhs.operators])
    return Basis(V, rom, A, F)


def query_ops(dims: list[int], Q: int, P: list[int], n_free: int, n_dirichlet: int, L: int,
              full_field: bool = True) -> dict:
    """Operation counts of one online query: per basis of size r with P load terms,
    A = Σ θ_q A_q (Q r² MAC), the load (P r MAC), LU (r³/3 MAC) and two triangular solves
    (r² MAC); with the field, V a (n_free r MAC) and g = Σ c_k g_k (n_dirichlet L MAC).
    Reads count every stored word touched once, writes every word produced."""
    mac = acc = reads = writes = 0.0
    for r, p in zip(dims, P, strict=True):
        mac += Q * r * r + p * r + r**3 / 3 + r * r
        reads += Q * r * r + p * r + Q + p + r * r
        writes += r * r + 2 * r
    if full_field:
        mac += n_free * sum(dims) + n_dirichlet * L
        reads += n_free * sum(dims) + n_dirichlet * L + sum(dims) + L
        writes += n_free + n_dirichlet
    return {"mac": mac, "acc": acc, "reads": reads, "writes": writes}


def fom_system(problem: ParametricProblem, mu: np.ndarray, system: FreeSystem
               ) -> tuple[sp.csc_matrix, np.ndarray]:
    """K_ff(θ(μ)) and the free load at μ (for checks against direct assembly)."""
    theta, c = problem.theta(mu), problem.load_coefficients(mu)[0]
    return system.K(theta), sum(ck * system.rhs(theta, k) for k, ck in enumerate(c))
