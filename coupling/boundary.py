"""Dirichlet data on network outputs: exact dofs, hard lifting u = g̃ + D·N, or none (soft).

- ``exact`` (Galerkin): the Dirichlet dofs of the FE coefficient vector are overwritten
  with their data, so the network only decides the free dofs.
- ``hard``: u = g̃ + D·N with D an approximate distance function computed on the mesh —
  the solution of −ΔD = 1, D = 0 on the Dirichlet boundary, normalised to max D = 1 —
  and g̃ the harmonic extension of the data (−Δg̃ = 0, g̃ = g there). Both are P1 fields
  solved by DOLFINx, so any boundary shape works (no analytic distance needed).
- ``soft``: nothing here; the loss carries a penalty term instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fem.config import ProblemSpec, parse_problem
from fem.errors import ConfigError


@dataclass
class BoundaryValues:
    """Maps raw network values on local dofs to values with the Dirichlet data imposed."""

    mode: str  # "exact" | "hard" | "none"
    index: torch.Tensor | None = None  # exact: local dofs to overwrite
    values: torch.Tensor | None = None  # exact: their data
    lift: torch.Tensor | None = None  # hard: g̃ at every local dof
    distance: torch.Tensor | None = None  # hard: D at every local dof

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """u with the boundary data imposed (differentiable in u)."""
        if self.mode == "exact":
            return u.index_put((self.index,), self.values)
        if self.mode == "hard":
            return self.lift + self.distance * u
        return u

    def apply_at(self, u: torch.Tensor, dofs: torch.Tensor) -> torch.Tensor:
        """Values u at the local dofs `dofs` with the boundary data imposed there."""
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
        if self.mode == "hard":
            return self.lift[dofs] + self.distance[dofs] * u
        return u

    def restrict(self, n: int) -> BoundaryValues:
        """The same map on the first n local dofs only (e.g. V's owned + ghost dofs)."""
        if self.mode == "exact":
            keep = self.index < n
            return BoundaryValues("exact", self.index[keep], self.values[keep])
        if self.mode == "hard":
            return BoundaryValues("hard", lift=self.lift[:n], distance=self.distance[:n])
        return self


def dirichlet_boundaries(spec: ProblemSpec) -> list:
    """The Dirichlet-type boundary specs of a problem (dirichlet, roller, affine)."""
    return [bc for bc in spec.bcs if bc.type in ("dirichlet", "roller", "affine")]


def distance_and_lift_specs(spec: ProblemSpec) -> tuple[ProblemSpec, ProblemSpec]:
    """Poisson problems whose solutions are the distance function D and the lift g̃."""
    bcs = [bc for bc in spec.bcs if bc.type == "dirichlet"]
    if not bcs:
        raise ConfigError("boundary.mode", "'hard' needs at least one Dirichlet boundary in "
                          "problem.bcs")
    distance = {"type": "poisson", "degree": 1, "source": 1.0,
                "bcs": [{"boundary": bc.boundary, "type": "dirichlet", "value": 0.0} for bc in bcs]}
    lift = {"type": "poisson", "degree": 1, "source": 0.0,
            "bcs": [{"boundary": bc.boundary, "type": "dirichlet", "value": bc.value[0].text}
                    for bc in bcs]}
    return parse_problem(distance), parse_problem(lift)


def normalised(values: np.ndarray, comm) -> np.ndarray:
    """values / global max(values) (the distance function scaled to max 1)."""
    from meshes.fenics import MPI

    top = comm.allreduce(float(values.max(initial=0.0)), op=MPI.MAX)
    if top <= 0:
        raise ConfigError("boundary.mode", "the distance function vanishes everywhere "
                          "(is every boundary Dirichlet on a degenerate mesh?)")
    return values / top
