"""A user's own PDE: symmetric elliptic UFL forms a(u, v), L(v) plus Dirichlet data.

>>> import ufl
>>> import fem, meshes
>>> dm = meshes.build("rectangle", 0.25)
>>> V = fem.functionspace(dm)
>>> u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
>>> x = ufl.SpatialCoordinate(dm.mesh)
>>> a = (1 + x[0] ** 2) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + u * v * ufl.dx
>>> problem = fem.VariationalProblem(dm, a, 1.0 * v * ufl.dx, bcs={"*": 0.0})
>>> problem.solve().info["norms"]["l2"] > 0
True

Dirichlet data are given per named boundary (a facet group of the mesh, or ``"*"`` for
the whole exterior boundary) as a number, an expression string in x, y, z, a callable
``f(x) -> values`` (x of shape (3, n)), or a list of those per component for vector
fields; or directly as DOLFINx ``DirichletBC`` objects. Coefficients that differ per
phase are DG0 functions: :func:`fem.phase_field`. Any problem here satisfies
:class:`fem.Problem`, so every residual, trainer and validation function takes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import PETSc, dolfinx, ufl

from ..errors import ConfigError
from ..expressions import parse as parse_expression
from ..solvers import LinearSolver, SolverSettings, global_norms
from .common import Solution, boundary_facets

SYMMETRY_RTOL = 1e-10  # ‖A − Aᵀ‖∞/‖A‖∞ above this: not symmetric (assembly round-off ~1e-15)

DirichletValue = float | str | Callable[[np.ndarray], np.ndarray] | Sequence[Any]


def functionspace(dmesh: DistributedMesh, degree: int = 1, shape: tuple[int, ...] | None = None
                  ) -> dolfinx.fem.FunctionSpace:
    """A Lagrange space of `degree` on the mesh; ``shape=(gdim,)`` for a vector field."""
    element = ("Lagrange", degree) if shape is None else ("Lagrange", degree, shape)
    return dolfinx.fem.functionspace(dmesh.mesh, element)


class VariationalProblem:
    """Find u in V with u = g on Γ_D and a(u, v) = L(v) for all v (a symmetric, coercive).

    A non-symmetric `a` is refused (ConfigError naming ``a``; :meth:`check_symmetric`)
    unless ``check_symmetry=False`` (then only :meth:`solve` is meaningful).
    """

    #: only the weak form is known: strong-form residuals (sp, autograd) refuse it
    strong_form = None

    def __init__(self, dmesh: DistributedMesh, a: ufl.Form, L: ufl.Form,
                 bcs: Mapping[str, DirichletValue] | Sequence[Any] = (), *,
                 name: str = "custom", solver: SolverSettings | None = None,
                 check_symmetry: bool = True) -> None:
        args = a.arguments()
        if len(args) != 2 or len(L.arguments()) != 1:
            raise ConfigError("a", "expected a bilinear form a(u, v) and a linear form L(v)")
        self.dmesh, self.name = dmesh, name
        self.V = args[0].ufl_function_space()
        self.stiffness, self.load = a, L
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self.mass = ufl.inner(u, v) * ufl.dx(domain=dmesh.mesh)
        self.vector = self.V.dofmap.index_map_bs > 1
        self.solver_settings = solver or SolverSettings()
        bs = self.V.dofmap.index_map_bs
        # the data as given (name → per-component g(x)): the ADF lift of coupling.lift
        # extends it off Γ_D; raw DirichletBC objects carry only nodal values (None here)
        self.dirichlet_data = (None if not isinstance(bcs, Mapping) else
                               {n: dirichlet_parts(g, bs, f"bcs.{n}") for n, g in bcs.items()})
        self.bcs = (list(bcs) if not isinstance(bcs, Mapping)
                    else [self._dirichlet(n, g) for n, g in bcs.items()])
        if check_symmetry:
            self.check_symmetric()

    def check_symmetric(self, rtol: float = SYMMETRY_RTOL) -> float:
        """‖A − Aᵀ‖∞ / ‖A‖∞ of the assembled a(u, v); ConfigError naming `a` above `rtol`.

        The Galerkin energy ½uᵀKu − bᵀu has the FEM solution as its minimiser only for a
        symmetric K; checked on the assembled matrix (collective), so a form that is
        symmetric up to round-off passes and, e.g., an advection term is refused.
        """

        A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(self.stiffness))
        A.assemble()
        scale = A.norm(PETSc.NormType.INFINITY)
        At = A.transpose(PETSc.Mat())  # a new matrix (no argument: in place)
        At.axpy(-1.0, A)
        skew = At.norm(PETSc.NormType.INFINITY)
        At.destroy()
        A.destroy()
        ratio = skew / scale if scale > 0 else 0.0
        if not ratio <= rtol:
            raise ConfigError("a", f"the bilinear form is not symmetric (‖A − Aᵀ‖∞/‖A‖∞ = "
                              f"{ratio:.2e} > {rtol:.0e}): the Galerkin energy needs a "
                              "symmetric a(u, v); pass check_symmetry=False to only solve()")
        return ratio

    def _dirichlet(self, name: str, value: DirichletValue) -> dolfinx.fem.DirichletBC:
        facets = boundary_facets(self.dmesh, name, f"bcs.{name}")
        dofs = dolfinx.fem.locate_dofs_topological(self.V, self.dmesh.tdim - 1, facets)
        g = dolfinx.fem.Function(self.V)
        g.interpolate(_interpolant(value, self.V.dofmap.index_map_bs, f"bcs.{name}"))
        return dolfinx.fem.dirichletbc(g, dofs)

    def solve(self) -> Solution:
        """The FEM solution with PETSc (MUMPS LU or CG + AMG by size; collective)."""
        uh = dolfinx.fem.Function(self.V, name="u")
        solver = LinearSolver(self.stiffness, self.load, self.bcs, uh, self.solver_settings)
        solver.solve()
        return Solution(uh, {**solver.info(), "norms": global_norms(uh)}, self)


def dirichlet_parts(value: DirichletValue, bs: int, key: str
                    ) -> list[Callable[[np.ndarray], np.ndarray]]:
    """Boundary data per component: bs functions of points (3, n) → (n,)."""
    if bs == 1:
        return [_per_point(_interpolant(value, 1, key))]
    if isinstance(value, int | float | str) or callable(value):
        parts = [value] * bs if isinstance(value, int | float) else None
        if parts is None:
            raise ConfigError(key, f"a {bs}-component field needs a list of {bs} values")
    else:
        parts = list(value)
    if len(parts) != bs:
        raise ConfigError(key, f"expected {bs} components, got {len(parts)}")
    return [q for p in parts for q in dirichlet_parts(p, 1, key)]


def _per_point(f: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
    """f with one float per point (a user's callable may return a scalar or a (1, n) array)."""
    def g(x: np.ndarray) -> np.ndarray:
        v = np.asarray(f(x), dtype=np.float64)
        return np.broadcast_to(v.reshape(-1) if v.size == x.shape[1] else v, (x.shape[1],))
    return g


def _interpolant(value: DirichletValue, bs: int, key: str) -> Callable[[np.ndarray], np.ndarray]:
    """Boundary data as a function of points (3, n) → (bs, n) or (n,)."""
    if bs > 1:
        fs = dirichlet_parts(value, bs, key)
        return lambda x: np.stack([f(x) for f in fs])
    if callable(value):
        return value
    if isinstance(value, str):
        return parse_expression(value, key).numpy()
    if isinstance(value, int | float) and np.isfinite(value):
        return lambda x: np.full(x.shape[1], float(value))
    raise ConfigError(key, f"expected a number, an expression or a callable, got {value!r}")
