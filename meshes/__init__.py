"""Gmsh geometry builders for irregular domains and micromechanics RVEs, distributed with DOLFINx.

>>> dm = meshes.build("rve", 0.15, volume_fraction=0.2, seed=3)
>>> len(dm.cells("inclusion")) > 0, len(dm.facets("interface")) > 0
(True, True)

Every kind, its options and its physical groups: ``meshes.kinds()`` /
``meshes.describe(kind)`` / ``neurofem mesh KIND --help``.

Names are imported on first use (PEP 562), so ``import meshes.cli`` (and hence
``neurofem --help``) does not load DOLFINx.
"""

from .errors import MeshError
from .lazy import lazy_names

_LAZY = {
    "build": "api",
    "DistributedMesh": "core",
    "distribute": "core",
    "gmsh_session": "core",
    "preview": "export",
    "to_meshio": "export",
    "write": "export",
    "write_xdmf": "export",
    "group_measures": "mesh_quality",
    "quality": "mesh_quality",
    "summary_line": "mesh_quality",
    "build_model": "registry",
    "describe": "registry",
    "kinds": "registry",
    "resolve": "registry",
}

__getattr__, __dir__, _names = lazy_names(__name__, _LAZY)
__all__ = ["MeshError", *_names]
