"""Gmsh geometry builders for irregular domains and micromechanics RVEs, distributed with DOLFINx."""

from .core import DistributedMesh, distribute, gmsh_session
from .errors import MeshError

__all__ = ["DistributedMesh", "MeshError", "distribute", "gmsh_session"]
