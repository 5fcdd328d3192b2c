"""1D interval meshes for the heat and Burgers problems (`[mesh] kind = "interval"`).

`meshes.build` has no 1D kind; this provides one with the same contract (DistributedMesh,
cells "domain", facets "x0" and "x1") so 1D problems run from a config too.
"""

from __future__ import annotations

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import MPI, dolfinx

from .errors import ConfigError


def interval(
    size: float = 0.02, comm: MPI.Comm = MPI.COMM_WORLD, x0: float = 0.0, x1: float = 1.0
) -> DistributedMesh:
    """Uniform interval [x0, x1] with cells of length ≈ size (collective)."""
    if not x1 > x0:
        raise ConfigError("mesh.x1", f"must exceed x0 = {x0}, got {x1}")
    n = max(1, int(round((x1 - x0) / size)))
    mesh = dolfinx.mesh.create_interval(comm, n, [x0, x1])
    mesh.topology.create_connectivity(0, 1)
    tdim = 1
    ncells = mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
    cells = np.arange(ncells, dtype=np.int32)
    ct = dolfinx.mesh.meshtags(mesh, tdim, cells, np.ones(ncells, dtype=np.int32))
    left = dolfinx.mesh.locate_entities_boundary(mesh, 0, lambda x: np.isclose(x[0], x0))
    right = dolfinx.mesh.locate_entities_boundary(mesh, 0, lambda x: np.isclose(x[0], x1))
    idx = np.concatenate([left, right]).astype(np.int32)
    vals = np.concatenate([np.full(len(left), 2), np.full(len(right), 3)]).astype(np.int32)
    order = np.argsort(idx)
    ft = dolfinx.mesh.meshtags(mesh, 0, idx[order], vals[order])
    return DistributedMesh(
        mesh,
        ct,
        ft,
        {"domain": 1},
        {"x0": 2, "x1": 3},
        kind="interval",
        options={"size": size, "x0": x0, "x1": x1, "n": n},
    )
