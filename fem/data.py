"""Training data of one rank, owned entities only (no double counting across ranks).

- :func:`dof_data`: coordinates of the owned dofs (and the local → global map).
- :func:`quadrature_data`: basix quadrature points of the owned cells mapped to physical
  space, weights w·|det J| (so Σ over ranks of the weights = domain measure), phase tag.
- :func:`boundary_data`: quadrature points on the owned exterior facets with outward unit
  normals, weights w·|J_f| (facet measure) and facet tags.
- :func:`dof_adjacency`: for each owned dof its neighbour dofs through shared cells
  (local indices incl. ghosts, completed across ranks) — the stochastic-projection
  neighbourhoods.

The geometry is evaluated through UFL (``SpatialCoordinate``, ``Jacobian``), so curved
(higher-order) cells are mapped exactly. Plain dataclasses of NumPy arrays; coupling
converts them to torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fem.mpi import displacements
from meshes import DistributedMesh
from meshes.fenics import MPI, basix, dolfinx, ufl

UNTAGGED = -1


@dataclass
class QuadratureData:
    """Volume quadrature of the owned cells."""

    points: np.ndarray  # (n, 3) physical coordinates
    weights: np.ndarray  # (n,) w_q · |det J|
    phase: np.ndarray  # (n,) int32 cell tag (UNTAGGED when the mesh has none)
    cells: np.ndarray  # (n,) int32 local cell index
    phase_names: dict[str, int]  # name -> tag


@dataclass
class BoundaryData:
    """Facet quadrature of the owned exterior facets."""

    points: np.ndarray  # (n, 3)
    normals: np.ndarray  # (n, 3) outward unit normals
    weights: np.ndarray  # (n,) w_q · facet Jacobian
    tags: np.ndarray  # (n,) int32 facet tag (UNTAGGED when not in a group)
    facets: np.ndarray  # (n,) int32 local facet index
    tag_names: dict[str, int]


@dataclass
class DofData:
    """Owned dofs (nodes) of a function space."""

    coordinates: np.ndarray  # (n_owned, 3)
    local_to_global: np.ndarray  # (n_owned + n_ghost,) int64 global node index
    n_owned: int


@dataclass
class Adjacency:
    """Dof neighbourhoods through cells: CSR over owned dofs, columns local (incl. ghosts)."""

    offsets: np.ndarray  # (n_owned + 1,) int64
    neighbours: np.ndarray  # local node indices (owned, ghosts, then extras), self excluded
    local_to_global: np.ndarray  # (n_nodes,) int64 global node index of every local index
    coordinates: np.ndarray  # (n_nodes, 3) coordinates of every local index
    n_owned: int
    complete: np.ndarray  # (n_owned,) bool: the neighbourhood holds every global neighbour

    def of(self, i: int) -> np.ndarray:
        """Neighbours of owned dof i."""
        return self.neighbours[self.offsets[i] : self.offsets[i + 1]]


def _cell_type(mesh) -> basix.CellType:
    return getattr(basix.CellType, mesh.topology.cell_name())


def _eval_geometry(mesh, X: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Physical points (nc, nq, 3) and Jacobians (nc, nq, gdim, tdim) at reference points X."""
    gdim, tdim = mesh.geometry.dim, mesh.topology.dim
    nq, nc = X.shape[0], len(cells)
    if nc == 0:
        return np.zeros((0, nq, 3)), np.zeros((0, nq, gdim, tdim))
    X = np.ascontiguousarray(X, dtype=np.float64)
    xe = dolfinx.fem.Expression(ufl.SpatialCoordinate(mesh), X)
    Je = dolfinx.fem.Expression(ufl.Jacobian(mesh), X)
    x = xe.eval(mesh, cells).reshape(nc, nq, gdim)
    J = Je.eval(mesh, cells).reshape(nc, nq, gdim, tdim)
    pts = np.zeros((nc, nq, 3))
    pts[..., :gdim] = x
    return pts, J


def _pseudo_det(J: np.ndarray) -> np.ndarray:
    """|det J| for square J, sqrt(det JᵀJ) otherwise (manifolds, facets)."""
    if J.shape[-1] == 0:
        return np.ones(J.shape[:-2])
    if J.shape[-1] == J.shape[-2]:
        return np.abs(np.linalg.det(J))
    return np.sqrt(np.linalg.det(np.swapaxes(J, -1, -2) @ J))


def cell_tag_array(dmesh: DistributedMesh, n: int) -> np.ndarray:
    tags = np.full(n, UNTAGGED, dtype=np.int32)
    if dmesh.cell_tags is not None:
        keep = dmesh.cell_tags.indices < n
        tags[dmesh.cell_tags.indices[keep]] = dmesh.cell_tags.values[keep]
    return tags


def quadrature_data(dmesh: DistributedMesh, degree: int = 2) -> QuadratureData:
    """Quadrature points/weights (basix, exact for polynomials of `degree`) of owned cells."""
    mesh = dmesh.mesh
    tdim = mesh.topology.dim
    n_owned = mesh.topology.index_map(tdim).size_local
    X, w = basix.make_quadrature(_cell_type(mesh), degree)
    cells = np.arange(n_owned, dtype=np.int32)
    pts, J = _eval_geometry(mesh, X, cells)
    weights = w[None, :] * _pseudo_det(J)
    phase = np.repeat(cell_tag_array(dmesh, n_owned), len(w))
    return QuadratureData(
        pts.reshape(-1, 3),
        weights.reshape(-1),
        phase,
        np.repeat(cells, len(w)),
        dict(dmesh.cell_names),
    )


def _owned_exterior_facets(mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Owned exterior facets, the cell of each and the facet's local index in that cell."""
    tdim = mesh.topology.dim
    fdim = tdim - 1
    mesh.topology.create_connectivity(fdim, tdim)
    mesh.topology.create_connectivity(tdim, fdim)
    f2c, c2f = mesh.topology.connectivity(fdim, tdim), mesh.topology.connectivity(tdim, fdim)
    facets = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    facets = facets[facets < mesh.topology.index_map(fdim).size_local]
    cells = np.array([f2c.links(f)[0] for f in facets], dtype=np.int32)
    local = np.array(
        [np.flatnonzero(c2f.links(c) == f)[0] for c, f in zip(cells, facets, strict=True)],
        dtype=np.int32,
    )
    return facets, cells, local


def _facet_tag_array(dmesh: DistributedMesh) -> np.ndarray:
    """The tag of every local facet (owned and ghost), UNTAGGED where it has none."""
    imap = dmesh.mesh.topology.index_map(dmesh.tdim - 1)
    ftags = np.full(imap.size_local + imap.num_ghosts, UNTAGGED, dtype=np.int32)
    if dmesh.facet_tags is not None:
        ftags[dmesh.facet_tags.indices] = dmesh.facet_tags.values
    return ftags


def boundary_data(dmesh: DistributedMesh, degree: int = 2) -> BoundaryData:
    """Quadrature points, outward normals, weights and tags on owned exterior facets."""
    mesh = dmesh.mesh
    tdim, gdim = mesh.topology.dim, mesh.geometry.dim
    fdim = tdim - 1
    facets, cells, local = _owned_exterior_facets(mesh)
    ftags = _facet_tag_array(dmesh)
    ct = _cell_type(mesh)
    ref_x = basix.geometry(ct)
    ref_facets = basix.topology(ct)[fdim]
    ref_normals = np.asarray(basix.cell.facet_outward_normals(ct))
    if fdim == 0:
        Xf, wf = np.zeros((1, 0)), np.ones(1)
    else:
        Xf, wf = basix.make_quadrature(basix.cell.sub_entity_type(ct, fdim, 0), degree)
    out = {k: [] for k in ("points", "normals", "weights", "tags", "facets")}
    for lf in range(len(ref_facets)):
        sel = np.flatnonzero(local == lf)
        if len(sel) == 0:
            continue
        v = ref_x[ref_facets[lf]]
        Jf_ref = (v[1:] - v[0]).T  # (tdim, fdim)
        X = v[0][None, :] + Xf @ Jf_ref.T
        pts, J = _eval_geometry(mesh, X, cells[sel])
        scale = _pseudo_det(J @ Jf_ref)
        # outward normal: n ∝ J^{-T} n_ref (pseudo-inverse for manifolds)
        n = np.einsum("cqij,j->cqi", np.linalg.pinv(J).swapaxes(-1, -2), ref_normals[lf])
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        normals = np.zeros(pts.shape)
        normals[..., :gdim] = n
        nq = len(wf)
        out["points"].append(pts.reshape(-1, 3))
        out["normals"].append(normals.reshape(-1, 3))
        out["weights"].append((wf[None, :] * scale).reshape(-1))
        out["tags"].append(np.repeat(ftags[facets[sel]], nq))
        out["facets"].append(np.repeat(facets[sel], nq))
    if not out["points"]:
        empty = np.zeros((0, 3))
        return BoundaryData(
            empty,
            empty.copy(),
            np.zeros(0),
            np.zeros(0, np.int32),
            np.zeros(0, np.int32),
            dict(dmesh.facet_names),
        )
    return BoundaryData(
        *(np.concatenate(out[k]) for k in ("points", "normals", "weights")),
        np.concatenate(out["tags"]).astype(np.int32),
        np.concatenate(out["facets"]).astype(np.int32),
        dict(dmesh.facet_names),
    )


def dof_data(V: dolfinx.fem.FunctionSpace) -> DofData:
    """Coordinates of the owned dof nodes of V and the local → global node map."""
    imap = V.dofmap.index_map
    n = imap.size_local + imap.num_ghosts
    l2g = imap.local_to_global(np.arange(n, dtype=np.int32)).astype(np.int64)
    return DofData(V.tabulate_dof_coordinates()[: imap.size_local].copy(), l2g, imap.size_local)


def dof_adjacency(V: dolfinx.fem.FunctionSpace, complete: bool = True) -> Adjacency:
    """Neighbours of each owned dof node through cells (P1: the vertex graph); collective.

    With ``complete=True`` the neighbourhoods of dofs on partition boundaries are completed
    with the couplings seen by other ranks; neighbours that are not local here are appended
    after the ghosts (their global index and coordinates come along), exactly like the
    extra columns of :mod:`fem.operators`. With ``complete=False`` only this rank's cells are
    used and ``Adjacency.complete`` flags the dofs whose neighbourhood is whole.
    """
    import scipy.sparse as sp  # deferred: loads SciPy

    mesh = V.mesh
    comm = mesh.comm
    imap = V.dofmap.index_map
    n_owned, n_local = imap.size_local, imap.size_local + imap.num_ghosts
    cmap = mesh.topology.index_map(mesh.topology.dim)
    dofs = V.dofmap.list[: cmap.size_local + cmap.num_ghosts]
    k = dofs.shape[1]
    rows = np.repeat(dofs, k, axis=1).reshape(-1)
    cols = np.tile(dofs, (1, k)).reshape(-1)
    A = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_local, n_local))
    l2g = imap.local_to_global(np.arange(n_local, dtype=np.int32)).astype(np.int64)
    coords = V.tabulate_dof_coordinates()[:n_local].copy()
    # completeness: cells around each dof on this rank == cells around it globally
    local_count = np.bincount(dofs.reshape(-1), minlength=n_local)
    counter = dolfinx.la.vector(imap, 1, dtype=np.float64)
    counter.array[:] = np.bincount(V.dofmap.list[: cmap.size_local].reshape(-1), minlength=n_local)
    counter.scatter_reverse(dolfinx.la.InsertMode.add)
    whole = local_count[:n_owned] == np.rint(counter.array[:n_owned]).astype(int)
    if complete and comm.size > 1:
        A, l2g, coords = _complete_rows(A, l2g, coords, imap, comm)
        whole[:] = True
    A = A[:n_owned].tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    A.sort_indices()
    return Adjacency(
        A.indptr.astype(np.int64), A.indices.astype(np.int32), l2g, coords, n_owned, whole
    )


def _complete_rows(A, l2g, coords, imap, comm):
    """Send the couplings of ghost rows to their owners and merge them (Alltoallv)."""
    import scipy.sparse as sp  # deferred: loads SciPy

    n_owned, n_local = imap.size_local, A.shape[0]
    G = A[n_owned:].tocoo()
    dest = np.asarray(imap.owners, dtype=np.int32)[G.row]
    order = np.argsort(dest, kind="stable")
    ints = np.ascontiguousarray(np.c_[l2g[n_owned + G.row], l2g[G.col]][order], dtype=np.int64)
    xs = np.ascontiguousarray(coords[G.col][order], dtype=np.float64)
    sc = np.bincount(dest, minlength=comm.size).astype(np.int64)
    rc = np.empty_like(sc)
    comm.Alltoall(sc, rc)

    def exchange(arr, width, mpitype):
        recv = np.empty((int(rc.sum()), width), dtype=arr.dtype)
        s, r = sc * width, rc * width
        comm.Alltoallv([arr, (s, displacements(s)), mpitype],
                       [recv, (r, displacements(r)), mpitype])
        return recv

    pairs = exchange(ints, 2, MPI.INT64_T)
    xr = exchange(xs, 3, MPI.DOUBLE)
    rows = pairs[:, 0] - imap.local_range[0]
    # columns: known local index, or a new extra node appended after the ghosts
    order_l = np.argsort(l2g)
    pos = np.clip(np.searchsorted(l2g[order_l], pairs[:, 1]), 0, n_local - 1)
    known = l2g[order_l][pos] == pairs[:, 1]
    cols = np.where(known, order_l[pos], -1)
    new_g, first, inv = np.unique(pairs[~known, 1], return_index=True, return_inverse=True)
    cols[~known] = n_local + inv
    n_all = n_local + len(new_g)
    A = A.tocoo()
    merged = sp.csr_matrix(
        (
            np.ones(len(A.row) + len(rows), dtype=np.int8),
            (np.concatenate([A.row, rows]), np.concatenate([A.col, cols])),
        ),
        shape=(n_all, n_all),
    )
    return (merged, np.concatenate([l2g, new_g]), np.vstack([coords, xr[~known][first]]))


