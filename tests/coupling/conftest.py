"""Shared meshes for the coupling tests: small, built once per session, serial (COMM_SELF)."""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse.csgraph as csgraph

import meshes
from coupling.residuals.sp_derivatives import mesh_vertex_graph
from meshes.fenics import MPI, dolfinx


@functools.cache
def vertex_data(kind: str, size: float, **opts):
    """(points, vertex graph, graph distance of each vertex to the boundary) of a built mesh."""
    dm = meshes.build(kind, size, MPI.COMM_SELF, **opts)
    mesh = dm.mesh
    points, graph, _ = mesh_vertex_graph(mesh)
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    facets = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    boundary = dolfinx.mesh.compute_incident_entities(mesh.topology, facets, tdim - 1, 0)
    # Multi-source BFS: a virtual node joined to every boundary vertex.
    n = len(points)
    adj = graph.to_matrix(n).astype(np.int8).tolil()
    adj.resize(n + 1, n + 1)
    adj[n, boundary] = 1
    depth = csgraph.shortest_path(adj.tocsr(), unweighted=True, indices=n, directed=False)[:n] - 1
    return points, graph, depth
