"""Preconditioned training steps and output scales chosen from the problem.

**Preconditioned steps** (``fit(..., optimizer="preconditioned")``, ``[training]
optimizer = "preconditioned"``). First-order steps on the Galerkin energy
E(u) = ½uᵀKu − bᵀu move the low-energy modes of an ill-conditioned K (bending of slender
parts) slowly: Adam on a bracket stays at 80% error after 2 500 steps. A FEM solver meets
that with a preconditioner; so does this training, in function space. Every ``every``
steps, at the network's nodal values u (Dirichlet data imposed):

    r = b − Ku,   δ = P⁻¹r,   α = δᵀr / δᵀKδ,   t = u + αδ

(:class:`fem.preconditioners.FieldPreconditioner`: P is PETSc's GAMG with the rigid-body
near-nullspace, ``cycles`` CG iterations preconditioned by it; α the exact line search of
E along δ, so E(t) < E(u)). The steps in between are the loop's own Adam steps on the
regression towards that target in the lumped-mass L2 norm,

    L(θ) = Σ_i w_i (u_i(θ) − t_i)² / Σ_i w_i t_i²,

a Gauss–Newton-like step in function space: the operator's conditioning is taken by P,
and the regression only asks the network to represent a given field, which is well
conditioned in L2 (the bending modes that carry little energy carry most of the
displacement). It needs no derivative of the network beyond the parameter gradient, so
spiking networks train alike (surrogate gradients). :class:`PreconditionedObjective` is
a :class:`coupling.training.loop.Trainable` around the discretisation: the loop still
calls only ``sample``/``loss``/``measure``.

**Output scale** (:func:`auto_output_scale`): the network's raw outputs should be O(1);
the scale per component is the largest |u| of a preconditioned solve (CG + GAMG from
zero to a loose tolerance, :meth:`~fem.preconditioners.FieldPreconditioner.estimate`),
rounded to 1, 2 or 5 × 10^k.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from coupling.config.optimizer import optimizer_spec
from coupling.training.parallel import allreduce_scalars
from fem.errors import ConfigError

SCALE_ITERATIONS = 50  # CG + GAMG iterations of the scale estimate at most ...
SCALE_RTOL = 1e-4  # ... to this relative residual (1 and N ranks then round alike)
SCALE_FLOOR = 0.1  # a component's scale is at least this fraction of the largest one


def objective(disc: Any, optimizer: Any, net: torch.nn.Module, levels: bool = False) -> Any:
    """What `fit` trains on: `disc` itself (Adam on its loss) or the preconditioned
    regression around it (``optimizer`` "preconditioned", a table or an OptimizerSpec);
    `levels`: `disc` is the last level of a coarse-to-fine hierarchy (not preconditioned)."""
    if isinstance(optimizer, str) and optimizer == "adam":
        return disc
    spec = optimizer_spec(optimizer)
    if spec.kind == "adam":
        return disc
    if levels:
        raise ConfigError("training.optimizer", "'preconditioned' trains on one mesh; it is "
                          "not combined with a coarse-to-fine hierarchy (coupling.Levels)")
    return PreconditionedObjective(disc, spec, net)


def _check_trainable(disc: Any) -> None:
    """Refuse a discretisation without a Galerkin energy to precondition (one line)."""
    residual = getattr(disc, "residual", None)
    if not (hasattr(residual, "K") and hasattr(residual, "b") and hasattr(disc, "field")):
        raise ConfigError("training.optimizer", "'preconditioned' needs a galerkin "
                          "discretisation of one steady problem (coupling.discretise(problem, "
                          f"'galerkin')); got {type(disc).__name__} with "
                          f"{type(residual).__name__}")
    if disc.boundary.mode == "none":
        raise ConfigError("training.optimizer", "'preconditioned' needs the Dirichlet data "
                          "carried by the network: boundary 'exact' or 'hard', not 'soft'")


def preconditioner(disc: Any, kind: str = "gamg", cycles: int = 1):
    """The :class:`fem.preconditioners.FieldPreconditioner` of `disc`'s problem, built once
    per kind and kept on the discretisation, set to `cycles` (collective). One hierarchy
    serves the scale estimate and the training: a second one costs as much memory as K."""
    from fem.preconditioners import FieldPreconditioner  # deferred: loads PETSc, DOLFINx

    built = disc.__dict__.setdefault("_preconditioners", {})
    if kind not in built:
        built[kind] = FieldPreconditioner(disc.problem, kind, cycles)
    built[kind].set_cycles(cycles)
    return built[kind]


@dataclass
class PreconditionedObjective:
    """The regression towards u + αP⁻¹(b − Ku), its target refreshed every `every` steps."""

    disc: Any  # a galerkin coupling.Discretisation
    spec: Any  # coupling.config.optimizer.OptimizerSpec
    net: torch.nn.Module  # the (eager) network whose field the targets correct
    target: torch.Tensor | None = None  # t on the owned dofs (training dtype and device)
    columns: torch.Tensor | None = None  # t on every local column of K (energy term)
    norms: tuple[float, float] = (1.0, 1.0)  # Σ w t² and tᵀKt over all ranks
    last: dict = field(default_factory=dict)  # the latest correction's numbers (measures)

    def __post_init__(self) -> None:
        _check_trainable(self.disc)
        self.pre = preconditioner(self.disc, self.spec.preconditioner, self.spec.cycles)

    @property
    def comm(self):
        return self.disc.comm

    @property
    def bounds(self):
        return self.disc.bounds

    def __getattr__(self, name: str):  # in_dim, block_size, problem, ... of the disc
        if name.startswith("_") or name in ("disc", "spec", "net"):
            raise AttributeError(name)
        return getattr(self.disc, name)

    def sample(self, step: int, batch: int | float = 0) -> torch.Tensor | None:
        """Refresh the target at every `every`-th step (and the first one of a run or a
        resume); with a `batch` (a fraction of the nodes, or a count over all ranks) the
        owned nodes this step regresses on (None: all of them)."""
        if self.target is None or step % self.spec.every == 0:
            self.refresh(self.net)
        if not batch:
            return None
        if self.spec.energy_weight:
            raise ConfigError("training.batch", f"{batch!r}: the energy-norm misfit "
                              "(training.optimizer.energy_weight) needs every node; set batch "
                              "= 0 or energy_weight = 0")
        return node_batch(self.disc, step, batch, self.seed)

    @property
    def seed(self) -> int:
        return int(getattr(self.disc, "seed", 0) or 0)

    def refresh(self, net: torch.nn.Module) -> None:
        """t = u + αδ at the network's current field (collective: PETSc and Allreduces)."""
        d = self.disc
        with torch.no_grad():
            u = d.field(net)[: d.n_owned]
        u64 = u.detach().cpu().to(torch.float64).numpy()
        c = self.pre.correction(u64)
        t64 = u64 + c.alpha * c.delta
        t = torch.as_tensor(t64, dtype=u.dtype, device=u.device)
        # Σ w t², tᵀKt (this rank's parts), ‖αδ‖², ‖t‖²: one collective for all four
        local = [float(torch.sum(d.weights * t * t)), 0.0, float(c.alpha**2 * c.delta @ c.delta),
                 float(t64 @ t64)]
        if self.spec.energy_weight:
            self.columns = torch.as_tensor(_on_columns(d, t64), dtype=u.dtype, device=u.device)
            local[1] = float(_energy_norm2(d.residual, self.columns))
        sums = allreduce_scalars(local, self.comm)
        self.norms = tuple(float(v) if v > 0 else 1.0 for v in sums[:2])
        self.target = t
        self.last = {"alpha": c.alpha, "residual": c.residual,
                     "step": math.sqrt(sums[2] / sums[3]) if sums[3] > 0 else 0.0,
                     "corrections": self.last.get("corrections", 0) + 1}

    def loss(self, net: torch.nn.Module, batch: Any = None):
        """Σ w (u − t)² / Σ w t² + β (u − t)ᵀK(u − t) / tᵀKt, this rank's part (over a
        node batch B: Σ_B w (u − t)² / (p Σ w t²), unbiased for the first term)."""
        d, beta = self.disc, self.spec.energy_weight
        if batch is not None:
            return self._batch_loss(net, batch)
        if not beta:
            u = d.field(net)[: d.n_owned]
            fit = torch.sum(d.weights * (u - self.target) ** 2) / self.norms[0]
            return fit, {"fit": fit}
        u = _field_on_columns(d.residual, net)
        fit = torch.sum(d.weights * (u[: d.n_owned] - self.target) ** 2) / self.norms[0]
        energy = _energy_norm2(d.residual, u - self.columns) / self.norms[1]
        return fit + beta * energy, {"fit": fit, "energy_misfit": energy}

    def _batch_loss(self, net: torch.nn.Module, batch: tuple[torch.Tensor, float]):
        d, (nodes, p) = self.disc, batch
        if len(nodes) == 0:  # nothing drawn on this rank: a zero that still has a gradient
            zero = 0.0 * net(d.x_nodes[:1]).sum()
            return zero, {"fit": zero}
        bs = d.block_size
        dofs = nodes[:, None] * bs + torch.arange(bs, device=nodes.device)
        u = d.boundary.apply_at(net(d.x_nodes[nodes]).reshape(len(nodes), bs), dofs)
        fit = torch.sum(d.weights[dofs] * (u - self.target[dofs]) ** 2) / (p * self.norms[0])
        return fit, {"fit": fit}

    def measure(self, net: torch.nn.Module, final: bool = True) -> dict:
        """The discretisation's measures plus the latest correction (α, ‖r‖/‖b‖, step)."""
        out = self.disc.measure(net, final=final)
        out["preconditioned"] = {**self.last, **self.pre.info()}
        return out


def node_batch(disc: Any, step: int, batch: int | float, seed: int = 0
               ) -> tuple[torch.Tensor, float]:
    """The owned nodes of step `step`'s regression batch and the probability p each node
    had: a node enters when a hash of (its coordinates, step, seed) falls below p, so 1 and
    N ranks draw the same nodes (the global numbering depends on the partition, the
    coordinates do not) and a resumed run redraws them. `batch`: a fraction in (0, 1), or a
    number of nodes over all ranks."""
    n_owned = disc.n_owned // disc.block_size
    total = disc.comm.allreduce(n_owned)
    p = float(batch) if isinstance(batch, float) and batch < 1 else min(1.0, batch / max(total, 1))
    if "_node_keys" not in disc.__dict__:  # the coordinates, on a 2^-30 grid of the box
        # (the partitions' coordinates differ in round-off), mixed once per run
        x = disc.x_nodes[:n_owned].detach().cpu().to(torch.float64).numpy()
        lo, hi = (np.asarray(b, dtype=np.float64) for b in disc.bounds)
        grid = np.rint((x - lo) / np.where(hi > lo, hi - lo, 1.0) * 2.0**30).astype(np.int64)
        key = np.zeros(n_owned, dtype=np.uint64)
        for column in grid.astype(np.uint64).T:
            key = _mix(key ^ column)
        disc.__dict__["_node_keys"] = key
    with np.errstate(over="ignore"):
        salt = np.uint64((step * 0xBF58476D1CE4E5B9 + seed * 0x94D049BB133111EB) % 2**64)
        z = _mix(disc.__dict__["_node_keys"] ^ salt)
    keep = (z >> np.uint64(11)).astype(np.float64) / float(2**53) < p
    return torch.as_tensor(np.flatnonzero(keep), device=disc.x_nodes.device), p


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, elementwise on uint64 (a bijection that scatters bits)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _field_on_columns(residual, net: torch.nn.Module) -> torch.Tensor:
    """The network's coefficients on the columns the residual's K multiplies: all local
    columns (whole energy) or V's local dofs (element energy)."""
    if hasattr(residual, "coefficients"):
        return residual.coefficients(net)
    nodes = torch.arange(len(residual.x), device=residual.x.device)
    return residual.field(net, nodes).reshape(-1)


def _energy_norm2(residual, d: torch.Tensor) -> torch.Tensor:
    """This rank's part of dᵀKd: owned rows × local columns, or this rank's cells."""
    if hasattr(residual, "coefficients"):
        return torch.dot(d[: residual.n_owned], residual.K @ d)
    d_e = d[residual.dofs]
    return torch.einsum("ci,cij,cj->", d_e, residual.K, d_e)


def _on_columns(disc, owned: np.ndarray) -> np.ndarray:
    """Owned values extended to every local column of the residual's K (ghosts of V from
    their owners, then the extra couplings of the whole energy; collective)."""
    from fem.mpi import fetch_from_owners  # deferred: loads DOLFINx's MPI
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx

    layout, V = disc.operators.layout, disc.problem.V
    f = dolfinx.fem.Function(V)
    f.x.array[: layout.n_owned] = owned
    f.x.scatter_forward()
    values = f.x.array[: layout.n_function].copy()
    if not hasattr(disc.residual, "coefficients") or disc.comm.size == 1:
        return values  # (serial: no extra columns)
    first = V.dofmap.index_map.local_range[0] * layout.block_size
    extra = fetch_from_owners(disc.comm, owned, first, layout.local_to_global[layout.n_function:],
                              layout.owners[layout.n_function:])
    return np.concatenate([values, extra])


def auto_output_scale(disc: Any, iterations: int = SCALE_ITERATIONS) -> list[float]:
    """An output scale per field component from the problem: max |u_c| of a preconditioned
    solve (CG + GAMG from zero, ≤ `iterations` to a relative residual SCALE_RTOL), at least
    SCALE_FLOOR × the largest component's, rounded to 1, 2 or 5 × 10^k (collective; 1.0 for
    a zero field). Its time is kept as ``disc.scale_s``."""
    from meshes.fenics import MPI  # deferred: loads DOLFINx (only a scale estimate needs it)

    t0 = time.perf_counter()
    pre = preconditioner(disc, "gamg", 1)
    u = np.abs(pre.estimate(iterations, SCALE_RTOL)).reshape(-1, disc.block_size)
    local = u.max(axis=0) if len(u) else np.zeros(disc.block_size)
    top = np.empty_like(local)
    disc.comm.Allreduce(np.ascontiguousarray(local), top, op=MPI.MAX)
    largest = float(np.max(top))
    disc.__dict__["scale_s"] = time.perf_counter() - t0
    if not largest > 0 or not math.isfinite(largest):
        return [1.0] * disc.block_size
    return [_nice(max(float(v), SCALE_FLOOR * largest)) for v in top]


def _nice(x: float) -> float:
    """x rounded to the nearest (in ratio) of 1, 2 or 5 × 10^k: a step of ×2 or more
    between choices, so round-off between partitions of the estimate does not change it."""
    k = math.floor(math.log10(x))
    candidates = [m * 10.0**e for e in (k - 1, k, k + 1) for m in (1, 2, 5)]
    return float(f"{min(candidates, key=lambda c: abs(math.log(c / x))):.1g}")
