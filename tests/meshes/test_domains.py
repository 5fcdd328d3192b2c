"""2D/3D builders: exact areas/volumes, convergence on curved boundaries, tag coverage."""

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meshtest_helpers import (
    exterior_facets,
    facet_area,
    facet_vertex_coords,
    measure,
    phase_partition_ok,
    tagged_facets,
)

import meshes

PLATE = 1.0 - 4 * math.pi * 0.1**2
CUBE_SPHERES = 1.0 - 4 * 4 / 3 * math.pi * 0.15**3
SHELL = 4 / 3 * math.pi * (1.0**3 - 0.5**3)

# kind, options, exact measure, facet groups that must cover the boundary
CASES = {
    "rectangle": ({}, 1.0, ["x0", "x1", "y0", "y1"]),
    "lshape": ({}, 3.0, ["boundary"]),
    "plate_with_holes": ({}, PLATE, ["x0", "x1", "y0", "y1", "holes"]),
    "polygon": ({}, None, ["boundary", "holes"]),
    "cube_minus_spheres": ({}, CUBE_SPHERES, ["x0", "x1", "y0", "y1", "z0", "z1", "spheres"]),
    "cube_layers": ({"layers": 2}, CUBE_SPHERES, ["x0", "x1", "y0", "y1", "z0", "z1", "spheres"]),
    "hollow_sphere": ({}, SHELL, ["inner", "outer"]),
    "hollow_eighth": ({"eighth": True}, SHELL / 8, ["inner", "outer", "x0", "y0", "z0"]),
    "bracket": ({}, None, ["bolt_holes", "load", "free"]),
}
KIND = {"cube_layers": "cube_minus_spheres", "hollow_eighth": "hollow_sphere"}


@functools.cache
def built(name: str):
    """The mesh of CASES[name] at the kind's default size (built once per session)."""
    return meshes.build(KIND.get(name, name), **CASES[name][0])


@pytest.fixture(params=list(CASES))
def case(request):
    name = request.param
    _, exact, groups = CASES[name]
    return name, built(name), exact, groups


def test_measure_matches_exact_at_default_size(case):
    name, dm, exact, _ = case
    exact = exact if exact is not None else dm.info.get("area_exact", dm.info.get("volume_exact"))
    assert abs(measure(dm) - exact) / exact < 0.01, name


def test_tags_present_and_cover_boundary(case):
    name, dm, _, groups = case
    assert set(groups) <= set(dm.facet_names), name
    for g in groups:
        assert len(dm.facets(g)) > 0 or dm.comm.size > 1
    # the facet groups together are exactly the exterior facets, without overlap
    assert np.array_equal(tagged_facets(dm, groups), exterior_facets(dm)), name
    assert sum(len(dm.facets(g)) for g in groups) == len(exterior_facets(dm))
    assert phase_partition_ok(dm), name


def test_rectangle_faces_are_where_named():
    dm = meshes.build("rectangle", 0.2, x0=-1.0, y0=2.0, x1=3.0, y1=2.5)
    assert measure(dm) == pytest.approx(2.0, rel=1e-12)
    for name, axis, value in (("x0", 0, -1.0), ("x1", 0, 3.0), ("y0", 1, 2.0), ("y1", 1, 2.5)):
        assert np.allclose(facet_vertex_coords(dm, name)[:, axis], value, atol=1e-12)
    assert facet_area(dm, "x0") == pytest.approx(0.5, rel=1e-12)


def test_lshape_refines_towards_reentrant_corner():
    dm = built("lshape")
    x = dm.mesh.geometry.x
    r = np.linalg.norm(x[:, :2], axis=1)
    near = np.sum(r < 0.2) / (np.pi * 0.2**2 * 0.75)  # nodes per area near (0,0)
    far = np.sum(np.linalg.norm(x[:, :2] - [-0.6, -0.6], axis=1) < 0.2) / (np.pi * 0.2**2)
    assert near > 2 * far


def test_cube_layers_split_at_half_height():
    dm = built("cube_layers")
    assert set(dm.cell_names) == {"layer0", "layer1"}
    v0, v1 = measure(dm, "layer0"), measure(dm, "layer1")
    exact = CUBE_SPHERES / 2  # two spheres per layer
    assert abs(v0 - exact) / exact < 0.01 and abs(v1 - exact) / exact < 0.01
    for layer, z in (("layer0", (0, 0.5)), ("layer1", (0.5, 1))):
        nodes = dm.mesh.geometry.x[np.unique(dm.mesh.geometry.dofmaps[0][dm.cells(layer)])]
        assert nodes[:, 2].min() >= z[0] - 1e-12 and nodes[:, 2].max() <= z[1] + 1e-12


@pytest.mark.parametrize("name", ["hollow_sphere", "hollow_eighth"])
def test_hollow_sphere_surfaces_lie_on_their_spheres(name):
    dm = built(name)
    r_in = np.linalg.norm(facet_vertex_coords(dm, "inner"), axis=1)
    r_out = np.linalg.norm(facet_vertex_coords(dm, "outer"), axis=1)
    assert np.allclose(r_in, 0.5, atol=1e-8) and np.allclose(r_out, 1.0, atol=1e-8)
    # surface areas: within 1 % of 4 pi r^2 (or an eighth of it)
    frac = 1 / 8 if dm.options["eighth"] else 1.0
    assert facet_area(dm, "inner") == pytest.approx(frac * 4 * np.pi * 0.25, rel=0.01)
    assert facet_area(dm, "outer") == pytest.approx(frac * 4 * np.pi, rel=0.01)


def test_bracket_volume_and_load_face():
    dm = built("bracket")
    L, W, H, t, rf, rh = 1.0, 0.5, 0.8, 0.1, 0.08, 0.06
    exact = (L * t + t * (H - t) + rf**2 * (1 - np.pi / 4)) * W - 2 * np.pi * rh**2 * t
    assert measure(dm) == pytest.approx(exact, rel=0.01)
    assert facet_area(dm, "load") == pytest.approx(t * W, rel=1e-10)
    assert facet_area(dm, "bolt_holes") == pytest.approx(2 * 2 * np.pi * rh * t, rel=0.01)
    assert np.allclose(facet_vertex_coords(dm, "load")[:, 2], H, atol=1e-12)


def _error(kind, size, exact, **options):
    dm = meshes.build(kind, size, **options)
    return abs(measure(dm) - exact)


@pytest.mark.parametrize("kind, options, exact, h", [
    ("plate_with_holes", {}, PLATE, 0.1),
    ("hollow_sphere", {"eighth": True}, SHELL / 8, 0.2),
    ("cube_minus_spheres", {}, CUBE_SPHERES, 0.2),
])
def test_curved_boundary_error_converges_with_h(kind, options, exact, h):
    e1, e2 = _error(kind, h, exact, **options), _error(kind, h / 2, exact, **options)
    assert e2 < 0.5 * e1  # straight facets on curved boundaries: O(h^2), ratio ~4


def test_second_order_geometry_is_far_more_accurate():
    e1 = _error("plate_with_holes", 0.1, PLATE)
    e2 = _error("plate_with_holes", 0.1, PLATE, order=2)
    assert e2 < 0.05 * e1


def test_polygon_area_and_reentrant_vertices():
    verts = [[0, 0], [3, 0], [3, 2], [2, 2], [2, 1], [1, 1], [1, 2], [0, 2]]  # a U shape
    dm = meshes.build("polygon", 0.1, vertices=verts, holes=[[0.5, 0.5, 0.2]])
    assert abs(measure(dm) - (5.0 - np.pi * 0.04)) < 0.005
    assert sorted(map(tuple, dm.info["reentrant_vertices"])) == [(1.0, 1.0), (2.0, 1.0)]
    assert facet_area(dm, "holes") == pytest.approx(2 * np.pi * 0.2, rel=0.01)
    assert facet_area(dm, "boundary") == pytest.approx(12.0, rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(x0=st.floats(-5, 5), y0=st.floats(-5, 5), w=st.floats(0.2, 3), h=st.floats(0.2, 3))
def test_rectangle_area_exact_for_any_corners(x0, y0, w, h):
    with meshes.gmsh_session():
        info = meshes.build_model("rectangle", min(w, h) / 4, x0=x0, y0=y0, x1=x0 + w, y1=y0 + h)
    assert info["measures"]["domain"] == pytest.approx(w * h, rel=1e-10)
    assert info["quality"]["min_angle_deg"] > 20


def test_quality_angles_of_known_simplices():
    from meshes.mesh_quality import min_angles, simplex_measures

    tri = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]]], dtype=float)
    assert min_angles(tri) == pytest.approx([45.0])
    assert simplex_measures(tri) == pytest.approx([0.5])
    reg = np.array([[[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]], dtype=float)
    assert min_angles(reg) == pytest.approx([np.degrees(np.arccos(1 / 3))])
    corner = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]], dtype=float)
    assert min_angles(corner) == pytest.approx([np.degrees(np.arctan(np.sqrt(2)))])
    assert simplex_measures(corner) == pytest.approx([1 / 6])


def test_quality_summary_of_built_mesh(case):
    _, dm, _, _ = case
    q = dm.info["quality"]
    assert q["cells"] == dm.comm.allreduce(dm.mesh.topology.index_map(dm.tdim).size_local)
    assert 0 < q["min_sicn"] <= q["mean_sicn"] <= 1
    assert 0 < q["min_angle_deg"] < (60 if dm.tdim == 2 else 70.6)
