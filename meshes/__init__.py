"""Gmsh geometry builders for irregular domains and micromechanics RVEs, distributed with DOLFINx.

>>> dm = meshes.build("rve", 0.08, volume_fraction=0.2, seed=3)
>>> dm.cells("inclusion"), dm.facets("interface")

Every kind, its options and its physical groups: ``meshes.kinds()`` /
``meshes.describe(kind)`` / ``neurofem mesh KIND --help``.
"""

from .api import build
from .core import DistributedMesh, distribute, gmsh_session
from .errors import MeshError
from .export import preview, to_meshio, write, write_xdmf
from .mesh_quality import group_measures, quality, summary_line
from .registry import build_model, describe, kinds, resolve

__all__ = [
    "DistributedMesh",
    "MeshError",
    "build",
    "build_model",
    "describe",
    "distribute",
    "gmsh_session",
    "group_measures",
    "kinds",
    "preview",
    "quality",
    "resolve",
    "summary_line",
    "to_meshio",
    "write",
    "write_xdmf",
]
