"""What every problem is: the interface residuals, trainers and validation rely on."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Problem(Protocol):
    """A PDE on a distributed mesh, discretised by a DOLFINx function space.

    ``stiffness``, ``mass`` and ``load`` are the UFL forms of the steady spatial operator
    a(u, v), (u, v) and L(v), without Dirichlet elimination (what :mod:`fem.operators`
    assembles); ``bcs`` are DOLFINx Dirichlet conditions; ``solve()`` gives the FEM
    reference. Built-in problems (:data:`fem.problems.PROBLEMS`) and
    :class:`fem.VariationalProblem` all satisfy it.
    """

    name: str  # "poisson", "elasticity", ..., or "custom"
    dmesh: Any  # meshes.DistributedMesh
    V: Any  # dolfinx.fem.FunctionSpace
    stiffness: Any  # ufl.Form
    mass: Any
    load: Any
    bcs: list
    vector: bool
    #: the strong form (coefficients, source, boundary data: a ``fem.config.ProblemTable``)
    #: when the problem is built from one, else None; the sp and autograd residuals and the
    #: PDE-free lift need it, the Galerkin energy does not
    strong_form: Any

    def solve(self) -> Any:
        """The FEM solution (a :class:`fem.problems.Solution`); collective."""
