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
    per (kind, cycles) and kept on the discretisation (collective)."""
    from fem.preconditioners import FieldPreconditioner  # deferred: loads PETSc, DOLFINx

    built = disc.__dict__.setdefault("_preconditioners", {})
    if (kind, cycles) not in built:
        built[kind, cycles] = FieldPreconditioner(disc.problem, kind, cycles)
    return built[kind, cycles]


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

    def sample(self, step: int, batch: int | float = 0) -> None:
        """Refresh the target at every `every`-th step (and the first one of a run or a
        resume); the regression is over all owned dofs, so no batch."""
        if self.target is None or step % self.spec.every == 0:
            self.refresh(self.net)
        return None

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
        """Σ w (u − t)² / Σ w t² + β (u − t)ᵀK(u − t) / tᵀKt, this rank's part."""
        d, beta = self.disc, self.spec.energy_weight
        if not beta:
            u = d.field(net)[: d.n_owned]
            fit = torch.sum(d.weights * (u - self.target) ** 2) / self.norms[0]
            return fit, {"fit": fit}
        u = _field_on_columns(d.residual, net)
        fit = torch.sum(d.weights * (u[: d.n_owned] - self.target) ** 2) / self.norms[0]
        energy = _energy_norm2(d.residual, u - self.columns) / self.norms[1]
        return fit + beta * energy, {"fit": fit, "energy_misfit": energy}

    def measure(self, net: torch.nn.Module, final: bool = True) -> dict:
        """The discretisation's measures plus the latest correction (α, ‖r‖/‖b‖, step)."""
        out = self.disc.measure(net, final=final)
        out["preconditioned"] = {**self.last, **self.pre.info()}
        return out


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
