"""Per-element stiffness matrices and load vectors of a problem, for element-sampled training.

The global energy is a sum over cells, E(u) = Σ_e [½ u_eᵀ K_e u_e − b_eᵀ u_e], so a sample
S of cells gives the unbiased estimate (|cells|/|S|) Σ_{e∈S} (DESIGN of the element-sampled
Galerkin mini-batch; see docs/algorithms.md). The element tensors come from DOLFINx: the
problem's forms are assembled once on the *broken* (discontinuous) copy of its space,
whose matrix is block diagonal with exactly the blocks K_e, and each block is read back
in the element's local dof order. Each rank keeps its owned cells only, so the sums over
ranks count every cell once.

Any Lagrange degree: the broken copy has the space's degree, so a P2 space gives the
P2 element tensors — 6×6 on triangles, 10×10 on tetrahedra (vertices, then edge
midpoints, Basix's reference order), times the block size squared for vector fields — in
the cell dof order of V's dofmap, which DG and CG Lagrange spaces share.

>>> import ufl, fem, meshes
>>> from meshes.fenics import MPI
>>> dm = meshes.build("rectangle", 0.5, comm=MPI.COMM_SELF)
>>> V = fem.functionspace(dm)
>>> u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
>>> p = fem.VariationalProblem(dm, ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, v * ufl.dx)
>>> ops = element_operators(p)
>>> ops.K.shape[1:], bool(abs(ops.K.sum(axis=(1, 2))).max() < 1e-12)  # rows of K_e sum to 0
((3, 3), True)
>>> V2 = fem.functionspace(dm, 2)  # P2: 6-node triangles
>>> u, v = ufl.TrialFunction(V2), ufl.TestFunction(V2)
>>> p2 = fem.VariationalProblem(dm, ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, v * ufl.dx)
>>> element_operators(p2).K.shape[1:]
(6, 6)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meshes.fenics import dolfinx, ufl


@dataclass
class ElementOperators:
    """K_e, b_e of this rank's owned cells and where their dofs sit in V's local numbering."""

    K: np.ndarray  # (n_cells, m, m) element stiffness matrices (float64; m = nodes·bs)
    b: np.ndarray  # (n_cells, m) element load vectors
    dofs: np.ndarray  # (n_cells, m) local unrolled dof indices (owned + ghosts of V)
    original: np.ndarray  # (n_cells,) input-order cell index: the same on any rank count
    n_global_cells: int
    block_size: int
    V: object = None  # the problem's function space (for sums over all ranks' cells)

    def sum_to_dofs(self, values: np.ndarray) -> np.ndarray:
        """Σ over every rank's cells of per-cell dof values (n_cells, m), at V's local dofs.

        Contributions of other ranks' cells reach the owners (scatter_reverse) and then
        the ghosts (scatter_forward), so every rank sees the global sum at its dofs.
        """
        f = dolfinx.fem.Function(self.V)
        f.x.array[:] = 0.0
        np.add.at(f.x.array, self.dofs.ravel(), np.asarray(values, dtype=np.float64).ravel())
        f.x.scatter_reverse(dolfinx.la.InsertMode.add)
        f.x.scatter_forward()
        return f.x.array.copy()

    @property
    def nodes(self) -> np.ndarray:
        """(n_cells, m / bs) local node (block) indices of each cell's dofs."""
        return self.dofs[:, :: self.block_size] // self.block_size


def cell_clusters(ops: ElementOperators, cells_per_cluster: int) -> tuple[np.ndarray, int]:
    """A cluster id per owned cell (the cell's bin in a uniform grid over the mesh's box) and
    the number of clusters; ids depend only on geometry, so any rank count agrees.

    Sampling whole clusters makes the sampled cells share their nodes: a step then
    evaluates the network at about a fraction p of the nodes rather than at most of them.
    """
    from meshes.core import bounding_box  # deferred: loads Gmsh

    mesh = ops.V.mesh
    tdim = mesh.topology.dim
    gdim = mesh.geometry.dim
    n = len(ops.dofs)
    nodes = np.asarray(mesh.geometry.dofmap[:n])
    # sorted before averaging: the centroid does not depend on the local vertex order
    centroids = np.sort(mesh.geometry.x[nodes][:, :, :gdim], axis=1).mean(axis=1)
    lo, hi = bounding_box(mesh)
    per_axis = max(1, int(np.ceil((ops.n_global_cells / max(cells_per_cluster, 1))
                                  ** (1.0 / tdim))))
    span = np.where(hi > lo, hi - lo, 1.0)
    bins = np.clip(((centroids - lo) / span * per_axis).astype(np.int64), 0, per_axis - 1)
    ids = np.ravel_multi_index(tuple(bins.T), (per_axis,) * gdim)
    return ids, per_axis**gdim


def _broken_space(V) -> dolfinx.fem.FunctionSpace:
    """The discontinuous copy of V (same degree and value shape)."""
    element = V.ufl_element()
    shape = element.reference_value_shape
    family = ("Discontinuous Lagrange", element.embedded_superdegree)
    return dolfinx.fem.functionspace(V.mesh, family + ((shape,) if shape else ()))


def _unrolled(cell_nodes: np.ndarray, bs: int) -> np.ndarray:
    """Node indices (n, k) → unrolled dof indices (n, k·bs), component fastest."""
    return (cell_nodes[:, :, None] * bs + np.arange(bs)).reshape(len(cell_nodes), -1)


def _blocks(A, dofs: np.ndarray) -> np.ndarray:
    """The diagonal blocks A[dofs[c], dofs[c]] of a block-diagonal CSR matrix, vectorised.

    Each row of A holds exactly its cell's m entries (columns sorted), so row r's data
    reshaped to m values are the block row in sorted-column order; the rank of each dof
    within its cell puts them back in element order.
    """
    m = dofs.shape[1]
    A.sort_indices()
    counts = np.diff(A.indptr)
    if np.any(counts[dofs.ravel()] != m):
        raise ValueError("the broken-space matrix is not block diagonal per cell")
    starts = A.indptr[dofs]  # (n, m): where each block row starts in A.data
    rank = np.argsort(np.argsort(dofs, axis=1), axis=1)  # position of dof j among sorted cols
    return A.data[starts[:, :, None] + rank[:, None, :]]


def element_operators(problem) -> ElementOperators:
    """Element matrices and loads of `problem`'s stiffness and load forms (collective)."""
    V = problem.V
    W = _broken_space(V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    uw, vw = ufl.TrialFunction(W), ufl.TestFunction(W)
    a = ufl.replace(problem.stiffness, {u: uw, v: vw})
    L = ufl.replace(problem.load, {v: vw})
    A = dolfinx.fem.assemble_matrix(dolfinx.fem.form(a), block_mode=dolfinx.la.BlockMode.expanded)
    A.scatter_reverse()
    b = dolfinx.fem.assemble_vector(dolfinx.fem.form(L))
    b.scatter_reverse(dolfinx.la.InsertMode.add)
    topology = V.mesh.topology
    tdim = topology.dim
    cells = topology.index_map(tdim)
    n = cells.size_local
    bs = V.dofmap.index_map_bs
    broken = _unrolled(np.asarray(W.dofmap.list[:n], dtype=np.int64), bs)
    dofs = _unrolled(np.asarray(V.dofmap.list[:n], dtype=np.int64), bs)
    K = _blocks(A.to_scipy(ghosted=False).tocsr(), broken)
    original = np.asarray(topology.original_cell_index[:n], dtype=np.int64)
    return ElementOperators(K, b.array[broken].copy(), dofs, original, int(cells.size_global),
                            bs, V)
