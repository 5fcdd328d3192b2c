"""3D irregular solids: cube minus spheres (one or two layers), hollow sphere, bracket."""

from __future__ import annotations

import math

import gmsh
import numpy as np

from .errors import MeshError
from .registration import Option, check_cell_budget, register
from .sizing import refine_near
from .tagging import EPS, add_group, bbox, box_faces, exterior_boundary

_CUBE_SPHERES = [[0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]]


def _mesh3d(o, volume, surfaces=()) -> None:
    check_cell_budget(o, volume, 3)
    gmsh.model.occ.synchronize()
    refine_near(o["size"], o["refine"], surfaces=surfaces)
    gmsh.model.mesh.generate(3)


@register("cube_minus_spheres", size=0.1, dim=3,
          groups='cells "domain" (layers=1) or "layer0","layer1" (layers=2, split at z=0.5); '
          'facets "x0","x1","y0","y1","z0","z1","spheres"',
          options=[Option("centres", "json", _CUBE_SPHERES, "sphere centres, JSON list of [x,y,z]"),
                   Option("radii", "floats", (0.15,), "sphere radii (one, or one per sphere)"),
                   Option("layers", "int", 1, "1, or 2 cell groups split at z = 0.5",
                          choices=("1", "2"))])
def cube_minus_spheres(model, o) -> dict:
    """Unit cube minus spherical cavities, optionally split into two layers at z = 0.5."""
    try:
        centres = np.asarray(o["centres"], dtype=float).reshape(-1, 3)
    except (TypeError, ValueError):
        raise MeshError(f"--centres={o['centres']!r}: expected a list of [x, y, z]") from None
    radii = list(o["radii"]) * len(centres) if len(o["radii"]) == 1 else list(o["radii"])
    if len(radii) != len(centres) or any(r <= 0 for r in radii):
        raise MeshError(f"--radii={list(o['radii'])}: need one radius > 0 per centre "
                        f"({len(centres)} centres)")
    for i, (c, r) in enumerate(zip(centres, radii, strict=True)):
        if np.any(c - r <= EPS) or np.any(c + r >= 1 - EPS):
            raise MeshError(f"--centres/--radii: sphere {i} at {c.tolist()} r={r} leaves the cube")
        for j in range(i):
            if np.linalg.norm(c - centres[j]) <= r + radii[j]:
                raise MeshError(f"--centres/--radii: spheres {j} and {i} overlap")
    occ = gmsh.model.occ
    boxes = [occ.addBox(0, 0, 0, 1, 1, 1)] if o["layers"] == 1 else \
        [occ.addBox(0, 0, 0, 1, 1, 0.5), occ.addBox(0, 0, 0.5, 1, 1, 0.5)]
    if len(boxes) == 2:
        occ.fragment([(3, boxes[0])], [(3, boxes[1])])
    balls = [(3, occ.addSphere(*c, r)) for c, r in zip(centres, radii, strict=True)]
    vols = [(3, b) for b in boxes]
    out, _ = occ.cut(vols, balls)
    volume = 1.0 - sum(4 / 3 * math.pi * r**3 for r in radii)
    occ.synchronize()
    vols = [t for d, t in out if d == 3]
    faces, spheres = box_faces(3, exterior_boundary(3, vols), (0, 0, 0), (1, 1, 1))
    _mesh3d(o, volume, spheres)
    if o["layers"] == 1:
        add_group(3, vols, "domain")
    else:
        z = {v: occ.getCenterOfMass(3, v)[2] for v in vols}
        add_group(3, [v for v in vols if z[v] < 0.5], "layer0")
        add_group(3, [v for v in vols if z[v] >= 0.5], "layer1")
    for name, tags in faces.items():
        add_group(2, tags, name)
    add_group(2, spheres, "spheres")
    return {"gdim": 3, "volume_exact": volume, "centres": centres.tolist(), "radii": radii}


@register("hollow_sphere", size=0.1, dim=3,
          groups='cells "domain"; facets "inner","outer" (+ "x0","y0","z0" symmetry planes '
          "when eighth)",
          options=[Option("a", "float", 0.5, "inner radius", positive=True),
                   Option("b", "float", 1.0, "outer radius", positive=True),
                   Option("eighth", "bool", False, "keep only the octant x,y,z >= 0")])
def hollow_sphere(model, o) -> dict:
    """Thick-walled hollow sphere a <= r <= b, full or one eighth with symmetry planes."""
    a, b = o["a"], o["b"]
    if not a < b:
        raise MeshError(f"hollow_sphere radii --a={a} --b={b}: need a < b")
    occ = gmsh.model.occ
    shell, _ = occ.cut([(3, occ.addSphere(0, 0, 0, b))], [(3, occ.addSphere(0, 0, 0, a))])
    volume = 4 / 3 * math.pi * (b**3 - a**3)
    if o["eighth"]:
        shell, _ = occ.intersect(shell, [(3, occ.addBox(0, 0, 0, 2 * b, 2 * b, 2 * b))])
        volume /= 8
    occ.synchronize()
    vols = [t for d, t in shell if d == 3]
    inner, outer, planes = [], [], {"x0": [], "y0": [], "z0": []}
    for s in exterior_boundary(3, vols):
        box = bbox(2, s)
        flat = [abs(box[i]) < 1e-6 * b and abs(box[i + 3]) < 1e-6 * b for i in range(3)]
        if any(flat):
            planes["xyz"[flat.index(True)] + "0"].append(s)
        elif max(abs(v) for v in box) <= a * (1 + 1e-6):
            inner.append(s)
        else:
            outer.append(s)
    check_cell_budget(o, volume, 3)
    refine_near(o["size"], o["refine"], surfaces=inner)
    gmsh.model.mesh.generate(3)
    add_group(3, vols, "domain")
    add_group(2, inner, "inner")
    add_group(2, outer, "outer")
    for name, tags in planes.items():
        add_group(2, tags, name)
    return {"gdim": 3, "volume_exact": volume, "a": a, "b": b}


@register("bracket", size=0.04, dim=3,
          groups='cells "domain"; facets "bolt_holes" (walls of the holes in the base), '
          '"load" (top face of the upright, z = height), "free" (all the rest)',
          options=[Option("length", "float", 1.0, "base length along x", positive=True),
                   Option("width", "float", 0.5, "width along y", positive=True),
                   Option("height", "float", 0.8, "upright height along z", positive=True),
                   Option("thickness", "float", 0.1, "plate thickness", positive=True),
                   Option("fillet", "float", 0.08, "radius of the inner corner fillet",
                          positive=True),
                   Option("hole_radius", "float", 0.06, "bolt hole radius", positive=True),
                   Option("holes", "int", 2, "number of bolt holes in the base (in a row "
                          "along y)", positive=True)])
def bracket(model, o) -> dict:
    """L-shaped bracket: base plate with bolt holes, upright flange, filleted inner corner."""
    L, W, H, t, rf, rh, n = (o[k] for k in ("length", "width", "height", "thickness", "fillet",
                                           "hole_radius", "holes"))
    if not (t < H and t + rf < L and t + rf < H):
        raise MeshError(f"bracket: need thickness + fillet < length and < height "
                        f"(thickness={t}, fillet={rf}, length={L}, height={H})")
    xh = 0.5 * (t + rf + L)  # hole row halfway along the free part of the base
    ys = [(i + 0.5) * W / n for i in range(n)]
    if rh >= 0.5 * (L - t - rf) or rh >= 0.5 * W / n:
        raise MeshError(f"bracket: --hole-radius={rh} too large for {n} holes in the base "
                        f"({L - t - rf:g} x {W / n:g} per hole)")
    occ = gmsh.model.occ
    # Profile in the xz-plane, extruded along y.
    p = [occ.addPoint(x, 0, z) for x, z in
         ((0, 0), (L, 0), (L, t), (t + rf, t), (t, t + rf), (t, H), (0, H))]
    centre = occ.addPoint(t + rf, 0, t + rf)
    curves = [occ.addLine(p[0], p[1]), occ.addLine(p[1], p[2]), occ.addLine(p[2], p[3]),
              occ.addCircleArc(p[3], centre, p[4]), occ.addLine(p[4], p[5]),
              occ.addLine(p[5], p[6]), occ.addLine(p[6], p[0])]
    occ.remove([(0, centre)])  # a free point would become an orphan mesh node
    face = occ.addPlaneSurface([occ.addCurveLoop(curves)])
    ext = occ.extrude([(2, face)], 0, W, 0)
    vol = [(d, tg) for d, tg in ext if d == 3]
    bolts = [(3, occ.addCylinder(xh, y, -t, 0, 0, 3 * t, rh)) for y in ys]
    out, _ = occ.cut(vol, bolts)
    occ.synchronize()
    vols = [tg for d, tg in out if d == 3]
    holes, load, free, fillet = [], [], [], []
    for s in exterior_boundary(3, vols):
        box = bbox(2, s)
        if box[3] - box[0] <= 2 * rh + 1e-6 and box[4] - box[1] <= 2 * rh + 1e-6:
            holes.append(s)
        elif abs(box[2] - H) < 1e-6 and abs(box[5] - H) < 1e-6:
            load.append(s)
        else:
            free.append(s)
            if box[0] >= t - 1e-6 and box[3] <= t + rf + 1e-6 and box[5] <= t + rf + 1e-6 \
                    and box[2] >= t - 1e-6:
                fillet.append(s)
    area = L * t + t * (H - t) + rf**2 * (1 - math.pi / 4)
    volume = area * W - n * math.pi * rh**2 * t
    _mesh3d(o, volume, holes + fillet)
    add_group(3, vols, "domain")
    add_group(2, holes, "bolt_holes")
    add_group(2, load, "load")
    add_group(2, free, "free")
    return {"gdim": 3, "volume_exact": volume, "hole_centres": [[xh, y] for y in ys]}
