"""2D builders: rectangle, L-shape, plate with circular holes, polygon with holes.

Planar domains are drawn from explicit curve loops (no booleans), so every boundary
curve is known by construction and tagged without searching.
"""

from __future__ import annotations

import math
from typing import Any

import gmsh
import numpy as np

from .errors import MeshError
from .registration import Option, check_cell_budget, register
from .sizing import refine_near
from .tagging import add_group

# --------------------------------------------------------------------------- geometry checks


def _segments_cross(p1, p2, q1, q2) -> bool:
    """Proper or touching intersection of segments p1p2 and q1q2."""

    def orient(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def on_seg(a, b, c):
        return min(a[0], b[0]) - 1e-12 <= c[0] <= max(a[0], b[0]) + 1e-12 and \
            min(a[1], b[1]) - 1e-12 <= c[1] <= max(a[1], b[1]) + 1e-12

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True
    return any(d == 0 and on_seg(a, b, c) for d, a, b, c in
               ((d1, q1, q2, p1), (d2, q1, q2, p2), (d3, p1, p2, q1), (d4, p1, p2, q2)))


def _edges(poly: np.ndarray):
    return [(poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly))]


def signed_area(poly: np.ndarray) -> float:
    """Shoelace area (positive for counter-clockwise vertices)."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def is_simple(poly: np.ndarray) -> bool:
    """No two non-adjacent edges of the closed polygon touch."""
    e = _edges(poly)
    n = len(e)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            if _segments_cross(*e[i], *e[j]):
                return False
    return True


def inside(poly: np.ndarray, p) -> bool:
    """Point-in-polygon by ray casting."""
    x, y = p
    c = False
    for (x1, y1), (x2, y2) in _edges(poly):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            c = not c
    return c


def polygons_disjoint(a: np.ndarray, b: np.ndarray) -> bool:
    """True if the closed polygons a and b neither cross nor contain one another."""
    if any(_segments_cross(*ea, *eb) for ea in _edges(a) for eb in _edges(b)):
        return False
    return not inside(a, b[0]) and not inside(b, a[0])


def _circle_poly(cx, cy, r, n=64) -> np.ndarray:
    t = 2 * np.pi * np.arange(n) / n
    R = r / math.cos(math.pi / n)  # circumscribed polygon: contains the circle
    return np.c_[cx + R * np.cos(t), cy + R * np.sin(t)]


def parse_polygon(value: Any, what: str) -> np.ndarray:
    """A (n, 2) float array of >= 3 distinct vertices forming a simple, non-degenerate polygon."""
    try:
        poly = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise MeshError(f"{what}={value!r}: expected a list of [x, y] vertices") from None
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.isfinite(poly).all():
        raise MeshError(f"{what}={value!r}: expected at least 3 finite [x, y] vertices")
    if np.any(np.linalg.norm(poly - np.roll(poly, -1, axis=0), axis=1) < 1e-12):
        raise MeshError(f"{what}={value!r}: repeated consecutive vertex")
    if abs(signed_area(poly)) < 1e-12 or not is_simple(poly):
        raise MeshError(f"{what}={value!r}: polygon is degenerate or self-intersecting")
    return poly


def parse_holes(value: Any, outer: np.ndarray, what: str = "--holes") -> list[tuple[str, Any]]:
    """Holes as ("circle", (cx, cy, r)) or ("polygon", array); inside `outer`, disjoint."""
    if not isinstance(value, list | tuple):
        raise MeshError(f"{what}={value!r}: expected a list of [cx, cy, r] circles or vertex lists")
    holes, shapes = [], []
    for h in value:
        numbers = isinstance(h, list | tuple) and all(isinstance(v, int | float) for v in h)
        if numbers and len(h) == 3:
            cx, cy, r = map(float, h)
            if not (r > 0 and math.isfinite(cx + cy + r)):
                raise MeshError(f"{what}: circle {h!r} needs a finite radius > 0")
            holes.append(("circle", (cx, cy, r)))
            shapes.append(_circle_poly(cx, cy, r))
        else:
            poly = parse_polygon(h, f"{what} entry")
            holes.append(("polygon", poly))
            shapes.append(poly)
    for (_, h), s in zip(holes, shapes, strict=True):
        crosses = any(_segments_cross(*e1, *e2) for e1 in _edges(outer) for e2 in _edges(s))
        if crosses or not all(inside(outer, p) for p in s):
            raise MeshError(f"{what}: hole {np.asarray(h).tolist()!r} is not strictly inside "
                            "the domain")
    for i in range(len(shapes)):
        for j in range(i + 1, len(shapes)):
            if not polygons_disjoint(shapes[i], shapes[j]):
                raise MeshError(f"{what}: holes {i} and {j} overlap or touch")
    return holes


# --------------------------------------------------------------------------- drawing


def _loop(poly: np.ndarray) -> tuple[int, list[int], list[int]]:
    """A closed polyline as an OCC curve loop; returns (loop, curves, points)."""
    occ = gmsh.model.occ
    pts = [occ.addPoint(x, y, 0.0) for x, y in poly]
    curves = [occ.addLine(pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts))]
    return occ.addCurveLoop(curves), curves, pts


def _hole_loops(holes) -> tuple[list[int], list[int]]:
    occ = gmsh.model.occ
    loops, curves = [], []
    for kind, h in holes:
        if kind == "circle":
            c = occ.addCircle(h[0], h[1], 0.0, h[2])
            loops.append(occ.addCurveLoop([c]))
            curves.append(c)
        else:
            lp, cs, _ = _loop(h)
            loops.append(lp)
            curves += cs
    return loops, curves


def _mesh2d(opts, measure, *, points=(), curves=()) -> None:
    check_cell_budget(opts, measure, 2)
    gmsh.model.occ.synchronize()
    refine_near(opts["size"], opts["refine"], points=points, curves=curves)
    gmsh.model.mesh.generate(2)


def _box_options(lo: float, hi: float) -> list[Option]:
    return [Option(n, "float", v, f"{n[0]}-coordinate of the {'lower' if n[1] == '0' else 'upper'} "
                   "corner") for n, v in (("x0", lo), ("y0", lo), ("x1", hi), ("y1", hi))]


def _check_box(o) -> None:
    if not (o["x1"] > o["x0"] and o["y1"] > o["y0"]):
        raise MeshError(f"corners x0={o['x0']}, y0={o['y0']}, x1={o['x1']}, y1={o['y1']}: "
                        "need x1 > x0 and y1 > y0")


def _rect_loop(o) -> tuple[int, dict[str, list[int]]]:
    x0, y0, x1, y1 = o["x0"], o["y0"], o["x1"], o["y1"]
    loop, c, _ = _loop(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    return loop, {"y0": [c[0]], "x1": [c[1]], "y1": [c[2]], "x0": [c[3]]}


@register("rectangle", size=0.1, dim=2, groups='cells "domain"; facets "x0","x1","y0","y1"',
          options=_box_options(0.0, 1.0))
def rectangle(model, o) -> dict:
    """Axis-aligned rectangle [x0,x1] x [y0,y1] (default: the unit square)."""
    _check_box(o)
    loop, sides = _rect_loop(o)
    s = gmsh.model.occ.addPlaneSurface([loop])
    _mesh2d(o, (o["x1"] - o["x0"]) * (o["y1"] - o["y0"]))
    add_group(2, [s], "domain")
    for name, cs in sides.items():
        add_group(1, cs, name)
    return {"gdim": 2, "area_exact": (o["x1"] - o["x0"]) * (o["y1"] - o["y0"])}


@register("lshape", size=0.1, dim=2, groups='cells "domain"; facets "boundary" (all of it)',
          options=[Option("corner_refine", "float", 0.25, "size at the re-entrant corner (0,0), "
                          "as a fraction of size", positive=True)])
def lshape(model, o) -> dict:
    """L-shaped domain [-1,1]^2 minus (0,1]^2, refined towards the re-entrant corner (0,0)."""
    poly = np.array([[-1, -1], [1, -1], [1, 0], [0, 0], [0, 1], [-1, 1]], dtype=float)
    loop, curves, pts = _loop(poly)
    s = gmsh.model.occ.addPlaneSurface([loop])
    check_cell_budget({**o, "refine": o["corner_refine"]}, 3.0, 2, 0.1)
    gmsh.model.occ.synchronize()
    refine_near(o["size"], o["corner_refine"], points=[pts[3]], grow=0.5)
    gmsh.model.mesh.generate(2)
    add_group(2, [s], "domain")
    add_group(1, curves, "boundary")
    return {"gdim": 2, "area_exact": 3.0, "corner": [0.0, 0.0]}


@register("plate_with_holes", size=0.05, dim=2,
          groups='cells "domain"; facets "x0","x1","y0","y1","holes"',
          options=_box_options(-0.5, 0.5) + [
              Option("centres", "json", [[-0.3, -0.3], [0.3, -0.3], [0.3, 0.3], [-0.3, 0.3]],
                     "hole centres, JSON list of [x, y]"),
              Option("radii", "floats", (0.1,), "hole radii (one value, or one per hole)")])
def plate_with_holes(model, o) -> dict:
    """Rectangular plate with circular holes (default [-0.5,0.5]^2 minus 4 disks r=0.1)."""
    _check_box(o)
    centres = parse_polygon_points(o["centres"], "--centres")
    radii = broadcast_radii(o["radii"], len(centres), "--radii")
    x0, y0, x1, y1 = o["x0"], o["y0"], o["x1"], o["y1"]
    outer = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    holes = parse_holes([[*c, r] for c, r in zip(centres.tolist(), radii, strict=True)], outer,
                        "--centres/--radii")
    loop, sides = _rect_loop(o)
    hole_loops, hole_curves = _hole_loops(holes)
    s = gmsh.model.occ.addPlaneSurface([loop, *hole_loops])
    area = (o["x1"] - o["x0"]) * (o["y1"] - o["y0"]) - math.pi * float(np.sum(np.square(radii)))
    _mesh2d(o, area, curves=hole_curves)
    add_group(2, [s], "domain")
    for name, cs in sides.items():
        add_group(1, cs, name)
    add_group(1, hole_curves, "holes")
    return {"gdim": 2, "area_exact": area, "centres": centres.tolist(), "radii": list(radii)}


def parse_polygon_points(value: Any, what: str) -> np.ndarray:
    """(n, 2) array of finite points (n >= 1)."""
    try:
        pts = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise MeshError(f"{what}={value!r}: expected a list of [x, y]") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0 or not np.isfinite(pts).all():
        raise MeshError(f"{what}={value!r}: expected a non-empty list of [x, y]")
    return pts


def broadcast_radii(radii: tuple[float, ...], n: int, what: str) -> list[float]:
    """One radius per hole (a single value applies to all); all > 0."""
    if len(radii) == 1:
        radii = radii * n
    if len(radii) != n:
        raise MeshError(f"{what}: {len(radii)} radii for {n} holes")
    if any(r <= 0 for r in radii):
        raise MeshError(f"{what}: radii {list(radii)} must be > 0")
    return list(radii)


_DEFAULT_POLYGON = [[0.0, 0.0], [2.0, 0.0], [2.4, 1.0], [1.4, 1.0], [1.2, 1.8], [0.0, 1.4]]


@register("polygon", size=0.08, dim=2, groups='cells "domain"; facets "boundary", "holes" '
          "(when there are holes)",
          options=[Option("vertices", "json", _DEFAULT_POLYGON,
                          "outer boundary, JSON list of [x, y] (either orientation)"),
                   Option("holes", "json", [[0.7, 0.6, 0.25], [[1.6, 0.3], [2.0, 0.3], [1.8, 0.7]]],
                          "JSON list of holes: [cx, cy, r] circles or [[x, y], ...] polygons")])
def polygon(model, o) -> dict:
    """Polygon with polygonal/circular holes, refined near holes and re-entrant vertices."""
    outer = parse_polygon(o["vertices"], "--vertices")
    holes = parse_holes(o["holes"], outer)
    loop, curves, pts = _loop(outer)
    hole_loops, hole_curves = _hole_loops(holes)
    s = gmsh.model.occ.addPlaneSurface([loop, *hole_loops])
    # Re-entrant vertices: the turn has the opposite sign to the polygon's orientation.
    orient = np.sign(signed_area(outer))
    d1 = outer - np.roll(outer, 1, axis=0)
    d2 = np.roll(outer, -1, axis=0) - outer
    turn = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    reentrant = [pts[i] for i in np.flatnonzero(turn * orient < 0)]
    area = abs(signed_area(outer)) - sum(
        math.pi * h[2] ** 2 if k == "circle" else abs(signed_area(h)) for k, h in holes)
    _mesh2d(o, area, points=reentrant, curves=hole_curves)
    add_group(2, [s], "domain")
    add_group(1, curves, "boundary")
    add_group(1, hole_curves, "holes")
    return {"gdim": 2, "area_exact": area, "reentrant_vertices": outer[turn * orient < 0].tolist()}
