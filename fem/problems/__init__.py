"""UFL problem definitions on any :class:`meshes.DistributedMesh`, P1/P2, MPI-distributed.

Every problem object has ``V`` (its function space), ``stiffness``, ``mass`` and ``load``
(UFL forms of the steady spatial operator, without Dirichlet elimination — what
:mod:`fem.operators` assembles), ``bcs`` (DOLFINx Dirichlet conditions) and
``solve() -> Solution``.
"""

from __future__ import annotations

from meshes import DistributedMesh

from ..config import ProblemTable
from ..operators import dirichlet_arrays
from .common import Solution, SpaceTimeSeries, phase_field
from .elasticity import ElasticityProblem, lame
from .homogenisation import (
    HomogenisationProblem,
    Homogenised,
    bulk_shear,
    hashin_shtrikman,
    homogenise,
    isotropic_moduli,
    unit_strain,
)
from .protocol import Problem
from .scalar import ScalarEllipticProblem
from .transient import BurgersProblem, HeatProblem
from .variational import VariationalProblem, functionspace

PROBLEMS = {
    "poisson": ScalarEllipticProblem,
    "poisson_boltzmann": ScalarEllipticProblem,
    "heat": HeatProblem,
    "burgers": BurgersProblem,
    "elasticity": ElasticityProblem,
    "homogenisation": HomogenisationProblem,
}


def build_problem(dmesh: DistributedMesh, spec: ProblemTable):
    """The problem object for a validated spec on a mesh (collective)."""
    return PROBLEMS[spec.type](dmesh, spec)


def solve(dmesh: DistributedMesh, spec: ProblemTable) -> Solution:
    """Build and solve (collective)."""
    return build_problem(dmesh, spec).solve()


__all__ = [
    "PROBLEMS",
    "Problem",
    "VariationalProblem",
    "functionspace",
    "BurgersProblem",
    "ElasticityProblem",
    "HeatProblem",
    "Homogenised",
    "HomogenisationProblem",
    "ScalarEllipticProblem",
    "Solution",
    "SpaceTimeSeries",
    "build_problem",
    "bulk_shear",
    "dirichlet_arrays",
    "hashin_shtrikman",
    "homogenise",
    "isotropic_moduli",
    "lame",
    "phase_field",
    "solve",
    "unit_strain",
]
