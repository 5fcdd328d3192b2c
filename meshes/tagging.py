"""Small helpers to find Gmsh entities by position and name them as physical groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import gmsh

EPS = 1e-7


def add_group(dim: int, tags: Iterable[int], name: str) -> int | None:
    """Physical group `name` of the entities `tags` (skipped when empty); returns its tag."""
    tags = sorted({int(t) for t in tags})
    if not tags:
        return None
    ptag = gmsh.model.addPhysicalGroup(dim, tags)
    gmsh.model.setPhysicalName(dim, ptag, name)
    return ptag


def bbox(dim: int, tag: int) -> tuple[float, ...]:
    """(xmin, ymin, zmin, xmax, ymax, zmax) of an entity."""
    return gmsh.model.getBoundingBox(dim, tag)


def on_plane(dim: int, tag: int, axis: int, value: float, tol: float = 1e-6) -> bool:
    """True if the entity lies in the plane ``x[axis] == value``."""
    b = bbox(dim, tag)
    return abs(b[axis] - value) < tol and abs(b[axis + 3] - value) < tol


def exterior_boundary(dim: int, volumes: Sequence[int]) -> list[int]:
    """Tags of the (dim-1)-entities on the outside of the union of `volumes`."""
    bnd = gmsh.model.getBoundary([(dim, v) for v in volumes], combined=True, oriented=False)
    return sorted({abs(t) for _, t in bnd})


def box_faces(dim: int, facets: Iterable[int], lo: Sequence[float], hi: Sequence[float],
              tol: float = 1e-6) -> tuple[dict[str, list[int]], list[int]]:
    """Split `facets` into the box faces x0, x1, y0, y1(, z0, z1) and the rest."""
    names = "xyz"[:dim]
    faces: dict[str, list[int]] = {f"{c}{s}": [] for c in names for s in "01"}
    rest = []
    for t in facets:
        for axis, c in enumerate(names):
            if on_plane(dim - 1, t, axis, lo[axis], tol):
                faces[f"{c}0"].append(t)
                break
            if on_plane(dim - 1, t, axis, hi[axis], tol):
                faces[f"{c}1"].append(t)
                break
        else:
            rest.append(t)
    return faces, rest
