"""Steady scalar problems: Poisson/Laplace −∇·(k∇u) = f and Poisson–Boltzmann
−∇·(k∇u) + κ²u = f (the linearised Debye–Hückel form), with k piecewise constant per
phase, Dirichlet data u = g and Neumann data k∂u/∂n = h per named boundary."""

from __future__ import annotations

from meshes import DistributedMesh
from meshes.fenics import dolfinx, ufl

from ..config import ProblemTable
from ..solvers import LinearSolver, global_norms
from .common import BuiltinProblem, Solution, dirichlet, facet_measure, phase_field, source_term


class ScalarEllipticProblem(BuiltinProblem):
    """−∇·(k∇u) + κ²u = f with Dirichlet/Neumann data (κ = 0: Poisson)."""

    def __init__(self, dmesh: DistributedMesh, spec: ProblemTable):
        self.dmesh, self.spec = dmesh, spec
        mesh = dmesh.mesh
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", spec.degree))
        self.k = phase_field(dmesh, spec.coefficients, "problem.coefficients")
        md = {"quadrature_degree": spec.quadrature_degree} if spec.quadrature_degree else None
        self.dx = ufl.Measure("dx", domain=mesh, metadata=md)
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self.f = source_term(spec.source, mesh)
        self.stiffness = self.k * ufl.inner(ufl.grad(u), ufl.grad(v)) * self.dx
        if spec.kappa:
            self.stiffness += spec.kappa**2 * u * v * self.dx
        self.mass = u * v * self.dx
        self.load = self.f * v * self.dx
        self.bcs = []
        for bc in spec.bcs:
            if bc.type == "dirichlet":
                self.bcs.append(dirichlet(self.V, dmesh, bc.boundary, bc.key, bc.value)[0])
            else:  # neumann: k du/dn = h
                ds = facet_measure(dmesh, bc.boundary, bc.key, md)
                self.load += bc.value[0].ufl(mesh) * v * ds

    def solve(self) -> Solution:
        """Solve with the configured linear solver."""
        uh = dolfinx.fem.Function(self.V, name="u")
        solver = LinearSolver(self.stiffness, self.load, self.bcs, uh, self.spec.solver)
        solver.solve()
        info = {**solver.info(), "norms": global_norms(uh)}
        return Solution(uh, info, self)
