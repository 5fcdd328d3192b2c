"""Time-dependent problems on a θ-scheme, sampled on a space-time grid.

- Heat: u_t = ∇·(k∇u) + f in any dimension (θ = 1/2 Crank–Nicolson by default,
  θ = 1 backward Euler), time-dependent f and Dirichlet/Neumann data allowed.
- Viscous Burgers (1D): u_t + u u_x = ν u_xx, one Newton solve (PETSc SNES via
  ``dolfinx.fem.petsc.NonlinearProblem``) per step, θ = 1 by default.

Both record the solution at ``output.times`` equally spaced times (t = 0 included) at a
uniform grid of ``output.points`` points per axis over the mesh bounding box (points
outside the domain give NaN), which is what training and validation consume.
"""

from __future__ import annotations

import time

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import PETSc, dolfinx, ufl

from ..config import ProblemTable
from ..errors import ConfigError, SolverError
from ..evaluate import PointEvaluator, grid_points
from ..progress import progress
from ..solvers import LinearSolver, global_norms
from .common import (
    BuiltinProblem,
    Solution,
    SpaceTimeSeries,
    dirichlet,
    facet_measure,
    phase_field,
    require_dimension,
    source_term,
)


def output_steps(n_steps: int, n_times: int) -> np.ndarray:
    """Step numbers at which to record n_times snapshots (0 and n_steps included)."""
    if n_times - 1 > n_steps:
        raise ConfigError(
            "problem.output.times", f"{n_times} output times but only {n_steps} time steps"
        )
    return np.unique(np.round(np.linspace(0, n_steps, n_times)).astype(int))


class _Transient(BuiltinProblem):
    """Shared set-up: space, initial condition, Dirichlet data, output sampling."""

    def _enter_step(self, step: int) -> None:
        """Set t_old, t_new to the ends of time step ``step`` and update time-dependent BCs."""
        dt = self.spec.time.dt
        self.t_old.value = (step - 1) * dt
        self.t_new.value = step * dt
        for upd in self.bc_updates:
            upd(float(self.t_new.value))

    def _setup(self, dmesh: DistributedMesh, spec: ProblemTable):
        self.dmesh, self.spec = dmesh, spec
        mesh = dmesh.mesh
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", spec.degree))
        self.t_new = dolfinx.fem.Constant(mesh, PETSc.ScalarType(0.0))
        self.t_old = dolfinx.fem.Constant(mesh, PETSc.ScalarType(0.0))
        self.dt = dolfinx.fem.Constant(mesh, PETSc.ScalarType(spec.time.dt))
        self.theta = spec.time.theta
        self.u_n = dolfinx.fem.Function(self.V, name="u_n")
        self.u_n.interpolate(spec.time.initial.numpy(0.0))
        md = {"quadrature_degree": spec.quadrature_degree} if spec.quadrature_degree else None
        self.md = md
        self.dx = ufl.Measure("dx", domain=mesh, metadata=md)
        self.bcs, self.bc_updates = [], []
        for bc in spec.bcs:
            if bc.type == "dirichlet":
                b, _, upd = dirichlet(self.V, dmesh, bc.boundary, bc.key, bc.value)
                self.bcs.append(b)
                if bc.value[0].uses_time:
                    self.bc_updates.append(upd)
        self.points = grid_points(mesh, spec.output_points)

    def _record(self, evaluator, u, values, k):
        values[k] = evaluator(u)


class HeatProblem(_Transient):
    """u_t = ∇·(k∇u) + f, θ-scheme in time, Lagrange P_k in space."""

    def __init__(self, dmesh: DistributedMesh, spec: ProblemTable):
        self._setup(dmesh, spec)
        mesh = dmesh.mesh
        self.k = phase_field(dmesh, spec.coefficients, "problem.coefficients")
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        th, dt, dx = self.theta, self.dt, self.dx
        self.stiffness = self.k * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx
        self.mass = u * v * dx
        self.load = source_term(spec.source, mesh, self.t_new) * v * dx
        f_new = source_term(spec.source, mesh, self.t_new)
        f_old = source_term(spec.source, mesh, self.t_old)
        a = u * v * dx + th * dt * self.k * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx
        L = (
            self.u_n * v * dx
            - (1 - th) * dt * self.k * ufl.inner(ufl.grad(self.u_n), ufl.grad(v)) * dx
            + dt * (th * f_new + (1 - th) * f_old) * v * dx
        )
        for bc in spec.bcs:
            if bc.type == "neumann":
                ds = facet_measure(dmesh, bc.boundary, bc.key, self.md)
                h_new, h_old = bc.value[0].ufl(mesh, self.t_new), bc.value[0].ufl(mesh, self.t_old)
                L += dt * (th * h_new + (1 - th) * h_old) * v * ds
        self.a_step, self.L_step = a, L

    def solve(self, on_step=None) -> Solution:
        """March from 0 to t_end, recording the space-time samples.

        ``on_step(step, u)`` is called at step 0 and after every time step (e.g. to record
        cell averages at every step, as the C-LIF reference does).
        """
        spec = self.spec
        uh = dolfinx.fem.Function(self.V, name="u")
        uh.x.array[:] = self.u_n.x.array
        solver = LinearSolver(self.a_step, self.L_step, self.bcs, uh, spec.solver)
        n_steps = spec.time.steps
        rec = output_steps(n_steps, spec.output_times)
        evaluator = PointEvaluator(self.dmesh.mesh, self.points)
        values = np.empty((len(rec), len(self.points)))
        k = 0
        if rec[0] == 0:
            values[0], k = evaluator(self.u_n), 1
        if on_step is not None:
            on_step(0, self.u_n)
        for step in progress(range(1, n_steps + 1), n_steps, "FEM reference", self.dmesh.comm):
            self._enter_step(step)
            solver.solve()
            self.u_n.x.array[:] = uh.x.array
            if k < len(rec) and step == rec[k]:
                values[k], k = evaluator(uh), k + 1
            if on_step is not None:
                on_step(step, uh)
        series = SpaceTimeSeries(rec * spec.time.dt, self.points, values)
        info = {**solver.info(), "time_steps": n_steps, "norms": global_norms(uh)}
        return Solution(uh, info, self, series=series)


class BurgersProblem(_Transient):
    """1D viscous Burgers u_t + u u_x = ν u_xx, θ-scheme, Newton (SNES) per step."""

    def __init__(self, dmesh: DistributedMesh, spec: ProblemTable):
        require_dimension(dmesh, (1,), "burgers")
        self._setup(dmesh, spec)
        self.uh = dolfinx.fem.Function(self.V, name="u")
        u, v = self.uh, ufl.TestFunction(self.V)
        nu, th, dt, dx = spec.viscosity, self.theta, self.dt, self.dx
        uu, w = ufl.TrialFunction(self.V), v

        def spatial(z, f):
            return (z * z.dx(0) * w + nu * z.dx(0) * w.dx(0) - f * w) * dx

        f_new = source_term(spec.source, dmesh.mesh, self.t_new)
        f_old = source_term(spec.source, dmesh.mesh, self.t_old)
        self.F = (u - self.u_n) * v * dx + dt * (
            th * spatial(u, f_new) + (1 - th) * spatial(self.u_n, f_old)
        )
        self.stiffness = nu * uu.dx(0) * w.dx(0) * dx  # the linear (diffusion) part
        self.mass = uu * w * dx
        self.load = f_new * w * dx

    def solve(self) -> Solution:
        """March from 0 to t_end with one Newton solve per step."""
        spec = self.spec
        self.uh.x.array[:] = self.u_n.x.array
        opts = {
            "snes_type": "newtonls",
            "snes_linesearch_type": "bt",
            "snes_rtol": 1e-10,
            "snes_atol": 1e-12,
            "snes_max_it": 30,
            "ksp_type": "preonly",
            "pc_type": "lu",
            "pc_factor_mat_solver_type": "mumps",
        }
        problem = dolfinx.fem.petsc.NonlinearProblem(
            self.F,
            self.uh,
            bcs=self.bcs,
            petsc_options=opts,
            petsc_options_prefix=f"neurofem_burgers_{id(self)}_",
        )
        n_steps = spec.time.steps
        rec = output_steps(n_steps, spec.output_times)
        evaluator = PointEvaluator(self.dmesh.mesh, self.points)
        values = np.empty((len(rec), len(self.points)))
        k, newton, t0 = 0, 0, time.perf_counter()
        if rec[0] == 0:
            values[0], k = evaluator(self.u_n), 1
        for step in progress(range(1, n_steps + 1), n_steps, "FEM reference", self.dmesh.comm):
            self._enter_step(step)
            problem.solve()
            reason = problem.solver.getConvergedReason()
            if reason <= 0:
                raise SolverError(f"Newton did not converge at step {step} (SNES reason {reason})")
            newton += problem.solver.getIterationNumber()
            self.u_n.x.array[:] = self.uh.x.array
            if k < len(rec) and step == rec[k]:
                values[k], k = evaluator(self.uh), k + 1
        gdofs = self.V.dofmap.index_map.size_global
        info = {
            "method": "newton+lu",
            "global_dofs": int(gdofs),
            "iterations": int(newton),
            "time_steps": n_steps,
            "solve_time_s": time.perf_counter() - t0,
            "norms": global_norms(self.uh),
        }
        series = SpaceTimeSeries(rec * spec.time.dt, self.points, values)
        return Solution(self.uh, info, self, series=series)
