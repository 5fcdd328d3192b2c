"""Assembled FE operators for torch: K, M (owned rows × local columns) and b (owned).

Nothing is eliminated: K = ∫ stiffness, M = ∫ mass, b = ∫ load assembled **without**
Dirichlet conditions; the Dirichlet dofs and values come separately, so a trainer can fix
them (or penalise them) itself. Rows are the dofs this rank owns, columns are all local
dofs (owned first, then ghosts), so with u given on owned+ghost dofs

    uᵀKu = Σ_ranks u[:n_owned] · (K_rank @ u),   bᵀu = Σ_ranks b_rank · u[:n_owned].

No dense n×n matrix is ever formed. Vector fields use the *unrolled blocked* layout:
local index = node * bs + component, the same as ``Function.x.array``; dof coordinates
are per node (``coordinates[i // bs]``).

Any Lagrange degree: the dof nodes are those of V (P1: the vertices; P2: vertices and
edge midpoints, :meth:`dolfinx.fem.FunctionSpace.tabulate_dof_coordinates`), so K, M, b
are the P2 operators of a degree-2 space. ``weights`` are positive nodal quadrature
weights of the owned dofs (:func:`nodal_weights`): the row sums of M for P1, whose P2
row sums are not (a P2 vertex function integrates to 0 on a triangle, < 0 on a tetrahedron).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from meshes.fenics import MPI, dolfinx, ufl

from .mpi import fetch_from_owners


@dataclass
class IndexLayout:
    """How this rank's local dofs (owned, then ghosts) relate to the global numbering.

    The columns of K and M are the local dofs of V (owned + V's ghosts) followed by
    ``n_extra`` further off-rank dofs that only appear as couplings of owned rows
    (a neighbour's cell touches an owned dof); their coordinates are fetched from their
    owners, so a trainer simply evaluates the network at all ``coordinates``.
    """

    n_owned: int  # unrolled owned dofs (rows of K on this rank)
    n_local: int  # unrolled columns: owned + ghosts of V + extra couplings
    n_function: int  # unrolled owned + ghosts of V (the length of Function.x.array)
    block_size: int
    local_to_global: np.ndarray  # (n_local,) int64 unrolled global index of each local dof
    owners: np.ndarray  # (n_local,) owning rank of each local dof
    coordinates: np.ndarray  # (n_local // bs, 3) float64 coordinates of each dof node
    n_global: int


def _function_globals(V) -> tuple[np.ndarray, np.ndarray]:
    imap, bs = V.dofmap.index_map, V.dofmap.index_map_bs
    n_nodes = imap.size_local + imap.num_ghosts
    nodes = imap.local_to_global(np.arange(n_nodes, dtype=np.int32)).astype(np.int64)
    l2g = (nodes[:, None] * bs + np.arange(bs)[None, :]).reshape(-1)
    owners = np.concatenate(
        [
            np.full(imap.size_local, V.mesh.comm.rank, dtype=np.int32),
            np.asarray(imap.owners, dtype=np.int32),
        ]
    )
    return l2g, np.repeat(owners, bs)


def index_layout(
    V: dolfinx.fem.FunctionSpace,
    extra_globals: np.ndarray | None = None,
    extra_owners: np.ndarray | None = None,
) -> IndexLayout:
    """The dof layout of V (unrolled), extended by `extra_globals` couplings (collective)."""
    imap, bs = V.dofmap.index_map, V.dofmap.index_map_bs
    l2g, owners = _function_globals(V)
    n_function = len(l2g)
    coords = V.tabulate_dof_coordinates()[: n_function // bs].astype(np.float64)
    if extra_globals is None:
        extra_globals = np.zeros(0, dtype=np.int64)
        extra_owners = np.zeros(0, dtype=np.int32)
    # extra columns come per node with all bs components, as the sparsity pattern is blocked
    nodes, first = np.unique(extra_globals // bs, return_index=True)
    node_owners = np.asarray(extra_owners)[first].astype(np.int32)
    x_owned = V.tabulate_dof_coordinates()[: imap.size_local]
    extra_coords = fetch_from_owners(V.mesh.comm, x_owned, imap.local_range[0], nodes,
                                     node_owners).reshape(-1, 3)
    extra = (nodes[:, None] * bs + np.arange(bs)[None, :]).reshape(-1)
    return IndexLayout(
        imap.size_local * bs,
        n_function + len(extra),
        n_function,
        bs,
        np.concatenate([l2g, extra]),
        np.concatenate([owners, np.repeat(node_owners, bs)]),
        np.vstack([coords, extra_coords]),
        imap.size_global * bs,
    )


def _assemble_matrix(form: ufl.Form):
    A = dolfinx.fem.assemble_matrix(
        dolfinx.fem.form(form), block_mode=dolfinx.la.BlockMode.expanded
    )
    A.scatter_reverse()
    cm = A.index_map(1)
    n = cm.size_local + cm.num_ghosts
    col_globals = cm.local_to_global(np.arange(n, dtype=np.int32)).astype(np.int64)
    col_owners = np.concatenate(
        [
            np.full(cm.size_local, -1, dtype=np.int32),  # set by caller
            np.asarray(cm.owners, dtype=np.int32),
        ]
    )
    return A.to_scipy(ghosted=False).tocsr().copy(), col_globals, col_owners


def _remap_columns(A, col_globals: np.ndarray, layout: IndexLayout):
    """Renumber the columns of A (given by global index) to the layout's local order."""
    import scipy.sparse as sp  # deferred: loads SciPy

    order = np.argsort(layout.local_to_global)
    pos = np.searchsorted(layout.local_to_global[order], col_globals)
    local = order[pos]
    assert np.array_equal(layout.local_to_global[local], col_globals)
    A = A.tocoo()
    return sp.csr_matrix((A.data, (A.row, local[A.col])), shape=(A.shape[0], layout.n_local))


def assemble_owned_csr(forms: list[ufl.Form], V: dolfinx.fem.FunctionSpace):
    """SciPy CSRs of bilinear forms (owned rows, no bcs) on one common column layout."""
    comm = V.mesh.comm
    l2g, _ = _function_globals(V)
    mats, extra_g, extra_o = [], [], []
    for form in forms:
        A, cg, co = _assemble_matrix(form)
        co[: A.shape[0]] = comm.rank
        mats.append((A, cg))
        new = ~np.isin(cg, l2g)
        extra_g.append(cg[new])
        extra_o.append(co[new])
    g, first = np.unique(np.concatenate(extra_g), return_index=True)
    layout = index_layout(V, g, np.concatenate(extra_o)[first])
    return [_remap_columns(A, cg, layout) for A, cg in mats], layout


def assemble_owned_vector(form: ufl.Form) -> np.ndarray:
    """A linear form assembled with ghost contributions summed to owners; owned entries."""
    b = dolfinx.fem.assemble_vector(dolfinx.fem.form(form))
    b.scatter_reverse(dolfinx.la.InsertMode.add)
    imap, bs = b.index_map, b.block_size
    return b.array[: imap.size_local * bs].copy()


def to_torch_csr(A, dtype=None, device=None):
    """A SciPy sparse matrix as a torch sparse CSR tensor (float64 unless `dtype`)."""
    import scipy.sparse as sps  # deferred: loads SciPy
    import torch  # deferred: loads torch

    m = sps.csr_matrix(A)
    m.sort_indices()
    with warnings.catch_warnings():  # torch: "sparse CSR support is in beta": known, wanted
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float64)).to(dtype or torch.float64),
            size=m.shape,
            device=device,
            check_invariants=False,
        )


@dataclass
class Operators:
    """K, M, b of one rank plus Dirichlet data and the dof layout (see module docstring)."""

    K: object  # torch sparse CSR, (n_owned, n_local)
    M: object  # torch sparse CSR, (n_owned, n_local)
    b: object  # torch float64 (n_owned,)
    dirichlet_dofs: np.ndarray  # local unrolled indices (< layout.n_function) of constrained dofs
    dirichlet_values: np.ndarray
    layout: IndexLayout
    K_scipy: object  # the same matrices in SciPy, for checks and non-torch users
    M_scipy: object
    weights: np.ndarray | None = None  # (n_owned,) positive nodal weights (nodal_weights)
    degree: int = 1  # Lagrange degree of V (1: P1 vertices; 2: P2 vertices + edge midpoints)

    def energy(self, u_local: np.ndarray, comm: MPI.Comm) -> tuple[float, float]:
        """Global (uᵀKu, bᵀu) from u on this rank's local dofs (collective)."""
        n = self.layout.n_owned
        uKu = float(u_local[:n] @ (self.K_scipy @ u_local))
        bu = float(self.b.numpy() @ u_local[:n])
        return comm.allreduce(uKu, op=MPI.SUM), comm.allreduce(bu, op=MPI.SUM)


def assemble_operators(problem) -> Operators:
    """K, M, b and Dirichlet data of a problem from :mod:`fem.problems` (collective)."""
    import torch  # deferred: loads torch

    (K, M), layout = assemble_owned_csr([problem.stiffness, problem.mass], problem.V)
    b = assemble_owned_vector(problem.load)
    dofs, values = dirichlet_arrays(problem.V, problem.bcs)
    degree = space_degree(problem.V)
    return Operators(
        to_torch_csr(K), to_torch_csr(M), torch.from_numpy(b), dofs, values, layout, K, M,
        nodal_weights(M, degree, problem.V.mesh.comm), degree
    )


def space_degree(V: dolfinx.fem.FunctionSpace) -> int:
    """The Lagrange degree of V (1 for P1, 2 for P2)."""
    return int(V.ufl_element().embedded_superdegree)


def nodal_weights(M, degree: int, comm: MPI.Comm) -> np.ndarray:
    """Positive weights w_i (Σ_i w_i = ∫ 1 per component) of the owned dofs (collective).

    P1: the row sums of the mass matrix (lumped mass ∫φ_i). From P2 on those are zero or
    negative at the vertices, so the diagonal is scaled to the same total instead
    (HRZ lumping; on affine simplices every cell has the same diagonal-to-total ratio, so
    one global factor is the per-cell one).
    """
    rows = np.asarray(M.sum(axis=1)).reshape(-1)
    if degree == 1:
        return rows
    diag = M.diagonal()[: M.shape[0]]
    total, trace = comm.allreduce(np.array([rows.sum(), diag.sum()]), op=MPI.SUM)
    return diag * (total / trace)


def dirichlet_arrays(V: dolfinx.fem.FunctionSpace, bcs: list) -> tuple[np.ndarray, np.ndarray]:
    """Local (owned+ghost, unrolled) indices and values of all Dirichlet dofs."""
    w = dolfinx.fem.Function(V)
    w.x.array[:] = np.nan
    for bc in bcs:
        bc.set(w.x.array)
    idx = np.flatnonzero(~np.isnan(w.x.array)).astype(np.int32)
    return idx, w.x.array[idx].copy()
