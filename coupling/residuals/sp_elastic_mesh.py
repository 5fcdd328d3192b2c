"""Phases, interface and boundary facets of an elasticity mesh, as nodal data for SP residuals.

The strong-form SP residual of piecewise elasticity (:mod:`coupling.residuals.sp_elastic`) needs,
per P1 node, which phases (materials) touch it, and — on material interfaces and on the
exterior boundary — an area-weighted unit normal and a lumped facet area (each facet
gives area/d to each of its d vertices, so Σ w·g ≈ ∫ g ds). Everything comes from the
DOLFINx topology (cells of this rank, owned and ghost) and the cell tags of the mesh:

- a *phase* is a cell group named in ``problem.materials`` (a single material: one phase);
- an *interface entry* (node, p, q), p < q, exists where a facet separates a phase-p cell
  from a phase-q cell; its normal points out of phase p;
- a *boundary entry* (node, p, group) exists where an exterior facet of a phase-p cell in
  facet group ``group`` (UNTAGGED for none) touches the node; its normal points outwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import basix
import numpy as np

from coupling.residuals.sp_global import GlobalMesh, facet_keys, gather_mesh, global_facet_tags
from fem.errors import ConfigError
from fem.problems import lame
from meshes.fenics import dolfinx

UNTAGGED = -1


@dataclass
class FacetEntries:
    """Nodal facet data: keys (node, a, b), area-weighted unit normals, lumped areas."""

    node: np.ndarray  # (m,) local node index
    a: np.ndarray  # (m,) phase p (interfaces and boundaries)
    b: np.ndarray  # (m,) phase q (interfaces) or facet tag (boundaries)
    normal: np.ndarray  # (m, d) unit normal
    area: np.ndarray  # (m,) lumped facet area (Σ area/d over the facets at the node)


@dataclass
class FacetSet:
    """Facets one by one (not lumped to nodes), each seen from one cell of this rank."""

    nodes: np.ndarray  # (m, d) local node indices of the facet's vertices
    a: np.ndarray  # (m,) phase of the cell it is seen from
    b: np.ndarray  # (m,) phase on the other side (interfaces) or facet tag (boundaries)
    normal: np.ndarray  # (m, d) unit normal out of phase a
    area: np.ndarray  # (m,) facet measure
    owned: np.ndarray  # (m,) bool: seen from an owned cell (each facet owned on one rank)


@dataclass
class PhaseMesh:
    """Cells, their phases and materials, and the nodal facet entries of one rank."""

    x: np.ndarray  # (n_nodes, d) coordinates of V's local nodes (and extra columns)
    cells: np.ndarray  # (n_cells, d+1) node indices of local cells (owned, ghosts)
    phase: np.ndarray  # (n_cells,) phase index of each cell
    names: list[str]  # phase names
    lam: np.ndarray  # (P,) Lamé λ per phase
    mu: np.ndarray  # (P,) shear modulus per phase
    interface: FacetEntries
    boundary: FacetEntries
    n_owned: int  # owned nodes (residual rows live there)
    interface_facets: FacetSet | None = None  # the same facets one by one
    boundary_facets: FacetSet | None = None

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    def node_phases(self) -> np.ndarray:
        """(n_nodes, P) bool: phase p has a cell at the node."""
        out = np.zeros((len(self.x), len(self.names)), dtype=bool)
        out[self.cells.reshape(-1), np.repeat(self.phase, self.cells.shape[1])] = True
        return out

    def boundary_nodes(self) -> np.ndarray:
        """(n_nodes,) bool: the node lies on an exterior facet."""
        out = np.zeros(len(self.x), dtype=bool)
        out[self.boundary.node] = True
        return out

    def mesh_size(self) -> np.ndarray:
        """(n_nodes,) mean length of the mesh edges at each node (inf where it has none)."""
        d1 = self.cells.shape[1]
        i = np.repeat(self.cells, d1, axis=1).reshape(-1)
        j = np.tile(self.cells, (1, d1)).reshape(-1)
        keep = i != j
        i, j = i[keep], j[keep]
        key = np.unique(i * len(self.x) + j)  # each edge once per direction
        i, j = key // len(self.x), key % len(self.x)
        length = np.linalg.norm(self.x[i] - self.x[j], axis=1)
        total = np.bincount(i, weights=length, minlength=len(self.x))
        count = np.bincount(i, minlength=len(self.x))
        return np.where(count > 0, total / np.maximum(count, 1), np.inf)


def _cell_phases(problem, n_cells: int) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Phase index per local cell, phase names and (λ, μ) per phase from the materials."""
    dmesh, spec = problem.dmesh, problem.strong_form
    mats = spec.materials
    if not isinstance(problem.lmbda, float | int) or len(mats) > 1:
        if dmesh.cell_tags is None or not dmesh.cell_names:
            raise ConfigError("mesh.kind", "'sp' on piecewise elasticity needs the phase (cell) "
                              "tags of the mesh; this mesh has none")
        names = [n for n in mats if n in dmesh.cell_names]
        tags = np.full(n_cells, UNTAGGED, dtype=np.int64)
        keep = dmesh.cell_tags.indices < n_cells
        tags[dmesh.cell_tags.indices[keep]] = dmesh.cell_tags.values[keep]
        phase = np.full(n_cells, -1, dtype=np.int64)
        for p, name in enumerate(names):
            phase[tags == dmesh.cell_names[name]] = p
        if (phase < 0).any():
            raise ConfigError("problem.materials", f"{int((phase < 0).sum())} cells belong to no "
                              f"listed phase (phases of this mesh: {sorted(dmesh.cell_names)}); "
                              "'sp' needs every cell's material")
        lm = np.array([lame(*mats[n]) for n in names])
        return phase, names, lm[:, 0], lm[:, 1]
    E, nu = next(iter(mats.values()))
    lam, mu = lame(E, nu)
    return np.zeros(n_cells, dtype=np.int64), [next(iter(mats))], np.array([lam]), np.array([mu])


def _facet_geometry(x: np.ndarray, nodes: np.ndarray, opposite: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals (away from the opposite vertex) and areas of simplex facets."""
    a = x[nodes[:, 0]]
    if x.shape[1] == 2:
        t = x[nodes[:, 1]] - a
        n = np.column_stack([t[:, 1], -t[:, 0]])
        area = np.linalg.norm(n, axis=1)
    else:
        n = np.cross(x[nodes[:, 1]] - a, x[nodes[:, 2]] - a)
        area = 0.5 * np.linalg.norm(n, axis=1)
    n = n / np.linalg.norm(n, axis=1)[:, None]
    flip = np.einsum("ij,ij->i", n, x[opposite] - a) > 0
    n[flip] *= -1
    return n, area


def _entries(nodes, a, b, normal, area, n_owned: int) -> FacetEntries:
    """Sum facet contributions per (node, a, b) key over the facets' vertices (owned nodes)."""
    d = nodes.shape[1]
    node = nodes.reshape(-1)
    aa, bb = np.repeat(a, d), np.repeat(b, d)
    vec = np.repeat(normal * area[:, None] / d, d, axis=0)
    w = np.repeat(area / d, d)
    keep = node < n_owned
    node, aa, bb, vec, w = node[keep], aa[keep], bb[keep], vec[keep], w[keep]
    keys, inv = np.unique(np.column_stack([node, aa, bb]), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    m = len(keys)
    summed = np.stack([np.bincount(inv, weights=vec[:, k], minlength=m)
                       for k in range(vec.shape[1])], axis=1)
    areas = np.bincount(inv, weights=w, minlength=m)
    norm = np.linalg.norm(summed, axis=1)
    unit = summed / np.where(norm > 0, norm, 1.0)[:, None]
    keys = keys.reshape(m, 3) if m else np.zeros((0, 3), dtype=np.int64)
    return FacetEntries(keys[:, 0], keys[:, 1], keys[:, 2], unit, areas)


def _local_topology(problem, x: np.ndarray):
    """This rank's cells (owned, ghosts), their facets, exterior flags and facet tags."""
    mesh = problem.dmesh.mesh
    tdim = mesh.topology.dim
    fdim = tdim - 1
    mesh.topology.create_connectivity(tdim, fdim)
    mesh.topology.create_connectivity(fdim, tdim)
    cmap = mesh.topology.index_map(tdim)
    n_cells = cmap.size_local + cmap.num_ghosts
    cells = np.asarray(problem.V.dofmap.list, dtype=np.int64)[:n_cells]
    if cells.shape[1] != tdim + 1:
        raise ConfigError("problem.degree", "'sp' on elasticity evaluates the strong form at "
                          "the vertices of a simplex mesh and needs degree = 1")
    c2f = mesh.topology.connectivity(tdim, fdim).array.reshape(n_cells, tdim + 1)
    ref = basix.topology(getattr(basix.CellType, mesh.topology.cell_name()))[fdim]
    fmap = mesh.topology.index_map(fdim)
    n_facets = fmap.size_local + fmap.num_ghosts
    exterior = np.zeros(n_facets, dtype=bool)
    exterior[dolfinx.mesh.exterior_facet_indices(mesh.topology)] = True
    ftag = np.full(n_facets, UNTAGGED, dtype=np.int64)
    ft = problem.dmesh.facet_tags
    if ft is not None:
        ftag[ft.indices] = ft.values
    return cells, cmap.size_local, c2f, ref, exterior, ftag


def _assemble(x, cells, phase, materials, c2f, ref, exterior, ftag, owned,
              n_owned: int) -> PhaseMesh:
    """The PhaseMesh of cells with their phases, facets (c2f), exterior flags and tags."""
    d1 = cells.shape[1]
    n_facets = len(exterior)
    pmin = np.full(n_facets, np.iinfo(np.int64).max)
    pmax = np.full(n_facets, -1)
    np.minimum.at(pmin, c2f.reshape(-1), np.repeat(phase, d1))
    np.maximum.at(pmax, c2f.reshape(-1), np.repeat(phase, d1))
    parts_i, parts_b = [], []
    for lf, verts in enumerate(ref):
        opp = cells[:, [v for v in range(d1) if v not in verts][0]]
        nodes = cells[:, list(verts)]
        f = c2f[:, lf]
        normal, area = _facet_geometry(x, nodes, opp)
        inter = (pmin[f] != pmax[f]) & (phase == pmin[f])  # seen from the lower phase's cell
        parts_i.append((nodes[inter], phase[inter], pmax[f][inter], normal[inter], area[inter],
                        owned[inter]))
        ext = exterior[f]
        parts_b.append((nodes[ext], phase[ext], ftag[f][ext], normal[ext], area[ext], owned[ext]))
    cat = lambda parts: [np.concatenate(p) for p in zip(*parts, strict=True)]  # noqa: E731
    inter, bnd = cat(parts_i), cat(parts_b)
    return PhaseMesh(x, cells, phase, *materials, _entries(*inter[:5], n_owned),
                     _entries(*bnd[:5], n_owned), n_owned, FacetSet(*inter), FacetSet(*bnd))


def phase_mesh(problem, x: np.ndarray, n_owned: int) -> PhaseMesh:
    """The phases, interface and boundary entries of an elasticity problem on this rank."""
    cells, n_owned_cells, c2f, ref, exterior, ftag = _local_topology(problem, x)
    phase, names, lam, mu = _cell_phases(problem, len(cells))
    owned = np.arange(len(cells)) < n_owned_cells
    return _assemble(x, cells, phase, (names, lam, mu), c2f, ref, exterior, ftag, owned, n_owned)


def global_phase_mesh(problem, x: np.ndarray, n_owned: int, glob: np.ndarray,
                      inputs: np.ndarray) -> tuple[PhaseMesh, GlobalMesh]:
    """The PhaseMesh of the whole mesh in this rank's extended numbering (its local nodes x
    with global indices glob first, rows at its n_owned owned nodes; collective): every
    row's stencils, facet areas and mesh sizes are the serial ones."""
    comm = problem.dmesh.mesh.comm
    cells, n_owned_cells, c2f, ref, exterior, ftag = _local_topology(problem, x)
    phase, names, lam, mu = _cell_phases(problem, len(cells))
    gm = gather_mesh(comm, glob, n_owned, x, inputs, cells, n_owned_cells, phase)
    fnodes = np.zeros((len(exterior), cells.shape[1] - 1), dtype=np.int64)
    for lf, verts in enumerate(ref):
        fnodes[c2f[:, lf]] = cells[:, list(verts)]
    tagged = np.flatnonzero(ftag != UNTAGGED)
    gc2f, keys, count = facet_keys(gm.cells, ref)
    gtag = global_facet_tags(comm, np.sort(glob[fnodes[tagged]], axis=1), ftag[tagged],
                             np.sort(gm.glob[keys], axis=1), UNTAGGED)
    pm = _assemble(gm.x, gm.cells, gm.data, (names, lam, mu), gc2f, ref, count == 1, gtag,
                   gm.mine, n_owned)
    return pm, gm
