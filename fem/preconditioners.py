"""Preconditioned corrections of a field for training: r = b − Ku, δ = P⁻¹r, α by line search.

What a FEM solver uses against conditioning, offered to a trainer that holds a field u
(its network's nodal values on this rank's owned dofs, Dirichlet data imposed):

    r = b − K u                 (global, on the free dofs; zero on Dirichlet dofs)
    δ = P⁻¹ r                   (P ≈ K: one algebraic multigrid V-cycle, or `cycles`
                                 conjugate-gradient iterations preconditioned by it)
    α = δᵀr / δᵀKδ              (the exact line search of E(u) = ½uᵀKu − bᵀu along δ)

so that u + αδ is the minimiser of the energy along δ. P is PETSc's GAMG (smoothed
aggregation, the options of :func:`fem.solvers.amg_options`) on the DOLFINx matrix with the
Dirichlet rows and columns eliminated, carrying the rigid-body near-nullspace for vector
problems (:func:`fem.solvers.rigid_body_modes`), or Jacobi (the diagonal) for comparison.

The system is the one a FEM solve sees: A = K with Dirichlet rows/columns replaced by the
identity and b̃ = b − K g on the free dofs (``apply_lifting``), g on the Dirichlet dofs.
For u that carries the data g on its Dirichlet dofs, b̃ − A u = b − K u on the free dofs
and 0 on the Dirichlet dofs, so one assembled matrix serves the residual, the
preconditioner and the line search. Every dot product is global (PETSc vectors), so
1 and N ranks take the same step up to the partition dependence of GAMG's aggregates.

:meth:`FieldPreconditioner.estimate` is the cheap preconditioned solve behind automatic
output scaling: a few CG + GAMG iterations from zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from meshes.fenics import PETSc, dolfinx

from .errors import ConfigError, SolverError
from .operators import dirichlet_arrays
from .solvers import amg_options, configure_ksp, rigid_body_modes

PRECONDITIONERS = ("gamg", "jacobi")
_DIVERGED_ITS = -3  # KSP stopped at max_it: what a fixed number of cycles asks for
_DIVERGED_NANORINF = -9  # a NaN or infinity met on the way


@dataclass
class Correction:
    """One preconditioned correction of a field (owned dofs of this rank)."""

    delta: np.ndarray  # δ = P⁻¹ r (zero on Dirichlet dofs)
    alpha: float  # the exact line search α = δᵀr / δᵀKδ
    residual: float  # ‖r‖ / ‖b̃‖ on the free dofs (global)
    decrease: float  # E(u) − E(u + αδ) = ½ α δᵀr (global)


class FieldPreconditioner:
    """K and b of a problem and P ≈ K (GAMG or Jacobi) for corrections of a field (collective).

    `cycles` = 1 applies P once (one V-cycle); more runs that many preconditioned CG
    iterations on K δ = r from zero (an inexact solve, still linear in r up to CG's own
    nonlinearity). The arrays in and out are owned dofs in the order of
    ``Function.x.array[:n_owned]`` (unrolled blocks).
    """

    def __init__(self, problem, kind: str = "gamg", cycles: int = 1) -> None:
        if kind not in PRECONDITIONERS:
            raise ConfigError("preconditioner", f"unknown value {kind!r} (choose from "
                              f"{', '.join(PRECONDITIONERS)})")
        if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
            raise ConfigError("cycles", f"expected an integer >= 1, got {cycles!r}")
        t0 = time.perf_counter()
        V = problem.V
        self.kind, self.cycles, self.comm = kind, cycles, V.mesh.comm
        a = dolfinx.fem.form(problem.stiffness)
        self.A = dolfinx.fem.petsc.assemble_matrix(a, bcs=problem.bcs)
        self.A.assemble()
        self._rbm = None
        if kind == "gamg" and V.dofmap.index_map_bs == V.mesh.geometry.dim > 1:
            nullspace, self._rbm = rigid_body_modes(V)  # keep the vectors alive with it
            self.A.setNearNullSpace(nullspace)
        self.b = dolfinx.fem.petsc.assemble_vector(dolfinx.fem.form(problem.load))
        dolfinx.fem.petsc.apply_lifting(self.b, [a], bcs=[problem.bcs])
        self.b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        dolfinx.fem.petsc.set_bc(self.b, problem.bcs)
        self.n_owned = V.dofmap.index_map.size_local * V.dofmap.index_map_bs
        dofs, _ = dirichlet_arrays(V, problem.bcs)
        self.fixed = dofs[dofs < self.n_owned]
        self.g = self.b.array_r[self.fixed].copy()  # the Dirichlet data (b̃ = g there)
        free = self.b.copy()
        free.array[self.fixed] = 0.0
        self.load_norm = free.norm()
        free.destroy()
        self.u, self.r, self.d, self.Kd = (self.A.createVecRight() for _ in range(4))
        self.ksp = PETSc.KSP().create(self.comm)
        self.ksp.setOperators(self.A)
        configure_ksp(self.ksp, self._options(cycles))
        self.ksp.setUp()  # the AMG hierarchy, once
        self.setup_s = time.perf_counter() - t0
        self.apply_s, self.applies, self.estimate_s = 0.0, 0, 0.0
        self.by_cycles: dict[int, list] = {}  # cycles → [seconds, corrections]

    def set_cycles(self, cycles: int) -> None:
        """Use `cycles` iterations per correction from now on (the hierarchy is kept: one
        preconditioner serves every cycle count, e.g. the scale estimate and training)."""
        if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
            raise ConfigError("cycles", f"expected an integer >= 1, got {cycles!r}")
        self.cycles = cycles
        options = self._options(cycles)
        self.ksp.setType(options["ksp_type"])
        self.ksp.setTolerances(rtol=options.get("ksp_rtol", 0.0), atol=0.0,
                               max_it=options.get("ksp_max_it", 1))

    def _options(self, iterations: int) -> dict:
        """One application of P (preonly), or exactly `iterations` CG iterations."""
        pc = amg_options() if self.kind == "gamg" else {"pc_type": "jacobi"}
        if iterations == 1:
            return {"ksp_type": "preonly", **pc}
        return {"ksp_type": "cg", "ksp_max_it": iterations, "ksp_rtol": 0.0,
                "ksp_atol": 0.0, **pc}

    def _solve(self, rhs: PETSc.Vec, out: PETSc.Vec) -> None:
        """out = P⁻¹ rhs (`cycles` iterations); a breakdown is a SolverError."""
        self.ksp.solve(rhs, out)
        reason = self.ksp.getConvergedReason()
        if reason == _DIVERGED_NANORINF:
            raise SolverError("preconditioned correction is not finite (a NaN or infinity in "
                              "the load, the Dirichlet data or the network's field); check "
                              "the problem data or lower training.lr")
        if reason < 0 and reason != _DIVERGED_ITS:
            raise SolverError(f"preconditioner {self.kind!r} failed: KSP reason {reason} after "
                              f"{self.ksp.getIterationNumber()} iterations")

    def correction(self, u: np.ndarray) -> Correction:
        """δ = P⁻¹(b − Ku) and the exact line search α for the field `u` (collective)."""
        t0 = time.perf_counter()
        self.u.array[:] = u
        self.u.array[self.fixed] = self.g  # the data, exactly (a lift meets it to round-off)
        self.A.mult(self.u, self.r)
        self.r.aypx(-1.0, self.b)  # r = b̃ − A u: b − K u on free dofs, 0 on Dirichlet dofs
        self._solve(self.r, self.d)
        self.d.array[self.fixed] = 0.0
        self.A.mult(self.d, self.Kd)
        dr, dKd = self.d.dot(self.r), self.d.dot(self.Kd)
        alpha = dr / dKd if dKd > 0 else 0.0
        residual = self.r.norm() / self.load_norm if self.load_norm > 0 else self.r.norm()
        self.apply_s += time.perf_counter() - t0
        self.applies += 1
        spent = self.by_cycles.setdefault(self.cycles, [0.0, 0])
        spent[0] += time.perf_counter() - t0
        spent[1] += 1
        return Correction(self.d.array_r.copy(), float(alpha), float(residual),
                          float(0.5 * alpha * dr))

    def estimate(self, iterations: int = 10, rtol: float = 1e-2) -> np.ndarray:
        """An approximate FEM solution: up to `iterations` CG iterations preconditioned by
        P from zero (to `rtol`), with the Dirichlet data set (owned dofs; collective)."""
        t0 = time.perf_counter()
        self.ksp.setType("cg")
        self.ksp.setTolerances(rtol=rtol, atol=0.0, max_it=iterations)
        self.u.set(0.0)
        try:
            self._solve(self.b, self.u)
        finally:
            self.set_cycles(self.cycles)
        self.u.array[self.fixed] = self.g
        self.estimate_s = time.perf_counter() - t0
        return self.u.array_r.copy()

    def info(self) -> dict:
        """What the preconditioner is and what it cost (for records)."""
        pc = self.ksp.getPC()
        levels = pc.getMGLevels() if pc.getType() == "gamg" else 1
        return {"kind": self.kind, "cycles": self.cycles, "levels": int(levels),
                "global_dofs": int(self.A.getSize()[0]), "setup_s": float(self.setup_s),
                "apply_s": float(self.apply_s), "applies": int(self.applies),
                "by_cycles": {int(c): {"apply_s": float(t), "applies": int(n)}
                              for c, (t, n) in self.by_cycles.items()}}

    def __del__(self) -> None:
        for name in ("ksp", "A", "b", "u", "r", "d", "Kd"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.destroy()

