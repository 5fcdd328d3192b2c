"""Microstructure features: exact on one sphere, periodic images, order-free, lens fractions."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coupling.microstructure_features import (
    feature_bounds,
    feature_names,
    microstructure_features,
    periodic_images,
)
from fem.errors import ConfigError

unit = st.floats(0.0, 1.0, allow_nan=False)


def _col(gdim, k, name):
    """Column index of a feature by name."""
    return feature_names(gdim, k).index(name)


@settings(max_examples=40, deadline=None)
@given(st.lists(unit, min_size=3, max_size=3), st.floats(0.05, 0.4),
       st.lists(st.lists(unit, min_size=3, max_size=3), min_size=1, max_size=20))
def test_single_sphere_is_exact(c, r, pts):
    """Depth, signed distance, offset and radius match the closed forms (tol 1e-12)."""
    x, c = np.array(pts), np.array(c)
    F = microstructure_features(x, c[None], np.array([r]), [], 3, k=1)
    dist = np.linalg.norm(x - c, axis=1)
    assert F.shape == (len(x), len(feature_names(3, 1)))
    np.testing.assert_allclose(F[:, 0], np.maximum(0.0, (r * r - dist ** 2) / (2 * r)), atol=1e-12)
    np.testing.assert_allclose(F[:, 1], dist - r, atol=1e-12)
    np.testing.assert_allclose(F[:, 2:5], c - x, atol=1e-12)
    np.testing.assert_allclose(F[:, 5], r, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2), st.floats(0.05, 0.3),
       st.lists(st.lists(unit, min_size=2, max_size=2), min_size=1, max_size=20))
def test_single_disk_is_exact_in_2d(c, r, pts):
    """2D: the same closed forms with disks (tol 1e-12)."""
    x, c = np.array(pts), np.array(c)
    F = microstructure_features(x, c[None], np.array([r]), [], 2, k=1)
    dist = np.linalg.norm(x - c, axis=1)
    np.testing.assert_allclose(F[:, 1], dist - r, atol=1e-12)
    np.testing.assert_allclose(F[:, 2:4], c - x, atol=1e-12)
    np.testing.assert_allclose(F[:, _col(2, 1, "nn0_r")], r, atol=1e-12)


def test_images_only_along_periodic_axes():
    """3^p copies per inclusion, shifted by ±1 along the periodic axes only."""
    c, r = np.array([[0.1, 0.2, 0.3], [0.6, 0.7, 0.8]]), np.array([0.1, 0.2])
    for axes, gdim in (([], 3), ([0], 3), ([0, 2], 3), ([0, 1, 2], 3), ([1], 2), ([0, 1], 2)):
        ci, ri = periodic_images(c, r, axes, gdim)
        assert ci.shape == (2 * 3 ** len(axes), gdim) and len(ri) == len(ci)
        still = [a for a in range(gdim) if a not in axes]
        for a in still:
            assert set(np.round(ci[:, a], 12)) == set(np.round(c[:, a], 12))


def test_a_sphere_is_seen_through_its_periodic_image():
    """Point near x = 1 sees a sphere near x = 0 at the wrapped distance; y is not wrapped."""
    c, r = np.array([[0.05, 0.5, 0.5]]), np.array([0.1])
    x = np.array([[0.9, 0.45, 0.5]])
    F = microstructure_features(x, c, r, [0], 3, k=1)
    wrapped = np.array([1.05 - 0.9, 0.05, 0.0])
    assert F[0, 1] == pytest.approx(np.linalg.norm(wrapped) - 0.1, abs=1e-12)
    np.testing.assert_allclose(F[0, 2:5], wrapped, atol=1e-12)
    c_y = np.array([[0.5, 0.05, 0.5]])
    x_y = np.array([[0.5, 0.9, 0.5]])
    plain = microstructure_features(x_y, c_y, r, [0], 3, k=1)  # y not periodic: 0.85 away
    assert plain[0, 1] == pytest.approx(0.85 - 0.1, abs=1e-12)
    wrap = microstructure_features(x_y, c_y, r, [0, 1], 3, k=1)
    assert wrap[0, 1] == pytest.approx(0.15 - 0.1, abs=1e-12)
    assert wrap[0, _col(3, 1, "nn0_dy")] == pytest.approx(0.15, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(unit, min_size=3, max_size=3), min_size=1, max_size=10))
def test_periodic_distance_is_the_minimum_image_one(pts):
    """All axes periodic: signed distance = |minimum-image offset| − r (tol 1e-12)."""
    c, r = np.array([0.1, 0.85, 0.5]), 0.07
    x = np.array(pts)
    F = microstructure_features(x, c[None], np.array([r]), [0, 1, 2], 3, k=1)
    off = (c - x + 0.5) % 1.0 - 0.5
    np.testing.assert_allclose(F[:, 1], np.linalg.norm(off, axis=1) - r, atol=1e-12)


@pytest.mark.parametrize("gdim, axes", [(3, [0, 1, 2]), (3, [1]), (2, [0, 1]), (2, [])])
def test_invariant_under_permuting_the_inclusions(gdim, axes):
    """Same features (tol 1e-12) for any order of the inclusions, ties included."""
    rng = np.random.default_rng(7)
    c = rng.random((12, gdim))
    r = rng.uniform(0.03, 0.12, 12)
    x = np.vstack([rng.random((300, gdim)), np.full((1, gdim), 0.5)])
    c[:2] = 0.5  # a point at 0.5 equidistant from two equal inclusions: an exact tie
    c[0, 0], c[1, 0], r[:2] = 0.25, 0.75, 0.2
    F = microstructure_features(x, c, r, axes, gdim, k=3, window=0.2)
    for seed in range(3):
        p = np.random.default_rng(seed).permutation(len(r))
        G = microstructure_features(x, c[p], r[p], axes, gdim, k=3, window=0.2)
        np.testing.assert_allclose(G, F, atol=1e-12)


@pytest.mark.parametrize("gdim, axes", [(3, []), (3, [0, 1, 2]), (2, [0])])
def test_an_exact_tie_is_broken_by_the_offset(gdim, axes):
    """Two equal inclusions at 0.5 ∓ 0.25 from the point: the lower offset comes first."""
    c = np.full((3, gdim), 0.5)
    c[:, 0] = [0.75, 0.25, 0.5]
    c[2, 1] = 0.05  # a third, farther inclusion
    r = np.array([0.1, 0.1, 0.05])
    x = np.full((1, gdim), 0.5)
    for p in ([0, 1, 2], [1, 0, 2], [2, 1, 0]):
        F = microstructure_features(x, c[p], r[p], axes, gdim, k=2)
        assert F[0, _col(gdim, 2, "nn0_dx")] == pytest.approx(-0.25, abs=1e-12)
        assert F[0, _col(gdim, 2, "nn1_dx")] == pytest.approx(0.25, abs=1e-12)
        one = microstructure_features(x, c[p], r[p], axes, gdim, k=1)  # the tie at the k-th
        assert one[0, _col(gdim, 1, "nn0_dx")] == pytest.approx(-0.25, abs=1e-12)


@pytest.mark.parametrize("gdim", [2, 3])
def test_fraction_one_at_a_big_centre_and_zero_far_away(gdim):
    """Window inside an inclusion (R ≥ window) gives 1; no inclusion within reach gives 0."""
    c = np.array([[0.5] * gdim, [0.1] * gdim])
    r = np.array([0.3, 0.05])
    x = np.array([[0.5] * gdim, [0.9] * gdim])
    F = microstructure_features(x, c, r, [], gdim, k=1, window=0.25)
    v = _col(gdim, 1, "volume_fraction")
    assert F[0, v] == pytest.approx(1.0, abs=1e-12)
    assert F[1, v] == pytest.approx(0.0, abs=1e-12)


def _monte_carlo(x, c, r, window, n=400_000, seed=3):
    """Inclusion fraction of the window ball around x by uniform sampling of the ball."""
    rng = np.random.default_rng(seed)
    gdim = len(x)
    d = rng.normal(size=(n, gdim))
    d *= (window * rng.random(n) ** (1 / gdim) / np.linalg.norm(d, axis=1))[:, None]
    p = x + d
    hit = np.zeros(n, bool)
    for ci, ri in zip(c, r, strict=True):
        hit |= np.linalg.norm(p - ci, axis=1) < ri
    return hit.mean(), n


@pytest.mark.parametrize("gdim", [2, 3])
def test_lens_fraction_matches_monte_carlo(gdim):
    """Partial overlaps (a lens, and one through a periodic image) within 5 MC std. devs."""
    c = np.array([[0.5] * gdim, [0.04] + [0.5] * (gdim - 1)])
    r = np.array([0.2, 0.12])
    window = 0.25
    x = np.array([[0.5 + 0.3] + [0.5] * (gdim - 1), [0.95] + [0.55] * (gdim - 1)])
    F = microstructure_features(x, c, r, [0], gdim, k=2, window=window)
    ci, ri = periodic_images(c, r, [0], gdim)
    for i in range(len(x)):
        p, n = _monte_carlo(x[i], ci, ri, window)
        assert 0.02 < p < 0.98  # a genuine lens, not a trivial case
        assert F[i, -1] == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n))


def test_features_lie_in_their_bounds():
    """Disjoint equal spheres, k ≤ #inclusions: every feature inside feature_bounds."""
    g = np.array([0.2, 0.5, 0.8])
    c = np.array(np.meshgrid(g, g, g, indexing="ij")).reshape(3, -1).T
    c += np.random.default_rng(1).uniform(-0.03, 0.03, c.shape)
    r = np.full(len(c), 0.1)
    x = np.random.default_rng(2).random((2000, 3))
    for axes in ([], [0, 1, 2]):
        F = microstructure_features(x, c, r, axes, 3, k=3)
        lo, hi = feature_bounds(3, 3, 0.25, 0.1)
        assert len(lo) == len(hi) == F.shape[1] == len(feature_names(3, 3))
        assert np.all(F >= np.array(lo) - 1e-12) and np.all(F <= np.array(hi) + 1e-12)


@pytest.mark.parametrize("kwargs, key", [({"periodic_axes": [3]}, "periodic_axes"),
                                         ({"k": 5}, "k"), ({"window": 0.0}, "window"),
                                         ({"gdim": 4}, "gdim")])
def test_bad_arguments_name_their_key(kwargs, key):
    """ConfigError naming the argument."""
    args = {"x": np.zeros((2, 3)), "centres": np.full((2, 3), 0.5), "radii": np.full(2, 0.1),
            "periodic_axes": [], "gdim": 3} | kwargs
    with pytest.raises(ConfigError) as err:
        microstructure_features(**args)
    assert err.value.key == key
