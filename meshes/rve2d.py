"""2D micromechanics RVEs: the unit square with equal disks (fibre cross-sections).

The disks are packed by :func:`meshes.packing.pack` as fibres along z (a fibre's
cross-section is a disk), so the 2D and 3D fibre RVEs share one packing. Cells ``matrix``
and ``inclusion``; facets ``x0``, ``x1``, ``y0``, ``y1`` and ``interface`` (the
matrix/disk curves). ``placement="cut"`` lets the square's sides cut disks, which re-enter
through the opposite side (a periodic microstructure). ``interface_size`` /
``interface_width`` set the size at the disk boundaries and the distance over which it
grows back to ``size`` (:func:`meshes.sizing.refine_near`); by default ``refine · size``
over 3 · size, as for ``rve``.
"""

from __future__ import annotations

import math

import gmsh

from .errors import MeshError
from .mesh_quality import group_measures
from .packing import Inclusion, images, pack
from .registration import Option, check_cell_budget, register
from .rve import interface_sizing
from .sizing import refine_near
from .tagging import add_group, box_faces, exterior_boundary

_FIBRE_AXIS = 2  # disks in the xy-plane are cross-sections of fibres along z


@register(
    "rve2d", size=0.05, dim=2,
    groups='cells "matrix","inclusion"; facets "x0","x1","y0","y1","interface"',
    options=[
        Option("volume_fraction", "float", 0.15, "target inclusion area fraction",
               positive=True),
        Option("n", "int", 8, "number of disks (equal size, derived from the fraction)",
               positive=True),
        Option("gap", "float", 0.02, "minimum distance between disks (and to the sides when "
               "inside)"),
        Option("placement", "str", "inside", "'inside': disks stay inside the square; 'cut': "
               "sides cut them and they re-enter opposite (periodic microstructure)",
               choices=("inside", "cut")),
        Option("seed", "int", 0, "random seed of the packing"),
        Option("max_attempts", "int", 50_000, "bound on random placement attempts",
               positive=True),
        Option("interface_size", "float", None, "mesh size at the disk boundaries (default "
               "refine * size)", positive=True),
        Option("interface_width", "float", None, "distance from the disk boundaries over "
               "which the size grows back to --size (default 3 * size)", positive=True),
    ])
def rve2d(model, o) -> dict:
    """Unit-square RVE with N non-overlapping disks placed by random sequential addition."""
    incs = _placed_disks(o)
    per_axes = [0, 1] if o["placement"] == "cut" else []
    occ = gmsh.model.occ
    square = occ.addRectangle(0, 0, 0, 1, 1)
    r = float(incs[0].semi_axes[0])  # equal disks
    disks = [(2, occ.addDisk(c[0], c[1], 0.0, r, r)) for inc in incs
             for c in images(inc, per_axes)]
    if per_axes:  # keep only the parts of the periodic images that lie in the square
        disks, _ = occ.intersect(disks, [(2, occ.addRectangle(0, 0, 0, 1, 1))])
    _, out_map = occ.fragment([(2, square)], disks)
    incl = sorted({t for m in out_map[1:] for d, t in m if d == 2})
    matrix = sorted({t for d, t in out_map[0] if d == 2} - set(incl))
    occ.synchronize()
    sides, _ = box_faces(2, exterior_boundary(2, matrix + incl), (0, 0), (1, 1))
    on_sides = {c for cs in sides.values() for c in cs}
    interface = sorted(set(exterior_boundary(2, incl)) - on_sides)
    area = sum(occ.getMass(2, s) for s in incl)
    length = sum(occ.getMass(1, c) for c in interface)
    fine, width = interface_sizing(o)
    check_cell_budget({**o, "refine": fine}, 1.0, 2, min(1.0, length * width))
    refine_near(o["size"], fine, curves=interface, grow=width)
    gmsh.model.mesh.generate(2)
    add_group(2, matrix, "matrix")
    add_group(2, incl, "inclusion")
    for name, curves in sides.items():
        add_group(1, curves, name)
    add_group(1, interface, "interface")
    m = group_measures()  # straight edges cut the circles: what the mesh really holds
    info = _info(o, incs, per_axes, area, length)
    info["volume_fraction_mesh"] = m["inclusion"] / (m["inclusion"] + m["matrix"])
    return info


def _placed_disks(o: dict) -> list[Inclusion]:
    """The disks packed for options `o`, refused when the mesh cannot resolve them."""
    n = o["n"]
    if n > 1000:
        raise MeshError(f"--n={n}: too many disks (at most 1000)")
    incs = pack("fibre", o["volume_fraction"], n, o["gap"], o["placement"], o["seed"],
                axis=_FIBRE_AXIS, max_attempts=o["max_attempts"])
    for inc in incs:  # pack puts fibre centres at z = 0.5: the disks lie in the plane z = 0
        inc.centre[_FIBRE_AXIS] = 0.0
    r = float(incs[0].semi_axes[0])
    local = o["size"] * min(1.0, interface_sizing(o)[0])
    if 2 * r < local:
        raise MeshError(f"disks (radius {r:.3g}) are smaller than the local mesh size "
                        f"{local:.3g}: lower --size/--refine/--interface-size or --n")
    return incs


def _info(o: dict, incs: list[Inclusion], per_axes: list[int], area: float,
          length: float) -> dict:
    """What the 2D RVE builder reports: the disks, area fractions, interface length."""
    r = float(incs[0].semi_axes[0])
    return {
        "gdim": 2,
        "inclusion": "disk",
        "volume_fraction": o["volume_fraction"],
        "volume_fraction_geometry": float(area),  # the square has area 1
        "centres": [i.centre.tolist() for i in incs],  # 3-vectors, z = 0
        "radii": [float(i.semi_axes[0]) for i in incs],
        "periodic_axes": per_axes,
        "gap": o["gap"],
        "interface_length": float(length),
        "interface_size": o["size"] * min(1.0, interface_sizing(o)[0]),
        "bbox": [0.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        "inclusion_area_exact": len(incs) * math.pi * r**2,
    }
