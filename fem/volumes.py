"""Finite-volume geometry of a DOLFINx mesh: cells as control volumes, facets as interfaces.

For the conservative spiking solver (PISNN's C-LIF, :mod:`spiking.cfq`), as a
:class:`fem.fv_geometry.FVGeometry`: cell volumes, centroids and
phase tags; interior facets with the two cells they join, their areas and the distance
between the cell centroids; boundary facets with their cell, area, centroid, the
distance from the cell centroid to the facet centroid and their tag.

Works for simplex meshes (intervals, triangles, tetrahedra) with affine geometry, on
any number of ranks: every rank sends its owned cells (original input index, global
vertex numbers, coordinates) and tagged facets to rank 0, which builds the interfaces
by matching facets on global vertex numbers; the result is broadcast, ordered by the
original cell index, so it is the same for every partition.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import dolfinx, ufl

from .errors import FemError
from .fv_geometry import FVGeometry


def _simplex_measure(x: np.ndarray) -> np.ndarray:
    """Measures of simplices given by vertex coordinates x (P, k+1, gdim)."""
    k = x.shape[1] - 1
    if k == 0:
        return np.ones(len(x))
    e = x[:, 1:, :] - x[:, :1, :]  # (P, k, gdim)
    gram = np.einsum("pid,pjd->pij", e, e)
    return np.sqrt(np.clip(np.linalg.det(gram), 0.0, None)) / math.factorial(k)


def _local_cells(dmesh: DistributedMesh):
    mesh = dmesh.mesh
    tdim, gdim = mesh.topology.dim, mesh.geometry.dim
    if mesh.geometry.cmaps[0].degree != 1 or mesh.topology.cell_name() not in (
            "interval", "triangle", "tetrahedron"):
        raise FemError(f"finite volumes need an affine simplex mesh, got "
                       f"{mesh.topology.cell_name()} of degree {mesh.geometry.cmaps[0].degree}")
    mesh.topology.create_connectivity(tdim, 0)
    n = mesh.topology.index_map(tdim).size_local
    c2v = mesh.topology.connectivity(tdim, 0).array.reshape(-1, tdim + 1)[:n]
    vmap = mesh.topology.index_map(0)
    gvert = vmap.local_to_global(c2v.reshape(-1).astype(np.int32)).reshape(c2v.shape)
    geo = dolfinx.mesh.entities_to_geometry(mesh, tdim, np.arange(n, dtype=np.int32))
    x = mesh.geometry.x[geo][:, :, :gdim]
    orig = np.asarray(mesh.topology.original_cell_index[:n], dtype=np.int64)
    tags = np.zeros(n, dtype=np.int64)
    if dmesh.cell_tags is not None:
        keep = dmesh.cell_tags.indices < n
        tags[dmesh.cell_tags.indices[keep]] = dmesh.cell_tags.values[keep]
    # facets with tags, as sorted global vertex tuples
    fdim = tdim - 1
    ftags = []
    if dmesh.facet_tags is not None and len(dmesh.facet_tags.indices):
        mesh.topology.create_connectivity(fdim, 0)
        f2v = mesh.topology.connectivity(fdim, 0)
        for f, v in zip(dmesh.facet_tags.indices, dmesh.facet_tags.values, strict=True):
            verts = vmap.local_to_global(f2v.links(f).astype(np.int32))
            ftags.append((tuple(sorted(int(g) for g in verts)), int(v)))
    return orig, gvert.astype(np.int64), x, tags, ftags


def finite_volumes(dmesh: DistributedMesh) -> FVGeometry:
    """The global FV geometry of a mesh, identical on every rank (collective)."""
    comm = dmesh.comm
    local = _local_cells(dmesh)
    gathered = comm.gather(local, root=0)
    geo = _assemble(gathered, dmesh) if comm.rank == 0 else None
    return comm.bcast(geo, root=0)


def _assemble(parts, dmesh: DistributedMesh) -> FVGeometry:
    orig = np.concatenate([p[0] for p in parts])
    order = np.argsort(orig, kind="stable")
    verts = np.concatenate([p[1] for p in parts])[order]
    x = np.concatenate([p[2] for p in parts])[order]
    ctags = np.concatenate([p[3] for p in parts])[order]
    ftag = {}
    for p in parts:
        ftag.update(dict(p[4]))
    n, nv = verts.shape
    volumes = _simplex_measure(x)
    centroids = x.mean(axis=1)
    # every facet of every cell: (sorted vertex tuple) -> the cell(s) holding it
    local_faces = list(itertools.combinations(range(nv), nv - 1))
    keys = np.sort(verts[:, local_faces], axis=2).reshape(n * len(local_faces), nv - 1)
    fx = x[:, local_faces, :].reshape(n * len(local_faces), nv - 1, x.shape[2])
    owner = np.repeat(np.arange(n), len(local_faces))
    uniq, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    if counts.max() > 2:
        raise FemError("finite volumes: a facet is shared by more than two cells")
    first = np.full(len(uniq), -1)
    second = np.full(len(uniq), -1)
    pos = np.full(len(uniq), -1)
    for r, (f, c) in enumerate(zip(inv, owner, strict=True)):
        if first[f] < 0:
            first[f], pos[f] = c, r
        else:
            second[f] = c
    interior = np.flatnonzero(second >= 0)
    bnd = np.flatnonzero(second < 0)
    pairs = np.stack([first[interior], second[interior]], axis=1)
    fxi = fx[pos]
    areas_all = _simplex_measure(fxi)
    fcent = fxi.mean(axis=1)
    dist = np.linalg.norm(centroids[pairs[:, 1]] - centroids[pairs[:, 0]], axis=1)
    b_cells = first[bnd]
    b_cent = fcent[bnd]
    b_dist = np.linalg.norm(b_cent - centroids[b_cells], axis=1)
    b_tags = np.array([ftag.get(tuple(int(g) for g in uniq[f]), 0) for f in bnd], dtype=np.int64)
    return FVGeometry(volumes, centroids, pairs, areas_all[interior], dist, b_cells,
                      areas_all[bnd], b_dist, b_cent, b_tags, dict(dmesh.facet_names),
                      ctags, dict(dmesh.cell_names))


def cell_integrals(dmesh: DistributedMesh, integrand) -> np.ndarray:
    """∫_K f dx for every cell K, in FV (original cell index) order, on every rank (collective).

    `integrand` is a UFL expression (e.g. a FEM function); quadrature from UFL's degree
    estimation.
    """
    mesh = dmesh.mesh
    tdim = mesh.topology.dim
    Q = dolfinx.fem.functionspace(mesh, ("DG", 0))
    w = ufl.TestFunction(Q)
    form = dolfinx.fem.form(integrand * w * ufl.dx(domain=mesh))
    vec = dolfinx.fem.assemble_vector(form)
    n = mesh.topology.index_map(tdim).size_local
    vals = vec.array[:n].copy()
    orig = np.asarray(mesh.topology.original_cell_index[:n], dtype=np.int64)
    comm = dmesh.comm
    parts = comm.allgather((orig, vals))
    orig = np.concatenate([p[0] for p in parts])
    vals = np.concatenate([p[1] for p in parts])
    return vals[np.argsort(orig, kind="stable")]


def cell_averages(dmesh: DistributedMesh, integrand, volumes: np.ndarray) -> np.ndarray:
    """Cell averages (1/|K|) ∫_K f dx in FV order, on every rank (collective)."""
    return cell_integrals(dmesh, integrand) / volumes
