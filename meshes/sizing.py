"""Mesh-size control: a global size plus Distance + Threshold fields near features.

Near a feature (phase interface, hole, re-entrant corner) the size is ``refine * size``;
it grows linearly back to ``size`` over ``grow`` (default 3 × size) from the feature.
A surface's distance is sampled finely enough (≥ 2 samples per fine cell along its
parametrisation) that the fine size is met at the surface itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gmsh


def set_global_size(size: float) -> None:
    """Use `size` everywhere fields do not ask for less; ignore point sizes and curvature."""
    gmsh.option.setNumber("Mesh.MeshSizeMax", size)
    gmsh.option.setNumber("Mesh.MeshSizeMin", 0.0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)


def _sampling(surfaces: Sequence[int], fine: float) -> int:
    """Distance-field samples per surface direction: at least 2 per fine cell, at least 40."""
    ext = max(max(b[3] - b[0], b[4] - b[1], b[5] - b[2])
              for b in (gmsh.model.getBoundingBox(2, s) for s in surfaces))
    return int(min(400, max(40, math.ceil(2 * math.pi * ext / fine))))


def refine_near(
    size: float,
    refine: float,
    *,
    points: Sequence[int] = (),
    curves: Sequence[int] = (),
    surfaces: Sequence[int] = (),
    grow: float | None = None,
) -> int | None:
    """Add a Threshold field: ``refine*size`` at the given entities, ``size`` beyond ``grow``."""
    set_global_size(size)
    if refine >= 1.0 or not (points or curves or surfaces):
        return None
    f = gmsh.model.mesh.field
    dist = f.add("Distance")
    if points:
        f.setNumbers(dist, "PointsList", list(points))
    if curves:
        f.setNumbers(dist, "CurvesList", list(curves))
        f.setNumber(dist, "Sampling", 100)
    if surfaces:
        f.setNumbers(dist, "SurfacesList", list(surfaces))
        f.setNumber(dist, "Sampling", _sampling(surfaces, refine * size))
    thr = f.add("Threshold")
    f.setNumber(thr, "InField", dist)
    f.setNumber(thr, "SizeMin", refine * size)
    f.setNumber(thr, "SizeMax", size)
    f.setNumber(thr, "DistMin", 0.0)
    f.setNumber(thr, "DistMax", grow if grow is not None else 3.0 * size)
    f.setAsBackgroundMesh(thr)
    return thr
