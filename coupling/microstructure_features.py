"""Geometry-aware network inputs of a spherical (3D) or circular (2D) inclusion microstructure.

:func:`microstructure_features` turns the inclusion list of one microstructure in the unit
cell [0, 1]^gdim into per-point features, without any solve and independent of the order in
which the inclusions are listed:

* ``depth``: the inclusion depth ψ = Σ max(0, (r² − |x − c|²)/(2r)) of
  :func:`coupling.geometry.inclusion_depth` (smooth inside, zero in the matrix);
* ``signed_distance``: min over inclusions of |x − c| − r (negative inside an inclusion,
  positive in the matrix; the exact signed distance of the union for disjoint inclusions);
* ``nn{i}_dx, nn{i}_dy[, nn{i}_dz], nn{i}_r`` for the k nearest inclusions by surface
  distance: the offset c − x and the radius (ties broken by offset, so the order is unique);
* ``volume_fraction``: the inclusion volume (area in 2D) inside the ball (disk) of radius
  ``window`` around x, from the exact sphere–sphere (circle–circle) lens formula, divided by
  the ball's volume.

Periodic images: along each axis in ``periodic_axes`` (and only those) every inclusion also
appears shifted by ±1, so a point near x = 1 sees an inclusion near x = 0 through its image.
The window ball is clipped nowhere: in a periodic direction the images stand in for the
neighbouring cells, and in a non-periodic one the ball may leave the cell, where there is no
inclusion, so the fraction is still normalised by the whole ball's volume (it reads low near
such faces).

What a network can represent with these inputs: fields that depend on the nearest k
inclusions (their offsets and sizes), on the distance to the nearest interface (so a kink
across it) and on a local fraction at one length scale. What it cannot: long-range
arrangement (clustering beyond the k nearest, percolating paths, the global volume fraction
when ``window`` is small), non-spherical inclusions (ellipsoids, fibres) and overlapping
inclusions (the depth and fraction then count the overlap twice; the fraction is clipped to
1). Radii enter per inclusion, but the bounds of :func:`feature_bounds` are tightest when all
inclusions of a microstructure have one radius, as the RVE meshes generate.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from coupling.geometry import inclusion_depth
from fem.errors import ConfigError

#: entries of the (points × inclusions) arrays held at once; larger inputs run in chunks
_CHUNK = 1 << 22


def periodic_images(centres: np.ndarray, radii: np.ndarray, periodic_axes: list[int],
                    gdim: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres (M, gdim) and radii (M,) with the ±1 images along `periodic_axes` only."""
    centres = np.asarray(centres, float)[:, :gdim]
    radii = np.asarray(radii, float)
    steps = [[-1.0, 0.0, 1.0] if a in periodic_axes else [0.0] for a in range(gdim)]
    shifts = np.array(list(itertools.product(*steps)))  # (3^p, gdim), the zero shift among them
    images = (shifts[:, None, :] + centres[None]).reshape(-1, gdim)
    return images, np.tile(radii, len(shifts))


def _check(x, centres, radii, periodic_axes, gdim, k, window) -> None:
    """ConfigError on a bad argument of microstructure_features."""
    if gdim not in (2, 3):
        raise ConfigError("gdim", f"must be 2 or 3, got {gdim}")
    if x.ndim != 2 or x.shape[1] != gdim:
        raise ConfigError("x", f"expected points of shape (n, {gdim}), got {x.shape}")
    if centres.ndim != 2 or centres.shape[1] < gdim or len(centres) != len(radii):
        raise ConfigError("centres", f"expected (m, ≥{gdim}) centres for {len(radii)} radii, "
                          f"got {centres.shape}")
    if len(radii) == 0 or np.any(radii <= 0):
        raise ConfigError("radii", f"need at least one inclusion, all radii > 0; got {radii}")
    if len(set(periodic_axes)) != len(periodic_axes) or any(
            a not in range(gdim) for a in periodic_axes):
        raise ConfigError("periodic_axes", f"distinct axes in 0..{gdim - 1}, got {periodic_axes}")
    n_images = len(radii) * 3 ** len(periodic_axes)
    if not 1 <= k <= n_images:
        raise ConfigError("k", f"must be in 1..{n_images} (inclusions with images), got {k}")
    if not window > 0:
        raise ConfigError("window", f"must be > 0, got {window}")


def microstructure_features(x: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                            periodic_axes: list[int], gdim: int, k: int = 2,
                            window: float = 0.25) -> np.ndarray:
    """(n, F) float64 features at points x (n, gdim), columns as :func:`feature_names`.

    `centres` (m, ≥ gdim): columns past gdim (the z = 0 of a 2D mesh's centres) are ignored.
    """
    x = np.asarray(x, float)
    centres, radii = np.asarray(centres, float), np.asarray(radii, float).reshape(-1)
    _check(x, centres, radii, list(periodic_axes), gdim, k, window)
    c, r = periodic_images(centres, radii, list(periodic_axes), gdim)
    out = np.empty((len(x), 3 + k * (gdim + 1)))
    if len(x) == 0:
        return out
    # ψ is zero outside every ball, so only images whose ball meets the points' box count
    meets = np.all((c + r[:, None] >= x.min(axis=0)) & (c - r[:, None] <= x.max(axis=0)), axis=1)
    depth = inclusion_depth(torch.as_tensor(x), torch.as_tensor(c[meets]),
                            torch.as_tensor(r[meets])).numpy()
    out[:, 0] = depth
    step = max(1, _CHUNK // len(r))
    for s in range(0, len(x), step):
        out[s:s + step, 1:] = _chunk_features(x[s:s + step], c, r, k, window)
    return out


def _chunk_features(x: np.ndarray, c: np.ndarray, r: np.ndarray, k: int,
                    window: float) -> np.ndarray:
    """Signed distance, k nearest inclusions and local fraction of a chunk of points."""
    gdim = x.shape[1]
    dist2 = np.zeros((len(x), len(c)))
    for a in range(gdim):  # axis by axis: no (n, M, gdim) temporary
        dist2 += (c[None, :, a] - x[:, a, None]) ** 2
    dist = np.sqrt(dist2)  # (n, M) centre distances
    surface = dist - r
    i, j = np.nonzero(dist < window + r)  # the few pairs whose balls meet
    lens = _overlap(dist[i, j], window, r[j], gdim)
    inside = np.bincount(i, weights=lens, minlength=len(x)) / _ball(window, gdim)
    near = _nearest(x, c, r, surface, k)
    return np.column_stack([surface.min(axis=1), near.reshape(len(x), -1),
                            np.clip(inside, 0.0, 1.0)])


def _nearest(x: np.ndarray, c: np.ndarray, r: np.ndarray, surface: np.ndarray,
             k: int) -> np.ndarray:
    """(n, k, gdim + 1): offset c − x and radius of the k nearest inclusions, nearest first.

    The k smallest surface distances form a unique set unless the k-th ties with the next;
    only rows with such a tie are sorted in full, so the result never depends on the order
    of the inclusions.
    """
    n, m = surface.shape
    everything = np.broadcast_to(np.arange(m), (n, m))
    part = np.argpartition(surface, k - 1, axis=1)[:, :k] if k < m else everything
    kth = np.take_along_axis(surface, part, axis=1).max(axis=1)
    tied = np.count_nonzero(surface <= kth[:, None], axis=1) > k
    out = np.empty((n, k, x.shape[1] + 1))
    for rows, cand in ((~tied, part[~tied]), (tied, everything[tied])):
        if len(cand):
            out[rows] = _sorted_take(x[rows], c, r, surface[rows], cand, k)
    return out


def _sorted_take(x: np.ndarray, c: np.ndarray, r: np.ndarray, surface: np.ndarray,
                 cand: np.ndarray, k: int) -> np.ndarray:
    """Offsets and radii of candidates `cand` (rows, j), sorted by (distance, offset, radius)."""
    off = c[cand] - x[:, None]  # (rows, j, gdim)
    rad = r[cand]
    keys = [rad] + [off[..., a] for a in reversed(range(x.shape[1]))]
    keys.append(np.take_along_axis(surface, cand, axis=1))  # lexsort: the last key is primary
    order = np.lexsort(keys, axis=1)[:, :k]
    off = np.take_along_axis(off, order[..., None], axis=1)
    return np.concatenate([off, np.take_along_axis(rad, order, axis=1)[..., None]], axis=2)


def _ball(radius: float, gdim: int) -> float:
    """Volume (gdim = 3) or area (gdim = 2) of a ball."""
    return 4.0 / 3.0 * math.pi * radius ** 3 if gdim == 3 else math.pi * radius ** 2


def _overlap(d: np.ndarray, big: float, r: np.ndarray, gdim: int) -> np.ndarray:
    """Intersection volume (area) of balls of radii `big` and r whose centres are d apart.

    3D lens: π (R + r − d)² (d² + 2dr − 3r² + 2dR + 6rR − 3R²) / (12 d); 2D: the sum of the
    two circular segments, r² acos(·) + R² acos(·) − ½ √(Heron product) (e.g. Weisstein,
    MathWorld "Sphere-Sphere Intersection", "Circle-Circle Intersection").
    """
    R = big
    apart, nested = d >= R + r, d <= np.abs(R - r)
    dd = np.where(apart | nested, 1.0, d)  # the lens formulas only where they apply (no 0/0)
    small = np.minimum(R, r)
    if gdim == 3:
        lens = (math.pi * (R + r - dd) ** 2
                * (dd ** 2 + 2 * dd * r - 3 * r ** 2 + 2 * dd * R + 6 * r * R - 3 * R ** 2)
                / (12 * dd))
        full = 4.0 / 3.0 * math.pi * small ** 3
    else:
        a1 = np.arccos(np.clip((dd ** 2 + r ** 2 - R ** 2) / (2 * dd * r), -1.0, 1.0))
        a2 = np.arccos(np.clip((dd ** 2 + R ** 2 - r ** 2) / (2 * dd * R), -1.0, 1.0))
        heron = (-dd + r + R) * (dd + r - R) * (dd - r + R) * (dd + r + R)
        lens = r ** 2 * a1 + R ** 2 * a2 - 0.5 * np.sqrt(np.maximum(heron, 0.0))
        full = math.pi * small ** 2
    return np.where(apart, 0.0, np.where(nested, full, lens))


def feature_names(gdim: int, k: int) -> list[str]:
    """Column names of :func:`microstructure_features`, in order."""
    axes = "xyz"[:gdim]
    near = [f"nn{i}_{name}" for i in range(k) for name in [*(f"d{a}" for a in axes), "r"]]
    return ["depth", "signed_distance", *near, "volume_fraction"]


def feature_bounds(gdim: int, k: int, window: float, radii_max: float
                   ) -> tuple[list[float], list[float]]:
    """(lo, hi) per feature column, an input box for normalising the features.

    Depth in [0, r_max/2], signed distance in [−r_max, √gdim], offsets in [−√gdim, √gdim],
    radii in [0, r_max], fraction in [0, 1] (whatever `window`). The offset box holds for
    centres in the unit cell when k ≤ the number of inclusions and the radii are equal (each
    of the k nearest is then no farther than some inclusion's nearest image); with unequal
    radii a far image may exceed it by up to r_max − r_min.
    """
    if not window > 0 or not radii_max > 0:
        raise ConfigError("window", f"window and radii_max must be > 0, got {window}, "
                          f"{radii_max}")
    span = math.sqrt(gdim)
    lo, hi = [0.0, -radii_max], [radii_max / 2, span]
    for _ in range(k):
        lo += [-span] * gdim + [0.0]
        hi += [span] * gdim + [radii_max]
    return lo + [0.0], hi + [1.0]
