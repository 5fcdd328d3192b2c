"""Integrals and tag checks on DistributedMesh, shared by the meshes tests."""

from __future__ import annotations

import numpy as np

from meshes.fenics import MPI, dolfinx, ufl


def measure(dm, cell_group: str | None = None) -> float:
    """Global area/volume of the mesh or of one cell group (quadrature, MPI-reduced)."""
    if cell_group is None:
        form = 1.0 * ufl.dx(domain=dm.mesh)
    else:
        dx = ufl.Measure("dx", domain=dm.mesh, subdomain_data=dm.cell_tags)
        form = 1.0 * dx(dm.cell_names[cell_group])
    local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(form))
    return dm.comm.allreduce(local, op=MPI.SUM)


def facet_area(dm, facet_group: str) -> float:
    """Global area (3D) / length (2D) of a facet group, interior facets counted once."""
    ds = ufl.Measure("ds", domain=dm.mesh, subdomain_data=dm.facet_tags)
    dS = ufl.Measure("dS", domain=dm.mesh, subdomain_data=dm.facet_tags)
    tag = dm.facet_names[facet_group]
    form = dolfinx.fem.form(1.0 * ds(tag) + 1.0 * dS(tag))
    return dm.comm.allreduce(dolfinx.fem.assemble_scalar(form), op=MPI.SUM)


def owned_cells(dm) -> int:
    return dm.mesh.topology.index_map(dm.tdim).size_local


def global_cells(dm) -> int:
    return dm.mesh.topology.index_map(dm.tdim).size_global


def exterior_facets(dm) -> np.ndarray:
    dm.mesh.topology.create_connectivity(dm.tdim - 1, dm.tdim)
    return np.sort(dolfinx.mesh.exterior_facet_indices(dm.mesh.topology))


def tagged_facets(dm, names) -> np.ndarray:
    return np.unique(np.concatenate([dm.facets(n) for n in names] or [np.zeros(0, np.int32)]))


def phase_partition_ok(dm) -> bool:
    """Every local cell is in exactly one cell group."""
    n = dm.mesh.topology.index_map(dm.tdim).size_local + \
        dm.mesh.topology.index_map(dm.tdim).num_ghosts
    count = np.zeros(n, dtype=int)
    for name in dm.cell_names:
        np.add.at(count, dm.cells(name), 1)
    return bool(np.all(count == 1))


def facet_vertex_coords(dm, name: str) -> np.ndarray:
    """Coordinates of the geometry nodes of the facets in group `name`."""
    fdim = dm.tdim - 1
    facets = dm.facets(name)
    nodes = dolfinx.mesh.entities_to_geometry(dm.mesh, fdim, facets)
    return dm.mesh.geometry.x[np.unique(nodes)]
