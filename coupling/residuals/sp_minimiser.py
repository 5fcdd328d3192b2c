"""The discrete minimiser of the strong-form SP elasticity loss, without a network.

The SP residual of piecewise elasticity (:mod:`coupling.residuals.sp_elastic`) is linear in
the nodal displacements: loss(u) = Σ w (A u − c)². With the Dirichlet dofs fixed to their
data g, its minimiser over the free dofs F solves the weighted least-squares problem

    min_{u_F} ‖ W^½ (A_F u_F − (c − A_D g)) ‖² ,

a network that minimises this loss converges to this field, so its distance from the FEM
solution on the same mesh is the error such a network ends up with (NeuroPINNs, Garg &
Chakraborty, arXiv 2511.06081, train on exactly this loss). It is solved here directly: a
MUMPS LU factorisation (PETSc) of the normal equations, columns scaled to unit norm first
(the rows mix second-derivative and traction rows whose scales differ by
1/h), then one step of iterative refinement on the normal equations.

Under MPI each rank holds its owned rows over its columns (local, and the off-rank nodes its
serial stencils reach: :mod:`coupling.residuals.sp_global`); :func:`gather_rows` brings
them to rank 0 in global dof numbering, where the problem is solved once and the
minimiser scattered back (a check and a study tool, not a training path).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps

from meshes.fenics import MPI, PETSc


@dataclass
class LeastSquaresRows:
    """Weighted linear rows A u − c (columns: unrolled dofs) and the Dirichlet data."""

    A: sps.csr_matrix
    c: np.ndarray
    w: np.ndarray
    fixed: np.ndarray  # column indices held at their data
    g: np.ndarray  # their values


def residual_rows(disc) -> LeastSquaresRows:
    """The SP rows of an elasticity discretisation (``discretise(problem, "sp")``), float64."""
    res = disc.residual
    A = res.A.A.to_sparse_csr()
    crow, col, val = (np.asarray(a.cpu().double().numpy() if a.is_floating_point() else
                                 a.cpu().numpy()) for a in (A.crow_indices(), A.col_indices(),
                                                            A.values()))
    A = sps.csr_matrix((val, col, crow), shape=tuple(A.shape))
    ops = disc.operators
    return LeastSquaresRows(A, res.c.double().numpy(), res.w.double().numpy(),
                            np.asarray(ops.dirichlet_dofs, dtype=np.int64),
                            np.asarray(ops.dirichlet_values, dtype=np.float64))


def solve_rows(rows: LeastSquaresRows) -> np.ndarray:
    """The minimiser u (all columns) of Σ w (A u − c)² with u[fixed] = g."""
    n = rows.A.shape[1]
    u = np.zeros(n)
    u[rows.fixed] = rows.g
    free = np.setdiff1d(np.arange(n), rows.fixed)
    sw = np.sqrt(rows.w)
    Af = sps.diags(sw) @ rows.A[:, free]
    rhs = sw * (rows.c - rows.A @ u)
    norms = np.sqrt(np.asarray(Af.multiply(Af).sum(axis=0)).reshape(-1))
    used = norms > 0  # a column no row touches keeps its zero (it has no say in the loss)
    S = sps.diags(1.0 / norms[used])
    B = (Af[:, used] @ S).tocsr()
    N = (B.T @ B).tocsr()
    solve = _lu(N)
    y = solve(B.T @ rhs)
    y += solve(B.T @ (rhs - B @ y))  # one refinement step on the normal equations
    u[free[used]] = S @ y
    return u


def _lu(N: sps.csr_matrix):
    """x ↦ N⁻¹ x by a MUMPS LU factorisation (PETSc, one process), factored once."""

    mat = PETSc.Mat().createAIJ(size=N.shape, csr=(N.indptr, N.indices, N.data),
                                comm=PETSc.COMM_SELF)
    ksp = PETSc.KSP().create(PETSc.COMM_SELF)
    ksp.setOperators(mat)
    ksp.setType("preonly")
    ksp.getPC().setType("lu")
    ksp.getPC().setFactorSolverType("mumps")
    b, x = mat.createVecLeft(), mat.createVecRight()

    def solve(rhs: np.ndarray) -> np.ndarray:
        b.array[:] = rhs
        ksp.solve(b, x)
        if ksp.getConvergedReason() <= 0:
            raise RuntimeError(f"SP minimiser: MUMPS failed (reason {ksp.getConvergedReason()})")
        return x.array.copy()

    return solve


def gather_rows(rows: LeastSquaresRows, layout, comm, columns: np.ndarray | None = None
                ) -> tuple[LeastSquaresRows | None, np.ndarray]:
    """Every rank's rows in global dof numbering on rank 0 (None elsewhere) and this rank's
    local → global map (collective). `columns`: the global dof of each column of the rows
    where they reach past the layout's (off-rank nodes of the serial stencils)."""
    glob = np.asarray(layout.local_to_global, dtype=np.int64)
    cols = glob if columns is None else np.asarray(columns, dtype=np.int64)
    A = rows.A.tocoo()
    local = (A.row, cols[A.col], A.data, rows.c, rows.w, cols[rows.fixed], rows.g)
    parts = comm.gather(local, root=0)
    if comm.rank != 0:
        return None, glob
    n = layout.n_global
    offsets = np.cumsum([0] + [len(p[3]) for p in parts])
    A = sps.csr_matrix((np.concatenate([p[2] for p in parts]),
                        (np.concatenate([p[0] + o for p, o in zip(parts, offsets, strict=False)]),
                         np.concatenate([p[1] for p in parts]))), shape=(offsets[-1], n))
    fixed, first = np.unique(np.concatenate([p[5] for p in parts]), return_index=True)
    g = np.concatenate([p[6] for p in parts])[first]
    return LeastSquaresRows(A, np.concatenate([p[3] for p in parts]),
                            np.concatenate([p[4] for p in parts]), fixed, g), glob


def sp_minimiser(disc) -> np.ndarray:
    """The SP loss's minimiser as local unrolled nodal displacements (collective)."""
    rows = residual_rows(disc)
    comm = disc.comm or MPI.COMM_SELF
    if comm.size == 1:
        return solve_rows(rows)
    whole, glob = gather_rows(rows, disc.operators.layout, comm,
                              getattr(disc.residual, "columns", None))
    u = comm.bcast(solve_rows(whole) if comm.rank == 0 else None, root=0)
    return u[glob]
