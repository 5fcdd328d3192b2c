"""The cost of one FEM solve in operations: PETSc's own flop log plus memory words from nnz.

So a FEM solve can be priced with the same tables as a network query (spiking.prices).

Counting (one solve as ``problem.solve()`` does it: matrix assembly, factorisation or AMG
setup, right-hand side, solve):

- flops: the change of ``PETSc.Log.getFlops()`` over the solve — PETSc's own count of every
  logged operation (MUMPS factorisation and triangular solves, vector updates; CG's
  MatMult, PCApply). The FFCx element kernels of the assembly run outside PETSc and are not
  in its log: an under-count that favours FEM. PETSc's log of a MUMPS factorisation is
  its own estimate, not MUMPS' elimination count, which is recorded beside it
  (``mumps_elimination_flops``, RINFOG(3)) and not priced.
- memory words (32-bit; a float64 value is 2 words, an int32 column index 1): assembly
  writes K (nnz values and indices); a direct solve reads K once and writes its factors
  (MUMPS' own count of factor entries, INFOG(29)), reads them once per triangular solve
  pair; CG reads K twice per iteration (MatMult and the smoother of the preconditioner,
  a lower bound of AMG's traffic); every solve reads the load and writes the solution.
"""

from __future__ import annotations

import time

from meshes.fenics import MPI, PETSc, dolfinx

from .solvers import LinearSolver, SolverSettings

VALUE_WORDS, INDEX_WORDS = 2, 1  # float64 value, int32 index, in 32-bit words
EVENTS = ("MatLUFactorSym", "MatLUFactorNum", "MatSolve", "MatMult", "PCSetUp", "PCApply",
          "KSPSolve")


def best_time(fn, repeats: int) -> float:
    """Best wall time of `fn()` over `repeats` calls (the first warms caches)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _event_flops() -> dict[str, float]:
    return {e: PETSc.Log.Event(e).getPerfInfo()["flops"] for e in EVENTS}


def _solver(problem, u):
    """The LinearSolver problem.solve() would use (elasticity: with rigid-body modes)."""

    if hasattr(problem, "solver"):
        return problem.solver(u)
    settings = getattr(problem, "solver_settings", None) or getattr(
        getattr(problem, "spec", None), "solver", None) or SolverSettings()
    return LinearSolver(problem.stiffness, problem.load, problem.bcs, u, settings)


def factor_entries(solver) -> float:
    """Entries of the LU factors from MUMPS (INFOG(29); negative means millions)."""
    if solver.method != "lu":
        return 0.0
    F = solver.ksp.getPC().getFactorMatrix()
    n = F.getMumpsInfog(29)
    return float(-n * 1e6 if n < 0 else n)


def mumps_flops(solver) -> float:
    """MUMPS' own count of the elimination flops (RINFOG(3)); 0 for an iterative solve."""
    if solver.method != "lu":
        return 0.0
    return float(solver.ksp.getPC().getFactorMatrix().getMumpsRinfog(3))


def solve_cost(problem) -> dict:
    """Solve `problem` once and count it (see the module docstring; collective, sums ranks)."""
    PETSc.Log.begin()  # idempotent: starts PETSc's default log if it is not running
    u = dolfinx.fem.Function(problem.V)
    f0, e0, t0 = PETSc.Log.getFlops(), _event_flops(), time.perf_counter()
    solver = _solver(problem, u)
    solver.solve()
    wall = time.perf_counter() - t0
    flops = PETSc.Log.getFlops() - f0
    events = {k: v - e0[k] for k, v in _event_flops().items()}
    info = solver.A.getInfo()
    nnz, n = float(info["nz_used"]), float(solver.A.getSize()[0])
    lu = factor_entries(solver)
    its = float(solver.iterations)
    stored = VALUE_WORDS + INDEX_WORDS
    if solver.method == "lu":
        reads = stored * (nnz + lu) + 2 * VALUE_WORDS * n
        writes = stored * (nnz + lu) + VALUE_WORDS * n
    else:
        reads = stored * nnz * 2 * max(its, 1.0) + 2 * VALUE_WORDS * n
        writes = stored * nnz + VALUE_WORDS * n
    comm = problem.dmesh.comm
    flops = comm.allreduce(flops, op=MPI.SUM)
    reads, writes, lu = (comm.allreduce(v, op=MPI.SUM) for v in (reads, writes, lu))
    return {"flops": flops, "events": events, "nnz": nnz, "n": n, "factor_entries": lu,
            "iterations": its, "mumps_elimination_flops": mumps_flops(solver),
            "method": solver.method, "reads": reads, "writes": writes,
            "wall_s": comm.allreduce(wall, op=MPI.MAX)}
