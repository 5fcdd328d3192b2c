"""The distributed-mesh record and the Gmsh → DOLFINx hand-over shared by every builder.

A builder draws geometry into the current Gmsh model **on rank 0 only**, adds physical
groups (one per phase, one per named boundary), meshes it, and returns the Gmsh
model; :func:`distribute` turns that model into a DOLFINx mesh spread over the
communicator with ``dolfinx.io.gmsh.model_to_mesh``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gmsh
import numpy as np

from meshes.fenics import MPI, dolfinx

from .errors import MeshError


def bounding_box(mesh: dolfinx.mesh.Mesh) -> tuple[np.ndarray, np.ndarray]:
    """The global bounding box (lo, hi) of a distributed mesh's vertices (collective)."""
    gdim = mesh.geometry.dim
    x = mesh.geometry.x[:, :gdim]
    lo, hi = np.empty(gdim), np.empty(gdim)  # buffer form: the pickle form cannot MIN arrays
    mesh.comm.Allreduce(np.ascontiguousarray(x.min(axis=0, initial=np.inf)), lo, op=MPI.MIN)
    mesh.comm.Allreduce(np.ascontiguousarray(x.max(axis=0, initial=-np.inf)), hi, op=MPI.MAX)
    return lo, hi


@dataclass
class DistributedMesh:
    """A DOLFINx mesh with its phase (cell) and boundary (facet) tags, looked up by name."""

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags | None
    facet_tags: dolfinx.mesh.MeshTags | None
    cell_names: dict[str, int]  # physical group name -> tag, e.g. {"matrix": 1, "inclusion": 2}
    facet_names: dict[str, int]  # e.g. {"x0": 11, ..., "interface": 17}
    kind: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # what built it (for cache keys)
    info: dict[str, Any] = field(default_factory=dict)  # builder extras (inclusion centres, ...)

    @property
    def comm(self) -> MPI.Comm:
        return self.mesh.comm

    @property
    def tdim(self) -> int:
        return self.mesh.topology.dim

    def cells(self, name: str) -> np.ndarray:
        """Local indices of the cells in phase `name`."""
        if name not in self.cell_names:
            raise MeshError(f"no cell group {name!r}; this mesh has {sorted(self.cell_names)}")
        return self.cell_tags.find(self.cell_names[name])

    def facets(self, name: str) -> np.ndarray:
        """Local indices of the facets on boundary `name`."""
        if name not in self.facet_names:
            raise MeshError(f"no facet group {name!r}; this mesh has {sorted(self.facet_names)}")
        return self.facet_tags.find(self.facet_names[name])


@contextlib.contextmanager
def gmsh_session(name: str = "neurofem", verbosity: int = 0) -> Iterator[Any]:
    """Initialise Gmsh (if needed) with a fresh model; finalise it on exit if we started it."""
    started = not gmsh.isInitialized()
    if started:
        # interruptible=False: Gmsh must not install its own SIGINT handler in a library.
        gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 1 if verbosity else 0)
    gmsh.option.setNumber("General.Verbosity", verbosity)
    gmsh.model.add(name)
    try:
        yield gmsh.model
    finally:
        gmsh.model.remove()
        if started:
            gmsh.finalize()


def distribute(model: Any, comm: MPI.Comm, gdim: int, rank: int = 0) -> DistributedMesh:
    """Build the DOLFINx mesh and tags from the Gmsh `model` that lives on `rank`."""
    local_model = model if comm.rank == rank else None
    data = dolfinx.io.gmsh.model_to_mesh(local_model, comm, rank, gdim=gdim)
    tdim = data.mesh.topology.dim
    cell_names = {n: g.tag for n, g in data.physical_groups.items() if g.dim == tdim}
    facet_names = {n: g.tag for n, g in data.physical_groups.items() if g.dim == tdim - 1}
    data.mesh.topology.create_connectivity(tdim - 1, tdim)
    return DistributedMesh(data.mesh, data.cell_tags, data.facet_tags, cell_names, facet_names)
