"""A Dirichlet lift without PDE information: u(x) = g̃(x) + φ(x)·N(x) at any point x.

Both fields are built from the geometry of the Dirichlet facets and the boundary data
alone — no PDE is solved (a harmonic extension would be the Laplace solution itself):

- φ, an approximate distance function (ADF) to Γ_D: for every Dirichlet *piece* (one
  boundary condition of the config), the exact distances d_f to its k facets nearest to x
  are combined by the smooth soft-min (R-equivalence of order m, Sukumar & Srivastava,
  CMAME 2022): φ_i = (Σ_f d_f^-m)^(-1/m). φ_i = 0 on the piece, > 0 off it, and the pieces
  of one component combine in the same way; φ is scaled to max 1 over the mesh nodes.
- g̃, transfinite interpolation of the data: on piece i, g_i(x) = Σ_f w_f g(p_f(x)) with
  p_f(x) the closest point of facet f and w_f ∝ d_f^-m, so the data are evaluated on Γ_D
  only (never inside the domain); the pieces blend as g̃ = Σ_i φ_i^-m g_i / Σ_i φ_i^-m,
  which is g_i exactly on piece i. Kinematic (affine) data u = Ē·x are their own smooth
  extension, g_i(x) = Ē·x: it carries no PDE information (it solves only a homogeneous
  body), and projecting it instead would put kinks at the edges of the cell.

Vector problems get one (φ_c, g̃_c) per component: Dirichlet/affine conditions act on
every component, a roller on its own one; a component without any has φ = 1, g̃ = 0.
Facets are gathered from every rank, so any rank evaluates the lift at any point.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from fem.errors import ConfigError

ORDER = 4.0  # m of the soft-min (larger: closer to the exact distance, less smooth)
NEIGHBOURS = 32  # k facets per piece that enter the soft-min at a point
CHUNK = 8192  # points per vectorised block


@dataclass
class Piece:
    """One Dirichlet condition on one component: its facets (global) and its data."""

    vertices: np.ndarray  # (n_facets, n_vertices, 3)
    data: Callable[[np.ndarray], np.ndarray] | float  # g on points (3, n), or a constant
    everywhere: bool = False  # data(x) is its own extension (affine u = Ē·x), not projected
    tree: cKDTree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.tree = cKDTree(self.vertices.mean(axis=1))


def closest_points(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Closest points (n, k, 3) of simplices v (n, k, nv, 3) to points p (n, 3)."""
    p = p[:, None, :]
    nv = v.shape[2]
    if nv == 1:
        return v[:, :, 0]
    if nv == 2:
        return _on_segment(p, v[:, :, 0], v[:, :, 1])
    a, b, c = v[:, :, 0], v[:, :, 1], v[:, :, 2]
    e1, e2, w = b - a, c - a, p - a
    d11, d12, d22 = (e1 * e1).sum(-1), (e1 * e2).sum(-1), (e2 * e2).sum(-1)
    r1, r2 = (w * e1).sum(-1), (w * e2).sum(-1)
    det = d11 * d22 - d12 * d12
    det = np.where(det > 0, det, 1.0)
    s = (d22 * r1 - d12 * r2) / det
    t = (d11 * r2 - d12 * r1) / det
    inside = (s >= 0) & (t >= 0) & (s + t <= 1)
    best = a + s[..., None] * e1 + t[..., None] * e2
    if inside.all():
        return best
    edges = [_on_segment(p, a, b), _on_segment(p, b, c), _on_segment(p, c, a)]
    dist = np.stack([((q - p) ** 2).sum(-1) for q in edges])
    pick = np.take_along_axis(np.stack(edges), dist.argmin(0)[None, ..., None], 0)[0]
    return np.where(inside[..., None], best, pick)


# The closest points of a piece's k nearest facets depend on the facets and the points
# alone: the components of one lift and the channels of a parametric problem (six strains,
# one boundary) ask for the same ones, so the last few are kept (36 → 1 computation there).
_GEOMETRY: OrderedDict = OrderedDict()
_GEOMETRY_KEEP = 8


def _nearest_facets(piece: Piece, p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(closest points (n, k, 3), distances (n, k)) of the k facets of `piece` nearest to p."""
    key = (hash(piece.vertices.tobytes()), piece.vertices.shape, hash(p.tobytes()), p.shape, k)
    if key in _GEOMETRY:
        _GEOMETRY.move_to_end(key)
        return _GEOMETRY[key]
    _, idx = piece.tree.query(p, k=k)
    idx = np.asarray(idx).reshape(len(p), k)
    q = closest_points(p, piece.vertices[idx])
    d = np.sqrt(((q - p[:, None, :]) ** 2).sum(-1))
    _GEOMETRY[key] = (q, d)
    if len(_GEOMETRY) > _GEOMETRY_KEEP:
        _GEOMETRY.popitem(last=False)
    return q, d


def _on_segment(p, a, b):
    e = b - a
    t = ((p - a) * e).sum(-1) / np.maximum((e * e).sum(-1), 1e-300)
    return a + np.clip(t, 0.0, 1.0)[..., None] * e


def soft_min(d: np.ndarray, values: np.ndarray | None = None, m: float = ORDER
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """(Σ_j d_j^-m)^(-1/m) over the last axis, and Σ d_j^-m v_j / Σ d_j^-m (stable at 0)."""
    dmin = d.min(axis=-1, keepdims=True)
    safe = np.where(d > 0, d, 1.0)
    r = np.where(d > 0, dmin / safe, 1.0) ** m  # 1 at the nearest; exact zeros count fully
    s = r.sum(axis=-1)
    phi = dmin[..., 0] * s ** (-1.0 / m)
    blend = None if values is None else (r * values).sum(axis=-1) / s
    return phi, blend


class Lift:
    """φ_c and g̃_c of every component at any points (callable; numpy, float64)."""

    def __init__(self, pieces: list[list[Piece]], m: float = ORDER, k: int = NEIGHBOURS):
        self.pieces, self.m, self.k = pieces, m, k
        self.scale = np.ones(len(pieces))

    @property
    def components(self) -> int:
        """Number of field components (the block size)."""
        return len(self.pieces)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(g̃, φ) at points x (n, ≥ 1 coordinates), each of shape (n, components)."""
        p = np.zeros((len(x), 3))
        gd = min(np.shape(x)[1], 3) if len(x) else 0
        p[:, :gd] = np.asarray(x, dtype=np.float64)[:, :gd]
        g = np.zeros((len(p), self.components))
        phi = np.ones((len(p), self.components))
        for c, pieces in enumerate(self.pieces):
            if not pieces:
                continue
            for start in range(0, len(p), CHUNK):
                sl = slice(start, start + CHUNK)
                phi[sl, c], g[sl, c] = self._component(p[sl], pieces)
            phi[:, c] /= self.scale[c]
        return g, phi

    def _component(self, p: np.ndarray, pieces: list[Piece]) -> tuple[np.ndarray, np.ndarray]:
        ds, gs = [], []
        for piece in pieces:
            q, d = _nearest_facets(piece, p, min(self.k, len(piece.vertices)))
            if piece.everywhere:  # a formula defined off Γ_D too: its own extension
                vals = np.repeat(piece.data(p.T)[:, None], d.shape[1], 1)
            elif callable(piece.data):
                vals = piece.data(q.reshape(-1, 3).T).reshape(d.shape)
            else:
                vals = np.full(d.shape, float(piece.data))
            phi_i, g_i = soft_min(d, vals, self.m)
            ds.append(phi_i)
            gs.append(g_i)
        return soft_min(np.stack(ds, -1), np.stack(gs, -1), self.m)

    def normalise(self, x_nodes: np.ndarray, comm) -> None:
        """Scale φ of each component to max 1 over the given nodes of all ranks."""
        from meshes.fenics import MPI  # deferred: loads DOLFINx

        self.scale = np.ones(self.components)
        _, phi = self(x_nodes)
        top = np.array([comm.allreduce(float(phi[:, c].max(initial=0.0)), op=MPI.MAX)
                        for c in range(self.components)])
        if np.any(top <= 0):
            raise ConfigError("boundary.lift", "the distance function vanishes at every node "
                              "(is the whole mesh on the Dirichlet boundary?)")
        self.scale = np.where([bool(p) for p in self.pieces], top, 1.0)


def _facet_vertices(dmesh, facets: np.ndarray) -> np.ndarray:
    """Vertex coordinates (n, fdim + 1, 3) of this rank's owned facets among `facets`."""
    from meshes.fenics import dolfinx  # deferred: loads DOLFINx

    mesh = dmesh.mesh
    fdim = mesh.topology.dim - 1
    mesh.topology.create_connectivity(fdim, mesh.topology.dim)
    owned = facets[facets < mesh.topology.index_map(fdim).size_local]
    if len(owned) == 0:
        return np.zeros((0, fdim + 1, 3))
    geo = dolfinx.mesh.entities_to_geometry(mesh, fdim, owned.astype(np.int32), False)
    return mesh.geometry.x[np.asarray(geo)[:, : fdim + 1]]


def canonical(vertices: np.ndarray) -> np.ndarray:
    """Facets (n, nv, 3) in an order that does not depend on the ranks they came from:
    vertices sorted within each facet, facets sorted by their coordinates. The k nearest
    facets of a point then break distance ties alike on any rank count (gathered in rank
    order, equidistant facets swapped places and 2 ranks differed from 1 in the 7th digit).
    """
    if len(vertices) == 0:
        return vertices
    within = np.lexsort(vertices.transpose(2, 0, 1)[::-1], axis=-1)  # x, then y, then z
    v = np.take_along_axis(vertices, within[:, :, None], axis=1)
    flat = v.reshape(len(v), -1)
    return np.ascontiguousarray(v[np.lexsort(flat.T[::-1])])


def _pieces_of(bc, gdim: int, bs: int) -> list[tuple[int, Callable | float]]:
    """(component, data) pairs a boundary condition fixes."""
    def expr(e):
        return float(e.numpy()(np.zeros((3, 1)))[0]) if e.is_constant else e.numpy()

    if bc.type == "roller":
        return [(bc.component, expr(bc.value[0]))]
    if bc.type == "affine":
        E = np.asarray(bc.strain, dtype=np.float64)[:gdim, :gdim]
        return [(c, (lambda x, c=c: E[c] @ x[:gdim])) for c in range(bs)]
    values = bc.value if len(bc.value) == bs else [bc.value[0]] * bs
    return [(c, expr(values[c])) for c in range(bs)]


def _sources(problem, gdim: int, bs: int) -> list[tuple[str, str, list, bool]]:
    """(boundary, config key, [(component, data)], data are their own extension) per condition.

    From a built-in problem's spec, or from a VariationalProblem's mapping of facet group
    (or "*") to per-component data; a problem of raw DirichletBC objects has no data off
    its nodes and is refused (the nodal values alone cannot be extended).
    """
    spec = problem.strong_form
    if spec is not None:
        return [(bc.boundary, bc.key, _pieces_of(bc, gdim, bs), bc.type == "affine")
                for bc in spec.bcs if bc.type in ("dirichlet", "roller", "affine")]
    data = getattr(problem, "dirichlet_data", None)
    if data is None:
        raise ConfigError("boundary.lift", "'adf' needs the Dirichlet data of the problem: pass "
                          "bcs as a mapping {facet group: value}, or use lift='none'")
    return [(name, f"bcs.{name}", list(enumerate(parts)), False) for name, parts in data.items()]


def build_lift(problem, comm, m: float = ORDER, k: int = NEIGHBOURS) -> Lift:
    """The lift of a problem's Dirichlet-type conditions (built-in or custom; collective)."""
    from fem.problems.common import boundary_facets  # deferred: loads DOLFINx, Gmsh

    dmesh = problem.dmesh
    gdim = dmesh.mesh.geometry.dim
    bs = problem.V.dofmap.index_map_bs  # gdim for vector problems, 1 for scalar ones
    pieces: list[list[Piece]] = [[] for _ in range(bs)]
    sources = _sources(problem, gdim, bs)
    if not sources:
        raise ConfigError("boundary.mode", "a lift needs at least one Dirichlet-type boundary "
                          "in problem.bcs")
    for boundary, key, parts, everywhere in sources:
        local = _facet_vertices(dmesh, boundary_facets(dmesh, boundary, key))
        verts = canonical(np.concatenate([v for v in comm.allgather(local) if len(v)]
                                         or [local]))
        if len(verts) == 0:
            raise ConfigError(f"{key}.boundary", f"no facets on boundary {boundary!r}")
        for c, data in parts:
            pieces[c].append(Piece(verts, data, everywhere=everywhere))
    return Lift(pieces, m, k)
