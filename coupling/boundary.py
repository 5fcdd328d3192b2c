"""Dirichlet data on network outputs: exact dofs, hard lifting u = g̃ + D·N, or none (soft).

- ``hard``: u = g̃ + D·N. With the default lift (``lift = "adf"``, :mod:`coupling.lift`)
  D is an approximate distance function to Γ_D and g̃ the transfinite interpolation of the
  data, both evaluated by formula at any point, so the raw network u(x) = g̃(x) + D(x)·N(x)
  meets the data everywhere on Γ_D, not only at the nodes, and carries no PDE solution.
  ``lift = "harmonic"`` keeps the former nodal lift: D solves −ΔD = 1 and g̃ is the
  harmonic extension (−Δg̃ = 0) — on a Laplace problem g̃ *is* the FEM solution.
- ``exact`` (Galerkin): the same ADF lift is part of the network's output, and the
  Dirichlet dofs of the FE coefficient vector are also overwritten with their data (they
  already equal it up to round-off, D = 0 there), so the energy is that of the FEM
  space; ``lift = "none"`` keeps the overwrite alone. A user's VariationalProblem gets the
  same ADF lift from its bcs mapping (raw DirichletBC objects: refused, or ``"none"``).
- ``soft``: nothing here; the loss carries a penalty term instead.

:class:`BoundaryValues` holds the nodal values (``lift`` = g̃, ``distance`` = D at the local
dofs, unrolled) and the :class:`coupling.lift.Lift` (``lifter``) for off-node points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fem.config import ProblemTable, parse_problem
from fem.errors import ConfigError
from fem.mpi import fetch_from_owners
from fem.operators import space_degree
from meshes.fenics import MPI


@dataclass
class BoundaryValues:
    """Maps raw network values on local dofs to values with the Dirichlet data imposed."""

    mode: str  # "exact" | "hard" | "none"
    index: torch.Tensor | None = None  # exact: local dofs to overwrite
    values: torch.Tensor | None = None  # exact: their data
    lift: torch.Tensor | None = None  # hard (and exact with a lift): g̃ at every local dof
    distance: torch.Tensor | None = None  # D at every local dof
    lifter: object = None  # coupling.lift.Lift: g̃ and D at any point (None: nodal only)

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """u with the boundary data imposed (differentiable in u)."""
        if self.lift is not None:
            u = self.lift + self.distance * u
        if self.mode == "exact":
            return u.index_put((self.index,), self.values)
        return u

    def apply_at(self, u: torch.Tensor, dofs: torch.Tensor) -> torch.Tensor:
        """Values u at the local dofs `dofs` with the boundary data imposed there."""
        if self.lift is not None:
            u = self.lift[dofs] + self.distance[dofs] * u
        if self.mode == "exact":
            if not hasattr(self, "_fixed"):  # dense lookup of the fixed dofs, built once
                n = int(max(self.index.max() + 1, dofs.max() + 1)) if len(self.index) else 0
                self._fixed = torch.zeros(max(n, 1), dtype=torch.bool, device=dofs.device)
                self._fixed[self.index] = True
                self._data = torch.zeros(max(n, 1), dtype=self.values.dtype, device=dofs.device)
                self._data[self.index] = self.values
            inside = dofs < len(self._fixed)
            at = torch.where(inside, dofs, torch.zeros_like(dofs))
            return torch.where(inside & self._fixed[at], self._data[at], u)
        return u

    def restrict(self, n: int) -> BoundaryValues:
        """The same map on the first n local dofs only (e.g. V's owned + ghost dofs)."""
        lift = None if self.lift is None else self.lift[:n]
        distance = None if self.distance is None else self.distance[:n]
        if self.mode == "exact":
            keep = self.index < n
            return BoundaryValues("exact", self.index[keep], self.values[keep], lift, distance,
                                  self.lifter)
        if self.mode == "hard":
            return BoundaryValues("hard", lift=lift, distance=distance, lifter=self.lifter)
        return self

    def at_points(self, x: np.ndarray, raw: torch.Tensor) -> torch.Tensor:
        """The field g̃(x) + D(x)·N(x) at any points x (n, gdim) from raw outputs N (n, bs).

        Without a point-wise lift (soft, ``lift = "none"``, the nodal harmonic lift) the raw
        output is returned as it is: then the network meets the data only where trained.
        """
        if self.lifter is None:
            return raw
        g, d = self.lifter(x)
        t = lambda a: torch.as_tensor(a, dtype=raw.dtype, device=raw.device)  # noqa: E731
        return t(g) + t(d) * raw


def dirichlet_boundaries(spec: ProblemTable) -> list:
    """The Dirichlet-type boundary specs of a problem (dirichlet, roller, affine)."""
    return [bc for bc in spec.bcs if bc.type in ("dirichlet", "roller", "affine")]


def distance_and_lift_specs(spec: ProblemTable, degree: int = 1
                            ) -> tuple[ProblemTable, ProblemTable]:
    """Poisson problems whose solutions are the distance function D and the lift g̃ (in the
    problem's Lagrange degree, so their dofs are the problem's: P2 has edge midpoints)."""
    bcs = [bc for bc in spec.bcs if bc.type == "dirichlet"]
    if not bcs:
        raise ConfigError("boundary.mode", "'hard' needs at least one Dirichlet boundary in "
                          "problem.bcs")
    distance = {"type": "poisson", "degree": degree, "source": 1.0,
                "bcs": [{"boundary": bc.boundary, "type": "dirichlet", "value": 0.0} for bc in bcs]}
    lift = {"type": "poisson", "degree": degree, "source": 0.0,
            "bcs": [{"boundary": bc.boundary, "type": "dirichlet", "value": bc.value[0].text}
                    for bc in bcs]}
    return parse_problem(distance), parse_problem(lift)


def normalised(values: np.ndarray, comm) -> np.ndarray:
    """values / global max(values) (the distance function scaled to max 1)."""

    top = comm.allreduce(float(values.max(initial=0.0)), op=MPI.MAX)
    if top <= 0:
        raise ConfigError("boundary.mode", "the distance function vanishes everywhere "
                          "(is every boundary Dirichlet on a degenerate mesh?)")
    return values / top


def boundary_values(problem, ops, mode: str, dtype, lift: str = "adf", x=None
                    ) -> BoundaryValues:
    """Dirichlet data on every local column (extra couplings fetched from their owners)."""
    layout, dmesh = ops.layout, problem.dmesh
    comm = dmesh.comm
    if mode == "soft":
        return BoundaryValues("none")
    fixed = np.full(layout.n_function, np.nan)
    fixed[ops.dirichlet_dofs] = ops.dirichlet_values
    full = _extend_to_columns(fixed, problem.V, layout, comm)
    idx = np.flatnonzero(~np.isnan(full))
    index = torch.as_tensor(idx, dtype=torch.int64)
    values = torch.as_tensor(full[idx], dtype=dtype)
    if lift == "adf" and _has_dirichlet(problem):
        from coupling.lift import build_lift  # deferred: lift imports this module

        lifter = build_lift(problem, comm)
        lifter.normalise(x[: layout.n_owned // layout.block_size], comm)
        G, D = (a.reshape(-1) for a in lifter(x))
        G[idx], D[idx] = full[idx], 0.0  # the nodes of Γ_D carry their data exactly
        return BoundaryValues(mode, index, values, torch.as_tensor(G, dtype=dtype),
                              torch.as_tensor(D, dtype=dtype), lifter)
    if mode == "exact":
        return BoundaryValues("exact", index, values)
    from fem.problems import solve  # deferred: only the harmonic lift solves

    dspec, lspec = distance_and_lift_specs(problem.strong_form, space_degree(problem.V))
    D = solve(dmesh, dspec).u.x.array.copy()
    G = solve(dmesh, lspec).u.x.array.copy()
    D = normalised(_extend_to_columns(D, problem.V, layout, comm), comm)
    G = _extend_to_columns(G, problem.V, layout, comm)
    return BoundaryValues("hard", lift=torch.as_tensor(G, dtype=dtype),
                          distance=torch.as_tensor(D, dtype=dtype))


def _has_dirichlet(problem) -> bool:
    """Whether the problem has Dirichlet conditions to lift (custom: any bcs at all).

    A VariationalProblem without bcs has nothing to lift; one with raw DirichletBC
    objects is refused by :func:`coupling.lift.build_lift` (its data exist only at nodes).
    """
    if problem.strong_form is not None:
        return True
    return bool(getattr(problem, "bcs", None))


def _extend_to_columns(values: np.ndarray, V, layout, comm) -> np.ndarray:
    """Values on V's local dofs extended to the layout's extra columns (from their owners)."""
    extra = layout.local_to_global[layout.n_function:]
    if comm.size == 1:
        return values.copy()
    first = V.dofmap.index_map.local_range[0] * layout.block_size
    got = fetch_from_owners(comm, values[: layout.n_owned], first, extra,
                            layout.owners[layout.n_function:])
    return np.concatenate([values, got])
