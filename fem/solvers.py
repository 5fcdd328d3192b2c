"""PETSc linear solves: MUMPS LU for small systems, CG + GAMG (with the rigid-body
near-nullspace for elasticity) for large ones, chosen by global dof count.

One :class:`LinearSolver` assembles the matrix once and solves for as many right-hand
sides / Dirichlet values as needed (time steps, homogenisation load cases) while
keeping the factorisation or the AMG hierarchy.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from meshes.fenics import MPI, PETSc, dolfinx, ufl

from .errors import ConfigError, SolverError

LU_MAX_DOFS = 60_000  # above this many global dofs "auto" switches from MUMPS LU to CG + AMG

# PETSc options a config may set ([problem.solver] petsc = {...}): solver and
# preconditioner settings only. PETSc matches option names case-insensitively, so names
# are checked (and passed on) in lower case. No viewer, monitor, log, draw or file option
# (they write or read arbitrary paths: ksp_view_mat = "binary" writes binaryoutput in the
# working directory, ksp_view = ":/any/path"), no python PC/KSP/SNES/Mat (they import a
# module named by the config), no MUMPS output streams or out-of-core files, and no value
# that names a viewer or looks like a path.
PETSC_PREFIXES = ("ksp_", "pc_", "mat_mumps_", "mg_levels_", "mg_coarse_", "sub_", "mat_type",
                  "snes_", "matptap_", "mat_superlu", "mat_strumpack")
PETSC_DENIED = ("view", "monitor", "log", "draw", "file", "save", "load", "dump", "history",
                "python", "options", "output", "test", "error_if", "tmp", "dir", "print",
                "reason", "saws", "binary", "ascii", "hdf5", "vtk", "matlab", "socket",
                "glvis", "adios", "stdout", "stderr", "info", "help", "ooc", "fd", "path")
# MUMPS ICNTL(1-4): output streams and print level; ICNTL(22): out-of-core (writes files)
PETSC_DENIED_EXACT = ("mat_mumps_icntl_1", "mat_mumps_icntl_2", "mat_mumps_icntl_3",
                      "mat_mumps_icntl_4", "mat_mumps_icntl_22")
# values that name a viewer, an implementation in Python, or output
PETSC_DENIED_VALUES = ("python", "ascii", "binary", "draw", "socket", "hdf5", "vtk", "matlab",
                       "saws", "glvis", "adios", "stdout", "stderr", "shell")

_prefix_counter = itertools.count()


def check_petsc_options(options: dict) -> dict:
    """The options, names in lower case, if every name is on the allowlist and every value
    is plain (ConfigError naming the option otherwise).

    PETSc looks option names up case-insensitively, so ``KSP_View_Mat`` is ``ksp_view_mat``:
    names are compared (and returned) in lower case, values case-insensitively too.
    """

    if not isinstance(options, dict):
        raise ConfigError("petsc", f"expected a table of PETSc options, got {options!r}"[:200])
    checked: dict = {}
    for name, value in options.items():
        key = str(name).lstrip("-").lower()
        where = str(name)[:80]
        if (not key.replace("_", "").isalnum() or not key.isascii()
                or not key.startswith(PETSC_PREFIXES) or any(w in key for w in PETSC_DENIED)
                or key in PETSC_DENIED_EXACT):
            raise ConfigError(where, "PETSc option not allowed (only solver/preconditioner "
                              f"settings: {', '.join(p.rstrip('_') for p in PETSC_PREFIXES[:4])}"
                              "...; no viewers, monitors, logs, files, output or python)")
        if key in checked:
            raise ConfigError(where, f"PETSc option given twice ({key!r}: PETSc option names "
                              "ignore case)")
        ok = isinstance(value, bool) or (isinstance(value, int | float) and abs(value) < 1e300
                                         and value == value)
        if isinstance(value, str):
            ok = value != "" and len(value) < 64 and value.isascii() and value.replace(
                "_", "").replace(".", "").replace("-", "").replace("+", "").isalnum()
            if ok and value.lower() in PETSC_DENIED_VALUES:
                raise ConfigError(where, f"PETSc option value {value!r} not allowed (no "
                                  "viewers, output or python/shell implementations)")
        if not ok:
            raise ConfigError(where, f"expected a number, boolean or plain word, got "
                              f"{value!r}"[:200])
        checked[key] = value
    return checked


@dataclass
class SolverSettings:
    """What solves the linear systems: "auto", "lu" or "cg" (+ tolerances)."""

    method: str = "auto"
    rtol: float = 1e-10
    atol: float = 1e-14
    max_it: int = 2000
    lu_max_dofs: int = LU_MAX_DOFS
    extra: dict = field(default_factory=dict)  # raw PETSc options, override everything

    def resolve(self, global_dofs: int) -> str:
        """The concrete method ("lu" or "cg") for a system with this many dofs."""
        if self.method != "auto":
            return self.method
        return "lu" if global_dofs <= self.lu_max_dofs else "cg"

    def petsc_options(self, global_dofs: int) -> dict:
        """PETSc KSP options for this system size."""
        if self.resolve(global_dofs) == "lu":
            opts = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
        else:
            opts = {"ksp_type": "cg", "ksp_rtol": self.rtol, "ksp_atol": self.atol,
                    "ksp_max_it": self.max_it, **amg_options()}
        opts.update(check_petsc_options(self.extra))
        return opts


def amg_options() -> dict:
    """The PETSc options of the algebraic multigrid preconditioner (GAMG, smoothed
    aggregation, Chebyshev/Jacobi smoothing): what the CG solve and the preconditioned
    training steps (:mod:`fem.preconditioners`) use."""
    return {"pc_type": "gamg", "pc_gamg_coarse_eq_limit": 1000,
            "mg_levels_ksp_type": "chebyshev", "mg_levels_pc_type": "jacobi",
            "pc_gamg_threshold": 0.02}


def configure_ksp(ksp: PETSc.KSP, options: dict) -> None:
    """Set `options` on `ksp` under a prefix of its own (the global database is left as
    it was, so one solver's options never reach another)."""
    prefix = f"neurofem_{next(_prefix_counter)}_"
    ksp.setOptionsPrefix(prefix)
    opts = PETSc.Options()
    for k, v in options.items():
        opts[prefix + k] = v
    ksp.setFromOptions()
    for k in options:
        del opts[prefix + k]


def rigid_body_modes(V: dolfinx.fem.FunctionSpace) -> tuple[PETSc.NullSpace, list]:
    """Rigid-body motions of a 2D/3D vector space: (PETSc near-nullspace, the dolfinx vectors
    whose memory it borrows — keep them alive as long as the nullspace)."""
    gdim = V.mesh.geometry.dim
    imap, bs = V.dofmap.index_map, V.dofmap.index_map_bs
    n_local = imap.size_local
    x = V.tabulate_dof_coordinates()[:n_local]
    nmodes = 3 if gdim == 2 else 6
    basis = [dolfinx.la.vector(imap, bs) for _ in range(nmodes)]
    b = [v.array[: n_local * bs].reshape(n_local, bs) for v in basis]
    for k in range(gdim):  # translations
        b[k][:, k] = 1.0
    if gdim == 2:  # in-plane rotation
        b[2][:, 0], b[2][:, 1] = -x[:, 1], x[:, 0]
    else:
        b[3][:, 0], b[3][:, 1] = -x[:, 1], x[:, 0]
        b[4][:, 0], b[4][:, 2] = x[:, 2], -x[:, 0]
        b[5][:, 2], b[5][:, 1] = x[:, 1], -x[:, 2]
    dolfinx.la.orthonormalize(basis)
    vecs = [v.petsc_vec for v in basis]
    return PETSc.NullSpace().create(vectors=vecs, comm=V.mesh.comm), basis


class LinearSolver:
    """Assemble a(u, v) with Dirichlet rows once; solve a = L for changing L or bc values."""

    def __init__(
        self,
        a: ufl.Form,
        L: ufl.Form,
        bcs: list,
        u: dolfinx.fem.Function,
        settings: SolverSettings | None = None,
        near_nullspace: bool = False,
    ):
        self.settings = settings or SolverSettings()
        self.u, self.bcs = u, bcs
        self.a, self.L = dolfinx.fem.form(a), dolfinx.fem.form(L)
        V = u.function_space
        self.global_dofs = V.dofmap.index_map.size_global * V.dofmap.index_map_bs
        self.method = self.settings.resolve(self.global_dofs)
        t0 = time.perf_counter()
        self.A = dolfinx.fem.petsc.assemble_matrix(self.a, bcs=bcs)
        self.A.assemble()
        if near_nullspace and self.method != "lu":
            nullspace, self._rbm = rigid_body_modes(V)
            self.A.setNearNullSpace(nullspace)
        self.b = dolfinx.fem.petsc.create_vector(V)
        self.ksp = PETSc.KSP().create(V.mesh.comm)
        self.ksp.setOperators(self.A)
        configure_ksp(self.ksp, self.settings.petsc_options(self.global_dofs))
        self.assemble_time = time.perf_counter() - t0
        self.solve_time = 0.0
        self.iterations = 0  # summed over all solves
        self.solves = 0

    def solve(self) -> dolfinx.fem.Function:
        """Assemble the right-hand side (with lifting of the current bc values) and solve."""
        t0 = time.perf_counter()
        with self.b.localForm() as loc:
            loc.set(0.0)
        dolfinx.fem.petsc.assemble_vector(self.b, self.L)
        dolfinx.fem.petsc.apply_lifting(self.b, [self.a], bcs=[self.bcs])
        self.b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        dolfinx.fem.petsc.set_bc(self.b, self.bcs)
        self.ksp.solve(self.b, self.u.x.petsc_vec)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise SolverError(
                f"linear solver ({self.method}) did not converge: "
                f"KSP reason {reason} after {self.ksp.getIterationNumber()} "
                f"iterations"
            )
        self.u.x.scatter_forward()
        self.iterations += self.ksp.getIterationNumber()
        self.solves += 1
        self.solve_time += time.perf_counter() - t0
        return self.u

    def info(self) -> dict:
        """Solver statistics for summaries."""
        return {
            "method": self.method,
            "ksp_type": self.ksp.getType(),
            "pc_type": self.ksp.getPC().getType(),
            "global_dofs": int(self.global_dofs),
            "iterations": int(self.iterations),
            "solves": int(self.solves),
            "assemble_time_s": float(self.assemble_time),
            "solve_time_s": float(self.solve_time),
        }

    def __del__(self):
        for obj in (getattr(self, "ksp", None), getattr(self, "A", None), getattr(self, "b", None)):
            if obj is not None:
                obj.destroy()


def global_norms(u: dolfinx.fem.Function) -> dict:
    """L2, H1-seminorm and max norm of a function (MPI-reduced)."""
    comm = u.function_space.mesh.comm
    dx = ufl.dx(domain=u.function_space.mesh)
    l2 = dolfinx.fem.assemble_scalar(dolfinx.fem.form(ufl.inner(u, u) * dx))
    h1 = dolfinx.fem.assemble_scalar(dolfinx.fem.form(ufl.inner(ufl.grad(u), ufl.grad(u)) * dx))
    n = u.function_space.dofmap.index_map.size_local * u.function_space.dofmap.index_map_bs
    local_max = float(np.max(np.abs(u.x.array[:n]))) if n else 0.0

    return {
        "l2": float(np.sqrt(comm.allreduce(l2, op=MPI.SUM))),
        "h1_semi": float(np.sqrt(comm.allreduce(h1, op=MPI.SUM))),
        "max": float(comm.allreduce(local_max, op=MPI.MAX)),
    }
