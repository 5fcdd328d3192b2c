"""fem.fv_geometry: grid geometry measures, Gauss cell averages, the explicit stability
bound; and the package boundary (fem needs no spiking, spiking no fem)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from fem.fv_geometry import FVGeometry, grid_cell_average, grid_geometry, stable_dt


def test_grid_geometry_measures():
    geo = grid_geometry([4, 3, 2], [0, 0, 0], [2.0, 1.5, 1.0])
    assert math.isclose(geo.volumes.sum(), 3.0)
    assert len(geo.pairs) == 3 * 3 * 2 + 4 * 2 * 2 + 4 * 3 * 1
    assert math.isclose(geo.boundary_areas.sum(), 2 * (2 * 1.5 + 2 * 1 + 1.5 * 1))
    np.testing.assert_allclose(geo.areas[:18], 0.5 * 0.5)
    assert sorted(geo.boundary_names) == ["x0", "x1", "y0", "y1", "z0", "z1"]
    assert len(geo.boundary("x0")) == 3 * 2 and len(geo.boundary("*")) == 2 * (6 + 8 + 12)
    # a linear function's cell average is its value at the centroid
    avg = grid_cell_average(geo, lambda x: 1 + x[0] - 2 * x[2], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(avg, 1 + geo.centroids[:, 0] - 2 * geo.centroids[:, 2])


def test_stable_dt_is_the_explicit_euler_bound():
    """1D, h = 0.1, k = 2: interior cells have Σ w = 2/h, the two end cells 1/h + 1/(h/2)
    = 3/h (their boundary facet counts): those bind, Δt = safety · h² / (3k)."""
    geo = grid_geometry([10])
    assert math.isclose(stable_dt(geo, 2.0, safety=1.0), 0.1**2 / 6, rel_tol=1e-12)
    assert math.isclose(stable_dt(geo, 2.0), 0.45 * 0.1**2 / 6, rel_tol=1e-12)


def test_bad_geometry_is_rejected():
    geo = grid_geometry([3])
    with pytest.raises(ValueError, match="volume"):
        FVGeometry(-geo.volumes, geo.centroids, geo.pairs, geo.areas, geo.distances,
                   geo.boundary_cells, geo.boundary_areas, geo.boundary_distances,
                   geo.boundary_centroids, geo.boundary_tags)
    with pytest.raises(ValueError, match="itself"):
        FVGeometry(geo.volumes, geo.centroids, [[1, 1]], [1.0], [1.0], geo.boundary_cells,
                   geo.boundary_areas, geo.boundary_distances, geo.boundary_centroids,
                   geo.boundary_tags)
    with pytest.raises(KeyError, match="no boundary 'top'"):
        geo.boundary("top")
    with pytest.raises(ValueError, match="grid"):
        grid_geometry([0])


def test_fem_volumes_imports_without_spiking():
    """fem never imports spiking: fem.volumes loads with spiking blocked."""
    code = ("import sys; sys.modules['spiking'] = None; import fem.volumes, fem.fv_geometry; "
            "print(sorted(m for m in sys.modules if m.startswith('spiking')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["['spiking']"]  # only the blocker entry itself
