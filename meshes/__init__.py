"""Gmsh geometry builders for irregular domains and micromechanics RVEs, distributed with DOLFINx.

>>> dm = meshes.build("rve", 0.08, volume_fraction=0.2, seed=3)
>>> dm.cells("inclusion"), dm.facets("interface")

Every kind, its options and its physical groups: ``meshes.kinds()`` /
``meshes.describe(kind)`` / ``neurofem mesh KIND --help``.

Names are imported on first use (PEP 562), so ``import meshes.cli`` (and hence
``neurofem --help``) does not load DOLFINx.
"""

from importlib import import_module

from .errors import MeshError

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

__all__ = ["MeshError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'meshes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
