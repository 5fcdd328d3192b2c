"""Micromechanics RVEs: the unit cube with spheres, ellipsoids, fibres or voids.

Cells ``matrix`` and ``inclusion`` (no ``inclusion`` for voids); facets ``x0 … z1`` and
``interface`` (matrix/inclusion facets, or the void surfaces). ``periodic=True`` makes
the surface mesh of each face a translated copy of the opposite one (Gmsh setPeriodic).
``interface_size`` / ``interface_width`` (``[mesh] refine_interfaces = {size, width}``)
set the size at the inclusion surfaces absolutely and the distance over which it grows
back to ``size`` (:func:`meshes.sizing.refine_near`); by default ``refine · size`` over
3 · size.
"""

from __future__ import annotations

import math

import gmsh
import numpy as np

from .errors import MeshError
from .packing import Inclusion, images, pack
from .registration import Option, check_cell_budget, register
from .sizing import refine_near
from .tagging import add_group, bbox, box_faces, exterior_boundary

_AXES = {"x": 0, "y": 1, "z": 2}


def _draw(inc: Inclusion, centre: np.ndarray, kind: str, axis: int) -> int:
    """One OCC solid for an inclusion (or one of its periodic images) at `centre`."""
    occ = gmsh.model.occ
    if kind == "sphere":
        return occ.addSphere(*centre, float(inc.semi_axes[0]))
    if kind == "fibre":
        base = centre.copy()
        base[axis] = -0.1
        d = np.zeros(3)
        d[axis] = 1.2
        return occ.addCylinder(*base, *d, float(inc.semi_axes[0]))
    tag = occ.addSphere(0, 0, 0, 1.0)
    a = inc.rotation * inc.semi_axes  # x -> R diag(a) x + c
    occ.affineTransform([(3, tag)], [*a[0], centre[0], *a[1], centre[1], *a[2], centre[2]])
    return tag


def _make_periodic(faces: dict[str, list[int]]) -> None:
    """Pair each surface of x1/y1/z1 with its translate on x0/y0/z0 and set it periodic."""
    for k, c in enumerate("xyz"):
        masters = {s: np.array(bbox(2, s)) for s in faces[f"{c}0"]}
        shift = np.zeros(6)
        shift[[k, k + 3]] = 1.0
        for s in faces[f"{c}1"]:
            b = np.array(bbox(2, s)) - shift
            match = [m for m, mb in masters.items() if np.allclose(mb, b, atol=1e-6)]
            if len(match) != 1:
                raise MeshError(f"periodic RVE: surface on {c}1 has no unique translate on {c}0 "
                                "(use --placement cut or inside with a consistent geometry)")
            t = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
            t[4 * k + 3] = 1.0
            gmsh.model.mesh.setPeriodic(2, [s], match, t)


@register(
    "rve", size=0.08, dim=3,
    groups='cells "matrix","inclusion" (no "inclusion" when void); facets "x0","x1","y0","y1",'
    '"z0","z1","interface"',
    options=[
        Option("inclusion", "str", "sphere", "inclusion shape", choices=("sphere", "ellipsoid",
                                                                          "fibre")),
        Option("volume_fraction", "float", 0.15, "target inclusion volume fraction",
               positive=True),
        Option("n", "int", 8, "number of inclusions (equal size, derived from the fraction)",
               positive=True),
        Option("gap", "float", 0.02, "minimum distance between inclusions (and to faces when "
               "inside)"),
        Option("placement", "str", "inside", "'inside': inclusions stay inside the cube; 'cut': "
               "faces cut them and they re-enter opposite (periodic microstructure)",
               choices=("inside", "cut")),
        Option("seed", "int", 0, "random seed of the packing"),
        Option("aspect", "floats", (2.0, 1.0, 1.0), "ellipsoid semi-axis ratios a:b:c"),
        Option("axis", "str", "z", "fibre direction", choices=("x", "y", "z")),
        Option("void", "bool", False, "remove the inclusions (porous RVE)"),
        Option("periodic", "bool", False, "periodic surface mesh on opposite faces"),
        Option("max_attempts", "int", 50_000, "bound on random placement attempts",
               positive=True),
        Option("interface_size", "float", None, "mesh size at the inclusion surfaces (default "
               "refine * size)", positive=True),
        Option("interface_width", "float", None, "distance from the inclusion surfaces over "
               "which the size grows back to --size (default 3 * size)", positive=True),
    ])
def rve(model, o) -> dict:
    """Unit-cube RVE with N non-overlapping inclusions placed by random sequential addition."""
    kind, axis = o["inclusion"], _AXES[o["axis"]]
    incs = _placed_inclusions(o, axis)
    trans = [k for k in range(3) if k != axis] if kind == "fibre" else [0, 1, 2]
    per_axes = trans if o["placement"] == "cut" else []
    occ = gmsh.model.occ
    box = occ.addBox(0, 0, 0, 1, 1, 1)
    solids = [(3, _draw(inc, c, kind, axis)) for inc in incs for c in images(inc, per_axes)]
    if kind == "fibre" or o["placement"] == "cut":  # keep only what lies in the cube
        solids, _ = occ.intersect(solids, [(3, occ.addBox(0, 0, 0, 1, 1, 1))])
    if o["void"]:
        out, _ = occ.cut([(3, box)], solids)
        matrix, incl = [t for d, t in out if d == 3], []
    else:
        _, out_map = occ.fragment([(3, box)], solids)
        incl = sorted({t for m in out_map[1:] for d, t in m if d == 3})
        matrix = sorted({t for d, t in out_map[0] if d == 3} - set(incl))
    occ.synchronize()
    faces, rest = box_faces(3, exterior_boundary(3, matrix + incl), (0, 0, 0), (1, 1, 1))
    interface = rest if o["void"] else sorted(
        set(exterior_boundary(3, incl)) - {s for f in faces.values() for s in f})
    if o["periodic"]:
        _make_periodic(faces)
    vf_geom = sum(occ.getMass(3, v) for v in incl) if incl else \
        1.0 - sum(occ.getMass(3, v) for v in matrix)
    area = sum(occ.getMass(2, s) for s in interface)
    fine, width = interface_sizing(o)
    check_cell_budget({**o, "refine": fine}, 1.0, 3, min(1.0, area * width))
    refine_near(o["size"], fine, surfaces=interface, grow=width)
    gmsh.model.mesh.generate(3)
    add_group(3, matrix, "matrix")
    add_group(3, incl, "inclusion")
    for name, tags in faces.items():
        add_group(2, tags, name)
    add_group(2, interface, "interface")
    return _info(o, incs, per_axes, vf_geom, area)


def _placed_inclusions(o: dict, axis: int) -> list:
    """The inclusions packed for options `o`, refused when the mesh cannot resolve them."""
    kind, n = o["inclusion"], o["n"]
    if n > 1000:
        raise MeshError(f"--n={n}: too many inclusions (at most 1000)")
    if kind == "ellipsoid" and (len(o["aspect"]) != 3 or min(o["aspect"]) <= 0):
        raise MeshError(f"--aspect={list(o['aspect'])}: need three ratios > 0")
    incs = pack(kind, o["volume_fraction"], n, o["gap"], o["placement"], o["seed"],
                tuple(o["aspect"]) if kind == "ellipsoid" else (1, 1, 1), axis, o["max_attempts"])
    a_min = float(incs[0].semi_axes.min())
    local = o["size"] * min(1.0, interface_sizing(o)[0])
    if 2 * a_min < local:
        raise MeshError(f"inclusions (smallest semi-axis {a_min:.3g}) are smaller than the local "
                        f"mesh size {local:.3g}: lower --size/--refine or --n")
    return incs


def interface_sizing(o: dict) -> tuple[float, float]:
    """(size at the inclusion surfaces as a fraction of ``size``, width of the graded layer)."""
    size = o["size"]
    fine = o["refine"] if o.get("interface_size") is None else o["interface_size"] / size
    width = 3.0 * size if o.get("interface_width") is None else o["interface_width"]
    return fine, width


def _info(o: dict, incs: list, per_axes: list[int], vf_geom: float, area: float) -> dict:
    """What the RVE builder reports: geometry of every inclusion, volume fractions, areas."""
    kind = o["inclusion"]
    return {
        "gdim": 3,
        "inclusion": kind,
        "void": o["void"],
        "volume_fraction": o["volume_fraction"],
        "volume_fraction_geometry": float(vf_geom),
        "centres": [i.centre.tolist() for i in incs],
        "radii": [float(i.semi_axes[0]) for i in incs] if kind != "ellipsoid" else
        [float(np.prod(i.semi_axes) ** (1 / 3)) for i in incs],
        "semi_axes": [i.semi_axes.tolist() for i in incs],
        "axes": [i.rotation.tolist() for i in incs],  # columns: principal axes
        "fibre_axis": o["axis"] if kind == "fibre" else None,
        "periodic_axes": per_axes,
        "gap": o["gap"],
        "interface_area": float(area),
        "interface_size": o["size"] * min(1.0, interface_sizing(o)[0]),
        "bbox": [0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        "inclusion_volume_exact": o["volume_fraction"] if kind != "fibre" else
        len(incs) * math.pi * float(incs[0].semi_axes[0]) ** 2,
    }
