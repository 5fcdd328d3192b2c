"""The network between the nodes: point evaluation, in-cell point sets and off-node measures.

A trained network is a function of x, not only a vector of nodal values. Two readings:

- ``"network"``: the raw network with its boundary map, u(x) = g̃(x) + D(x)·N(x)
  (:meth:`coupling.boundary.BoundaryValues.at_points`), defined at any x;
- ``"interpolant"``: the FE interpolant of its nodal values (the FE function that
  :meth:`Discretisation.to_function` gives: P1, or P2 on a degree-2 space), exact at the
  nodes by construction.

:class:`CellPoints` are points inside every owned cell with their FE interpolation rows
(sparse, local dofs → points) and a flag for cells touching the boundary; the off-node
measure (errors vs FEM at quadrature points, beside the nodal ones) and the consistency
term (:mod:`coupling.consistency`) both use them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
import torch

from fem import cell_errors
from fem.errors import ConfigError
from fem.operators import to_torch_csr
from meshes.fenics import MPI, basix, dolfinx, ufl

QUADRATURE_DEGREE = 3  # off-node points: 6 per triangle, 5 per tetrahedron, all interior
CHUNK = 65_536  # points per network evaluation: a 1M-dof mesh has ~10M off-node points


def forward_in_chunks(net: torch.nn.Module, x: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """net(x) evaluated `chunk` points at a time (no gradient): bounded activation memory."""
    with torch.no_grad():
        return torch.cat([net(x[i: i + chunk]) for i in range(0, len(x), chunk)]) if len(x) \
            else net(x)


@dataclass
class CellPoints:
    """Points inside this rank's owned cells, with what evaluates fields there."""

    x: np.ndarray  # (n, gdim) coordinates
    weights: np.ndarray  # (n,) quadrature weights (∫ over the owned cells)
    cells: np.ndarray  # (n,) int32 local cell
    boundary: np.ndarray  # (n,) bool: the cell has a vertex on the boundary
    rows: torch.Tensor  # sparse CSR (n·bs, n_local_dofs): the FE interpolant at the points


def cell_points(V, lam: np.ndarray, weights: np.ndarray | None = None,
                dtype: torch.dtype = torch.float64) -> CellPoints:
    """Points λ·(cell vertices) of every owned cell; `lam` (n_cells or 1, q, nv) barycentric."""
    mesh = V.mesh
    tdim, gdim = mesh.topology.dim, mesh.geometry.dim
    n_cells = mesh.topology.index_map(tdim).size_local
    verts = mesh.geometry.x[mesh.geometry.dofmap[:n_cells, : tdim + 1]][..., :gdim]
    lam = np.broadcast_to(lam, (n_cells, *lam.shape[1:]))
    q = lam.shape[1]
    x = np.einsum("cqv,cvd->cqd", lam, verts).reshape(-1, gdim)
    bs = V.dofmap.index_map_bs
    nodes, basis = _cell_basis(V, lam, n_cells)  # (c, m) dof nodes, (c, q, m) basis values
    m = nodes.shape[1]
    comp = np.arange(bs)
    cols = (nodes[:, None, None, :] * bs + comp[None, None, :, None])  # (c, 1, bs, m)
    cols = np.broadcast_to(cols, (n_cells, q, bs, m)).reshape(-1)
    vals = np.broadcast_to(basis[:, :, None, :], (n_cells, q, bs, m)).reshape(-1)
    n_pts = n_cells * q
    n_dofs = (V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts) * bs
    crow = np.arange(0, n_pts * bs * m + 1, m, dtype=np.int64)
    rows = to_torch_csr(sps.csr_matrix((vals.copy(), cols.copy(), crow),
                                       shape=(n_pts * bs, n_dofs)), dtype)
    if weights is None:
        weights = np.zeros(n_pts)
    flags = np.repeat(cell_errors.boundary_cells(V), q)
    return CellPoints(x, weights, np.repeat(np.arange(n_cells, dtype=np.int32), q), flags, rows)


def _cell_basis(V, lam: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Each owned cell's dof nodes (c, m) and V's basis functions at the points λ (c, q, m).

    P1: the basis functions are the barycentric coordinates themselves (vertex order =
    reference order). Higher degrees: the reference basis tabulated by Basix at the
    reference coordinates λ_1..λ_d (affine cells; P2 needs no dof transformation).
    """
    tdim = V.mesh.topology.dim
    if V.ufl_element().embedded_superdegree == 1:
        return V.dofmap.list[:n_cells, : tdim + 1], lam
    element = V.ufl_element()
    scalar = element.sub_elements[0] if element.reference_value_shape else element
    pts = lam[:1] if lam.strides[0] == 0 else lam  # the same points in every cell: once
    flat = np.ascontiguousarray(pts.reshape(-1, tdim + 1)[:, 1:])
    basis = scalar.basix_element.tabulate(0, flat)[0, :, :, 0].reshape(*pts.shape[:2], -1)
    return V.dofmap.list[:n_cells], np.broadcast_to(basis, (n_cells, *basis.shape[1:]))


def quadrature_points(V, degree: int = QUADRATURE_DEGREE) -> CellPoints:
    """Basix quadrature points of degree `degree` in every owned cell, with their weights."""

    mesh = V.mesh
    ct = getattr(basix.CellType, mesh.topology.cell_name())
    X, w = basix.make_quadrature(ct, degree)
    lam = np.column_stack([1.0 - X.sum(axis=1), X])[None]
    n_cells = mesh.topology.index_map(mesh.topology.dim).size_local
    detj = np.zeros(n_cells)
    if n_cells:  # affine simplices: |det J| is constant per cell
        J = dolfinx.fem.Expression(ufl.JacobianDeterminant(mesh), X[:1])
        detj = np.abs(J.eval(mesh, np.arange(n_cells, dtype=np.int32)).reshape(-1))
    return cell_points(V, lam, (detj[:, None] * w[None, :]).reshape(-1))


def random_points(V, per_cell: int, seed: int = 0) -> CellPoints:
    """`per_cell` uniformly random points in every owned cell (weights: |cell| / per_cell)."""
    mesh = V.mesh
    tdim = mesh.topology.dim
    n_cells = mesh.topology.index_map(tdim).size_local
    rng = np.random.default_rng(seed)
    lam = rng.dirichlet(np.ones(tdim + 1), size=(n_cells, per_cell))
    pts = cell_points(V, lam)
    q = quadrature_points(V, 1)
    pts.weights = np.repeat(q.weights.reshape(n_cells, -1).sum(1) / per_cell, per_cell)
    return pts


def network_inputs(disc, x: np.ndarray) -> torch.Tensor:
    """The network's inputs at coordinates x (n, gdim): the interface distance appended when
    the discretisation was built with it."""
    gdim = disc.problem.dmesh.mesh.geometry.dim
    x = np.asarray(x, dtype=np.float64)[:, :gdim]
    if disc.in_dim > gdim:
        from coupling.geometry import with_interface_distance  # deferred: loads Gmsh

        x, _ = with_interface_distance(x, disc.bounds, disc.problem.dmesh)
    return torch.as_tensor(np.ascontiguousarray(x), dtype=disc.x_nodes.dtype,
                           device=disc.x_nodes.device)


def network_at(disc, net: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    """The raw network with its boundary map at coordinates x (n, gdim): (n, bs)."""
    raw = net(network_inputs(disc, x)).reshape(len(x), disc.block_size)
    return disc.boundary.at_points(np.asarray(x)[:, : disc.problem.dmesh.mesh.geometry.dim], raw)


def evaluate_at(disc, net: torch.nn.Module, points: np.ndarray, mode: str = "network"
                ) -> np.ndarray:
    """Collective: the trained field at this rank's `points` (n, gdim): (n,) or (n, bs).

    ``mode="network"``: the raw network g̃ + D·N; ``"interpolant"``: the FE interpolant of its
    nodal values. A point outside the mesh is refused (ConfigError naming it).
    """
    from fem.evaluate import PointEvaluator  # deferred: loads Gmsh

    if mode not in ("network", "interpolant"):
        raise ConfigError("mode", f"unknown value {mode!r} (choose from network, interpolant)")
    gdim = disc.problem.dmesh.mesh.geometry.dim
    pts = np.asarray(points, dtype=np.float64)
    pts = pts.reshape(len(pts), pts.shape[1] if pts.ndim == 2 else gdim)
    ev = PointEvaluator(disc.problem.V.mesh, pts)
    outside = np.flatnonzero(~ev.found)
    mine = ""
    if len(outside):
        p = ", ".join(f"{v:g}" for v in pts[outside[0]])
        mine = f"point {int(outside[0])} ({p}) is outside the mesh"
    told = [m for m in disc.comm.allgather(mine) if m]
    if told:  # every rank raises the same one line (the first rank's point)
        raise ConfigError("points", told[0])
    with torch.no_grad():
        if mode == "interpolant":
            out = ev(disc.to_function(net))
        else:
            out = network_at(disc, net, pts).detach().cpu().to(torch.float64).numpy()
    out = np.asarray(out, dtype=np.float64).reshape(len(pts), disc.block_size)
    return out[:, 0] if disc.block_size == 1 else out


def reference_at(reference, pts: CellPoints) -> np.ndarray | None:
    """The FE reference at the cell points, (n, bs) (None without a reference)."""
    if reference is None:
        return None
    p = np.zeros((len(pts.x), 3))
    p[:, : pts.x.shape[1]] = pts.x
    if len(p) == 0:
        return np.zeros((0, int(np.prod(reference.ufl_shape)) or 1))
    v = reference.eval(p, pts.cells)
    return np.asarray(v, dtype=np.float64).reshape(len(p), -1)


def point_errors(u: np.ndarray, ref: np.ndarray, pts: CellPoints, comm) -> dict:
    """Relative L2 vs `ref` over all / boundary / interior cells and the worst deviation."""
    return cell_errors.point_errors(u, ref, pts.weights, pts.boundary, comm)


class OffNodeProbe:
    """Errors vs FEM at quadrature points inside every cell, beside the nodal ones (cached).

    Built once per discretisation (collective): the points, the FE reference there and the
    lift g̃, D there; each call is one network evaluation at the points. With `max_points`
    the points of a sample of about that many over all ranks are used (:func:`sample_cells`).
    """

    def __init__(self, disc, degree: int = QUADRATURE_DEGREE, max_points: int | None = None):
        self.pts = sample_cells(quadrature_points(disc.problem.V, degree), max_points, disc.comm)
        self.ref = reference_at(disc.reference, self.pts)
        self.inputs = network_inputs(disc, self.pts.x)
        lifter = disc.boundary.lifter
        self.lift = lifter(self.pts.x) if lifter is not None else None
        self.bs = disc.block_size

    def values(self, disc, net: torch.nn.Module) -> dict[str, np.ndarray]:
        """The raw network, the interpolant of its nodal values and the lift alone at the
        points, each (n, bs)."""
        raw = forward_in_chunks(net, self.inputs).reshape(-1, self.bs).cpu().to(
            torch.float64).numpy()
        with torch.no_grad():
            nodal = disc.field(net).detach().cpu().to(torch.float64)
        interp = (self.pts.rows @ nodal.reshape(-1, 1)).reshape(-1, self.bs).numpy()
        out = {"network": raw, "interpolant": interp}
        if self.lift is not None:
            g, d = self.lift
            out["network"] = g + d * raw
            out["lift"] = g
        return out

    def measure(self, disc, net: torch.nn.Module) -> dict:
        """Off-node errors of the network, of its interpolant and of the lift alone."""
        vals = self.values(disc, net)
        comm = disc.comm
        out = point_errors(vals["network"], self.ref, self.pts, comm)
        out["interpolant_rel_l2"] = point_errors(vals["interpolant"], self.ref, self.pts,
                                                 comm)["rel_l2"]
        if "lift" in vals:
            out["lift_rel_l2"] = point_errors(vals["lift"], self.ref, self.pts, comm)["rel_l2"]
        return out


def sample_cells(pts: CellPoints, max_points: int | None, comm) -> CellPoints:
    """The points of a sample of the cells holding about `max_points` points over all ranks
    (`pts` itself when they are fewer). A cell is kept by a hash of its centroid (rounded to
    2⁻²⁰), so the sample is the same on any number of ranks and in every run."""

    total = comm.allreduce(len(pts.x), op=MPI.SUM)
    if max_points is None or total <= max_points:
        return pts
    n_cells = int(pts.cells.max()) + 1 if len(pts.cells) else 0
    counts = np.bincount(pts.cells, minlength=n_cells)
    centroid = np.stack([np.bincount(pts.cells, weights=pts.x[:, d], minlength=n_cells)
                         for d in range(pts.x.shape[1])], axis=1) / np.maximum(counts, 1)[:, None]
    grid = np.floor(centroid * 2.0**20).astype(np.int64).view(np.uint64)
    h = np.full(n_cells, 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for d in range(grid.shape[1]):  # splitmix64-style mixing of each coordinate
            h = (h ^ grid[:, d]) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(29)
    keep = ((h >> np.uint64(11)).astype(np.float64) / 2.0**53 < max_points / total)[pts.cells]
    idx = np.flatnonzero(keep)
    bs = pts.rows.shape[0] // max(len(pts.x), 1)
    csr = pts.rows.to_sparse_csr()
    full = sps.csr_matrix((csr.values().numpy(), csr.col_indices().numpy(),
                           csr.crow_indices().numpy()), shape=tuple(csr.shape))
    rows = full[(idx[:, None] * bs + np.arange(bs)).reshape(-1)]
    return CellPoints(pts.x[idx], pts.weights[idx], pts.cells[idx], pts.boundary[idx],
                      to_torch_csr(rows, csr.values().dtype))
