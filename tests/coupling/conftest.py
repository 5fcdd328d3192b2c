"""Shared meshes for the coupling tests: small, built once per session, serial (COMM_SELF)."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
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


def set_key(doc: dict, dotted: str, value) -> dict:
    """A copy of a config document with the dotted key set (tables made as needed)."""
    doc = copy.deepcopy(doc)
    *parents, leaf = dotted.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return doc


@pytest.fixture(scope="session")
def make_lshape_poisson():
    """A builder of the Galerkin discretisation of −Δu = 1 on a small L-shape (u = 0 on the
    boundary, float64, with its FEM reference); each call builds a fresh one."""
    import torch
    import ufl

    import coupling
    import fem

    def build():
        dm = meshes.build("lshape", 0.15, comm=MPI.COMM_SELF)
        V = fem.functionspace(dm)
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        pb = fem.VariationalProblem(dm, ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx,
                                    1.0 * v * ufl.dx, bcs={"*": 0.0})
        return coupling.discretise(pb, dtype=torch.float64, reference=pb.solve())

    return build
