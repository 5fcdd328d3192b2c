"""Small-strain isotropic linear elasticity, E and ν per phase (plane strain in 2D).

−∇·σ(u) = f, σ = 2μ ε(u) + λ tr(ε) I, with Dirichlet (full vector), roller (one
component fixed), traction t = σn, pressure (t = −p n) and kinematic uniform boundary
displacement u = Ē·x (affine, for homogenisation) per named boundary.
"""

from __future__ import annotations

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import dolfinx, ufl

from ..config import ProblemTable
from ..errors import ConfigError
from ..solvers import LinearSolver, global_norms
from .common import BuiltinProblem, Solution, dirichlet, facet_measure, phase_field, source_term


def lame(E: float, nu: float) -> tuple[float, float]:
    """Lamé parameters (λ, μ) from Young's modulus and Poisson's ratio (3D / plane strain)."""
    return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))


def epsilon(u):
    """Symmetric gradient ε(u)."""
    return ufl.sym(ufl.grad(u))


def sigma(u, lmbda, mu):
    """Isotropic Hooke stress σ = 2μ ε + λ tr(ε) I."""
    eps = epsilon(u)
    return 2 * mu * eps + lmbda * ufl.tr(eps) * ufl.Identity(len(u))


def affine_displacement(strain: np.ndarray):
    """The callable x -> Ē·x for interpolation (points (3, n) -> values (gdim, n))."""
    E = np.asarray(strain, dtype=np.float64)
    g = E.shape[0]
    return lambda x: E @ x[:g]


class ElasticityProblem(BuiltinProblem):
    """Linear elasticity on a DistributedMesh with per-phase isotropic materials."""

    vector = True

    def __init__(self, dmesh: DistributedMesh, spec: ProblemTable):
        self.dmesh, self.spec = dmesh, spec
        mesh = dmesh.mesh
        gdim = mesh.geometry.dim
        if gdim not in (2, 3) or dmesh.tdim != gdim:
            raise ConfigError("mesh.kind", f"elasticity needs a 2D or 3D mesh, got {dmesh.tdim}D")
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", spec.degree, (gdim,)))
        mats = spec.materials
        if len(mats) == 1 and next(iter(mats)) not in dmesh.cell_names:
            E, nu = next(iter(mats.values()))  # one material for the whole mesh
            self.lmbda, self.mu = lame(E, nu)
        else:
            self.lmbda = phase_field(
                dmesh, {k: lame(*m)[0] for k, m in mats.items()}, "problem.materials", "lambda"
            )
            self.mu = phase_field(
                dmesh, {k: lame(*m)[1] for k, m in mats.items()}, "problem.materials", "mu"
            )
        md = {"quadrature_degree": spec.quadrature_degree} if spec.quadrature_degree else None
        self.dx = ufl.Measure("dx", domain=mesh, metadata=md)
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self.stiffness = ufl.inner(sigma(u, self.lmbda, self.mu), epsilon(v)) * self.dx
        self.mass = ufl.inner(u, v) * self.dx
        self.load = ufl.inner(source_term(spec.source, mesh, dim=gdim), v) * self.dx
        n = ufl.FacetNormal(mesh)
        self.bcs, self.affine = [], []
        for bc in spec.bcs:
            if bc.type == "dirichlet":
                self.bcs.append(dirichlet(self.V, dmesh, bc.boundary, bc.key, bc.value)[0])
            elif bc.type == "roller":
                if bc.component >= gdim:
                    raise ConfigError(
                        f"{bc.key}.component", f"{bc.component} out of range in {gdim}D"
                    )
                self.bcs.append(
                    dirichlet(self.V, dmesh, bc.boundary, bc.key, bc.value, component=bc.component)[
                        0
                    ]
                )
            elif bc.type == "affine":
                strain = np.asarray(bc.strain)[:gdim, :gdim]
                b, g, _ = dirichlet(
                    self.V, dmesh, bc.boundary, bc.key, func=affine_displacement(strain)
                )
                self.bcs.append(b)
                self.affine.append(g)
            elif bc.type == "traction":
                t = source_term(bc.value, mesh, dim=gdim)
                self.load += ufl.inner(t, v) * facet_measure(dmesh, bc.boundary, bc.key, md)
            elif bc.type == "pressure":
                p = bc.value[0].ufl(mesh)
                self.load += -p * ufl.inner(n, v) * facet_measure(dmesh, bc.boundary, bc.key, md)

    def solver(self, u: dolfinx.fem.Function) -> LinearSolver:
        """A LinearSolver for this problem writing into `u` (GAMG gets rigid-body modes)."""
        return LinearSolver(
            self.stiffness, self.load, self.bcs, u, self.spec.solver, near_nullspace=True
        )

    def solve(self) -> Solution:
        """Solve with the configured linear solver."""
        uh = dolfinx.fem.Function(self.V, name="u")
        solver = self.solver(uh)
        solver.solve()
        return Solution(uh, {**solver.info(), "norms": global_norms(uh)}, self)
