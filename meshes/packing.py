"""Random sequential addition (RSA) of non-overlapping inclusions in the unit cube.

RSA (Widom 1966; Torquato, *Random Heterogeneous Materials*, 2002, ch. 3) places
inclusions one after another at uniformly random positions, rejecting any that
overlaps an earlier one; it jams near 38 % for equal spheres and 55 % for equal disks
(the fibre cross-sections), so targets above that are refused up front and every run
is bounded by ``max_attempts``. Ellipsoid overlap uses the Perram–Wertheim contact
function (J. Comput. Phys. 58, 409, 1985): two ellipsoids are disjoint iff
``max_λ F(λ) > 1`` with ``F(λ) = λ(1-λ) rᵀ[(1-λ)A⁻¹ + λB⁻¹]⁻¹ r``.

With ``placement="cut"`` the microstructure is periodic: an inclusion crossing a face
re-enters through the opposite one (its periodic images are drawn too), distances use
the minimum image, and the cube holds exactly the target inclusion volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import MeshError

# Jamming limits of RSA (equal spheres 0.384, equal disks 0.547), minus a margin for the
# finite cube and the gap: beyond these the packing will not be reached.
RSA_LIMIT = {"sphere": 0.36, "ellipsoid": 0.33, "fibre": 0.50}


@dataclass
class Inclusion:
    """One inclusion: centre, semi-axes (a ≥ 0) and rotation whose columns are its axes."""

    centre: np.ndarray
    semi_axes: np.ndarray
    rotation: np.ndarray

    def half_widths(self) -> np.ndarray:
        """Half extents along x, y, z (support function of the ellipsoid)."""
        return np.sqrt(((self.rotation * self.semi_axes) ** 2).sum(axis=1))

    def inv_shape(self, scale: float = 1.0) -> np.ndarray:
        """A⁻¹ = R diag((s·a)²) Rᵀ."""
        return (self.rotation * (scale * self.semi_axes) ** 2) @ self.rotation.T


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform random rotation (Shoemake's unit quaternion)."""
    u1, u2, u3 = rng.random(3)
    q = np.array([math.sqrt(1 - u1) * math.sin(2 * math.pi * u2),
                  math.sqrt(1 - u1) * math.cos(2 * math.pi * u2),
                  math.sqrt(u1) * math.sin(2 * math.pi * u3),
                  math.sqrt(u1) * math.cos(2 * math.pi * u3)])
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def perram_wertheim(r: np.ndarray, ainv: np.ndarray, binv: np.ndarray) -> float:
    """max over λ in [0,1] of the Perram–Wertheim contact function (> 1: disjoint)."""
    from scipy.optimize import minimize_scalar  # deferred: loads SciPy

    def neg_f(lam: float) -> float:
        m = (1 - lam) * ainv + lam * binv
        return -lam * (1 - lam) * float(r @ np.linalg.solve(m, r))

    res = minimize_scalar(neg_f, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-8})
    return -float(res.fun)


def _wrap(d: np.ndarray, periodic_axes: list[int]) -> np.ndarray:
    d = d.copy()
    d[..., periodic_axes] -= np.round(d[..., periodic_axes])
    return d


def pack(
    inclusion: str,
    volume_fraction: float,
    n: int,
    gap: float,
    placement: str,
    seed: int,
    aspect: tuple[float, float, float] = (1.0, 1.0, 1.0),
    axis: int = 2,
    max_attempts: int = 50_000,
    stall: int = 500,
) -> list[Inclusion]:
    """Place `n` equal inclusions of total volume `volume_fraction` in [0,1]^3 by RSA.

    After `stall` rejected insertions in a row, one hard-particle Monte Carlo sweep moves
    every placed inclusion by a random step when it stays valid (Metropolis et al. 1953);
    this removes the early jamming that walls cause. Insertions and moves together are
    bounded by `max_attempts`.
    """
    _check_request(inclusion, volume_fraction, gap)
    rng = np.random.default_rng(seed)
    eye = np.eye(3)
    semi, axes = _semi_axes(inclusion, volume_fraction, n, aspect, axis)
    periodic = axes if placement == "cut" else []
    placed: list[Inclusion] = []

    def fits(cand: Inclusion, others: list[Inclusion]) -> bool:
        h, c = cand.half_widths(), cand.centre
        if placement == "inside":
            if any(c[k] - h[k] < gap or c[k] + h[k] > 1 - gap for k in axes):
                return False
        elif any(abs(abs(c[k] - f) - h[k]) < max(gap, 0.1 * h[k]) for k in axes for f in (0, 1)):
            return False  # a face may cut it, but not nearly tangentially (no slivers)
        return not _overlaps(cand, others, gap, axes, periodic, inclusion)

    attempts = failed = 0
    while len(placed) < n and attempts < max_attempts:
        attempts += 1
        rot = random_rotation(rng) if inclusion == "ellipsoid" else eye
        cand = Inclusion(rng.random(3), semi.copy(), rot)
        if inclusion == "fibre":
            cand.centre[axis] = 0.5
        if fits(cand, placed):
            placed.append(cand)
            failed = 0
            continue
        failed += 1
        if failed % stall == 0:  # stuck: shake the packing to open room, then retry
            attempts += _shake(placed, fits, rng, axes, step=0.5 * float(semi.min()))
    if len(placed) < n:
        raise MeshError(
            f"--volume-fraction={volume_fraction} not reached: random sequential addition placed "
            f"{len(placed)} of {n} {inclusion}s in {max_attempts} attempts (gap={gap}, "
            f"placement={placement}); lower the volume fraction or gap, or use --placement cut "
            "(no walls)")
    return placed


def _check_request(inclusion: str, volume_fraction: float, gap: float) -> None:
    """Refuse volume fractions outside (0, 1) or beyond RSA's reach, and negative gaps."""
    if not 0 < volume_fraction < 1:
        raise MeshError(f"--volume-fraction={volume_fraction}: must be in (0, 1)")
    if volume_fraction > RSA_LIMIT[inclusion]:
        raise MeshError(f"--volume-fraction={volume_fraction} not reachable by random sequential "
                        f"addition of {inclusion}s (limit {RSA_LIMIT[inclusion]})")
    if gap < 0:
        raise MeshError(f"--gap={gap}: must be >= 0")


def _semi_axes(inclusion: str, volume_fraction: float, n: int, aspect, axis: int
               ) -> tuple[np.ndarray, list[int]]:
    """Semi-axes of each of n equal inclusions of the given total volume, and the axes along
    which they are bounded (a fibre is a circle of the cross-section, infinite along `axis`)."""
    if inclusion == "fibre":
        r = math.sqrt(volume_fraction / (math.pi * n))
        return np.array([r, r, r]), [k for k in range(3) if k != axis]
    req = (3 * volume_fraction / (4 * math.pi * n)) ** (1 / 3)  # equivalent-sphere radius
    a = np.asarray(aspect, dtype=float) if inclusion == "ellipsoid" else np.ones(3)
    return req * a / np.prod(a) ** (1 / 3), [0, 1, 2]


def _shake(placed: list[Inclusion], fits, rng: np.random.Generator, axes: list[int],
           step: float, sweeps: int = 5) -> int:
    """Hard-particle Monte Carlo: random moves that keep the packing valid; returns #moves."""
    for _ in range(sweeps):
        for i in range(len(placed)):
            old = placed[i]
            move = np.zeros(3)
            move[axes] = rng.uniform(-step, step, len(axes))
            trial = Inclusion(old.centre + move, old.semi_axes, old.rotation)
            trial.centre[axes] %= 1.0
            if fits(trial, placed[:i] + placed[i + 1:]):
                placed[i] = trial
    return sweeps * len(placed)


def _overlaps(cand, placed, gap, axes, periodic, inclusion) -> bool:
    if not placed:
        return False
    centres = np.array([p.centre for p in placed])
    d = _wrap(centres - cand.centre, periodic)[:, axes]
    dist = np.linalg.norm(d, axis=1)
    rmax = cand.semi_axes.max() + np.array([p.semi_axes.max() for p in placed])
    if inclusion != "ellipsoid":  # spheres / circles: exact test
        return bool(np.any(dist < rmax + gap))
    rmin = cand.semi_axes.min() + np.array([p.semi_axes.min() for p in placed])
    if np.any(dist < rmin + gap):
        return True
    # Scaling each ellipsoid by 1 + (gap/2)/a_min contains its gap/2-neighbourhood.
    s_c = 1 + 0.5 * gap / cand.semi_axes.min()
    for i in np.flatnonzero(dist < rmax + gap):
        p = placed[i]
        s_p = 1 + 0.5 * gap / p.semi_axes.min()
        if perram_wertheim(d[i], cand.inv_shape(s_c), p.inv_shape(s_p)) <= 1.0:
            return True
    return False


def images(inc: Inclusion, axes: list[int]) -> list[np.ndarray]:
    """Centres of the periodic copies of `inc` (itself included) that reach into the cube."""
    h = inc.half_widths()
    out = []
    shifts = [(-1, 0, 1) if k in axes else (0,) for k in range(3)]
    for sx in shifts[0]:
        for sy in shifts[1]:
            for sz in shifts[2]:
                c = inc.centre + np.array([sx, sy, sz], dtype=float)
                if all(c[k] + h[k] > 0 and c[k] - h[k] < 1 for k in axes):
                    out.append(c)
    return out
