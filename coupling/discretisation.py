"""`discretise`: a problem made trainable — the residual of the named kind and its measures.

A short dispatcher: it assembles what every residual needs on this rank's owned part of
the mesh (:mod:`fem.operators`: K, M, b with Dirichlet data, node coordinates with owned,
ghost and extra columns; the boundary map of :mod:`coupling.boundary`) into a
:class:`coupling.residuals.base.BuildContext`, and hands it to the builder registered for
the residual kind in :data:`RESIDUALS` (one module per kind in :mod:`coupling.residuals`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from coupling.boundary import BoundaryValues, boundary_values
from coupling.config import SPACE_TIME, ResidualSpec, default_boundary_mode
from coupling.consistency import consistency_term
from coupling.geometry import with_interface_distance
from coupling.measure import Measured
from coupling.residuals import autograd, autograd_elastic, galerkin, sp, sp_elastic
from coupling.residuals.base import BuildContext, Residual
from coupling.residuals.spacetime import SpaceTimeDiscretisation, discretise_space_time
from fem.errors import ConfigError
from fem.operators import Operators, assemble_operators
from fem.problems import Problem
from meshes.core import bounding_box
from meshes.fenics import MPI, dolfinx


@dataclass
class Discretisation(Measured):
    """A problem made trainable: the residual plus what measures the network against FEM.

    ``loss``/``batch_size``/``measure`` make it a :class:`coupling.training.loop.Trainable`;
    ``to_function`` turns a trained network back into a DOLFINx function on the problem's
    space (Dirichlet data imposed), which :func:`validation.compare` takes.
    """

    residual: Residual
    x_nodes: torch.Tensor  # (n_function_nodes, in_dim) network inputs at V's local dof nodes
    boundary: BoundaryValues  # the boundary map restricted to V's local dofs
    weights: torch.Tensor  # (n_owned,) lumped-mass weights of owned (unrolled) dofs
    n_owned: int  # owned unrolled dofs
    block_size: int
    problem: Problem
    operators: Operators
    target: torch.Tensor | None = None  # (n_owned,) float64 FEM reference at the owned dofs
    bounds: tuple[list[float], list[float]] | None = None  # global box of the network inputs
    comm: MPI.Comm | None = None
    reference: Any = None  # the FE reference function (off-node measures), or None
    consistency: Any = None  # coupling.consistency.ConsistencyTerm added to the loss, or None

    @property
    def in_dim(self) -> int:
        """Number of network inputs (coordinates, plus any geometric features)."""
        return self.x_nodes.shape[1]

    def field(self, net: torch.nn.Module) -> torch.Tensor:
        """The network as FE coefficients on V's local dofs (Dirichlet data imposed)."""
        return self.boundary.apply(net(self.x_nodes).reshape(-1))

    def evaluate(self, net: torch.nn.Module) -> torch.Tensor:
        """The network at the owned dofs (what `target` and `weights` refer to)."""
        return self.field(net)[: self.n_owned]

    def to_function(self, net: torch.nn.Module, name: str = "u_network"
                    ) -> dolfinx.fem.Function:
        """The network's field as a DOLFINx function on the problem's space (collective)."""
        u = dolfinx.fem.Function(self.problem.V, name=name)
        with torch.no_grad():
            u.x.array[:] = self.field(net).detach().cpu().to(torch.float64).numpy()
        u.x.scatter_forward()  # ghosts from their owners: one value per dof on every rank
        return u


def _residual_builders() -> dict[tuple[str, bool], Callable[[BuildContext], Residual]]:
    """(kind, vector problem) → the builder of that residual (one module per kind)."""
    return {("galerkin", False): galerkin.build, ("galerkin", True): galerkin.build,
            ("sp", False): sp.build, ("sp", True): sp_elastic.build,
            ("autograd", False): autograd.build, ("autograd", True): autograd_elastic.build}


#: the residual kinds :func:`discretise` knows, keyed by (kind, vector-valued problem)
RESIDUALS = _residual_builders()


def discretise(problem: Problem, residual: str | Any = "galerkin", *, boundary: str | None = None,
               boundary_weight: float = 100.0, dtype: torch.dtype | None = None,
               reference=None, interface_distance: bool = False, batch: int | float = 0,
               seed: int = 0, refresh: int = 20, cluster_cells: int = 32, lift: str = "adf",
               consistency: float = 0.0, **options) -> Discretisation | SpaceTimeDiscretisation:
    """Make `problem` trainable with the named residual (collective).

    `residual` is ``"galerkin"`` (any :class:`fem.Problem`), ``"sp"`` or ``"autograd"``
    (built-in problems, whose strong form is known), or a residual spec from a run
    config; `options` are its settings (``neighbours``, ``rings``, ``k``, ``radius``,
    ``order``, ``quadrature_degree``). `boundary` is ``"exact"`` | ``"hard"`` | ``"soft"``
    (default: exact for galerkin, hard for sp, soft for autograd). `reference` (an FE
    function or a :class:`fem.problems.Solution`) enables ``rel_l2`` in the measures;
    `dtype` defaults to torch's default dtype. Time-dependent problems are discretised in
    space-time (:mod:`coupling.residuals.spacetime`).
    With ``batch`` (a number of cells or a fraction) the galerkin energy is a sum over
    elements and each step of :func:`coupling.fit` samples cells
    (:mod:`coupling.residuals.galerkin`), in clusters of about `cluster_cells` cells, with a
    control-variate snapshot every `refresh` steps (0: plain sampling).
    `lift` (``"adf"`` | ``"harmonic"`` | ``"none"``) builds g̃ and D of the hard/exact
    boundaries (:mod:`coupling.boundary`; a VariationalProblem's ``"adf"`` lift comes from its
    bcs mapping, ``"harmonic"`` is built-in only); `consistency` > 0 adds the off-node consistency
    term of that weight (:mod:`coupling.consistency`).
    """
    spec = residual if not isinstance(residual, str) else ResidualSpec(kind=residual, **options)
    dtype = dtype or torch.get_default_dtype()
    mode = boundary or default_boundary_mode(spec.kind, problem.name in SPACE_TIME)
    if problem.name in SPACE_TIME:
        return discretise_space_time(problem.strong_form, spec, boundary_weight, problem.dmesh,
                                     reference, dtype, problem.dmesh.comm)
    _check_supported(problem, spec.kind, mode, lift, boundary_weight)
    ctx, bounds = _context(problem, spec, mode, boundary_weight, dtype, lift, interface_distance)
    ctx.batch, ctx.seed, ctx.refresh, ctx.cluster_cells = batch, seed, refresh, cluster_cells
    res = RESIDUALS[spec.kind, problem.vector](ctx)
    layout = ctx.ops.layout
    n_nodes = layout.n_function // layout.block_size
    ref = getattr(reference, "u", reference)
    target = (torch.as_tensor(ref.x.array[: layout.n_owned].copy(), dtype=torch.float64)
              if ref is not None else None)
    disc = Discretisation(res, ctx.t(ctx.x[:n_nodes]), ctx.boundary.restrict(layout.n_function),
                          ctx.t(ctx.lumped), layout.n_owned, layout.block_size, problem, ctx.ops,
                          target, bounds, problem.dmesh.comm)
    disc.reference = ref
    if consistency:
        disc.consistency = consistency_term(disc, consistency, seed)
    return disc


def _context(problem: Problem, spec, mode: str, weight: float, dtype: torch.dtype, lift: str,
             interface_input: bool) -> tuple[BuildContext, tuple[list[float], list[float]]]:
    """Operators, network inputs at the nodes (with features), boundary data; the input box."""
    dmesh = problem.dmesh
    ops = assemble_operators(problem)
    coords = ops.layout.coordinates[:, : dmesh.mesh.geometry.dim]
    lo, hi = bounding_box(dmesh.mesh)
    x, bounds = coords, (lo.tolist(), hi.tolist())
    if interface_input:  # autograd differentiates the input: the smooth inclusion depth
        feature = "depth" if spec.kind == "autograd" and problem.vector else "distance"
        x, bounds = with_interface_distance(coords, bounds, dmesh, feature)
    lumped = ops.weights  # lumped mass (P1); scaled mass diagonal from P2 on
    bvals = boundary_values(problem, ops, mode, dtype, lift, coords)
    return BuildContext(problem, spec, mode, weight, ops, bvals, x, lumped, dtype,
                        interface_input), bounds


def _check_supported(problem: Problem, kind: str, mode: str, lift: str = "adf",
                     weight: float = 100.0) -> None:
    """Refuse combinations a residual cannot serve (one line naming the setting)."""
    spec = problem.strong_form
    if kind not in ("galerkin", "sp", "autograd"):
        raise ConfigError("residual.kind", f"unknown value {kind!r} (choose from galerkin, sp, "
                          "autograd)")
    elastic = kind in ("sp", "autograd") and getattr(problem, "name", None) == "elasticity"
    if kind != "galerkin" and (spec is None or (problem.vector and not elastic)):
        raise ConfigError("residual.kind", f"{kind!r} evaluates a scalar strong form and needs a "
                          f"built-in scalar problem; use 'galerkin' for {problem.name!r}")
    if mode not in ("exact", "hard", "soft"):
        raise ConfigError("boundary.mode", f"unknown value {mode!r} (choose from exact, hard, "
                          "soft)")
    if mode == "soft" and kind == "galerkin":  # the energy has no boundary term to penalise
        raise ConfigError("boundary.mode", "'soft' would add no Dirichlet penalty to the "
                          "galerkin energy (the data would be ignored); use 'exact' or 'hard'")
    if mode != "exact" and spec is None:
        raise ConfigError("boundary.mode", f"{mode!r} needs the boundary data of a built-in "
                          "problem; use 'exact' with a VariationalProblem")
    # the weight scales the soft penalty only, which a custom problem never has
    if spec is None and weight != 100.0:
        raise ConfigError("boundary.weight", "weighs the 'soft' boundary penalty, which a "
                          "VariationalProblem (always 'exact') does not have; leave it unset")
    _check_lift(problem, mode, lift)
    # galerkin takes any Lagrange degree (the network at V's dofs); sp differentiates P1 nodes
    if kind == "sp" and problem.V.ufl_element().embedded_superdegree != 1:
        raise ConfigError("problem.degree", "the sp residual differentiates nodal values at "
                          "the vertices and needs degree = 1; use 'galerkin' for P2")


def _check_lift(problem: Problem, mode: str, lift: str) -> None:
    """Refuse a lift the problem cannot have (one line naming boundary.lift)."""
    custom = problem.strong_form is None
    if lift not in ("adf", "harmonic", "none"):
        raise ConfigError("boundary.lift", f"unknown value {lift!r} (choose from adf, harmonic, "
                          "none)")
    if custom and lift == "harmonic":
        raise ConfigError("boundary.lift", "'harmonic' solves on a built-in problem's boundary "
                          "data; use 'adf' or 'none' with a VariationalProblem")
    # raw DirichletBC objects hold nodal values only: nothing to extend off the nodes
    if custom and lift == "adf" and getattr(problem, "bcs", None) \
            and getattr(problem, "dirichlet_data", None) is None:
        raise ConfigError("boundary.lift", "'adf' needs the Dirichlet data, not DirichletBC "
                          "objects: pass bcs as a mapping {facet group: value}, or use "
                          "lift='none'")
    if mode == "hard" and lift == "none":
        raise ConfigError("boundary.lift", "'hard' boundaries need a lift: 'adf' or 'harmonic'")
    if problem.vector and mode == "hard" and lift != "adf":
        raise ConfigError("boundary.lift", f"the {lift!r} lift is scalar-only; use 'adf' for "
                          "elasticity")
