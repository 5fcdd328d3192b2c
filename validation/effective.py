"""Analytic effective properties of a matrix with isotropic spherical (circular) inclusions.

Rivals for a network surrogate of a homogenised RVE: Mori–Tanaka (MT) estimates and
Hashin–Shtrikman (HS) bounds of the bulk and shear moduli, in 3D (spheres) and in 2D
(circular inclusions, i.e. aligned fibres, in plane strain), and the scalar conductivity
versions (Maxwell Garnett and the HS conductivity bounds).

Conventions: K is the bulk modulus of the dimension, i.e. in 3D K = λ + 2G/3 and in 2D the
plane-strain bulk modulus K₂ = λ + G (the fibre composites' transverse bulk modulus, Hashin
1965); :func:`kg_from_e_nu` / :func:`e_nu_from_kg` convert with the same ``dim``. ``f`` is
the inclusion volume (area) fraction. Arguments broadcast as numpy arrays.
"""

from __future__ import annotations

import numpy as np

from fem.errors import ConfigError


def _check(dim: int, f, *moduli) -> None:
    """ConfigError on a dimension other than 2, 3, a fraction outside [0, 1], a negative modulus."""
    if dim not in (2, 3):
        raise ConfigError("dim", f"must be 2 or 3, got {dim}")
    if np.any(np.asarray(f) < 0) or np.any(np.asarray(f) > 1):
        raise ConfigError("f", f"volume fraction must be in [0, 1], got {f}")
    if any(np.any(np.asarray(m) < 0) for m in moduli):
        raise ConfigError("moduli", f"must be ≥ 0, got {moduli}")


def kg_from_e_nu(E, nu, dim: int = 3):
    """(K, G) from Young's modulus and Poisson's ratio (dim = 2: plane-strain K₂ = λ + G)."""
    G = E / (2 * (1 + nu))
    if dim == 2:
        return E / (2 * (1 + nu) * (1 - 2 * nu)), G  # λ + G
    return E / (3 * (1 - 2 * nu)), G


def e_nu_from_kg(K, G, dim: int = 3):
    """(E, ν) from bulk and shear moduli (dim = 2: K is the plane-strain K₂ = λ + G)."""
    if dim == 2:
        nu = (K - G) / (2 * K)  # λ / (2(λ + G))
        return 2 * G * (1 + nu), nu
    return 9 * K * G / (3 * K + G), (3 * K - 2 * G) / (2 * (3 * K + G))


def _bulk_shift(G0, dim: int):
    """2(d−1)/d · G₀: 4G₀/3 in 3D, G₀ in 2D (the bulk HS/MT reference term)."""
    return 2 * (dim - 1) / dim * G0


def _shear_shift(K0, G0, dim: int):
    """ζ₀ = G₀ (d K₀/2 + (d+1)(d−2)G₀/d) / (K₀ + 2G₀) (Torquato 2002, d-dim HS)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # ζ₀ → 0 as G₀ → 0 (a void phase)
        z = G0 * (dim * K0 / 2 + (dim + 1) * (dim - 2) * G0 / dim) / (K0 + 2 * G0)
    return np.where(np.asarray(G0) > 0, z, 0.0)


def _hs_form(M1, M2, f, shift):
    """[(1−f)/(M₁+s) + f/(M₂+s)]⁻¹ − s, the HS expression for reference shift s (Walpole 1966).

    A phase with zero fraction drops out, so a void (M = 0) with s = 0 and f = 0 stays finite.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(np.asarray(1 - f) > 0, (1 - f) / (M1 + shift), 0.0)
        t2 = np.where(np.asarray(f) > 0, f / (M2 + shift), 0.0)
        return 1.0 / (t1 + t2) - shift


def mori_tanaka(Km, Gm, Ki, Gi, f, dim: int = 3):
    """(K, G) Mori–Tanaka estimate, spherical (dim = 2: circular) inclusions (Benveniste 1987).

    K = K_m + f (K_i − K_m)(K_m + a)/(K_m + a + (1−f)(K_i − K_m)), a = 2(d−1)G_m/d, and the
    same for G with a = ζ_m (3D: Benveniste 1987; 2D: the same form with the 2D ζ, Torquato 2002).
    """
    _check(dim, f, Km, Gm, Ki, Gi)
    a = _bulk_shift(Gm, dim)
    z = _shear_shift(Km, Gm, dim)
    K = Km + f * (Ki - Km) * (Km + a) / (Km + a + (1 - f) * (Ki - Km))
    G = Gm + f * (Gi - Gm) * (Gm + z) / (Gm + z + (1 - f) * (Gi - Gm))
    return K, G


def hashin_shtrikman(Km, Gm, Ki, Gi, f, dim: int = 3):
    """((K_lo, G_lo), (K_hi, G_hi)) HS bounds (3D: Hashin & Shtrikman 1963; 2D: Hashin 1965).

    In the Walpole (1966) form: K bounds use G_min (G_max) as reference, G bounds use
    ζ(K_min, G_min) (ζ(K_max, G_max)); with well-ordered phases this is the softer (stiffer)
    phase as reference, and the lower bound with the matrix softer is the MT estimate.
    """
    _check(dim, f, Km, Gm, Ki, Gi)
    K_lo = _hs_form(Km, Ki, f, _bulk_shift(np.minimum(Gm, Gi), dim))
    K_hi = _hs_form(Km, Ki, f, _bulk_shift(np.maximum(Gm, Gi), dim))
    G_lo = _hs_form(Gm, Gi, f, _shear_shift(np.minimum(Km, Ki), np.minimum(Gm, Gi), dim))
    G_hi = _hs_form(Gm, Gi, f, _shear_shift(np.maximum(Km, Ki), np.maximum(Gm, Gi), dim))
    return (K_lo, G_lo), (K_hi, G_hi)


def maxwell_garnett(km, ki, f, dim: int = 3):
    """Maxwell Garnett (= MT) conductivity, the HS lower bound when k_m < k_i (Maxwell 1873).

    k = k_m (k_i + (d−1)k_m + (d−1) f (k_i − k_m)) / (k_i + (d−1)k_m − f (k_i − k_m)).
    """
    _check(dim, f, km, ki)
    d1 = dim - 1
    return km * (ki + d1 * km + d1 * f * (ki - km)) / (ki + d1 * km - f * (ki - km))


def hashin_shtrikman_conductivity(km, ki, f, dim: int = 3):
    """(k_lo, k_hi) HS conductivity bounds, reference min (max) phase (Hashin & Shtrikman 1962).

    k = [(1−f)/(k_m + (d−1)k₀) + f/(k_i + (d−1)k₀)]⁻¹ − (d−1)k₀ with k₀ = min or max(k_m, k_i).
    """
    _check(dim, f, km, ki)
    lo = _hs_form(km, ki, f, (dim - 1) * np.minimum(km, ki))
    hi = _hs_form(km, ki, f, (dim - 1) * np.maximum(km, ki))
    return lo, hi
